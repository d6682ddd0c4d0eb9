import pytest

from se_edge.io import atomic_path, write_bytes


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"old, complete")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a mod")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_write_bytes_replaces(tmp_path):
    write_bytes(tmp_path / "a" / "b.pte", b"123")
    assert (tmp_path / "a" / "b.pte").read_bytes() == b"123"
