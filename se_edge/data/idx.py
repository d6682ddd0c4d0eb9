"""MNIST's IDX format: `*-images-idx3-ubyte[.gz]` with `*-labels-idx1-ubyte[.gz]`."""
from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from se_edge.data.types import ImageSet, Source, check_memory, regular_file
from se_edge.errors import SeEdgeError

_IDX_IMAGES = re.compile(r"^(?P<prefix>.+)-images[-.]idx3-ubyte(\.gz)?$")
_IDX_LABELS = re.compile(r"^(?P<prefix>.+)-labels[-.]idx1-ubyte(\.gz)?$")


# Deflate expands at most about 1032:1, so a .gz can hold no more than this many bytes per stored byte.
_GZIP_MAX_RATIO = 1032


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file, no more than its header declares (a gzip bomb or a trailing flood is refused after
    one byte too many, not read to the end)."""
    stored = regular_file(path, "IDX file")
    compressed = path.suffix == ".gz"
    head_len = 4 + 4 * ndim
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            head = f.read(head_len)
            if len(head) < head_len or head[0:2] != b"\x00\x00" or head[2] != 0x08 or head[3] != ndim:
                raise SeEdgeError(f"malformed IDX file {path}: expected magic 0x0000080{ndim} (uint8, {ndim}-D), "
                                  f"found 0x{head[:4].hex()}")
            shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            declared = int(np.prod(shape, dtype=object))
            capacity = stored * _GZIP_MAX_RATIO if compressed else stored - head_len
            if declared > capacity:
                raise SeEdgeError(f"malformed IDX file {path}: header says shape {shape} ({declared} bytes), more than "
                                  f"a {stored}-byte {'.gz ' if compressed else ''}file can hold")
            check_memory(declared * 5, f"IDX file {path}: shape {shape} ({declared} bytes) read and converted to "
                         f"float32", "give a smaller set")
            data = f.read(declared + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise SeEdgeError(f"cannot read IDX file {path}: {e}") from None
    if len(data) != declared:
        found = f"{len(data)} bytes of data" if len(data) < declared else "more data than that"
        raise SeEdgeError(f"malformed IDX file {path}: header says shape {shape}, found {found}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


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
