"""MNIST's IDX format: `*-images-idx3-ubyte[.gz]` with `*-labels-idx1-ubyte[.gz]`."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from se_edge.data.types import ImageSet, Source
from se_edge.errors import SeEdgeError

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
