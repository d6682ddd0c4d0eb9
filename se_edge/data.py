"""Datasets: sources in standard formats -> preprocessed, seeded, stratified splits.

A dataset SPEC is one of:

- `digits`: scikit-learn's bundled 8x8 handwritten digits (real images, no download);
- a directory in MNIST's IDX format (`*-images-idx3-ubyte[.gz]` with `*-labels-idx1-ubyte[.gz]`;
  a `t10k`/`test` set beside a training set is the test set);
- a CIFAR-10 batches directory: the python version (`data_batch_*` and `test_batch`, pickled dicts
  read with a restricted unpickler) or the binary version (`data_batch_*.bin`, `test_batch.bin`);
  `test_batch` is the test set;
- an ImageFolder directory: one folder of images per class (class names are the sorted folder
  names); with `train/` and `test/` (or `val/`) folders of class folders, `test/` is the test set;
- an `.npz` file with arrays `x` ((N, H, W), (N, H, W, C) or (N, C, H, W); uint8, or float in
  [0, 1]) and `y` (integer labels), and optionally `x_test` and `y_test` as the test set.

Images are scaled to [0, 1], resized to the network's input size and normalised with the training
split's mean and std; that preprocessing is stored with a run so that evaluation on new data
matches it. A source that cannot be read raises SeEdgeError with one line naming the format that
was expected and what was found.
"""
from __future__ import annotations

import dataclasses
import gzip
import pickle
import re
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


# ---------------------------------------------------------------- sources


def load_source(spec: str) -> Source:
    """Load a dataset SPEC; raises SeEdgeError naming what was expected and what was found."""
    if spec == "digits":
        return _load_digits()
    path = Path(spec)
    if path.is_dir():
        try:
            return _load_dir(path)
        except OSError as e:  # an unreadable folder or file met while scanning
            raise SeEdgeError(f"cannot read dataset directory {path}: {_one_line(e)}") from None
    if path.suffix.lower() == ".npz":
        if path.is_file():
            return _load_npz(path)
        raise SeEdgeError(f"unknown dataset {spec!r}: no such file; expected one of: {', '.join(SOURCES)}")
    if path.exists():
        raise SeEdgeError(f"dataset {spec!r} is a file; expected one of: {', '.join(SOURCES)}; "
                          f"found: a {path.suffix or 'suffix-less'} file")
    raise SeEdgeError(f"unknown dataset {spec!r}: no such directory; expected one of: {', '.join(SOURCES)}")


def default_in_chans(source: Source) -> int:
    """The number of channels of a source's images: 1 (greyscale) or 3 (RGB)."""
    return int(source.images.x.shape[1])


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


def _load_dir(path: Path) -> Source:
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
        return _load_image_folder(path)
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


# ---------------------------------------------------------------- CIFAR-10

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


# ---------------------------------------------------------------- ImageFolder

