"""Rewrite the SE modules (and, opt-in, SiLU) of an existing model into forms every delegate takes.

Recognised, by structure (no import of their libraries needed):
- se_edge's own `SqueezeExcite` with another gate;
- the classic SENet `SELayer`: `avg_pool` (AdaptiveAvgPool2d(1)) and `fc` = Sequential(Linear,
  ReLU, Linear, Sigmoid|Hardsigmoid), forward `x * fc(avg_pool(x).view(b, c)).view(b, c, 1, 1)`;
- torchvision's `SqueezeExcitation`: `avgpool`, `fc1`/`fc2` 1x1 convs, `activation`,
  `scale_activation` (Sigmoid, or Hardsigmoid in MobileNetV3);
- timm's `SEModule` (`fc1`, `bn`, `act`, `fc2`, `gate`) and EfficientNet `SqueezeExcite`
  (`conv_reduce`, `act1`, `conv_expand`, `gate`).

The new block carries the same weights. From a hard-sigmoid source the float function is unchanged
(up to rounding); from a sigmoid source hard-sigmoid only approximates it, so the deviation on a
given batch is reported and QAT fine-tuning recovers the accuracy.

Activations: hard-swish and hard-sigmoid (`nn.Hardswish`, `F.hardswish`, ...) are exact already and
stay native in the float model, where both runtimes delegate them in fp32; se_edge's quantizer writes
them out as ADD/RELU6/MUL in the int8 graph (quantize/decompose.py), the form LiteRT's XNNPACK takes
in int8. The report counts them. `silu=True` replaces `nn.SiLU` (EfficientNet's swish, which the
XNNPACK quantizer leaves in float: 49 float islands in a timm EfficientNet-B0) with `nn.Hardswish`:
not exact, so the deviation is reported and QAT recovers it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from se_edge.blocks.se import SqueezeExcite


@dataclass
class RewriteReport:
    replaced: list[dict] = field(default_factory=list)  # {"name", "source", "to", "exact"} (+ "gate_from" for SE)
    native_activations: dict[str, int] = field(default_factory=dict)  # kept as is; written out when quantised
    max_abs_deviation: float | None = None  # model outputs before vs after, on the example batch

    @property
    def exact(self) -> bool:
        return all(r["exact"] for r in self.replaced)


def _gate_name(module: nn.Module | None) -> str | None:
    name = type(module).__name__.lower().replace("_", "")
    if "hardsigmoid" in name:
        return "hard_sigmoid"
    if "sigmoid" in name:
        return "sigmoid"
    return None


def _is_linear(m) -> bool:
    return isinstance(m, nn.Linear)


def _is_1x1(m) -> bool:
    return isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1


def _parts(module: nn.Module):
    """(fc1, act, fc2, gate_name, source) if `module` is a recognised SE form, else None."""
    if isinstance(module, SqueezeExcite):
        return None  # handled directly
    get = module._modules.get
    fc = get("fc")
    if isinstance(get("avg_pool"), nn.AdaptiveAvgPool2d) and isinstance(fc, nn.Sequential) and len(fc) == 4:
        l1, act, l2, gate = fc
        if _is_linear(l1) and _is_linear(l2) and _gate_name(gate):
            return l1, act, l2, _gate_name(gate), "SELayer"
    candidates = (
        ("fc1", "activation", "fc2", "scale_activation", "SqueezeExcitation"),  # torchvision
        ("fc1", "act", "fc2", "gate", "SEModule"),  # timm
        ("conv_reduce", "act1", "conv_expand", "gate", "SqueezeExcite"),  # timm efficientnet
    )
    for n1, na, n2, ng, source in candidates:
        l1, act, l2, gate = get(n1), get(na), get(n2), get(ng)
        if _is_1x1(l1) and _is_1x1(l2) and act is not None and _gate_name(gate):
            bn = get("bn")
            if bn is not None and not isinstance(bn, nn.Identity):
                return None  # a normalised excitation is not this form
            return l1, act, l2, _gate_name(gate), source
    return None


_EXACT_FROM = ("hard_sigmoid", "hw_clamp")  # gates whose function the hw gate reproduces exactly
_HARD_ACTIVATIONS = (nn.Hardswish, nn.Hardsigmoid)


def _convert(module: nn.Module, silu: bool):
    if silu and isinstance(module, nn.SiLU):
        return nn.Hardswish(), {"source": "SiLU", "to": "Hardswish", "exact": False}
    if isinstance(module, SqueezeExcite):
        if module.gate == "hw":
            return None
        return module.with_gate("hw"), {"source": "SqueezeExcite", "to": "SqueezeExcite(hw)", "gate_from": module.gate,
                                         "exact": module.gate in _EXACT_FROM}
    parts = _parts(module)
    if parts is None:
        return None
    l1, act, l2, gate, source = parts
    linear = _is_linear(l1)
    new = SqueezeExcite(l1.in_features if linear else l1.in_channels, rd_channels=l1.out_features if linear else l1.out_channels,
                        gate="hard_sigmoid", act_layer=type(act), bias=l1.bias is not None,
                        excitation="linear" if linear else "conv")
    if new.fc2.bias is None:  # the hw gate needs fc2's bias to carry +3
        new.fc2.bias = nn.Parameter(torch.zeros(new.fc2.weight.shape[0]))
    new.fc1.load_state_dict(l1.state_dict())
    new.fc2.load_state_dict(l2.state_dict(), strict=False)  # a bias-less source keeps the zero bias
    return new.with_gate("hw"), {"source": source, "to": "SqueezeExcite(hw)", "gate_from": gate,
                                 "exact": gate == "hard_sigmoid"}


def to_hardware_aware(model: nn.Module, example: torch.Tensor | None = None, inplace: bool = False,
                      silu: bool = False) -> tuple[nn.Module, RewriteReport]:
    """Replace every recognised SE module with the `hw` SqueezeExcite carrying the same weights
    (and, with `silu`, every `nn.SiLU` with `nn.Hardswish`).

    Returns the rewritten model and a report; with `example`, the report holds the max absolute
    difference between the model's outputs before and after (eval mode).
    """
    if not inplace:
        model = copy.deepcopy(model)
    report = RewriteReport()
    before = None
    if example is not None:
        was_training = model.training
        with torch.no_grad():
            before = model.eval()(example)
        model.train(was_training)

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            path = f"{prefix}.{name}" if prefix else name
            converted = _convert(child, silu)
            if converted is None:
                if isinstance(child, _HARD_ACTIVATIONS):
                    kind = type(child).__name__
                    report.native_activations[kind] = report.native_activations.get(kind, 0) + 1
                visit(child, path)
                continue
            new, info = converted
            new.train(child.training)
            setattr(parent, name, new)
            report.replaced.append({"name": path, **info})

    root = _convert(model, silu)
    if root is not None:
        model, info = root
        report.replaced.append({"name": "", **info})
    else:
        visit(model, "")
    if example is not None:
        was_training = model.training
        with torch.no_grad():
            after = model.eval()(example)
        model.train(was_training)
        report.max_abs_deviation = float((after - before).abs().max())
    return model, report
