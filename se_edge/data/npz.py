"""An `.npz` with arrays `x` and `y` (and optionally `x_test`, `y_test`)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from se_edge.data.types import MAX_CLASSES, ImageSet, Source, _one_line, check_class_names, check_memory, regular_file
from se_edge.errors import SeEdgeError

_NPZ_EXPECTED = "expected an .npz archive with arrays x and y (and optionally x_test and y_test)"
_NPY_MAX_HEADER = 10_000  # numpy's own limit on an .npy header


def _npy_header(f) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an .npy stream declares, read from its header alone."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(f, max_header_size=_NPY_MAX_HEADER)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(f, max_header_size=_NPY_MAX_HEADER)
    else:
        shape, _, dtype = fmt._read_array_header(f, version, max_header_size=_NPY_MAX_HEADER)
    return tuple(int(d) for d in shape), dtype


def _check_members(path: Path, z) -> None:
    """Before numpy reads a byte of data: every member's uncompressed size (the zip's own record) and every
    .npy header's shape x itemsize, which numpy allocates up front, must fit in the memory available, counting
    the float32 copy the images become; and a header may not declare more bytes than its member holds. A
    1 MB archive that inflates to 1.2 GB is one line here, not an allocation."""
    total = 0
    for info in z.infolist():
        if not info.filename.endswith(".npy"):  # numpy hands such a member over as bytes, read whole
            check_memory(info.file_size, f"npz file {path}: member '{info.filename}' ({info.compress_size} bytes "
                         f"compressed, {info.file_size} bytes uncompressed)", "give a smaller archive")
            total += info.file_size
            continue
        name = info.filename[:-4]
        with z.open(info) as f:
            try:
                shape, dtype = _npy_header(f)
            except Exception as e:  # noqa: BLE001 - a header numpy cannot parse
                raise SeEdgeError(f"npz file {path}: cannot read array '{name}' ({_one_line(e)}); "
                                  f"{_NPZ_EXPECTED}") from None
            header_len = f.tell()
        if dtype.hasobject:  # pickled Python objects: np.load refuses them (allow_pickle=False) before reading
            continue
        elements = 1
        for d in shape:
            elements *= d
        declared = elements * dtype.itemsize
        if declared > info.file_size - header_len:
            raise SeEdgeError(f"npz file {path}: array '{name}' declares shape {shape} of {dtype} ({declared} "
                              f"bytes) but its member holds {max(info.file_size - header_len, 0)} bytes of data")
        need = declared + elements * 4  # as stored, and as float32
        check_memory(need, f"npz file {path}: array '{name}' (shape {shape}, {dtype}; {info.compress_size} bytes "
                     f"compressed) read and converted to float32", "give a smaller array")
        total += need
    check_memory(total, f"npz file {path}: its arrays read and converted to float32", "give a smaller archive")


def _single_npy(path: Path) -> SeEdgeError:
    try:
        with open(path, "rb") as f:
            shape, _ = _npy_header(f)
    except Exception as e:  # noqa: BLE001
        return SeEdgeError(f"cannot read npz file {path} ({_NPZ_EXPECTED}; found: an .npy file ({_one_line(e)}))")
    return SeEdgeError(f"npz file {path} is a single .npy array of shape {shape}; {_NPZ_EXPECTED}")


def _load_npz(path: Path) -> Source:
    import zipfile

    regular_file(path, "npz file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise SeEdgeError(f"cannot read npz file {path}: {_one_line(e)}") from None
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise SeEdgeError(f"npz file {path} is not a zip archive ({_NPZ_EXPECTED}; found: "
                          f"{'an empty file' if not head else f'a file starting {head!r}'})")
    if head.startswith(b"\x93NUMPY"):
        raise _single_npy(path)
    try:
        with zipfile.ZipFile(path) as z:
            _check_members(path, z)
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        if isinstance(e, SeEdgeError):
            raise
        raise SeEdgeError(f"cannot read npz file {path} ({_NPZ_EXPECTED}; found: {_one_line(e)})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise SeEdgeError(f"npz file {path} is a single .npy array of shape {npz.shape}; {_NPZ_EXPECTED}")
    with npz:
        keys = list(npz.files)

        def array(name: str) -> np.ndarray:
            try:
                a = npz[name]
                if not isinstance(a, np.ndarray):
                    raise ValueError(f"member '{name}' is not an .npy array")
                return a
            except MemoryError:
                raise SeEdgeError(f"npz file {path}: array '{name}' declares more data than fits in memory") from None
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
                check_class_names(classes, lambda i, n: f"npz file {path}: array 'classes' names class {i} {n!r}, "
                                                        "which")
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
    if min(x.shape[2:]) < 1:
        raise bad(f"array '{xk}' holds images of shape {tuple(x.shape[1:])}; expected (channels, height, width), "
                  "each at least 1")
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
    integral_floats = y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    if y.dtype.kind not in "iu" and not integral_floats or (y.size and y.min() < 0):
        raise bad(f"array '{yk}' is {y.dtype}{f' with minimum {y.min()}' if y.dtype.kind in 'iuf' and y.size else ''}; "
                  f"expected non-negative integer labels")
    if y.size and y.max() >= MAX_CLASSES:  # compared as stored: a uint64 above 2**63 cast to int64 turns negative
        top = int(y.max())
        raise bad(f"array '{yk}' holds label {top}; labels must be from 0 to {MAX_CLASSES - 1} (at most "
                  f"{MAX_CLASSES} classes)")
    if integral_floats:
        y = y.astype(np.int64)
    if len(x) != len(y):
        raise bad(f"{xk} has {len(x)} images but {yk} has {len(y)} labels")
    return ImageSet(np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64))
