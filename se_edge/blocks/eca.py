"""ECA: Efficient Channel Attention, Wang et al., CVPR 2020 (https://arxiv.org/abs/1910.03151).

A 1-D conv across channels of the squeezed vector replaces SE's two-layer excitation. A comparison
block: the squeeze keeps keepdim (delegated) and the gate takes the same folds as SE (gates.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from se_edge.blocks.gates import apply_gate, check_gate, fold_gate


class EcaModule(nn.Module):
    def __init__(self, channels: int, kernel_size: int | None = None, gamma: int = 2, beta: int = 1, gate: str = "sigmoid"):
        super().__init__()
        if kernel_size is None:  # adaptive kernel size from the paper
            t = int(abs(math.log(channels, 2) + beta) / gamma)
            kernel_size = max(t if t % 2 else t + 1, 3)
        self.gate = check_gate(gate)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        if gate.startswith("hw"):
            fold_gate(self.conv, gate)  # adds the bias that holds the +3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        y = x.mean((2, 3), keepdim=True).view(n, 1, c)
        y = apply_gate(self.conv(y), self.gate).view(n, c, 1, 1)
        return x * y
