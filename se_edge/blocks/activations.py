"""Hard-swish and hard-sigmoid in the form every backend delegates, in fp32 and int8.

    hardswish(x) = x * relu6(x + 3) / 6        hardsigmoid(x) = relu6(x + 3) / 6

`nn.Hardswish` becomes one HARD_SWISH op: LiteRT's XNNPACK delegate takes it in fp32 but not in
int8, so every int8 hard-swish of a MobileNetV3 cuts the graph and runs on LiteRT's builtin
kernels (19 in SE-MobileNetV3-small: int8 2x slower than fp32). Written out as below, it is an ADD
with a fused RELU6 and two MULs: int8 and delegated in LiteRT, in ExecuTorch's single XNNPACK
partition, and on the Ethos-U NPU, and equal to F.hardswish in float. The constants are
(1, 1, 1, 1) buffers (see gates.py for why); non-persistent, so state dicts are those of the
nn.Hardswish model.

Measured cost (README, "Forms every backend takes"): ExecuTorch's XNNPACK runs its native int8
hard-swish faster than the three ops, so this form trades some ExecuTorch speed for LiteRT's.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from se_edge.blocks.gates import constant, scaled


class HardSigmoid(nn.Module):
    """`F.hardsigmoid` as relu6(x + 3) * (1/6) with 4-D constants."""

    def __init__(self):
        super().__init__()
        self.register_buffer("three", constant(3.0), persistent=False)
        self.register_buffer("sixth", constant(1 / 6), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shifted = x + self.three if x.ndim == 4 else x + 3.0
        return scaled(F.relu6(shifted), self.sixth, 1 / 6)


class HardSwish(HardSigmoid):
    """`F.hardswish` as x * (relu6(x + 3) * (1/6)): the gate in [0, 1] is quantised on its own grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * super().forward(x)
