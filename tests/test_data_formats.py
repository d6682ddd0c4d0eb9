"""Dataset formats beyond digits/IDX: CIFAR-10 batches, ImageFolder, .npz, and their one-line errors.

Every source is generated small in tmp_path: 4 classes x 10 images, enough for the stratified
test (20 %) and validation (10 %) splits to hold every class.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from se_edge.data import SOURCES, default_in_chans, load_eval_set, load_source, load_splits
from conftest import assert_one_line_error
from se_edge.errors import SeEdgeError

CLASSES, PER_CLASS = 4, 10


def make_images(n_per_class: int = PER_CLASS, size: int = 8, rgb: bool = False, seed: int = 0):
    """uint8 images (N, H, W[, 3]) whose brightness depends on the class, and labels 0..3 in blocks."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(CLASSES), n_per_class)
    shape = (len(y), size, size) + ((3,) if rgb else ())
    x = (rng.integers(0, 40, size=shape) + 50 * y.reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.uint8)
    return x, y


# ---------------------------------------------------------------- .npz


@pytest.mark.parametrize("layout", ["NHW-uint8", "NHWC-rgb-uint8", "NCHW-rgb-float", "NHWC-grey-float"])
def test_npz_layouts(tmp_path, layout):
    x, y = make_images(rgb="rgb" in layout)
    expected = x.astype(np.float32) / 255
    if layout == "NCHW-rgb-float":
        x = expected.transpose(0, 3, 1, 2)
    elif layout == "NHWC-grey-float":
        x = expected[..., None]
    f = tmp_path / "set.npz"
    np.savez(f, x=x, y=y)
    src = load_source(str(f))
    chans = 3 if "rgb" in layout else 1
    assert src.name == "set" and src.test is None and src.classes is None
    assert src.images.x.shape == (40, chans, 8, 8) and src.images.x.dtype == np.float32
    assert default_in_chans(src) == chans
    got = src.images.x.transpose(0, 2, 3, 1) if chans == 3 else src.images.x[:, 0]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_array_equal(src.images.y, y)
    for in_chans in (1, 3):
        s = load_splits(str(f), size=16, in_chans=in_chans)
        assert (len(s.train), len(s.val), len(s.test)) == (28, 4, 8)
        assert s.train.x.shape[1:] == (in_chans, 16, 16) and s.num_classes == CLASSES


def test_npz_test_set_keras_names_and_classes(tmp_path):
    x, y = make_images(rgb=True)
    xt, yt = make_images(n_per_class=2, rgb=True, seed=1)
    f = tmp_path / "keras.npz"
    np.savez(f, x_train=x, y_train=y[:, None], x_test=xt, y_test=yt, classes=np.array(["a", "b", "c", "d"]))
    src = load_source(str(f))
    assert src.images.x.shape == (40, 3, 8, 8) and src.test.x.shape == (8, 3, 8, 8)
    assert src.classes == ["a", "b", "c", "d"]
    s = load_splits(str(f), size=8, in_chans=3)
    assert len(s.test) == 8 and len(s.train) + len(s.val) == 40
    name, images = load_eval_set(str(f), s.preprocessing, run_spec=str(f))
    np.testing.assert_array_equal(images.x, s.test.x)


def _npz_case(tmp_path: Path, case: str) -> Path:
    f = tmp_path / "bad.npz"
    x, y = make_images()
    if case == "no y":
        np.savez(f, x=x, labels=y)
    elif case == "no x":
        np.savez(f, images=x, y=y)
    elif case == "count":
        np.savez(f, x=x, y=y[:-1])
    elif case == "float range":
        np.savez(f, x=x.astype(np.float32), y=y)
    elif case == "shape":
        np.savez(f, x=x.reshape(40, -1), y=y)
    elif case == "channels":
        np.savez(f, x=np.zeros((40, 8, 8, 5), np.uint8), y=y)
    elif case == "negative labels":
        np.savez(f, x=x, y=y - 1)
    elif case == "string labels":
        np.savez(f, x=x, y=y.astype(str))
    elif case == "object array":
        np.savez(f, x=np.array([x[0], "oops"], dtype=object), y=y)
    elif case == "x_test without y_test":
        np.savez(f, x=x, y=y, x_test=x)
    elif case == "not a zip":
        f.write_bytes(b"this is not an npz archive")
    elif case == "broken zip":
        np.savez(f, x=x, y=y)
        f.write_bytes(f.read_bytes()[:100])
    elif case == "npy inside":
        with open(f, "wb") as fh:
            np.save(fh, x)
    elif case == "empty":
        np.savez(f, x=x[:0], y=y[:0])
    return f


