import gzip

import numpy as np
import pytest

from conftest import digits_as_mnist, write_idx
from se_edge.data import Preprocessing, load_eval_set, load_source, load_splits
from se_edge.errors import SeEdgeError


def test_digits_splits_are_seeded_stratified_and_normalised():
    a = load_splits("digits", size=32, seed=0)
    b = load_splits("digits", size=32, seed=0)
    assert (len(a.train), len(a.val), len(a.test)) == (1293, 144, 360)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert a.train.x.shape[1:] == (1, 32, 32) and a.train.x.dtype == np.float32
    assert abs(a.train.x.mean()) < 1e-3 and abs(a.train.x.std() - 1) < 1e-3
    # stratified: every class keeps its share of the test split within one image
    counts = np.bincount(a.test.y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert a.preprocessing == Preprocessing(32, a.preprocessing.mean, a.preprocessing.std, 1)


def test_eval_set_of_the_run_dataset_is_its_test_split():
    s = load_splits("digits", seed=3)
    name, images = load_eval_set("digits", s.preprocessing, run_spec="digits", seed=3)
    assert "test split" in name
    np.testing.assert_array_equal(images.x, s.test.x)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_single_set(tmp_path, gz):
    x, y = digits_as_mnist(200)
    write_idx(tmp_path, "train", x, y, gz=gz)
    src = load_source(str(tmp_path))
    assert src.test is None and src.images.x.shape == (200, 1, 28, 28)
    assert src.images.x.max() <= 1.0
    np.testing.assert_array_equal(src.images.y, y)
    splits = load_splits(str(tmp_path), size=32)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 200


def test_idx_directory_with_train_and_test_sets_keeps_the_test_set(tmp_path):
    x, y = digits_as_mnist(300)
    write_idx(tmp_path, "train", x[:250], y[:250])
    write_idx(tmp_path, "t10k", x[250:], y[250:])
    splits = load_splits(str(tmp_path), size=28)
    assert len(splits.test) == 50 and len(splits.train) + len(splits.val) == 250


def test_bad_sources_say_what_is_expected(tmp_path):
    with pytest.raises(SeEdgeError, match="unknown dataset 'nope'.*digits"):
        load_source("nope")
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(SeEdgeError, match="no IDX files; expected files named"):
        load_source(str(tmp_path))
    with pytest.raises(SeEdgeError, match="is a file"):
        load_source(str(tmp_path / "readme.txt"))


def test_idx_missing_labels(tmp_path):
    x, y = digits_as_mnist(20)
    write_idx(tmp_path, "train", x, y)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(SeEdgeError, match=r"\['train'\] lack their images or labels file"):
        load_source(str(tmp_path))


def test_idx_bad_magic_and_truncation(tmp_path):
    x, y = digits_as_mnist(20)
    write_idx(tmp_path, "train", x, y, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    data = images.read_bytes()
    images.write_bytes(data[:-10])
    with pytest.raises(SeEdgeError, match="header says shape"):
        load_source(str(tmp_path))
    images.write_bytes(b"\x00\x00\x08\x01" + data[4:])
    with pytest.raises(SeEdgeError, match="expected magic 0x00000803"):
        load_source(str(tmp_path))


def test_idx_label_count_mismatch(tmp_path):
    x, y = digits_as_mnist(20)
    write_idx(tmp_path, "train", x, y[:10])
    with pytest.raises(SeEdgeError, match="20 images but 10 labels"):
        load_source(str(tmp_path))


def test_corrupt_gzip(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    with pytest.raises(SeEdgeError, match="cannot read IDX file"):
        load_source(str(tmp_path))
