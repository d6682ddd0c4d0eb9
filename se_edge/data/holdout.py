"""Set images aside before anything trains on them.

`hold_out` splits a source (seeded, stratified) into a *pool*, which a run then splits into its own
train/val/test, and an *unseen* set that no stage of that run reads: not training, not validation,
not PTQ calibration. Both are written in a standard format (an MNIST IDX directory for greyscale
images, an `.npz` otherwise), so the unseen set is evaluated later like any other dataset:
`se-edge parity --run RUN --data UNSEEN`.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from se_edge.data.sources import load_source
from se_edge.data.splits import _stratified_split
from se_edge.data.types import ImageSet
from se_edge.io import atomic_path


def write_idx(directory: str | os.PathLike, prefix: str, images: ImageSet) -> None:
    """Write greyscale images in [0, 1] as MNIST IDX files `<prefix>-{images-idx3,labels-idx1}-ubyte.gz`."""
    if images.x.ndim != 4 or images.x.shape[1] != 1:
        raise ValueError(f"IDX holds greyscale images (N, 1, H, W); got shape {images.x.shape}")
    if images.y.size and (images.y.min() < 0 or images.y.max() > 255):
        raise ValueError("IDX labels are uint8 (0..255)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.rint(images.x[:, 0] * 255.0), 0, 255).astype(np.uint8)
    labels = images.y.astype(np.uint8)
    for kind, magic, arr in (("images-idx3", b"\x00\x00\x08\x03", pixels), ("labels-idx1", b"\x00\x00\x08\x01", labels)):
        header = magic + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        with atomic_path(directory / f"{prefix}-{kind}-ubyte.gz") as tmp, gzip.open(tmp, "wb") as f:
            f.write(header + arr.tobytes())


def _write(path: Path, images: ImageSet, test: ImageSet | None) -> Path:
    if images.x.shape[1] == 1:
        write_idx(path, "train", images)
        if test is not None:
            write_idx(path, "t10k", test)
        return path
    path = path.with_suffix(".npz")
    arrays = {"x": images.x, "y": images.y}
    if test is not None:
        arrays.update(x_test=test.x, y_test=test.y)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def hold_out(spec: str, out_dir: str | os.PathLike, fraction: float = 0.25, seed: int = 0) -> tuple[str, str]:
    """Split dataset `spec` into (pool, unseen), written under `out_dir`; returns their dataset specs.

    The source's own test set, if it has one, stays with the pool (as the pool's test set).
    """
    source = load_source(spec)
    pool, unseen = _stratified_split(source.images, fraction, seed)
    out_dir = Path(out_dir)
    return str(_write(out_dir / "pool", pool, source.test)), str(_write(out_dir / "unseen", unseen, None))
