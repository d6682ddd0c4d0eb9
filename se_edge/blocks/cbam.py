"""CBAM: Convolutional Block Attention Module, Woo et al., ECCV 2018 (https://arxiv.org/abs/1807.06521).

Channel attention (avg- and max-pooled vectors through a shared MLP, summed, gated), then spatial
attention (channel-wise mean and max, a 7x7 conv, gated). A comparison block: its channel-wise
mean is a reduction over dim 1, which XNNPACK does not delegate.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from se_edge.blocks.gates import apply_gate, check_gate, constant, fold_gate
from se_edge.blocks.helpers import reduced_channels


class ChannelAttn(nn.Module):
    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 gate: str = "sigmoid"):
        super().__init__()
        rd = reduced_channels(channels, rd_ratio, rd_channels, rd_divisor)
        self.gate = check_gate(gate)
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(rd, channels, 1)
        fold_gate(self.fc2, gate, paths=2)  # fc2's output is summed over the avg and max paths
        self.register_buffer("sixth", constant(1 / 6), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        mx = self.fc2(self.act(self.fc1(F.max_pool2d(x, kernel_size=tuple(x.shape[-2:])))))
        return x * apply_gate(avg + mx, self.gate, self.sixth)


class SpatialAttn(nn.Module):
    def __init__(self, kernel_size: int = 7, gate: str = "sigmoid"):
        super().__init__()
        self.gate = check_gate(gate)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=True)
        fold_gate(self.conv, gate)
        self.register_buffer("sixth", constant(1 / 6), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * apply_gate(self.conv(attn), self.gate, self.sixth)


class CbamModule(nn.Module):
    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None, rd_divisor: int = 1,
                 spatial_kernel_size: int = 7, gate: str = "sigmoid"):
        super().__init__()
        self.channel = ChannelAttn(channels, rd_ratio, rd_channels, rd_divisor, gate)
        self.spatial = SpatialAttn(spatial_kernel_size, gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
