"""quiet.py: captured output closes what it duplicates; library noise is silenced by module, not for everyone."""
import os
import warnings

import pytest

from se_edge.quiet import captured_output, quiet_libraries


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count descriptors")
def test_captured_output_closes_its_descriptors():
    before = _open_fds()
    for _ in range(20):
        with captured_output():
            os.write(1, b"native log line\n")
    assert _open_fds() == before


def test_captured_output_attaches_the_tail_to_a_failure(monkeypatch):
    monkeypatch.delenv("SE_EDGE_DEBUG", raising=False)
    before = _open_fds() if os.path.isdir("/proc/self/fd") else None
    with pytest.raises(RuntimeError) as info:
        with captured_output():
            os.write(2, b"MLIR: op not legal\n")
            raise RuntimeError("conversion failed")
    assert any("MLIR: op not legal" in note for note in info.value.__notes__)
    if before is not None:
        assert _open_fds() == before


def test_quiet_libraries_keeps_other_warnings(monkeypatch):
    monkeypatch.delenv("SE_EDGE_DEBUG", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn("the user's own warning", UserWarning)
        warnings.warn_explicit("torch noise", FutureWarning, "x.py", 1, module="torch._export.utils")
    messages = [str(w.message) for w in caught]
    assert messages == ["the user's own warning"]
