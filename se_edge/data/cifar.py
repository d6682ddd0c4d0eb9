"""CIFAR-10 batches: the python version (pickles, read with a restricted unpickler) and the binary one."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from se_edge.data.types import (MAX_CLASSES, ImageSet, Source, _listing, _one_line, _visible, check_class_names,
                                check_memory, regular_file)
from se_edge.errors import SeEdgeError

_CIFAR_BATCH = re.compile(r"^(data_batch_(?P<n>\d+)|test_batch)(?P<bin>\.bin)?$")
_CIFAR_EXPECTED = "expected a pickled dict with b'data' (N, 3072) uint8 and b'labels'"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # binary version: one label byte, then the R, G and B planes
# Caps on a batch file, checked by its size before it is read. CIFAR-10's batches hold 10000 images each
# (30,730,000 bytes binary, about 31 MB pickled); a cap of all 60000 of its images in one file leaves room for
# re-packed sets and still refuses a sparse 3 GB file before a byte of it is read.
_CIFAR_MAX_RECORDS = 60_000
_CIFAR_MAX_PICKLE = 256 * 2**20  # 60000 images pickled with their labels and file names: about 190 MB
_CIFAR_MAX_META = 2**20  # batches.meta: ten names (about 160 bytes)


class _ForbiddenGlobal(pickle.UnpicklingError):
    """Something a CIFAR-10 batch never holds: the message says what (it follows 'found ')."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles made by Python 3 call to rebuild bytes (`_codecs.encode`)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _ForbiddenGlobal(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _bytes(*args) -> bytes:
    """`bytes`, as protocol-2 pickles call it for b'' (no arguments); bytes(n) would make n zero bytes from a
    few bytes of pickle, so only a copy of bytes it is given is allowed besides."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray, memoryview)):
        return bytes(args[0])
    raise _ForbiddenGlobal(f"a call bytes({', '.join(type(a).__name__ for a in args)}), which is not allowed")


def _elements(shape) -> tuple[tuple[int, ...], int]:
    """A pickled shape (an int or a tuple of ints, each >= 0) and its number of elements."""
    import operator

    try:
        dims = tuple(operator.index(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except TypeError:
        raise _ForbiddenGlobal(f"an array shape {shape!r}, which is not a tuple of integers") from None
    if any(d < 0 for d in dims):
        raise _ForbiddenGlobal(f"an array shape {dims} with a negative dimension")
    n = 1
    for d in dims:
        n *= d
    return dims, n


class _PickledArray(np.ndarray):
    """What a pickled array is rebuilt as, so that its state is checked before numpy takes it: the raw bytes
    must be bytes, exactly as many as shape x itemsize, and the dtype must hold no Python objects. (numpy checks
    the length too; this refuses first, with the shape in the message.) Turned back into a plain ndarray after
    loading."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _ForbiddenGlobal("an array with a malformed pickled state")
        shape, dtype, raw = state[-4], state[-3], state[-1]
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise _ForbiddenGlobal(f"an array of dtype {dtype!r}, which is not plain numbers")
        dims, n = _elements(shape)
        declared = n * dtype.itemsize
        got = len(raw) if isinstance(raw, (bytes, bytearray)) else None
        if got != declared:
            carried = f"{got} bytes" if got is not None else f"a {type(raw).__name__}, not bytes"
            raise _ForbiddenGlobal(f"an array declaring shape {dims} of {dtype} ({declared} bytes) but carrying "
                                   f"{carried}")
        super().__setstate__(state)


