"""Hostile or oversized input data: each case is one line on stderr (exit 2) or one SeEdgeError, decided from
sizes and headers before anything large is allocated, and a run directory is neither made nor changed.

The cases that would otherwise allocate gigabytes run the CLI under `prlimit --as=2 GiB` (a 2 GiB address
space: `python -m se_edge.cli` with torch imported starts in about 0.85 GiB of it), so that an allocation the
checks miss fails the test as a MemoryError traceback instead of using the machine's memory.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, cli, se_edge
from se_edge.errors import SeEdgeError

AS_LIMIT = 2 * 2**30


def se_edge_limited(*args) -> subprocess.CompletedProcess:
    """The CLI as a subprocess with its address space capped at AS_LIMIT."""
    prlimit = shutil.which("prlimit")
    if prlimit is None or not sys.platform.startswith("linux"):
        pytest.skip("needs prlimit (util-linux) on Linux")
    return subprocess.run([prlimit, f"--as={AS_LIMIT}", sys.executable, "-m", "se_edge.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def tree(root: Path) -> dict[str, tuple]:
    """Every path under `root`: a folder as such (the run lock comes and goes in the run directory, changing its
    mtime), a file with its size, mtime and (under 64 MB) content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            out[p.relative_to(root).as_posix()] = ("folder",)
            continue
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if st.st_size < 64 * 2**20 else None
        out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, digest)
    return out


def refused_untouched(tmp_path: Path, run, *fragments: str) -> subprocess.CompletedProcess:
    """Run `run()` (a CLI call writing to tmp_path/out), expect one line naming `fragments`, and check that
    nothing under tmp_path changed: no run directory made, every file as it was."""
    before = tree(tmp_path)
    proc = run()
    assert_one_line_error(proc, *fragments)
    assert tree(tmp_path) == before
    assert not (tmp_path / "out").exists() or "out" in before
    return proc


def write_images(root: Path, classes=("cat", "dog"), n: int = 6, size: int = 8) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = (rng.integers(0, 60, (size, size)) + 80 * c).astype(np.uint8)
            Image.fromarray(img, "L").save(root / name / f"{i:03d}.png")


# ---------------------------------------------------------------- 1. CIFAR pickles that declare more than they hold


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _NoData:
    """Pickles as _reconstruct(ndarray, shape, 'B') with no state: numpy would hand back `shape` of
    uninitialised memory."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return _reconstruct(), (np.ndarray, self.shape, b"B")


class _ShortData:
    """Pickles as an array whose state declares `shape` but carries 6 bytes."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return _reconstruct(), (np.ndarray, (0,), b"b"), (1, self.shape, np.dtype("u1"), False, b"\0" * 6)


@pytest.mark.parametrize("kind, found", [
    ("no data", "found an array of shape (400000, 3072) and dtype uint8 declared without its data "
                "(1228800000 bytes of uninitialised memory, from a "),
    ("short data", "found an array declaring shape (400000, 3072) of uint8 (1228800000 bytes) but carrying 6 bytes"),
])
def test_cifar_pickle_declaring_more_than_it_carries(tmp_path, kind, found):
    data = tmp_path / "cifar"
    data.mkdir()
    array = _NoData if kind == "no data" else _ShortData
    batch = pickle.dumps({b"data": array((400000, 3072)), b"labels": _NoData((400000,))}, protocol=2)
    assert len(batch) < 400
    (data / "data_batch_1").write_bytes(batch)
    refused_untouched(tmp_path, lambda: se_edge_limited("train", "--data", data, "--epochs", 0,
                                                        "--out", tmp_path / "out"),
                      f"cifar10 directory {data}: data_batch_1 is not a CIFAR-10 batch", found)


def test_cifar_pickle_calling_bytes_with_a_count_is_refused(tmp_path):
    """bytes(n) makes n zero bytes from a few bytes of pickle: only bytes() (how protocol 2 writes b'') is let
    through."""
    from se_edge.data import load_source

    class Zeros:
        def __reduce__(self):
            return bytes, (6 * 2**30,)

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Zeros(), b"labels": []}, protocol=2))
    with pytest.raises(SeEdgeError, match=r"found a call bytes\(int\), which is not allowed"):
        load_source(str(tmp_path))


# ---------------------------------------------------------------- 2. a sparse 3 GB CIFAR batch


