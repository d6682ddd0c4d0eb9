"""Attention gates, by name, and the folds that keep a hard-sigmoid gate inside every delegate.

    hardsigmoid(z) = relu6(z + 3) / 6 = clamp((z + 3) / 6, 0, 1)

Every attention block here has a linear op directly before its gate (SE's fc2, ECA's conv1d,
CBAM's fc2 and spatial conv), so the gate's constants can live in that op's weights:

- `hw` (default): the +3 is folded into the op's bias; the gate is `relu6(z') * (1/6)`. RELU6
  fuses into the conv (TFLite CONV_2D with a fused RELU6), the `* (1/6)` is an int8 MUL by a
  (1, 1, 1, 1) constant. Measured (README, "Forms every backend takes"): one XNNPACK partition in
  LiteRT in fp32 and int8, one partition in ExecuTorch, 0 CPU operators on the Ethos-U NPU.
- `hw_clamp`: both +3 and /6 folded, the gate `hardtanh(z', 0, 1)`. All int8 in the file, but it
  becomes TFLite RELU_0_TO_1, which LiteRT's XNNPACK delegate refuses in fp32 and in int8: each SE
  block cuts the graph and runs on LiteRT's builtin kernels. Kept to show (and test) that.
- `hard_sigmoid` (F.hardsigmoid: a DEQUANTIZE -> ADD -> MUL -> QUANTIZE float island in TFLite int8)
  and `sigmoid` (LOGISTIC: int8 and delegated, but not hard-sigmoid's function).

The constant is a (1, 1, 1, 1) buffer, not a Python scalar: litert-torch keeps an op with a 0-d
operand in NCHW and wraps it in TRANSPOSEs, and a constant made in `forward` (torch.full) is left
outside ExecuTorch's delegate.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

GATES = ("hw", "hw_clamp", "hard_sigmoid", "sigmoid")
# gate -> (shift, scale): the linear op before the gate computes scale * (z + shift), where z is
# what the same op computes in front of F.hardsigmoid.
_FOLDS = {"hw": (3.0, 1.0), "hw_clamp": (3.0, 1 / 6), "hard_sigmoid": (0.0, 1.0), "sigmoid": (0.0, 1.0)}


def check_gate(gate: str) -> str:
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; valid: {', '.join(GATES)}")
    return gate


def constant(value: float) -> torch.Tensor:
    """A (1, 1, 1, 1) tensor for a gate's or an activation's constant (register it as a buffer)."""
    return torch.full((1, 1, 1, 1), float(value))


def scaled(x: torch.Tensor, c: torch.Tensor, value: float) -> torch.Tensor:
    """`x * value`, through the 4-D buffer `c` (holding `value`) where `x` is 4-D."""
    return x * c if x.ndim == 4 else x * value


def apply_gate(z: torch.Tensor, gate: str, sixth: torch.Tensor | None = None) -> torch.Tensor:
    """The gate on the (folded) pre-activation `z`; `sixth` is the module's `constant(1 / 6)` buffer."""
    if gate == "hw":
        return scaled(F.relu6(z), sixth if sixth is not None else constant(1 / 6).to(z), 1 / 6)
    if gate == "hw_clamp":
        return F.hardtanh(z, 0.0, 1.0)
    if gate == "hard_sigmoid":
        return F.hardsigmoid(z)
    if gate == "sigmoid":
        return torch.sigmoid(z)
    raise ValueError(f"unknown gate {gate!r}; valid: {', '.join(GATES)}")


@torch.no_grad()
def fold_gate(linear: nn.Module, gate: str, paths: int = 1) -> nn.Module:
    """Move `gate`'s constants into `linear` (Conv*/Linear), in place, from a hard-sigmoid source;
    adds a bias where the gate has a shift to hold. `paths`: how many times the op's output is summed before the gate (CBAM's
    avg and max paths share fc2), so each carries shift / paths."""
    shift, scale = _FOLDS[check_gate(gate)]
    if linear.bias is None and shift:
        linear.bias = nn.Parameter(torch.zeros(linear.weight.shape[0], dtype=linear.weight.dtype))
    linear.weight.mul_(scale)
    if linear.bias is not None:
        linear.bias.add_(shift / paths).mul_(scale)
    return linear


@torch.no_grad()
def unfold_gate(linear: nn.Module, gate: str, paths: int = 1) -> nn.Module:
    """Inverse of `fold_gate`: the op then feeds `F.hardsigmoid`."""
    shift, scale = _FOLDS[check_gate(gate)]
    linear.weight.div_(scale)
    if linear.bias is not None:
        linear.bias.div_(scale).sub_(shift / paths)
    return linear


def fold_hw(linear: nn.Module, paths: int = 1) -> nn.Module:
    """`fold_gate(linear, "hw")`: a hard-sigmoid's linear op made ready for the `hw` gate."""
    return fold_gate(linear, "hw", paths)


def regate(linear: nn.Module, old: str, new: str, paths: int = 1) -> None:
    """Adjust `linear` in place so that `apply_gate(linear(x), new)` matches `old` (exactly among hw,
    hw_clamp and hard_sigmoid; towards or from sigmoid, hard-sigmoid only approximates it)."""
    check_gate(new)
    unfold_gate(linear, old, paths)
    fold_gate(linear, new, paths)