_GREY_MODES = {"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


def _image_to_array(im, size: tuple[int, int] | None) -> tuple[np.ndarray, bool]:
    """A PIL image -> (H, W, 1) or (H, W, 3) uint8 (resized to `size` = (W, H)), and whether it is colour."""
    from PIL import Image

    colour = im.mode not in _GREY_MODES
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # 16-bit / 32-bit greyscale
        a = np.asarray(im, dtype=np.float64)
        top = a.max(initial=0.0)
        scale = 255.0 if im.mode == "F" and top <= 1.0 else (255.0 / 65535.0 if top > 255 else 1.0)
        im = Image.fromarray(np.clip(np.round(a * scale), 0, 255).astype(np.uint8), "L")
    else:
        im = im.convert("RGB" if colour else "L")
    if size is not None and im.size != size:
        im = im.resize(size, Image.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return (a if a.ndim == 3 else a[:, :, None]), colour


def _class_folders(root: Path, where: Path, expected_classes: list[str] | None = None) -> list[Path]:
    folders = [d for d in _visible(where) if d.is_dir()]
    rel = where.relative_to(root)
    prefix = "" if str(rel) == "." else f"{rel.as_posix()}/"
    if not folders:
        raise SeEdgeError(f"ImageFolder {root}: {prefix or 'the directory'} holds no class folders; expected one "
                          f"folder of images per class; found: {_listing(_visible(where))}")
    for d in folders:
        if not any(_is_image(f) for f in d.iterdir()):
            raise SeEdgeError(f"ImageFolder {root}: class folder '{prefix}{d.name}' holds no images "
                              f"({', '.join(IMAGE_SUFFIXES)}); found: {_listing(_visible(d))}")
        if expected_classes is not None and d.name not in expected_classes:
            raise SeEdgeError(f"ImageFolder {root}: class folder '{prefix}{d.name}' is not a class of train/ "
                              f"(expected one of: {', '.join(expected_classes)})")
    return folders


def _load_image_folder(path: Path) -> Source:
    """One folder of images per class, or train/ and test/ (or val/) folders of class folders."""
    try:
        from PIL import Image
    except ImportError:
        raise SeEdgeError(f"ImageFolder {path}: reading images needs Pillow (pip install pillow)") from None

    names = {d.name for d in _visible(path) if d.is_dir()}
    train_dir = path / "train"
    split_layout = ("train" in names and any(d.is_dir() for d in _visible(train_dir))
                    and not any(_is_image(f) for f in train_dir.iterdir()))
    if split_layout:
        extra = sorted(names - {"train", "test", "val"})
        if extra:
            raise SeEdgeError(f"ImageFolder {path}: has train/ with class folders, so expected only train/, test/ "
                              f"and val/ beside it; found also {', '.join(d + '/' for d in extra)}")
        train_folders = _class_folders(path, train_dir)
        classes = [d.name for d in train_folders]
        # test/ is the test set; val/ is the test set without a test/, else more training images
        # (load_splits carves its own validation split from the training images).
        test_name = "test" if "test" in names else ("val" if "val" in names else None)
        parts = {"train": train_folders}
        if "val" in names and test_name == "test":
            parts["train"] = parts["train"] + _class_folders(path, path / "val", classes)
        if test_name:
            parts["test"] = _class_folders(path, path / test_name, classes)
    else:
        parts = {"train": _class_folders(path, path)}
        classes = [d.name for d in parts["train"]]
    index = {c: i for i, c in enumerate(classes)}

    size: tuple[int, int] | None = None
    arrays: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[int]] = {}
    any_colour = False
    for part, folders in parts.items():
        arrays[part], labels[part] = [], []
        for d in folders:
            for f in sorted(f for f in d.iterdir() if _is_image(f)):
                try:
                    with Image.open(f) as im:
                        im.load()
                        if size is None:
                            size = im.size
                        a, colour = _image_to_array(im, size)
                except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                    raise SeEdgeError(
                        f"ImageFolder {path}: cannot read image {f.relative_to(path).as_posix()} (expected a "
                        f"{'/'.join(IMAGE_SUFFIXES)} image, found: {_one_line(e) or type(e).__name__})") from None
                any_colour |= colour
                arrays[part].append(a)
                labels[part].append(index[d.name])

    def stack(part: str) -> ImageSet:
        # 3 channels if any image is colour (greyscale ones repeated), else 1
        x = np.stack([np.repeat(a, 3, axis=2) if any_colour and a.shape[2] == 1 else a for a in arrays[part]])
        return ImageSet(x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0,  # (N, C, H, W)
                        np.asarray(labels[part], dtype=np.int64))

    test = stack("test") if "test" in parts else None
    return Source(path.name or str(path), stack("train"), test=test, classes=classes)


# ---------------------------------------------------------------- .npz

_NPZ_EXPECTED = "expected an .npz archive with arrays x and y (and optionally x_test and y_test)"


def _load_npz(path: Path) -> Source:
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise SeEdgeError(f"cannot read npz file {path}: {_one_line(e)}") from None
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise SeEdgeError(f"npz file {path} is not a zip archive ({_NPZ_EXPECTED}; found: "
                          f"{'an empty file' if not head else f'a file starting {head!r}'})")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise SeEdgeError(f"cannot read npz file {path} ({_NPZ_EXPECTED}; found: {_one_line(e)})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise SeEdgeError(f"npz file {path} is a single .npy array of shape {npz.shape}; {_NPZ_EXPECTED}")
    with npz:
        keys = list(npz.files)

        def array(name: str) -> np.ndarray:
            try:
                return npz[name]
            except Exception as e:  # noqa: BLE001 - object arrays, corrupt members
                raise SeEdgeError(f"npz file {path}: cannot read array '{name}' ({_one_line(e)}); "
                                  f"{_NPZ_EXPECTED}") from None

        def pick(*names: str) -> str:
            for n in names:
                if n in keys:
                    return n
            raise SeEdgeError(f"npz file {path} lacks array '{names[0]}' (found: {', '.join(keys) or 'no arrays'}); "
                              f"{_NPZ_EXPECTED}")

        xk, yk = pick("x", "x_train"), pick("y", "y_train")
        images = _npz_set(path, xk, yk, array(xk), array(yk))
        test = None
        if "x_test" in keys or "y_test" in keys:
            pick("x_test"), pick("y_test")
            test = _npz_set(path, "x_test", "y_test", array("x_test"), array("y_test"))
        classes = None
        if "classes" in keys:
            c = array("classes")
            if c.ndim == 1 and c.dtype.kind in "US":
                classes = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in c.tolist()]
    return Source(path.stem, images, test=test, classes=classes)


def _npz_set(path: Path, xk: str, yk: str, x: np.ndarray, y: np.ndarray) -> ImageSet:
    def bad(what: str) -> SeEdgeError:
        return SeEdgeError(f"npz file {path}: {what}")

    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)  # (N, H, W, C)
        elif x.shape[1] not in (1, 3):
            raise bad(f"array '{xk}' has shape {x.shape}; expected (N, H, W), or (N, H, W, C) or (N, C, H, W) "
                      f"with C = 1 or 3")
    else:
        raise bad(f"array '{xk}' has shape {x.shape}; expected images (N, H, W), (N, H, W, C) or (N, C, H, W)")
    if len(x) == 0:
        raise bad(f"array '{xk}' holds no images")
    if x.dtype.kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise bad(f"array '{xk}' is {x.dtype} with values in [{lo}, {hi}]; expected uint8 (0..255) or "
                      f"float in [0, 1]")
        x = x.astype(np.float32) / 255.0
    elif x.dtype.kind == "f":
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 1:
            hint = " (divide by 255)" if np.isfinite(hi) and 1 < hi <= 255 and lo >= 0 else ""
            raise bad(f"array '{xk}' is {x.dtype} with values in [{lo:g}, {hi:g}]; expected uint8 (0..255) or "
                      f"float in [0, 1]{hint}")
        x = x.astype(np.float32)
    else:
        raise bad(f"array '{xk}' has dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise bad(f"array '{yk}' has shape {y.shape}; expected integer labels (N,)")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise bad(f"array '{yk}' is {y.dtype}{f' with minimum {y.min()}' if y.dtype.kind in 'iuf' and y.size else ''}; "
                  f"expected non-negative integer labels")
    if len(x) != len(y):
        raise bad(f"{xk} has {len(x)} images but {yk} has {len(y)} labels")
    return ImageSet(np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64))


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
    try:
        a, b = train_test_split(idx, test_size=fraction, random_state=seed, stratify=images.y)
    except ValueError as e:  # too few images of a class, or fewer held-out images than classes
        counts = np.bincount(images.y)
        raise SeEdgeError(f"cannot split {len(images)} images of {int((counts > 0).sum())} classes (smallest class: "
                          f"{int(counts[counts > 0].min())} images) into stratified splits holding out {fraction:g}: "
                          f"{_one_line(e)}") from None
    return ImageSet(images.x[a], images.y[a]), ImageSet(images.x[b], images.y[b])


def load_splits(
    spec: str,
    size: int = 32,
    in_chans: int | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    prep: Preprocessing | None = None,
) -> Splits:
    """Seeded, stratified train/val/test splits, normalised with the training split's statistics
    (or with `prep`, to rebuild the splits of an existing run). `in_chans` None: the source's own.

    A source with its own test set (IDX `train` + `t10k`) keeps it as the test split.
    """
    source = load_source(spec)
    if in_chans is None:
        in_chans = default_in_chans(source)
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