@pytest.mark.parametrize("name, message", [
    ("data_batch_1.bin", "data_batch_1.bin is 3221225472 bytes, more than a CIFAR-10 binary batch holds (at most "
                         "60000 records of 3073 bytes = 184380000 bytes; each of CIFAR-10's batches is 10000 records)"),
    ("data_batch_1", "data_batch_1 is 3221225472 bytes, more than a CIFAR-10 python batch holds (at most 268435456 "
                     "bytes, 60000 images"),
])
def test_cifar_batch_larger_than_any_batch_is_refused_by_its_size(tmp_path, name, message):
    data = tmp_path / "cifar"
    data.mkdir()
    with open(data / name, "wb") as f:
        f.truncate(3 * 2**30)  # sparse: no disk, but read_bytes() would want 3 GB
    refused_untouched(tmp_path, lambda: se_edge_limited("train", "--data", data, "--epochs", 0,
                                                        "--out", tmp_path / "out"),
                      f"cifar10 directory {data}: {message}")


# ---------------------------------------------------------------- 3. an .npz that inflates to 1.2 GB


def _npy_header(shape, descr="|u1") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


def test_npz_that_inflates_past_memory_is_refused_from_its_headers(tmp_path):
    f = tmp_path / "bomb.npz"
    shape = (1_200_000, 32, 32)  # 1.2 GB of uint8 zeros; 4.9 GB more as float32
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("x.npy", "w", force_zip64=True) as member:
            member.write(_npy_header(shape))
            chunk, left = bytes(2**24), int(np.prod(shape))
            while left:
                member.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
        buf = io.BytesIO()
        np.save(buf, np.zeros(1_200_000, np.uint8))
        z.writestr("y.npy", buf.getvalue())
    assert f.stat().st_size < 8 * 2**20
    refused_untouched(tmp_path, lambda: se_edge_limited("train", "--data", f, "--epochs", 0,
                                                        "--out", tmp_path / "out"),
                      f"npz file {f}: array 'x' (shape (1200000, 32, 32), uint8; ",
                      "read and converted to float32 would take about 6.1 GB, more than the",
                      "of memory available; give a smaller array")


def test_npz_header_declaring_more_than_its_member_holds(tmp_path):
    from se_edge.data import load_source

    f = tmp_path / "liar.npz"
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy_header((400000, 32, 32)) + bytes(64))
        z.writestr("y.npy", _npy_header((4,), "<i8") + bytes(32))
    with pytest.raises(SeEdgeError) as e:
        load_source(str(f))
    assert str(e.value) == (f"npz file {f}: array 'x' declares shape (400000, 32, 32) of uint8 (409600000 bytes) "
                            f"but its member holds 64 bytes of data")


# ---------------------------------------------------------------- 4. ImageFolder: one large image among tiny ones


def _tiny_and_one_large(root: Path) -> None:
    from PIL import Image

    write_images(root, classes=("cat", "dog", "fox", "owl"), n=10)
    big = np.random.default_rng(1).integers(0, 255, (2000, 2000, 3), dtype=np.uint8)
    Image.fromarray(big, "RGB").save(root / "cat" / "00.jpg")  # first (before 000.png): it set all sizes
    Image.fromarray(big[:1500, :1200], "RGB").save(root / "dog" / "00.png")  # no JPEG draft for a PNG


