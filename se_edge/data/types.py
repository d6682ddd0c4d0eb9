"""The data types every stage passes on: images, sources, splits and the preprocessing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from se_edge.errors import SeEdgeError

SOURCES = (
    "digits",
    "an MNIST-style IDX directory",
    "a CIFAR-10 batches directory (data_batch_*, test_batch)",
    "an ImageFolder directory (one folder of images per class)",
    "an .npz file with arrays x and y",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MAX_CLASSES = 100_000  # labels 0 .. 99999: a larger label is a column of ids or timestamps read as classes


@dataclass(frozen=True)
class Preprocessing:
    """What turns a source image into a network input: resize, then (x - mean) / std."""

    size: int
    mean: float
    std: float
    in_chans: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


@dataclass
class ImageSet:
    """Images (N, C, H, W) float32 and labels (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Source:
    """A loaded source: images in [0, 1], and a separate test set if the source defines one."""

    name: str
    images: ImageSet
    test: ImageSet | None = None
    classes: list[str] | None = None  # class names by label, where the source names them


@dataclass
class Splits:
    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int
    preprocessing: Preprocessing
    classes: list[str] | None = None  # class names by label, where the source names them


def regular_file(path: Path, what: str) -> int:
    """The size of `path`, which must be a regular file: a FIFO would block the read forever and a device
    (a link to /dev/zero, say) would read until memory runs out. One line naming it otherwise."""
    import stat

    try:
        st = path.stat()
    except OSError as e:
        raise SeEdgeError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket")
        raise SeEdgeError(f"{what} {path} is {kind}, not a regular file; give a file on disk")
    return st.st_size


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _visible(path: Path) -> list[Path]:
    """A directory's entries, sorted, without hidden ones (.DS_Store, macOS ._* files, .git)."""
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def _listing(entries: list[Path], limit: int = 4) -> str:
    """'2 folders (a/, b/) and 1 file (x.txt)': what a directory holds, for error messages."""
    def names(items: list[str], what: str) -> str:
        shown = ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
        return f"{len(items)} {what}{'s' if len(items) != 1 else ''} ({shown})"

    dirs = [p.name + "/" for p in entries if p.is_dir()]
    files = [p.name for p in entries if not p.is_dir()]
    parts = ([names(dirs, "folder")] if dirs else []) + ([names(files, "file")] if files else [])
    return " and ".join(parts) or "an empty directory"


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _size_text(n: float) -> str:
    """Bytes for a message: '120.6 GB', '512 MB'."""
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{max(n, 0) / 1e6:.0f} MB"


def _proc_kib(path: str, key: str) -> int | None:
    """A 'Key:   1234 kB' value of /proc/meminfo or /proc/self/status, in bytes; None where absent."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate, as far as it can tell: the system's MemAvailable (or free pages,
    where there is no /proc/meminfo), lowered by a cgroup v2 memory limit and by RLIMIT_AS (less what the
    process already maps). None where nothing says."""
    import os

    found: list[int] = []
    avail = _proc_kib("/proc/meminfo", "MemAvailable")
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    if avail is not None and avail > 0:
        found.append(avail)
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            found.append(max(soft - (_proc_kib("/proc/self/status", "VmSize") or 0), 0))
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


def check_memory(need: int, what: str, advice: str) -> None:
    """Refuse, before allocating, `need` bytes that do not fit in the memory available: one line,
    '{what} would take about X GB, more than the Y GB of memory available; {advice}'."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise SeEdgeError(f"{what} would take about {_size_text(need)}, more than the {_size_text(avail)} of memory "
                          f"available; {advice}")


def _name_fault(name: str) -> str | None:
    """What makes `name` unusable as a class name (a line of labels.txt), or None."""
    import unicodedata

    if not name.strip():
        return "is empty" if not name else "is only whitespace"
    for ch in name:
        if ch in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
            return f"holds a line break ({ch!r})"
        if unicodedata.category(ch) == "Cc":
            return f"holds a control character ({ch!r})"
    return None


CLASS_NAMES_VALID = ("a class name is one line of printable characters (the names are the lines of the labels.txt "
                     "packed into every .tflite)")


def check_class_names(names: list[str], describe) -> None:
    """Refuse a class name with a line break or another control character (it would shift every later line of
    labels.txt), or an empty one: SeEdgeError('{describe(index, name)} {fault}; ' + CLASS_NAMES_VALID)."""
    for i, name in enumerate(names):
        fault = _name_fault(name)
        if fault:
            raise SeEdgeError(f"{describe(i, name)} {fault}; {CLASS_NAMES_VALID}")
