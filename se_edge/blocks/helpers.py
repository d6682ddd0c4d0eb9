"""Small shared pieces: channel rounding and the conv-bn-act unit that QAT folds."""
from __future__ import annotations

import torch.nn as nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round `v` to a multiple of `divisor`, never dropping below `round_limit * v` (as timm)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def reduced_channels(channels: int, rd_ratio: float, rd_channels: int | None, rd_divisor: int) -> int:
    """The hidden width of an excitation: `rd_channels`, else `channels * rd_ratio` rounded."""
    if rd_channels is not None:
        return rd_channels
    return make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)


class ConvBnAct(nn.Sequential):
    """conv -> batch-norm -> activation, the pattern PT2E QAT folds and quantizers fuse."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 act_layer: type[nn.Module] | None = nn.ReLU):
        super().__init__(
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_chs),
        )
        if act_layer is not None:
            self.append(act_layer())
