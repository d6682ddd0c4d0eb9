"""Squeeze-and-Excitation blocks that stay int8 on mobile backends.

Squeeze-and-Excitation Networks, Hu et al., CVPR 2018 (https://arxiv.org/abs/1709.01507).
Hard-sigmoid gate as in Searching for MobileNetV3, Howard et al., ICCV 2019.

The `hw` (hardware-aware) gate computes hard-sigmoid without leaving int8:
    hardsigmoid(z) = relu6(z + 3) / 6
The +3 lives in the second excitation conv's bias, so the gate is `relu6(fc2(s)) * (1/6)`.
The XNNPACK quantizer annotates conv (+ReLU6 fused by the converters) and a scalar `mul`, so every
op is int8 in LiteRT and delegated in ExecuTorch. `F.hardsigmoid` instead lowers to a float
DEQUANTIZE -> ADD -> MUL -> QUANTIZE island per block in TFLite and leaves ops outside the
XNNPACK delegate (see tests/test_purity.py, which pins both behaviours).

The squeeze is `x.mean((2, 3), keepdim=True)`: XNNPACK delegates `mean.dim` only in that form.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

GATES = ("hw", "hard_sigmoid", "sigmoid")

# Offset that the `hw` gate carries in fc2's bias relative to a plain hard-sigmoid gate.
_HW_BIAS_OFFSET = 3.0


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round `v` to a multiple of `divisor`, never dropping below `round_limit * v` (as timm)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def check_gate(gate: str) -> str:
    if gate not in GATES:
        raise ValueError(f"unknown SE gate {gate!r}; valid: {', '.join(GATES)}")
    return gate


class SqueezeExcite(nn.Module):
    """SE block: mean squeeze -> 1x1 conv -> act -> 1x1 conv -> gate -> scale the input.

    Args:
        channels: input (and output) channels.
        rd_ratio: reduction ratio of the hidden width, used when `rd_channels` is None.
        rd_channels: hidden width, overrides `rd_ratio`.
        rd_divisor: the hidden width is rounded to a multiple of this.
        gate: `hw` (ReLU6 with +3 folded into fc2's bias, then * 1/6), `hard_sigmoid`, `sigmoid`.
        act_layer: activation between the two convs.
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 4,
        rd_channels: int | None = None,
        rd_divisor: int = 8,
        gate: str = "hw",
        act_layer: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        self.gate = check_gate(gate)
        if rd_channels is None:
            rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=True)
        if gate == "hw":
            # Start from the same function a hard-sigmoid SE with default init computes.
            with torch.no_grad():
                self.fc2.bias.add_(_HW_BIAS_OFFSET)

    def _gate(self, z: torch.Tensor) -> torch.Tensor:
        if self.gate == "hw":
            return F.relu6(z) * (1.0 / 6.0)
        if self.gate == "hard_sigmoid":
            return F.hardsigmoid(z)
        return torch.sigmoid(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(self.act(self.fc1(s)))
        return x * self._gate(s)

    def with_gate(self, gate: str) -> "SqueezeExcite":
        """A copy using `gate`, carrying the same weights.

        Between `hard_sigmoid` and `hw` the copy computes the same function (the +3 moves in or out
        of fc2's bias). Towards or from `sigmoid` only the weights carry over: hard-sigmoid
        approximates sigmoid, and QAT fine-tuning recovers the difference.
        """
        check_gate(gate)
        new = copy.deepcopy(self)
        offset = (gate == "hw") - (self.gate == "hw")
        with torch.no_grad():
            new.fc2.bias.add_(offset * _HW_BIAS_OFFSET)
        new.gate = gate
        return new

    def extra_repr(self) -> str:
        return f"gate={self.gate!r}"


class ConvBnAct(nn.Sequential):
    """conv -> batch-norm -> ReLU, the pattern PT2E QAT folds and quantizers fuse."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__(
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_chs),
        )
        if act:
            self.append(nn.ReLU())
