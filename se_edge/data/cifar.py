"""CIFAR-10 batches: the python version (pickles, read with a restricted unpickler) and the binary one."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from se_edge.data.types import ImageSet, Source, _listing, _one_line, _visible, regular_file
from se_edge.errors import SeEdgeError

_CIFAR_BATCH = re.compile(r"^(data_batch_(?P<n>\d+)|test_batch)(?P<bin>\.bin)?$")
_CIFAR_EXPECTED = "expected a pickled dict with b'data' (N, 3072) uint8 and b'labels'"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # binary version: one label byte, then the R, G and B planes


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles made by Python 3 call to rebuild bytes (`_codecs.encode`)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _ForbiddenGlobal(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _safe_globals() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR-10 batch may reference: numpy arrays, dtypes, scalars and bytes."""
    try:
        from numpy._core import multiarray, numeric
        cores = ("numpy._core", "numpy.core")
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
        cores = ("numpy.core", "numpy._core")
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): bytes,
        ("__builtin__", "bytes"): bytes,
    }
    for core in cores:
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data (dicts, lists, bytes, numpy arrays); any other class is refused."""

    _allowed: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str):
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _safe_globals()
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


def _unpickle(f: Path) -> object:
    regular_file(f, "CIFAR-10 batch")
    with open(f, "rb") as fh:
        return _RestrictedUnpickler(fh, encoding="bytes").load()


def _read_cifar_python_batch(path: Path, f: Path) -> ImageSet:
    def bad(found: str) -> SeEdgeError:
        return SeEdgeError(f"cifar10 directory {path}: {f.name} is not a CIFAR-10 batch ({_CIFAR_EXPECTED}, "
                           f"found {_one_line(found)})")

    try:
        obj = _unpickle(f)
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
    if len(data) != len(y):
        raise SeEdgeError(f"cifar10 directory {path}: {f.name} has {len(data)} images but {len(y)} labels")
    x = data.reshape(len(data), 3, 32, 32)
    return ImageSet(x.astype(np.float32) / 255.0, y.astype(np.int64))


def _read_cifar_binary_batch(path: Path, f: Path) -> ImageSet:
    regular_file(f, "CIFAR-10 batch")
    try:
        raw = f.read_bytes()
    except OSError as e:
        raise SeEdgeError(f"cifar10 directory {path}: cannot read {f.name}: {_one_line(e)}") from None
    if not raw or len(raw) % _CIFAR_RECORD:
        raise SeEdgeError(f"cifar10 directory {path}: {f.name} is not a CIFAR-10 binary batch (expected records of "
                          f"1 label byte + 3072 pixel bytes, found {len(raw)} bytes)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    x = records[:, 1:].reshape(-1, 3, 32, 32)
    return ImageSet(x.astype(np.float32) / 255.0, records[:, 0].astype(np.int64))


def _cifar_classes(path: Path) -> list[str] | None:
    """Class names from batches.meta (python) or batches.meta.txt (binary), if they are readable."""
    try:
        if (path / "batches.meta").is_file():
            meta = _unpickle(path / "batches.meta")
            names = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
            if isinstance(names, list) and all(isinstance(n, (bytes, str)) for n in names):
                return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]
        elif (path / "batches.meta.txt").is_file():
            names = [line.strip() for line in (path / "batches.meta.txt").read_text().splitlines() if line.strip()]
            return names or None
    except Exception:  # noqa: BLE001 - the names are optional: a bad meta file does not stop training
        return None
    return None


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
    train = [read(batches[n]) for n in train_names]
    test = read(batches[test_names[0]]) if test_names else None
    name = name or path.name or str(path)
    classes = _cifar_classes(path)
    if not train:  # only a test batch: it is the whole source, split like any other
        return Source(name, test, classes=classes)
    images = ImageSet(np.concatenate([b.x for b in train]), np.concatenate([b.y for b in train]))
    return Source(name, images, test=test, classes=classes)