def _safe_globals(limit: int) -> dict[tuple[str, str], object]:
    """The only globals a CIFAR-10 batch may reference: numpy arrays, dtypes, scalars and bytes; each bounded
    so that no array or scalar declares more bytes than the `limit`-byte file can carry."""
    try:
        from numpy._core import multiarray, numeric
        cores = ("numpy._core", "numpy.core")
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
        cores = ("numpy.core", "numpy._core")

    def reconstruct(subtype, shape, dtype):
        """numpy's own pickles call _reconstruct(ndarray, (0,), b'b') and give shape and bytes in the state
        (_PickledArray.__setstate__); a shape here would be memory filled with whatever was there."""
        if subtype is not np.ndarray:
            raise _ForbiddenGlobal(f"an array of type {subtype!r}, which is not allowed")
        dt = np.dtype(dtype)
        dims, n = _elements(shape)
        if n:
            raise _ForbiddenGlobal(f"an array of shape {dims} and dtype {dt} declared without its data "
                                   f"({n * dt.itemsize} bytes of uninitialised memory, from a {limit}-byte file)")
        return multiarray._reconstruct(_PickledArray, dims, dt)

    def scalar(dtype, *args):
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.itemsize > limit:
            raise _ForbiddenGlobal(f"a scalar of dtype {dtype!r}, which is not allowed")
        return multiarray.scalar(dtype, *args)

    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): _bytes,
        ("__builtin__", "bytes"): _bytes,
    }
    for core in cores:
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # a view of bytes the pickle holds
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data (dicts, lists, bytes, numpy arrays) from a `limit`-byte file; any other class is
    refused, and so is an array that declares more than the file holds."""

    def __init__(self, file, limit: int, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = _safe_globals(limit)

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"a pickle that references {module}.{name}, which is not allowed") from None


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        keys = ", ".join(repr(k) for k in list(obj)[:6]) + (", ..." if len(obj) > 6 else "")
        return f"a dict with keys {keys}" if obj else "an empty dict"
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape} and dtype {obj.dtype}"
    return f"a {type(obj).__name__}"


def _plain(obj: object) -> object:
    """A loaded batch with its arrays as plain ndarrays again (not _PickledArray)."""
    if isinstance(obj, np.ndarray):
        return obj.view(np.ndarray)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj] if any(isinstance(v, np.ndarray) for v in obj) else obj
    return obj


def _unpickle(f: Path, cap: int) -> object:
    """Unpickle `f` (at most `cap` bytes; else a ValueError saying so). Every length its opcodes declare is
    checked against the bytes that follow before the C unpickler allocates it (pickletools reads, not trusts)."""
    import io
    import pickletools

    size = regular_file(f, "CIFAR-10 batch")
    if size > cap:
        raise ValueError(f"{f.name} is {size} bytes, more than the {cap} allowed")
    with open(f, "rb") as fh:
        data = fh.read(cap + 1)
    try:
        for _ in pickletools.genops(io.BytesIO(data)):  # a length that runs past the end, an unknown opcode
            pass
    except ValueError as e:
        raise pickle.UnpicklingError(str(e)) from None
    return _plain(_RestrictedUnpickler(io.BytesIO(data), limit=len(data), encoding="bytes").load())


def _to_float(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1] (one float copy, divided in place)."""
    out = x.astype(np.float32)
    out /= 255.0
    return out


