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
