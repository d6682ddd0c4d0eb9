"""Datasets: sources in standard formats -> preprocessed, seeded, stratified splits.

A dataset SPEC is `digits` (scikit-learn's bundled 8x8 handwritten digits, real images, no
download) or a directory in MNIST's IDX format (`*-images-idx3-ubyte[.gz]` with
`*-labels-idx1-ubyte[.gz]`). Images are scaled to [0, 1], resized to the network's input size and
normalised with the training split's mean and std; that preprocessing is stored with a run so that
evaluation on new data matches it.
"""
from __future__ import annotations

import dataclasses
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from se_edge.errors import SeEdgeError

SOURCES = ("digits", "an MNIST-style IDX directory")


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


@dataclass
class Splits:
    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int
    preprocessing: Preprocessing


# ---------------------------------------------------------------- sources


def load_source(spec: str) -> Source:
    """Load a dataset SPEC; raises SeEdgeError naming what was expected and what was found."""
    if spec == "digits":
        return _load_digits()
    path = Path(spec)
    if path.is_dir():
        return _load_idx_dir(path)
    if path.exists():
        raise SeEdgeError(f"dataset {spec!r} is a file; expected one of: {', '.join(SOURCES)}")
    raise SeEdgeError(f"unknown dataset {spec!r}: no such directory; expected one of: {', '.join(SOURCES)}")


def _load_digits() -> Source:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # 0..16 grey levels -> [0, 1]
    return Source("digits", ImageSet(x, d.target.astype(np.int64)))


_IDX_IMAGES = re.compile(r"^(?P<prefix>.+)-images[-.]idx3-ubyte(\.gz)?$")
_IDX_LABELS = re.compile(r"^(?P<prefix>.+)-labels[-.]idx1-ubyte(\.gz)?$")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise SeEdgeError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 + 4 * ndim or data[0:2] != b"\x00\x00" or data[2] != 0x08 or data[3] != ndim:
        raise SeEdgeError(
            f"malformed IDX file {path}: expected magic 0x0000080{ndim} (uint8, {ndim}-D), "
            f"found 0x{data[:4].hex() if len(data) >= 4 else data.hex()}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise SeEdgeError(f"malformed IDX file {path}: header says shape {shape}, found {body.size} bytes of data")
    return body.reshape(shape)


def _load_idx_dir(path: Path) -> Source:
    images, labels = {}, {}
    for f in sorted(path.iterdir()):
        if m := _IDX_IMAGES.match(f.name):
            images[m["prefix"]] = f
        elif m := _IDX_LABELS.match(f.name):
            labels[m["prefix"]] = f
    expected = "files named *-images-idx3-ubyte[.gz] and *-labels-idx1-ubyte[.gz]"
    if not images and not labels:
        raise SeEdgeError(f"{path} holds no IDX files; expected {expected}")
    if set(images) != set(labels):
        missing = sorted((set(images) ^ set(labels)))
        raise SeEdgeError(f"{path}: IDX set(s) {missing} lack their images or labels file; expected {expected}")
    sets = {}
    for prefix in images:
        x = _read_idx(images[prefix], 3)
        y = _read_idx(labels[prefix], 1)
        if len(x) != len(y):
            raise SeEdgeError(f"{path}: {prefix} has {len(x)} images but {len(y)} labels")
        sets[prefix] = ImageSet((x.astype(np.float32) / 255.0)[:, None], y.astype(np.int64))
    name = path.name or str(path)
    if len(sets) == 1:
        return Source(name, next(iter(sets.values())))
    test = [p for p in sets if p.startswith(("t10k", "test"))]
    train = [p for p in sets if p not in test]
    if len(test) != 1 or len(train) != 1:
        raise SeEdgeError(f"{path}: found IDX sets {sorted(sets)}; expected one set, or one training set and one t10k/test set")
    return Source(name, sets[train[0]], test=sets[test[0]])


# ---------------------------------------------------------------- preprocessing


def resize(x: np.ndarray, size: int, in_chans: int) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> (N, in_chans, size, size), antialiased bilinear."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.shape[1] != in_chans:
        if in_chans == 1:
            t = t.mean(1, keepdim=True)
        elif t.shape[1] == 1:
            t = t.expand(-1, in_chans, -1, -1)
        else:
            raise SeEdgeError(f"cannot map {t.shape[1]}-channel images to a {in_chans}-channel model")
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return t.contiguous().numpy()


def apply(images: ImageSet, prep: Preprocessing) -> ImageSet:
    x = resize(images.x, prep.size, prep.in_chans)
    return ImageSet(((x - prep.mean) / prep.std).astype(np.float32), images.y)


def _stratified_split(images: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(images))
    a, b = train_test_split(idx, test_size=fraction, random_state=seed, stratify=images.y)
    return ImageSet(images.x[a], images.y[a]), ImageSet(images.x[b], images.y[b])


def load_splits(
    spec: str,
    size: int = 32,
    in_chans: int = 1,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    prep: Preprocessing | None = None,
) -> Splits:
    """Seeded, stratified train/val/test splits, normalised with the training split's statistics
    (or with `prep`, to rebuild the splits of an existing run).

    A source with its own test set (IDX `train` + `t10k`) keeps it as the test split.
    """
    source = load_source(spec)
    rest, test = (source.images, source.test) if source.test is not None else _stratified_split(source.images, test_fraction, seed)
    train, val = _stratified_split(rest, val_fraction, seed)
    if prep is None:
        train_resized = resize(train.x, size, in_chans)
        prep = Preprocessing(size=size, mean=float(train_resized.mean()), std=float(train_resized.std()) or 1.0,
                             in_chans=in_chans)
    num_classes = int(max(source.images.y.max(), test.y.max())) + 1
    return Splits(source.name, apply(train, prep), apply(val, prep), apply(test, prep), num_classes, prep)


def load_eval_set(spec: str, prep: Preprocessing, run_spec: str | None = None, seed: int = 0,
                  test_fraction: float = 0.2) -> tuple[str, ImageSet]:
    """The images to evaluate a finished run on, preprocessed exactly as the run was.

    The run's own dataset gives back its held-out test split; any other source is evaluated whole
    (or on its test set, if it defines one).
    """
    source = load_source(spec)
    if run_spec is not None and _same_spec(spec, run_spec):
        if source.test is not None:
            test = source.test
        else:
            _, test = _stratified_split(source.images, test_fraction, seed)
        return f"{source.name} (test split)", apply(test, prep)
    images = source.test if source.test is not None else source.images
    return source.name, apply(images, prep)


def _same_spec(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
