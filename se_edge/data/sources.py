"""Which format a dataset SPEC is in, and loading it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from se_edge.data.cifar import _CIFAR_BATCH, _load_cifar_dir
from se_edge.data.idx import _IDX_IMAGES, _IDX_LABELS, _load_idx_dir
from se_edge.data.imagefolder import _load_image_folder
from se_edge.data.npz import _load_npz
from se_edge.data.types import (MAX_CLASSES, SOURCES, ImageSet, Source, _is_image, _listing, _one_line, _visible,
                                check_class_names)
from se_edge.errors import SeEdgeError


def load_source(spec: str, size: int | None = None) -> Source:
    """Load a dataset SPEC; raises SeEdgeError naming what was expected and what was found.

    `size`: the size the images will be resized to (the run's input size); a source of images of many sizes
    (an ImageFolder) resizes each to size x size as it reads it. None: the images as the source holds them."""
    source = _load_source(spec, size)
    if source.classes:
        check_class_names(source.classes, lambda i, n: f"dataset {spec!r} names class {i} {n!r}, which")
    for part in (source.images, source.test):
        if part is None:
            continue
        if len(part) == 0:
            raise SeEdgeError(f"dataset {spec!r} holds no images (0 {'test ' if part is source.test else ''}images)")
        if min(part.x.shape[2:], default=0) < 1:
            raise SeEdgeError(f"dataset {spec!r} holds images of shape {tuple(part.x.shape[1:])}; "
                              "expected (channels, height, width), each at least 1")
        if part.y.min() < 0 or part.y.max() >= MAX_CLASSES:
            bad = int(part.y.min()) if part.y.min() < 0 else int(part.y.max())
            raise SeEdgeError(f"dataset {spec!r} holds label {bad}; labels must be from 0 to {MAX_CLASSES - 1} (at "
                              f"most {MAX_CLASSES} classes)")
    return source


def _load_source(spec: str, size: int | None = None) -> Source:
    if spec == "digits":
        return _load_digits()
    path = Path(spec)
    if path.is_dir():
        try:
            return _load_dir(path, size)
        except OSError as e:  # an unreadable folder or file met while scanning
            raise SeEdgeError(f"cannot read dataset directory {path}: {_one_line(e)}") from None
    if path.suffix.lower() == ".npz":
        if path.exists():
            return _load_npz(path)
        raise SeEdgeError(f"unknown dataset {spec!r}: no such file; expected one of: {', '.join(SOURCES)}")
    if path.exists():
        raise SeEdgeError(f"dataset {spec!r} is a file; expected one of: {', '.join(SOURCES)}; "
                          f"found: a {path.suffix or 'suffix-less'} file")
    raise SeEdgeError(f"unknown dataset {spec!r}: no such directory; expected one of: {', '.join(SOURCES)}")


def default_in_chans(source: Source) -> int:
    """The number of channels of a source's images: 1 (greyscale) or 3 (RGB)."""
    return int(source.images.x.shape[1])


def _load_dir(path: Path, size: int | None = None) -> Source:
    """Detect a directory's format from its entries and load it."""
    entries = _visible(path)
    files = [p for p in entries if p.is_file()]
    dirs = [p for p in entries if p.is_dir()]
    if any(_IDX_IMAGES.match(f.name) or _IDX_LABELS.match(f.name) for f in files):
        return _load_idx_dir(path)
    if any(_CIFAR_BATCH.match(f.name) for f in files):
        return _load_cifar_dir(path)
    for unpacked in ("cifar-10-batches-py", "cifar-10-batches-bin"):  # what the CIFAR-10 archives unpack to
        if (path / unpacked).is_dir():
            return _load_cifar_dir(path / unpacked, name=path.name)
    if any(_is_image(f) for d in dirs for f in d.iterdir()) or any(
            _is_image(f) for d in dirs for sub in _visible(d) if sub.is_dir() for f in sub.iterdir()):
        return _load_image_folder(path, size)
    hint = " (images must sit in one folder per class)" if any(_is_image(f) for f in files) else ""
    raise SeEdgeError(
        f"{path} matches no dataset format (it holds no IDX files; expected files named "
        f"*-images-idx3-ubyte[.gz] and *-labels-idx1-ubyte[.gz], CIFAR-10 batches or class folders of "
        f"images); expected one of: {', '.join(SOURCES)}; found: {_listing(entries)}{hint}"
    )


def _load_digits() -> Source:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # 0..16 grey levels -> [0, 1]
    return Source("digits", ImageSet(x, d.target.astype(np.int64)))
