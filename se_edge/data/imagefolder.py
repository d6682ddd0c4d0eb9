"""ImageFolder: one folder of images per class, optionally under train/ and test/ (or val/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from se_edge.data.types import (IMAGE_SUFFIXES, ImageSet, Source, _is_image, _listing, _one_line, _visible,
                                check_class_names, check_memory)
from se_edge.errors import SeEdgeError

_GREY_MODES = {"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
# Pixels per image, checked from the header before an image is decoded: 8192 x 8192 (a 64-megapixel photo fits;
# Pillow's own DecompressionBombWarning starts at 89 million, its error at twice that).
MAX_PIXELS = 8192 * 8192


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
    check_class_names([d.name for d in folders],
                      lambda i, n: f"ImageFolder {root}: class folder {prefix + n!r} has a name that")
    for d in folders:
        if not any(_is_image(f) for f in d.iterdir()):
            raise SeEdgeError(f"ImageFolder {root}: class folder '{prefix}{d.name}' holds no images "
                              f"({', '.join(IMAGE_SUFFIXES)}); found: {_listing(_visible(d))}")
        if expected_classes is not None and d.name not in expected_classes:
            raise SeEdgeError(f"ImageFolder {root}: class folder '{prefix}{d.name}' is not a class of train/ "
                              f"(expected one of: {', '.join(expected_classes)})")
    return folders


def _open_image(root: Path, f: Path, target: int | None):
    """Image.open(f), refused from its header alone if it has more than MAX_PIXELS (Pillow's own
    DecompressionBombWarning and DecompressionBombError become the same one line); a JPEG is set to decode at
    the smallest scale (1/2, 1/4, 1/8) still at least `target` pixels a side. The caller loads and closes it."""
    import re
    import warnings

    from PIL import Image

    def too_big(pixels: str) -> SeEdgeError:
        return SeEdgeError(f"ImageFolder {root}: image {f.relative_to(root).as_posix()} has {pixels} pixels, more than "
                           f"the {MAX_PIXELS} ({int(MAX_PIXELS ** 0.5)} x {int(MAX_PIXELS ** 0.5)}) an image may have; "
                           f"downscale it or leave it out")

    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 million pixels; MAX_PIXELS, lower, is checked just below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(f)
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        raise too_big(m.group(1) if m else f"more than {2 * Image.MAX_IMAGE_PIXELS}") from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise too_big(f"{w} x {h} = {w * h}")
    if target is not None and im.format == "JPEG" and min(w, h) >= 2 * target:
        im.draft(im.mode, (target, target))
    return im


def _load_image_folder(path: Path, size: int | None = None) -> Source:
    """One folder of images per class, or train/ and test/ (or val/) folders of class folders.

    `size`: the run's input size; each image is resized to size x size as it is read (a JPEG decoded at a
    reduced scale where it is at least twice that), so that memory holds the images at the size they are used
    at. None: every image at the size of the first one (the images as the source holds them)."""
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
    files = {part: [(f, index[d.name]) for d in folders for f in sorted(f for f in d.iterdir() if _is_image(f))]
             for part, folders in parts.items()}
    count = sum(len(v) for v in files.values())

    shape: tuple[int, int] | None = (size, size) if size is not None else None  # (W, H)
    arrays: dict[str, list[np.ndarray]] = {}
    any_colour = checked = False
    advice = "give a smaller --size" if size is not None else "resize the images"
    for part, items in files.items():
        arrays[part] = []
        for f, _ in items:
            try:
                im = _open_image(path, f, size)
                with im:
                    im.load()
                    if shape is None:
                        shape = im.size
                    a, colour = _image_to_array(im, shape)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                if isinstance(e, SeEdgeError):
                    raise
                raise SeEdgeError(
                    f"ImageFolder {path}: cannot read image {f.relative_to(path).as_posix()} (expected a "
                    f"{'/'.join(IMAGE_SUFFIXES)} image, found: {_one_line(e) or type(e).__name__})") from None
            if not checked:  # the images as uint8, then as float32; again at the end, with the colour known
                check_memory(count * a.shape[2] * shape[0] * shape[1] * 5, f"ImageFolder {path}: its {count} "
                             f"images at {shape[0]} x {shape[1]}", advice)
                checked = True
            any_colour |= colour
            arrays[part].append(a)

    chans = 3 if any_colour else 1

    def stack(part: str) -> ImageSet:
        # 3 channels if any image is colour (greyscale ones repeated), else 1; filled in place, one image at a time
        x = np.empty((len(arrays[part]), chans, shape[1], shape[0]), dtype=np.float32)
        for i, a in enumerate(arrays[part]):
            x[i] = a.transpose(2, 0, 1)  # (H, W, 1) broadcasts to 3 channels
        arrays[part] = []
        x /= 255.0
        return ImageSet(x, np.asarray([label for _, label in files[part]], dtype=np.int64))

    check_memory(count * chans * shape[0] * shape[1] * 4, f"ImageFolder {path}: its {count} images at {shape[0]} x "
                 f"{shape[1]} as float32", advice)
    test = stack("test") if "test" in parts else None
    return Source(path.name or str(path), stack("train"), test=test, classes=classes)