@pytest.mark.parametrize("case, message", [
    ("no y", "lacks array 'y' (found: x, labels)"),
    ("no x", "lacks array 'x' (found: images, y)"),
    ("count", "x has 40 images but y has 39 labels"),
    ("float range", r"float32 with values in [0, 189]; expected uint8 (0..255) or float in [0, 1] (divide by 255)"),
    ("shape", "array 'x' has shape (40, 64); expected images"),
    ("channels", "with C = 1 or 3"),
    ("negative labels", "with minimum -1; expected non-negative integer labels"),
    ("string labels", "expected non-negative integer labels"),
    ("object array", "cannot read array 'x'"),
    ("x_test without y_test", "lacks array 'y_test'"),
    ("not a zip", "is not a zip archive (expected an .npz archive with arrays x and y (and optionally x_test and "
                  "y_test); found: a file starting b'this is '"),
    ("broken zip", "cannot read npz file"),
    ("npy inside", "is a single .npy array of shape (40, 8, 8)"),
    ("empty", "array 'x' holds no images"),
])
def test_npz_errors(tmp_path, case, message):
    f = _npz_case(tmp_path, case)
    with pytest.raises(SeEdgeError) as e:
        load_source(str(f))
    text = str(e.value)
    assert message in text and "\n" not in text and str(f) in text


def test_missing_npz_and_other_files(tmp_path):
    with pytest.raises(SeEdgeError, match="no such file; expected one of: digits"):
        load_source(str(tmp_path / "missing.npz"))
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(SeEdgeError, match=r"is a file; expected one of: .*\.npz file.*found: a \.csv file"):
        load_source(str(tmp_path / "data.csv"))


# ---------------------------------------------------------------- CIFAR-10


def _cifar_batch(x: np.ndarray, y: np.ndarray, name: bytes = b"batch") -> dict:
    """A batch as in cifar-10-python.tar.gz: (N, 3072) uint8 planes R, G, B; labels a list."""
    return {b"batch_label": name, b"labels": [int(v) for v in y],
            b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1).copy(),
            b"filenames": [b"img%d.png" % i for i in range(len(y))]}


def write_cifar(directory: Path, protocol: int = 2, with_test: bool = True) -> tuple[np.ndarray, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    x, y = make_images(size=32, rgb=True)
    perm = np.random.default_rng(0).permutation(len(y))
    x, y = x[perm], y[perm]
    for i, part in enumerate(np.array_split(np.arange(len(y)), 2), start=1):
        with open(directory / f"data_batch_{i}", "wb") as f:
            pickle.dump(_cifar_batch(x[part], y[part]), f, protocol=protocol)
    if with_test:
        xt, yt = make_images(n_per_class=3, size=32, rgb=True, seed=1)
        with open(directory / "test_batch", "wb") as f:
            pickle.dump(_cifar_batch(xt, yt), f, protocol=protocol)
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat"], b"num_vis": 3072}, f,
                    protocol=protocol)
    return x, y


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_python_batches(tmp_path, protocol):
    x, y = write_cifar(tmp_path / "cifar", protocol=protocol)
    src = load_source(str(tmp_path / "cifar"))
    assert src.name == "cifar" and src.classes == ["airplane", "automobile", "bird", "cat"]
    assert src.images.x.shape == (40, 3, 32, 32) and src.test.x.shape == (12, 3, 32, 32)
    np.testing.assert_allclose(src.images.x, x.transpose(0, 3, 1, 2) / 255, atol=1e-6)
    np.testing.assert_array_equal(src.images.y, y)
    assert default_in_chans(src) == 3
    for in_chans in (3, 1):
        s = load_splits(str(tmp_path / "cifar"), size=16, in_chans=in_chans)
        assert len(s.test) == 12 and (len(s.train), len(s.val)) == (36, 4)
        assert s.test.x.shape[1:] == (in_chans, 16, 16)


