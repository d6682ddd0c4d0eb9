"""Setting images aside before training: `data.holdout` (used by `se-edge bench --qat`)."""
from collections import Counter

import numpy as np
import pytest

from se_edge.data import load_source
from se_edge.data.holdout import hold_out, write_idx
from se_edge.data.types import ImageSet

from conftest import assert_one_line_error, digits_as_mnist, se_edge, write_idx as write_raw_idx


def _rows(x: np.ndarray) -> Counter:
    """Images in [0, 1] as a multiset of their uint8 pixel rows."""
    return Counter(r.tobytes() for r in np.rint(x * 255).astype(np.uint8).reshape(len(x), -1))


def test_idx_hold_out_is_disjoint_stratified_exact_and_seeded(tmp_path):
    x, y = digits_as_mnist(n=600)
    write_raw_idx(tmp_path / "src", "train", x, y)
    pool, unseen = hold_out(str(tmp_path / "src"), tmp_path / "out", fraction=0.25, seed=0)
    p, u = load_source(pool), load_source(unseen)
    assert p.test is None and u.test is None
    assert len(p.images) + len(u.images) == 600 and len(u.images) == 150
    # every image lands on exactly one side, with its pixels and label unchanged
    labelled = lambda xs, ys: Counter(r.tobytes() + bytes([int(lbl)]) for r, lbl in  # noqa: E731
                                      zip(np.asarray(xs, np.uint8).reshape(len(xs), -1), ys))
    as_uint8 = lambda s: np.rint(s.x[:, 0] * 255).astype(np.uint8)  # noqa: E731
    assert labelled(as_uint8(p.images), p.images.y) + labelled(as_uint8(u.images), u.images.y) == labelled(x, y)
    # stratified: each class keeps (within one image) its share on the unseen side
    assert np.all(np.abs(np.bincount(u.images.y, minlength=10) - 0.25 * np.bincount(y, minlength=10)) <= 1)
    again = hold_out(str(tmp_path / "src"), tmp_path / "again", fraction=0.25, seed=0)
    assert np.array_equal(load_source(again[1]).images.y, u.images.y)
    other = load_source(hold_out(str(tmp_path / "src"), tmp_path / "seed1", fraction=0.25, seed=1)[1])
    assert _rows(other.images.x) != _rows(u.images.x)


def test_hold_out_keeps_the_sources_test_set_in_the_pool(tmp_path):
    x, y = digits_as_mnist(n=300)
    write_raw_idx(tmp_path / "src", "train", x[:200], y[:200])
    write_raw_idx(tmp_path / "src", "t10k", x[200:], y[200:])
    pool, unseen = hold_out(str(tmp_path / "src"), tmp_path / "out", fraction=0.2)
    p = load_source(pool)
    assert len(p.test) == 100 and len(p.images) == 160 and len(load_source(unseen).images) == 40


def test_rgb_hold_out_is_written_as_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((60, 3, 8, 8), dtype=np.float32)
    np.savez(tmp_path / "rgb.npz", x=x, y=np.repeat(np.arange(3), 20))
    pool, unseen = hold_out(str(tmp_path / "rgb.npz"), tmp_path / "out", fraction=0.5)
    assert pool.endswith("pool.npz") and unseen.endswith("unseen.npz")
    u = load_source(unseen)
    assert u.images.x.shape == (30, 3, 8, 8) and np.bincount(u.images.y).tolist() == [10, 10, 10]
    assert np.isin(u.images.x[:, 0, 0, 0], x[:, 0, 0, 0]).all()


def test_write_idx_rejects_colour_images(tmp_path):
    with pytest.raises(ValueError, match="greyscale"):
        write_idx(tmp_path, "train", ImageSet(np.zeros((2, 3, 4, 4), np.float32), np.zeros(2, np.int64)))


@pytest.mark.parametrize("value", ["0", "1", "1.5", "x"])
def test_bench_unseen_fraction_must_be_between_0_and_1(value):
    r = se_edge("bench", "qat", "--data", "digits", "--unseen-fraction", value)
    assert_one_line_error(r, "--unseen-fraction")
