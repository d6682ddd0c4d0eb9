"""ImageFolder: one folder of images per class, optionally under train/ and test/ (or val/)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from se_edge.data.types import IMAGE_SUFFIXES, ImageSet, Source, _is_image, _listing, _one_line, _visible
from se_edge.errors import SeEdgeError

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
