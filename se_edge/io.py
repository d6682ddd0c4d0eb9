"""Atomic writes: every artifact and report is written to a temp file, then renamed.

An interrupted run therefore never leaves a truncated `.tflite`, `.pte` or report behind.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def check_output_path(path: str | os.PathLike) -> Path:
    """`path` may be written by rename: absent, or an existing regular file (never a symlink, a device,
    a FIFO or a directory, which a rename would replace). One-line SeEdgeError otherwise."""
    from se_edge.errors import SeEdgeError

    path = Path(path)
    if len(path.name.encode()) > 255:
        raise SeEdgeError(f"cannot write {path}: the file name is longer than 255 bytes")
    try:
        is_link, exists = path.is_symlink(), path.exists()
    except OSError as e:
        raise SeEdgeError(f"cannot write {path}: {e.strerror or e}") from None
    if is_link:
        raise SeEdgeError(f"refusing to write {path}: it is a symlink, which would be replaced; give a regular file path")
    if exists and not path.is_file():
        kind = "a directory" if path.is_dir() else "a device, FIFO or socket"
        raise SeEdgeError(f"refusing to write {path}: it is {kind}, which would be replaced; give a regular file path")
    return path


def check_directory(path: str | os.PathLike, create: bool = True) -> Path:
    """A directory se_edge may write into: created if absent (with `create`; without, only checked that it
    could be); one line if it is a file, under a file, unwritable or an impossible name."""
    from se_edge.errors import SeEdgeError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SeEdgeError(f"cannot use {path} as an output directory: it exists and is not a directory")
    if not create:
        if any(len(part.encode()) > 255 for part in path.parts):
            raise SeEdgeError(f"cannot create output directory {path}: a name in it is longer than 255 bytes")
        ancestor = path
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise SeEdgeError(f"cannot create output directory {path}: {ancestor} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise SeEdgeError(f"cannot write into {ancestor}: permission denied")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SeEdgeError(f"cannot create output directory {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SeEdgeError(f"cannot write into {path}: permission denied")
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """An output file path, checked before the work that produces it: a regular file or absent, in a
    directory that exists (or can be made) and is writable."""
    from se_edge.errors import SeEdgeError

    path = check_output_path(path)
    check_directory(path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise SeEdgeError(f"cannot write {path}: permission denied")
    try:  # what the rename will need: a new file beside it (root passes os.access on /proc and read-only mounts)
        with tempfile.NamedTemporaryFile(prefix=f".{path.name[:200]}.{os.getpid()}.", suffix=".tmp", dir=path.parent):
            pass
    except OSError as e:
        raise SeEdgeError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _file_mode(path: Path) -> int:
    """The replaced file's mode, else what the user's umask gives a new file (mkstemp's 0600 is not that)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _remove_stale_temps(path: Path) -> None:
    """Temps of this path left by a killed process (its pid, in the name, no longer runs)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs here (a lock or temp file's owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.

    The file gets the replaced file's mode or the umask's, is fsynced before the rename, and never
    replaces a symlink or a special file. Temps a killed run left for this path are removed."""
    from se_edge.errors import SeEdgeError

    path = check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise SeEdgeError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, _file_mode(path))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        check_output_path(path)  # still not a symlink or a special file now that the work is done
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        if e.errno in _STORAGE_ERRORS:  # disk full, quota, file size limit, read-only: the old file stays
            raise SeEdgeError(f"cannot write {path}: {e.strerror} (nothing was replaced)") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def write_torch(path: str | os.PathLike, obj) -> Path:
    """torch.save, atomically. Serialised in memory first: torch.save's own writer turns a full disk into
    an unreadable RuntimeError, a plain write into an OSError naming it."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getbuffer())


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "file") -> dict:
    from se_edge.errors import SeEdgeError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SeEdgeError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as e:
        raise SeEdgeError(f"{what} {path} is unreadable or not JSON: {e}") from None


_HASHES: dict[tuple, str] = {}  # (path, mtime, size, inode) -> sha256: each file hashed once per change


def file_sha256(path: Path) -> str:
    """The file's sha256, computed once per version of it (path, mtime, size, inode) in a process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]
