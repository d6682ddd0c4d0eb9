"""Squeeze-and-Excitation, with gates and squeezes chosen for int8 mobile backends.

Squeeze-and-Excitation Networks, Hu et al., CVPR 2018 (https://arxiv.org/abs/1709.01507).
Hard-sigmoid gate as in Searching for MobileNetV3, Howard et al., ICCV 2019.

    s = squeeze(x)                     # (N, C, 1, 1), see squeeze.py
    g = gate(fc2(act(fc1(s))))         # 1x1 convs, or nn.Linear as in the classic SELayer
    y = x * g

With `gate="hw"` the hard-sigmoid's +3 lives in fc2 and the gate is relu6 then a MUL by 1/6
(gates.py), so every op of the block runs inside LiteRT's and ExecuTorch's XNNPACK delegates, in
fp32 and int8, and on an Ethos-U NPU.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from se_edge.blocks.gates import apply_gate, check_gate, constant, fold_gate, regate
from se_edge.blocks.helpers import reduced_channels
from se_edge.blocks.squeeze import check_squeeze, squeeze

EXCITATIONS = ("conv", "linear")


class SqueezeExcite(nn.Module):
    """SE block.

    Args:
        channels: input (and output) channels.
        rd_ratio: hidden width as a fraction of `channels`, used when `rd_channels` is None.
        rd_channels: hidden width, overrides `rd_ratio`.
        rd_divisor: the hidden width from `rd_ratio` is rounded to a multiple of this.
        gate: `hw` (hard-sigmoid that every delegate takes), `hw_clamp`, `hard_sigmoid` (F.hardsigmoid)
            or `sigmoid` (see gates.py).
        squeeze: `avg`, `max`, `avgmax`, `avg_s2`, `avgpool` (see squeeze.py).
        act_layer: activation between the two excitation layers.
        bias: biases in the excitation layers (the `hw` gate always gives fc2 one, to hold its +3).
        excitation: `conv` (1x1 convs) or `linear` (nn.Linear, the classic SELayer form).
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 4,
        rd_channels: int | None = None,
        rd_divisor: int = 8,
        gate: str = "hw",
        squeeze: str = "avg",
        act_layer: type[nn.Module] = nn.ReLU,
        bias: bool = True,
        excitation: str = "conv",
    ):
        super().__init__()
        self.gate = check_gate(gate)
        self.squeeze = check_squeeze(squeeze)
        if excitation not in EXCITATIONS:
            raise ValueError(f"unknown excitation {excitation!r}; valid: {', '.join(EXCITATIONS)}")
        self.excitation = excitation
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        if excitation == "conv":
            self.fc1 = nn.Conv2d(channels, rd, 1, bias=bias)
            self.fc2 = nn.Conv2d(rd, channels, 1, bias=bias)
        else:
            self.fc1 = nn.Linear(channels, rd, bias=bias)
            self.fc2 = nn.Linear(rd, channels, bias=bias)
        self.act = act_layer()
        fold_gate(self.fc2, gate)  # same function as a hard-sigmoid SE with this init
        self.register_buffer("sixth", constant(1 / 6), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = squeeze(x, self.squeeze)
        if self.excitation == "linear":
            s = self.fc2(self.act(self.fc1(s.flatten(1)))).view(s.shape)
        else:
            s = self.fc2(self.act(self.fc1(s)))
        return x * apply_gate(s, self.gate, self.sixth)

    def with_gate(self, gate: str) -> "SqueezeExcite":
        """A copy using `gate`, carrying the same weights.

        Among `hard_sigmoid`, `hw` and `hw_clamp` the copy computes the same function (the +3 and /6
        move into or out of fc2). Towards or from `sigmoid` only the weights carry over: hard-sigmoid
        approximates sigmoid, and QAT fine-tuning recovers the difference.
        """
        new = copy.deepcopy(self)
        regate(new.fc2, self.gate, gate)
        new.gate = gate
        return new

    def extra_repr(self) -> str:
        return f"gate={self.gate!r}, squeeze={self.squeeze!r}"
