"""The run lock: one se-edge process per run directory at a time."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from se_edge.errors import SeEdgeError
from se_edge.io import check_directory, pid_alive
from se_edge.run.layout import LOCK


@contextlib.contextmanager
def hold(directory: Path):
    """Exclusive use of `directory` for this process: a second process gets one line naming the holder. A lock left
    by a killed process is taken over; a directory made only for the lock is removed again if nothing was written
    into it (bad input, say)."""
    created = not directory.exists()
    check_directory(directory, True)
    lock = directory / LOCK
    for attempt in (1, 2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = _holder(lock)
            if attempt == 2 or (holder is not None and pid_alive(holder)):
                raise SeEdgeError(f"{directory} is in use by another se-edge process (pid {holder}); wait for it, "
                                  f"or give another --out") from None
            lock.unlink(missing_ok=True)  # left by a killed run
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(directory.iterdir()):
            directory.rmdir()


def _holder(lock: Path) -> int | None:
    try:
        text = lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