def test_cifar10_unpacked_parent_binary_version_and_train_only(tmp_path):
    write_cifar(tmp_path / "parent" / "cifar-10-batches-py")
    src = load_source(str(tmp_path / "parent"))
    assert src.name == "parent" and len(src.images) == 40 and len(src.test) == 12

    x, y = make_images(size=32, rgb=True)
    binary = tmp_path / "bin"
    binary.mkdir()
    records = np.concatenate([y[:, None].astype(np.uint8), x.transpose(0, 3, 1, 2).reshape(len(y), -1)], axis=1)
    (binary / "data_batch_1.bin").write_bytes(records.tobytes())
    (binary / "batches.meta.txt").write_text("a\nb\nc\nd\n\n")
    src = load_source(str(binary))
    assert src.test is None and src.classes == ["a", "b", "c", "d"]
    np.testing.assert_allclose(src.images.x, x.transpose(0, 3, 1, 2) / 255, atol=1e-6)
    np.testing.assert_array_equal(src.images.y, y)
    (binary / "test_batch.bin").write_bytes(records.tobytes()[:-5])
    with pytest.raises(SeEdgeError, match=r"test_batch.bin is not a CIFAR-10 binary batch \(expected records of 1 "
                                          r"label byte \+ 3072 pixel bytes, found 122915 bytes\)"):
        load_source(str(binary))

    only_train = tmp_path / "only_train"
    write_cifar(only_train, with_test=False)
    s = load_splits(str(only_train), size=32, in_chans=3)
    assert (len(s.train), len(s.val), len(s.test)) == (28, 4, 8)