def _read_cifar_python_batch(path: Path, f: Path) -> ImageSet:
    def bad(found: str) -> SeEdgeError:
        return SeEdgeError(f"cifar10 directory {path}: {f.name} is not a CIFAR-10 batch ({_CIFAR_EXPECTED}, "
                           f"found {_one_line(found)})")

    size = regular_file(f, "CIFAR-10 batch")
    if size > _CIFAR_MAX_PICKLE:
        raise SeEdgeError(f"cifar10 directory {path}: {f.name} is {size} bytes, more than a CIFAR-10 python batch "
                          f"holds (at most {_CIFAR_MAX_PICKLE} bytes, 60000 images; each of CIFAR-10's batches is "
                          f"about 31 MB)")
    check_memory(size * 5, f"cifar10 directory {path}: reading {f.name} ({size} bytes) into float32 images",
                 "free memory, or train on fewer batches")
    try:
        obj = _unpickle(f, _CIFAR_MAX_PICKLE)
    except _ForbiddenGlobal as e:
        raise bad(str(e)) from None
    except OSError as e:
        raise SeEdgeError(f"cifar10 directory {path}: cannot read {f.name}: {_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - any failure to parse untrusted bytes is a bad file
        raise bad(f"no readable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise bad(_describe(obj))
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in d or "labels" not in d:
        raise bad(_describe(obj))
    data, labels = d["data"], d["labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8
            and (data.shape[1:] == (3072,) or data.shape[1:] == (3, 32, 32)) and data.ndim in (2, 4)):
        raise bad(f"b'data' as {_describe(data)}")
    try:
        y = np.asarray(labels)
    except Exception:  # noqa: BLE001
        y = np.asarray([], dtype=object)
    if y.ndim != 1 or y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise bad(f"b'labels' as {_describe(y)}; expected a list of non-negative integers")
    if y.size and int(y.max()) >= MAX_CLASSES:
        raise SeEdgeError(f"cifar10 directory {path}: {f.name} has label {int(y.max())}; labels must be from 0 to "
                          f"{MAX_CLASSES - 1} (at most {MAX_CLASSES} classes)")
    if len(data) != len(y):
        raise SeEdgeError(f"cifar10 directory {path}: {f.name} has {len(data)} images but {len(y)} labels")
    x = data.reshape(len(data), 3, 32, 32)
    return ImageSet(_to_float(x), y.astype(np.int64))


def _read_cifar_binary_batch(path: Path, f: Path) -> ImageSet:
    size = regular_file(f, "CIFAR-10 batch")
    cap = _CIFAR_MAX_RECORDS * _CIFAR_RECORD
    if size > cap:
        raise SeEdgeError(f"cifar10 directory {path}: {f.name} is {size} bytes, more than a CIFAR-10 binary batch "
                          f"holds (at most {_CIFAR_MAX_RECORDS} records of {_CIFAR_RECORD} bytes = {cap} bytes; "
                          f"each of CIFAR-10's batches is 10000 records)")

    def malformed(n: int) -> SeEdgeError:
        return SeEdgeError(f"cifar10 directory {path}: {f.name} is not a CIFAR-10 binary batch (expected records of "
                           f"1 label byte + 3072 pixel bytes, found {n} bytes)")

    if not size or size % _CIFAR_RECORD:
        raise malformed(size)
    check_memory(size * 5, f"cifar10 directory {path}: reading {f.name} ({size // _CIFAR_RECORD} images) into "
                 f"float32 images", "free memory, or train on fewer batches")
    try:
        with open(f, "rb") as fh:
            raw = fh.read(cap + 1)  # no more than the cap, should the file have grown since
    except OSError as e:
        raise SeEdgeError(f"cifar10 directory {path}: cannot read {f.name}: {_one_line(e)}") from None
    if not raw or len(raw) % _CIFAR_RECORD or len(raw) > cap:
        raise malformed(len(raw))
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    x = records[:, 1:].reshape(-1, 3, 32, 32)
    return ImageSet(_to_float(x), records[:, 0].astype(np.int64))


def _cifar_classes(path: Path) -> list[str] | None:
    """Class names from batches.meta (python) or batches.meta.txt (binary), if they are readable; a name that
    would not fit on one line of labels.txt is refused."""
    names: list[str] | None = None
    where = ""
    try:
        if (path / "batches.meta").is_file():
            meta = _unpickle(path / "batches.meta", _CIFAR_MAX_META)
            found = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
            if isinstance(found, list) and all(isinstance(n, (bytes, str)) for n in found):
                names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in found]
                where = "batches.meta"
        elif (path / "batches.meta.txt").is_file() and regular_file(path / "batches.meta.txt",
                                                                     "CIFAR-10 batches.meta.txt") <= _CIFAR_MAX_META:
            names = [line.strip() for line in (path / "batches.meta.txt").read_text().splitlines() if line.strip()]
            where = "batches.meta.txt"
    except Exception:  # noqa: BLE001 - the names are optional: a bad meta file does not stop training
        return None
    if not names:
        return None
    check_class_names(names, lambda i, n: f"cifar10 directory {path}: {where} names class {i} {n!r}, which")
    return names


def _load_cifar_dir(path: Path, name: str | None = None) -> Source:
    batches = {f.name: f for f in _visible(path) if f.is_file() and _CIFAR_BATCH.match(f.name)}

    def read(f: Path) -> ImageSet:
        return _read_cifar_binary_batch(path, f) if f.suffix == ".bin" else _read_cifar_python_batch(path, f)

    train_names = sorted((n for n in batches if n.startswith("data_batch_")),
                         key=lambda n: int(_CIFAR_BATCH.match(n)["n"]))
    test_names = [n for n in batches if n.startswith("test_batch")]
    if not batches:
        raise SeEdgeError(f"cifar10 directory {path} holds no batches; expected data_batch_* and test_batch; "
                          f"found: {_listing(_visible(path))}")
    if len(test_names) > 1:
        raise SeEdgeError(f"cifar10 directory {path}: found both {' and '.join(sorted(test_names))}; "
                          f"expected one test batch")
    classes = _cifar_classes(path)  # first: a name that cannot be a line of labels.txt is refused before the batches
    train = [read(batches[n]) for n in train_names]
    test = read(batches[test_names[0]]) if test_names else None
    name = name or path.name or str(path)
    if not train:  # only a test batch: it is the whole source, split like any other
        return Source(name, test, classes=classes)
    images = ImageSet(np.concatenate([b.x for b in train]), np.concatenate([b.y for b in train]))
    return Source(name, images, test=test, classes=classes)
