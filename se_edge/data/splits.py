"""Preprocessing (resize, normalise) and seeded, stratified train/val/test splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from se_edge.data.sources import default_in_chans, load_source
from se_edge.data.types import ImageSet, Preprocessing, Splits, _one_line, check_memory
from se_edge.errors import SeEdgeError


def check_preprocessed_memory(n: int, size: int, in_chans: int, what: str) -> None:
    """Refuse, before resizing, `n` images that would not fit in memory at (in_chans, size, size) float32:
    n * in_chans * size * size * 4 bytes against the memory available (data.types.available_memory: MemAvailable,
    a cgroup limit, RLIMIT_AS), one line naming --size and --in-chans."""
    check_memory(n * in_chans * size * size * 4,
                 f"{what}: {n} images at --size {size} with {in_chans} channel{'s' if in_chans != 1 else ''} "
                 f"(--in-chans) as float32",
                 f"give a smaller --size{' or --in-chans' if in_chans > 1 else ''}")


def resize(x: np.ndarray, size: int, in_chans: int) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> (N, in_chans, size, size), antialiased bilinear."""
    import torch
    import torch.nn.functional as F

    if x.shape[1:] != (in_chans, size, size):
        check_preprocessed_memory(len(x), size, in_chans, "resizing")
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


def apply(images: ImageSet, prep: Preprocessing, stress: int | None = None) -> ImageSet:
    """Resize and normalise; with `stress` (a seed), shift the resized images first (data/stress.py)."""
    x = resize(images.x, prep.size, prep.in_chans)
    if stress is not None:
        from se_edge.data.stress import shift_images

        x = shift_images(x, stress)
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
    if prep is not None:
        size = prep.size
    source = load_source(spec, size=size)
    classes = np.unique(source.images.y)
    if len(classes) < 2:
        raise SeEdgeError(f"dataset {spec!r} has {len(classes)} class (label {int(classes[0])}); a classifier needs "
                          "2 or more")
    if in_chans is None:
        in_chans = prep.in_chans if prep is not None else default_in_chans(source)
    check_preprocessed_memory(len(source.images) + (len(source.test) if source.test is not None else 0), size,
                              in_chans, f"dataset {spec!r}")
    rest, test = (source.images, source.test) if source.test is not None else _stratified_split(source.images, test_fraction, seed)
    train, val = _stratified_split(rest, val_fraction, seed)
    if prep is None:
        train_resized = resize(train.x, size, in_chans)
        prep = Preprocessing(size=size, mean=float(train_resized.mean()), std=float(train_resized.std()) or 1.0,
                             in_chans=in_chans)
    num_classes = int(max(source.images.y.max(), test.y.max())) + 1
    names = source.classes if source.classes and len(source.classes) == num_classes else None
    return Splits(source.name, apply(train, prep), apply(val, prep), apply(test, prep), num_classes, prep, names)


def read_eval_images(spec: str, run_spec: str | None = None, seed: int = 0,
                test_fraction: float = 0.2, size: int | None = None) -> tuple[str, ImageSet]:
    """The images to evaluate a finished run on, as read (before `apply`), and their name.

    The run's own dataset gives back its held-out test split; any other source is evaluated whole
    (or on its test set, if it defines one). `size`: the run's input size (Preprocessing.size), which a
    source of images of many sizes (an ImageFolder) resizes each image to as it reads it, as load_splits
    does; None: the images as the source holds them.
    """
    source = load_source(spec, size=size)
    if run_spec is not None and _same_spec(spec, run_spec):
        if source.test is not None:
            test = source.test
        else:
            _, test = _stratified_split(source.images, test_fraction, seed)
        return f"{source.name} (test split)", test
    return source.name, source.test if source.test is not None else source.images


def load_eval_set(spec: str, prep: Preprocessing, run_spec: str | None = None, seed: int = 0,
                  test_fraction: float = 0.2, stress: int | None = None) -> tuple[str, ImageSet]:
    """`read_eval_images`, preprocessed exactly as the run was; `stress`: also shifted with that seed
    (data/stress.py)."""
    name, images = read_eval_images(spec, run_spec, seed, test_fraction, size=prep.size)
    check_preprocessed_memory(len(images), prep.size, prep.in_chans, f"dataset {spec!r}")
    return name, apply(images, prep, stress)


def _same_spec(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
