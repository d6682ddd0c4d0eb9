"""A seeded shift of test images (rotation, translation, contrast, noise) where decisions are close.

On clean digits every int8 file agrees with its reference on every image, which shows nothing; under
this shift a few percent of decisions sit near a class boundary, where int8 rounding can tip them.
The shift is a fixed function of the seed, so two runs (or two files) see the same images.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shift:
    """Per image, drawn uniformly: rotation in +-`rotation_deg`, translation in +-`translate` of the
    side, contrast scaled by a factor in `contrast`; then Gaussian noise of `noise` (pixels in [0, 1])."""

    rotation_deg: float = 15.0
    translate: float = 0.08
    contrast: tuple[float, float] = (0.6, 1.0)
    noise: float = 0.05

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def shift_images(x: np.ndarray, seed: int = 0, shift: Shift = Shift()) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> the same images under `shift`, drawn with `seed`; still in [0, 1]."""
    from scipy.ndimage import affine_transform

    rng = np.random.default_rng(seed)
    n, c, h, w = x.shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    out = np.empty_like(x, dtype=np.float32)
    for i in range(n):
        angle = np.deg2rad(rng.uniform(-shift.rotation_deg, shift.rotation_deg))
        move = rng.uniform(-shift.translate, shift.translate, 2) * np.array([h, w])
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        offset = centre - rot @ (centre + move)  # output pixel o reads input rot @ o + offset
        k = rng.uniform(*shift.contrast)
        for ch in range(c):
            img = affine_transform(x[i, ch], rot, offset=offset, order=1, mode="nearest")
            out[i, ch] = img.mean() + (img - img.mean()) * k
        out[i] += rng.normal(0.0, shift.noise, size=(c, h, w))
    return np.clip(out, 0.0, 1.0)
