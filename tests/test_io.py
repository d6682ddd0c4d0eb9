import os
import stat
import subprocess
import sys

import pytest

from se_edge.errors import SeEdgeError
from se_edge.io import atomic_path, write_bytes, write_text


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


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_new_files_get_the_umasks_mode_and_rewrites_keep_the_files_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_bytes(tmp_path / "m.pte", b"1")
        assert stat.S_IMODE((tmp_path / "m.pte").stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)
    os.chmod(tmp_path / "m.pte", 0o640)
    write_bytes(tmp_path / "m.pte", b"2")
    assert stat.S_IMODE((tmp_path / "m.pte").stat().st_mode) == 0o640 and (tmp_path / "m.pte").read_bytes() == b"2"


def test_symlinks_and_special_files_are_refused_not_replaced(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(SeEdgeError, match="it is a symlink"):
        write_text(link, "x")
    assert link.is_symlink() and target.read_text() == "keep"
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(SeEdgeError, match="it is a directory"):
        write_text(tmp_path / "dir.json", "x")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.json")
        with pytest.raises(SeEdgeError, match="a device, FIFO or socket"):
            write_text(tmp_path / "fifo.json", "x")
        assert stat.S_ISFIFO((tmp_path / "fifo.json").stat().st_mode)


def test_a_killed_runs_temp_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".m.tflite.{dead.stdout.strip()}.abcd.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / f".other.tflite.{dead.stdout.strip()}.abcd.tmp"
    other.write_bytes(b"not this path's")
    write_bytes(tmp_path / "m.tflite", b"full")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "m.tflite"]


def test_unwritable_output_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SeEdgeError, match="cannot write"):
        write_text(tmp_path / "file" / "under" / "r.json", "x")
