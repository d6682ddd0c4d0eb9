"""Attention gates, by name, and the fold that makes hard-sigmoid integer-only.

    hardsigmoid(z) = relu6(z + 3) / 6 = clamp((z + 3) / 6, 0, 1)

The `hw` gate folds both constants into the linear op that produces z (its weight / 6, its bias
(b + 3) / 6) and is then just `hardtanh(z', 0, 1)`: TFLite RELU_0_TO_1 (int8), XNNPACK clamp
(delegated), and an operator the Ethos-U NPU runs. Every attention block here has such a linear
op directly before its gate (SE's fc2, ECA's conv1d, CBAM's fc2 and spatial conv), so the fold
always applies. Keeping `/ 6` as a separate scalar MUL instead costs extra ops, and left a
TRANSPOSE that the Ethos-U compiler hands to the CPU in one measured graph.
`F.hardsigmoid` itself leaves a float DEQUANTIZE -> ADD -> MUL -> QUANTIZE island in TFLite.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

GATES = ("hw", "hard_sigmoid", "sigmoid")


def check_gate(gate: str) -> str:
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; valid: {', '.join(GATES)}")
    return gate


def apply_gate(z: torch.Tensor, gate: str) -> torch.Tensor:
    if gate == "hw":
        return F.hardtanh(z, 0.0, 1.0)
    if gate == "hard_sigmoid":
        return F.hardsigmoid(z)
    return torch.sigmoid(z)


@torch.no_grad()
def fold_hw(linear: nn.Module, paths: int = 1) -> nn.Module:
    """Fold hard-sigmoid's +3 and /6 into `linear` (Conv*/Linear), in place; adds a bias if needed.

    `paths`: how many times the op's output is summed before the gate (CBAM's avg and max paths
    share fc2), so each carries 3 / paths.
    """
    if linear.bias is None:
        linear.bias = nn.Parameter(torch.zeros(linear.weight.shape[0], dtype=linear.weight.dtype))
    linear.weight.div_(6.0)
    linear.bias.add_(3.0 / paths).div_(6.0)
    return linear


@torch.no_grad()
def unfold_hw(linear: nn.Module, paths: int = 1) -> nn.Module:
    """Inverse of `fold_hw`: the op then feeds `F.hardsigmoid` (or, approximately, sigmoid)."""
    linear.weight.mul_(6.0)
    linear.bias.mul_(6.0).sub_(3.0 / paths)
    return linear


def regate(linear: nn.Module, old: str, new: str, paths: int = 1) -> None:
    """Adjust `linear` in place so that `apply_gate(linear(x), new)` matches `old` (exactly between
    hw and hard_sigmoid; between sigmoid and the others, hard-sigmoid only approximates sigmoid)."""
    check_gate(new)
    if old == "hw" and new != "hw":
        unfold_hw(linear, paths)
    elif old != "hw" and new == "hw":
        fold_hw(linear, paths)