def test_image_folder_reads_each_image_at_the_run_size(tmp_path):
    """Each image is resized to the run's size as it is read (a JPEG decoded at 1/8 scale first), not every
    image to the first one's 2000 x 2000: numpy's allocations peak near the tiny images' size (the old way held
    42 images at 2000 x 2000 x 3, 500 MB, then 2 GB as float32)."""
    import tracemalloc

    from se_edge.data import load_source, load_splits

    root = tmp_path / "pets"
    _tiny_and_one_large(root)
    tracemalloc.start()
    try:
        src = load_source(str(root), size=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, peak
    assert src.images.x.shape == (42, 3, 16, 16) and src.images.x.dtype == np.float32
    assert 0 <= src.images.x.min() and src.images.x.max() <= 1
    s = load_splits(str(root), size=16)
    assert {part.x.shape[1:] for part in (s.train, s.val, s.test)} == {(3, 16, 16)}
    assert len(s.train) + len(s.val) + len(s.test) == 42


def test_image_folder_with_a_large_first_image_trains_under_the_limit(tmp_path):
    root = tmp_path / "pets"
    _tiny_and_one_large(root)
    proc = se_edge_limited("train", "--data", root, "--size", 16, "--epochs", 0, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "float.pt").is_file()


# ---------------------------------------------------------------- 5. decompression bombs


def test_image_over_the_pixel_limit_is_one_line_not_a_warning(tmp_path):
    from PIL import Image

    root = tmp_path / "pets"
    write_images(root)
    Image.new("1", (10000, 10000)).save(root / "dog" / "huge.png")  # 100 megapixels in 12 kB
    proc = refused_untouched(tmp_path, lambda: se_edge("train", "--data", root, "--epochs", 0,
                                                       "--out", tmp_path / "out"),
                             f"ImageFolder {root}: image dog/huge.png has 10000 x 10000 = 100000000 pixels, more "
                             f"than the 67108864 (8192 x 8192) an image may have; downscale it or leave it out")
    assert "DecompressionBomb" not in proc.stderr


def test_image_past_pillows_own_bomb_error_names_its_pixels(tmp_path):
    from PIL import Image

    from se_edge.data import load_source

    root = tmp_path / "pets"
    write_images(root)
    Image.new("1", (14000, 14000)).save(root / "cat" / "huge.png")  # past twice Pillow's limit: its error
    with pytest.raises(SeEdgeError) as e:
        load_source(str(root), size=16)
    assert str(e.value) == (f"ImageFolder {root}: image cat/huge.png has 196000000 pixels, more than the 67108864 "
                            f"(8192 x 8192) an image may have; downscale it or leave it out")


# ---------------------------------------------------------------- 6. class names that would shift labels.txt

VALID = ("a class name is one line of printable characters (the names are the lines of the labels.txt packed "
         "into every .tflite)")


def test_class_folder_with_a_line_break_is_refused(tmp_path):
    root = tmp_path / "pets"
    write_images(root, classes=("a\nb", "cat"))
    refused_untouched(tmp_path, lambda: cli("train", "--data", root, "--epochs", 0, "--out", tmp_path / "out"),
                      f"ImageFolder {root}: class folder 'a\\nb' has a name that holds a line break ('\\n'); {VALID}")


@pytest.mark.parametrize("source, name, message", [
    ("npz", "b\nc", "array 'classes' names class 1 'b\\nc', which holds a line break ('\\n')"),
    ("npz", "", "array 'classes' names class 1 '', which is empty"),
    ("cifar", "bell\x07", "batches.meta names class 1 'bell\\x07', which holds a control character ('\\x07')"),
    ("cifar.txt", "tab\tbed", "batches.meta.txt names class 1 'tab\\tbed', which holds a control character"),
    ("folder", "x\u2028y", "class folder 'x\\u2028y' has a name that holds a line break ('\\u2028')"),
])
def test_class_names_with_control_characters_are_refused(tmp_path, source, name, message):
    from se_edge.data import load_source

    names = ["a", name, "c"]
    x = np.zeros((6, 32, 32, 3), np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    if source == "npz":
        spec = tmp_path / "set.npz"
        np.savez(spec, x=x, y=y, classes=np.array(names))
    elif source.startswith("cifar"):
        spec = tmp_path / "cifar"
        spec.mkdir()
        records = np.concatenate([y[:, None].astype(np.uint8), x.reshape(6, -1)], axis=1)
        if source == "cifar":
            with open(spec / "data_batch_1", "wb") as f:
                pickle.dump({b"data": x.reshape(6, -1), b"labels": y.tolist()}, f, protocol=2)
            with open(spec / "batches.meta", "wb") as f:
                pickle.dump({b"label_names": [n.encode() for n in names]}, f, protocol=2)
        else:
            (spec / "data_batch_1.bin").write_bytes(records.tobytes())
            (spec / "batches.meta.txt").write_text("\n".join(names) + "\n")
    else:
        spec = tmp_path / "pets"
        write_images(spec, classes=names, n=2)
    with pytest.raises(SeEdgeError) as e:
        load_source(str(spec))
    text = str(e.value)
    assert message in text and text.endswith(VALID) and "\n" not in text


def _tiny_tflite(num_classes: int) -> bytes:
    """A model file with one (1, num_classes) output and no operators: enough for with_metadata to pack."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tensors = []
    for name, shape in (("image", [1, 1, 8, 8]), ("logits", [1, num_classes])):
        t = schema.TensorT()
        t.name, t.shape, t.buffer = name, shape, 0
        tensors.append(t)
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = tensors, [0], [1], []
    model = schema.ModelT()
    model.version, model.subgraphs, model.buffers, model.operatorCodes = 3, [subgraph], [schema.BufferT()], []
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_labels_file_holds_exactly_one_line_per_class():
    from se_edge.export.metadata import LABELS_FILE, ClassifierInfo, labels_text, with_metadata

    def info(labels):
        return ClassifierInfo("m", "1", "d", [0.0], [1.0], 1, labels)

    packed = with_metadata(_tiny_tflite(3), info(["cat", "dog", "owl"]))
    with zipfile.ZipFile(io.BytesIO(packed)) as z:
        assert z.read(LABELS_FILE) == b"cat\ndog\nowl\n"
    with pytest.raises(SeEdgeError) as e:  # two folders, 'a\nb' and 'c': three lines for two outputs
        with_metadata(_tiny_tflite(2), info(["a\nb", "c"]))
    assert str(e.value) == ("labels.txt would hold 3 lines for the model's 2 classes: class 0 is 'a\\nb', which is "
                            "not one line of text; each class name must be one non-empty line")
    with pytest.raises(SeEdgeError, match=r"would hold 2 lines for the model's 3 classes: 2 class names were given"):
        with_metadata(_tiny_tflite(3), info(["cat", "dog"]))
    for bad in (["a", ""], ["a", " "], ["a\rb", "c"], ["a\x85b", "c"]):
        with pytest.raises(SeEdgeError, match="is not one line of text"):
            labels_text(bad, 2)
    assert labels_text(["a b", "é"], 2) == "a b\né\n"


# ---------------------------------------------------------------- 7. labels past the class limit


@pytest.mark.parametrize("labels, top", [
    (np.array([0, 1, 2, 2**63 + 5], np.uint64), 2**63 + 5),  # as int64 this would be negative
    (np.array([0, 1, 2, 10**10]), 10**10),
    (np.array([0.0, 1.0, 2.0, 1e10]), 10**10),
])
def test_npz_labels_past_the_class_limit(tmp_path, labels, top):
    from se_edge.data import load_source

    f = tmp_path / "set.npz"
    np.savez(f, x=np.zeros((4, 8, 8), np.uint8), y=labels)
    with pytest.raises(SeEdgeError) as e:
        load_source(str(f))
    assert str(e.value) == (f"npz file {f}: array 'y' holds label {top}; labels must be from 0 to 99999 (at most "
                            f"100000 classes)")


def test_npz_labels_past_the_class_limit_through_the_cli(tmp_path):
    f = tmp_path / "set.npz"
    np.savez(f, x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 2**64 - 1], np.uint64))
    refused_untouched(tmp_path, lambda: cli("train", "--data", f, "--epochs", 0, "--out", tmp_path / "out"),
                      f"array 'y' holds label {2**64 - 1}; labels must be from 0 to 99999")


def test_cifar_labels_past_the_class_limit(tmp_path):
    from se_edge.data import load_source

    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10**10]}, f, protocol=2)
    with pytest.raises(SeEdgeError, match=r"data_batch_1 has label 10000000000; labels must be from 0 to 99999"):
        load_source(str(tmp_path))


# ---------------------------------------------------------------- 8. preprocessing that cannot fit in memory


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A run directory holding a float model (epochs 0), for the refusals below to leave as it is."""
    root = tmp_path_factory.mktemp("memory")
    proc = cli("train", "--data", "digits", "--epochs", 0, "--out", root / "out")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.parametrize("args, fragments", [
    (["--size", 4096], ["dataset 'digits': 1797 images at --size 4096 with 1 channel (--in-chans) as float32 would "
                        "take about 120.6 GB, more than the", "of memory available; give a smaller --size"]),
    (["--size", 1024, "--in-chans", 256], ["1797 images at --size 1024 with 256 channels (--in-chans) as float32 "
                                           "would take about 1929.5 GB", "give a smaller --size or --in-chans"]),
    (["--in-chans", 100000], ["in_chans must be from 1 to 256, got 100000"]),
])
def test_preprocessing_that_cannot_fit_in_memory_is_refused(digits_run, tmp_path, args, fragments):
    out = digits_run / "out"
    before = tree(digits_run)
    assert_one_line_error(cli("train", "--data", "digits", *args, "--epochs", 0, "--out", out), *fragments)
    assert tree(digits_run) == before
    refused_untouched(tmp_path, lambda: cli("train", "--data", "digits", *args, "--epochs", 0,
                                            "--out", tmp_path / "out"), *fragments)


def test_memory_check_counts_the_address_space_limit(tmp_path):
    """1.9 GB of preprocessed digits would fit in the machine's memory, but not in a 2 GiB address space that
    the interpreter and torch already use part of: the check reads RLIMIT_AS."""
    refused_untouched(tmp_path, lambda: se_edge_limited("train", "--data", "digits", "--size", 512, "--epochs", 0,
                                                        "--out", tmp_path / "out"),
                      "dataset 'digits': 1797 images at --size 512 with 1 channel (--in-chans) as float32 would take "
                      "about 1.9 GB, more than the", "of memory available; give a smaller --size")


def test_available_memory_reads_the_limits():
    import resource

    from se_edge.data.types import available_memory

    avail = available_memory()
    assert avail is not None and avail > 0
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        assert avail <= soft