class _Planted:
    """Unpickling this would create a directory: the restricted unpickler must refuse it."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def _cifar_case(directory: Path, case: str) -> None:
    write_cifar(directory)
    batch = directory / "data_batch_1"
    x, y = make_images(n_per_class=1, size=32, rgb=True)
    if case == "malicious":
        batch.write_bytes(pickle.dumps({b"data": _Planted(str(directory / "pwned")), b"labels": []}, protocol=2))
    elif case == "not a dict":
        batch.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    elif case == "no labels":
        batch.write_bytes(pickle.dumps({b"data": x.reshape(4, -1), b"fine_labels": [0, 1, 2, 3]}, protocol=2))
    elif case == "data shape":
        batch.write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, protocol=2))
    elif case == "count":
        batch.write_bytes(pickle.dumps(_cifar_batch(x, y[:3]), protocol=2))
    elif case == "garbage":
        batch.write_bytes(b"\x00garbage, not a pickle")
    elif case == "truncated":
        batch.write_bytes(batch.read_bytes()[:1000])
    elif case == "negative labels":
        batch.write_bytes(pickle.dumps(_cifar_batch(x, y - 1), protocol=2))


@pytest.mark.parametrize("case, message", [
    ("malicious", "found a pickle that references posix.mkdir, which is not allowed"),
    ("not a dict", "found a list"),
    ("no labels", "found a dict with keys b'data', b'fine_labels'"),
    ("data shape", "found b'data' as an array of shape (4, 100) and dtype uint8"),
    ("count", "data_batch_1 has 4 images but 3 labels"),
    ("garbage", "found no readable pickle (UnpicklingError"),
    ("truncated", "found no readable pickle"),
    ("negative labels", "expected a list of non-negative integers"),
])
def test_cifar10_errors(tmp_path, case, message):
    directory = tmp_path / "cifar"
    _cifar_case(directory, case)
    with pytest.raises(SeEdgeError) as e:
        load_source(str(directory))
    text = str(e.value)
    if case == "malicious" and os.name != "posix":
        message = message.replace("posix", os.name)
    assert message in text and "\n" not in text and f"cifar10 directory {directory}" in text
    if case not in ("count",):
        assert "data_batch_1 is not a CIFAR-10 batch (expected a pickled dict with b'data'" in text
    assert not (directory / "pwned").exists()


# ---------------------------------------------------------------- ImageFolder


def write_image_folder(root: Path, rgb: bool = False, classes=("cat", "dog", "fox", "owl"), n: int = PER_CLASS,
                       size: int = 8, seed: int = 0) -> None:
    from PIL import Image

    x, y = make_images(n_per_class=n, size=size, rgb=rgb, seed=seed)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, "RGB" if rgb else "L").save(folder / f"{i:03d}.png")


def test_image_folder_greyscale(tmp_path):
    write_image_folder(tmp_path / "pets")
    (tmp_path / "pets" / "README.txt").write_text("ignored")
    (tmp_path / "pets" / "cat" / ".DS_Store").write_bytes(b"\x00junk")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")
    src = load_source(str(tmp_path / "pets"))
    x, y = make_images()
    assert src.name == "pets" and src.classes == ["cat", "dog", "fox", "owl"] and src.test is None
    assert src.images.x.shape == (40, 1, 8, 8) and default_in_chans(src) == 1
    np.testing.assert_allclose(src.images.x[:, 0], x / 255, atol=1e-6)
    np.testing.assert_array_equal(src.images.y, y)
    s = load_splits(str(tmp_path / "pets"), size=16, in_chans=3)
    assert (len(s.train), len(s.val), len(s.test)) == (28, 4, 8) and s.train.x.shape[1:] == (3, 16, 16)


def test_image_folder_mixed_colour_sizes_and_formats(tmp_path):
    from PIL import Image

    root = tmp_path / "mixed"
    write_image_folder(root, rgb=True)
    Image.fromarray(np.full((20, 12), 200, np.uint8), "L").save(root / "cat" / "grey.png")  # grey and another size
    Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB").save(root / "dog" / "photo.jpg")
    Image.fromarray(np.zeros((8, 8, 4), np.uint8), "RGBA").save(root / "fox" / "alpha.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "owl" / "scan.BMP")
    src = load_source(str(root))
    assert src.images.x.shape == (44, 3, 8, 8) and default_in_chans(src) == 3
    grey = src.images.x[10]  # cat/grey.png sorts after cat/000..009.png
    assert src.images.y[10] == 0 and np.allclose(grey, 200 / 255, atol=1 / 255)
    assert np.bincount(src.images.y).tolist() == [11, 11, 11, 11]
    for in_chans in (1, 3):
        s = load_splits(str(root), size=8, in_chans=in_chans)
        assert s.train.x.shape[1] == in_chans and s.num_classes == 4


@pytest.mark.parametrize("held_out", ["test", "val", "test+val"])
def test_image_folder_train_and_test_folders(tmp_path, held_out):
    root = tmp_path / "split"
    write_image_folder(root / "train", rgb=True)
    for name in held_out.split("+"):
        write_image_folder(root / name, rgb=True, n=2, seed=1 if name == "test" else 2)
    src = load_source(str(root))
    assert src.classes == ["cat", "dog", "fox", "owl"] and len(src.test) == 8
    assert len(src.images) == (48 if held_out == "test+val" else 40)  # with test/, val/ joins the training pool
    s = load_splits(str(root), size=8, in_chans=3)
    assert len(s.test) == 8


def test_image_folder_test_may_lack_a_class_and_labels_follow_train(tmp_path):
    root = tmp_path / "split"
    write_image_folder(root / "train")
    write_image_folder(root / "test", classes=("dog", "fox", "owl", "owl"), n=2)
    src = load_source(str(root))
    assert sorted(set(src.test.y.tolist())) == [1, 2, 3]


def _image_folder_case(root: Path, case: str) -> None:
    if case == "no class folders":
        root.mkdir()
        from PIL import Image

        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
        return
    if case in ("test class", "extra folder", "train class empty"):
        write_image_folder(root / "train")
        write_image_folder(root / "test", n=1)
        if case == "test class":
            write_image_folder(root / "test", classes=("zebra",) * 4, n=1)
        elif case == "extra folder":
            write_image_folder(root / "extra", n=1)
        else:
            (root / "train" / "empty").mkdir()
        return
    write_image_folder(root)
    if case == "empty class":
        (root / "cat" / "keep.txt").write_text("no images here")
        for f in (root / "cat").glob("*.png"):
            f.unlink()
    elif case == "corrupt":
        (root / "dog" / "015.png").write_bytes(b"\x89PNG\r\n\x1a\nthen garbage")
    elif case == "truncated":
        f = root / "dog" / "015.png"
        f.write_bytes(f.read_bytes()[:40])


@pytest.mark.parametrize("case, message", [
    ("empty class", "class folder 'cat' holds no images (.png, .jpg, .jpeg, .bmp); found: 1 file (keep.txt)"),
    ("corrupt", "cannot read image dog/015.png (expected a .png/.jpg/.jpeg/.bmp image, found: "),
    ("truncated", "cannot read image dog/015.png"),
    ("test class", "class folder 'test/zebra' is not a class of train/ (expected one of: cat, dog, fox, owl)"),
    ("extra folder", "expected only train/, test/ and val/ beside it; found also extra/"),
    ("train class empty", "class folder 'train/empty' holds no images"),
    ("no class folders", "matches no dataset format"),
])
def test_image_folder_errors(tmp_path, case, message):
    root = tmp_path / "images"
    _image_folder_case(root, case)
    with pytest.raises(SeEdgeError) as e:
        load_source(str(root))
    text = str(e.value)
    assert message in text and "\n" not in text and str(root) in text
    if case != "no class folders":
        assert text.startswith(f"ImageFolder {root}")
    else:
        assert "found: 1 file (a.png) (images must sit in one folder per class)" in text


# ---------------------------------------------------------------- detection and splitting


def test_unrecognised_directory_lists_formats_and_contents(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeEdgeError) as e:
        load_source(str(tmp_path))
    text = str(e.value)
    assert f"expected one of: {', '.join(SOURCES)}; found: 1 folder (empty/) and 1 file (notes.txt)" in text
    assert "\n" not in text
    for fmt in ("digits", "IDX", "CIFAR-10", "ImageFolder", ".npz"):
        assert fmt in ", ".join(SOURCES)
    with pytest.raises(SeEdgeError, match="found: an empty directory"):
        load_source(str(tmp_path / "empty"))


def test_too_small_class_gives_a_one_line_error(tmp_path):
    x, y = make_images()
    y[0] = 7  # a class with a single image cannot be stratified
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    with pytest.raises(SeEdgeError, match=r"cannot split 40 images of 5 classes \(smallest class: 1 images\)"):
        load_splits(str(tmp_path / "tiny.npz"))


# ---------------------------------------------------------------- CLI



@pytest.mark.parametrize("fmt", ["npz", "cifar10", "imagefolder"])
def test_cli_bad_sources_exit_2_with_one_line(tmp_path, fmt):
    if fmt == "npz":
        bad, fragment = _npz_case(tmp_path, "count"), "x has 40 images but y has 39 labels"
    elif fmt == "cifar10":
        bad, fragment = tmp_path / "cifar", "is not a CIFAR-10 batch"
        _cifar_case(bad, "not a dict")
    else:
        bad, fragment = tmp_path / "images", "holds no images"
        _image_folder_case(bad, "empty class")
    env = dict(os.environ, SE_EDGE_DEBUG="0")
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "train", "--data", str(bad), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=300)
    assert_one_line_error(proc, "se-edge train: error:", fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("case, fragment", [("one_class", "has 1 class (label 3); a classifier needs 2 or more"),
                                            ("no_images", "holds no images"),
                                            ("zero_size", "holds images of shape (1, 0, 0)")])
def test_datasets_a_classifier_cannot_learn_from_are_refused(case, fragment, tmp_path):
    x = {"one_class": np.zeros((20, 8, 8), np.uint8), "no_images": np.zeros((0, 8, 8), np.uint8),
         "zero_size": np.zeros((20, 0, 0), np.uint8)}[case]
    y = np.full(len(x), 3, np.int64) if case == "one_class" else np.arange(len(x)) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y)
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "train", "--data", str(tmp_path / "d.npz"), "--out",
                           str(tmp_path / "r"), "--epochs", "0"], capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- non-regular files and bounded reads


def _idx_pair(directory: Path, n: int = 4) -> None:
    import gzip

    directory.mkdir()
    (directory / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + n.to_bytes(4, "big") + bytes(range(n)))
    with gzip.open(directory / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + n.to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + bytes(4 * n))


def test_idx_fifo_and_device_links_are_refused_without_reading(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("this platform has no FIFOs")
    fifo = tmp_path / "fifo"
    _idx_pair(fifo)
    (fifo / "train-labels-idx1-ubyte").unlink()
    os.mkfifo(fifo / "train-labels-idx1-ubyte")  # opening it for reading would block until a writer comes
    with pytest.raises(SeEdgeError, match=r"IDX file .*train-labels-idx1-ubyte is a FIFO, not a regular file"):
        load_source(str(fifo))
    zero = tmp_path / "zero"
    _idx_pair(zero)
    (zero / "train-labels-idx1-ubyte").unlink()
    (zero / "train-labels-idx1-ubyte").symlink_to("/dev/zero")  # would read until memory runs out
    with pytest.raises(SeEdgeError, match=r"train-labels-idx1-ubyte is a device, not a regular file"):
        load_source(str(zero))
    npz_fifo = tmp_path / "data.npz"
    os.mkfifo(npz_fifo)
    with pytest.raises(SeEdgeError, match=r"npz file .*data.npz is a FIFO"):
        load_source(str(npz_fifo))


def test_idx_reads_stop_at_the_declared_size(tmp_path):
    import gzip

    good = tmp_path / "good"
    _idx_pair(good)
    assert len(load_source(str(good)).images) == 4
    bomb = tmp_path / "bomb"
    _idx_pair(bomb)
    with gzip.open(bomb / "train-images-idx3-ubyte.gz", "wb") as f:  # 16 bytes declared, 64 MiB of zeros after them
        f.write(b"\x00\x00\x08\x03" + (4).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2)
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert (bomb / "train-images-idx3-ubyte.gz").stat().st_size < 100_000
    with pytest.raises(SeEdgeError, match=r"header says shape \(4, 2, 2\), found more data than that"):
        load_source(str(bomb))
    huge = tmp_path / "huge"
    _idx_pair(huge)
    with gzip.open(huge / "train-images-idx3-ubyte.gz", "wb") as f:  # declares 4e12 bytes in a tiny file
        f.write(b"\x00\x00\x08\x03" + (1 << 30).to_bytes(4, "big") + (2000).to_bytes(4, "big") * 2)
    with pytest.raises(SeEdgeError, match=r"more than a \d+-byte .gz file can hold"):
        load_source(str(huge))


# ---------------------------------------------------------------- the seeded shift (parity --stress)


def test_shift_is_seeded_bounded_and_the_identity_when_zero():
    from se_edge.data.stress import Shift, shift_images

    x = np.random.default_rng(0).random((5, 1, 12, 12)).astype(np.float32)
    a, b, c = shift_images(x, 0), shift_images(x, 0), shift_images(x, 1)
    assert a.shape == x.shape and a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    none = Shift(rotation_deg=0.0, translate=0.0, contrast=(1.0, 1.0), noise=0.0)
    np.testing.assert_allclose(shift_images(x, 3, none), x, atol=1e-6)
