"""Squeeze (global pooling) forms, by name, written in the forms the int8 backends take.

- `avg`: `x.mean((2, 3), keepdim=True)`, the SE default. XNNPACK delegates `mean.dim` only for
  4-D input over the last two dims with keepdim; TFLite MEAN; on Ethos-U lowered to a depthwise
  conv over the whole map.
- `max`: global max pool as `F.max_pool2d` with the map as kernel (XNNPACK max pool; TFLite
  MAX_POOL_2D), the max-pool SE variant.
- `avgmax`: the mean of both (timm's avgmax).
- `avg_s2`: the mean over a 2x2-strided subsample of the map: a quarter of the squeeze's reads;
  measured against `avg` for NPU time and accuracy by `se-edge bench --compare-gates`.
- `avgpool`: global average pool as `F.avg_pool2d` with the map as kernel (TFLite
  AVERAGE_POOL_2D rather than MEAN, a different NPU lowering: fewer Ethos-U cycles). LiteRT's
  XNNPACK delegate leaves that int8 AVERAGE_POOL_2D outside (one op per SE block, measured at
  224 px), so it is an NPU choice, not the default.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SQUEEZES = ("avg", "max", "avgmax", "avg_s2", "avgpool")


def check_squeeze(squeeze: str) -> str:
    if squeeze not in SQUEEZES:
        raise ValueError(f"unknown squeeze {squeeze!r}; valid: {', '.join(SQUEEZES)}")
    return squeeze


def _max(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=tuple(x.shape[-2:]))


def squeeze(x: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 1, 1)."""
    if kind == "avg":
        return x.mean((2, 3), keepdim=True)
    if kind == "max":
        return _max(x)
    if kind == "avgmax":
        return 0.5 * (x.mean((2, 3), keepdim=True) + _max(x))
    if kind == "avg_s2":
        if x.shape[-1] < 2 or x.shape[-2] < 2:
            return x.mean((2, 3), keepdim=True)
        return x[:, :, ::2, ::2].mean((2, 3), keepdim=True)
    if kind == "avgpool":
        return F.avg_pool2d(x, kernel_size=tuple(x.shape[-2:]))
    raise ValueError(f"unknown squeeze {kind!r}; valid: {', '.join(SQUEEZES)}")
