"""Pretrained weights into a model: strictly, without running anyone's code.

`.pt`/`.pth`/`.bin` are read with `torch.load(weights_only=True)`: tensors and plain containers only,
so a pickle that would run code is refused before anything runs. `.safetensors` holds tensors only.
Checkpoints that wrap the state dict (`{"state_dict": ...}` as timm saves, `{"model": ...}` as the
torchvision references do) and DDP's `module.` prefix are unwrapped. The keys must match the model's
exactly; the one exception is the classifier head, whose size follows the dataset: a head whose
shape differs is left freshly initialised, and the result says so.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from se_edge.errors import SeEdgeError, one_line
from se_edge.models.sources import sha256_file

SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
_WRAPPERS = ("state_dict", "model", "model_state_dict")


@dataclass
class LoadedWeights:
    path: str
    sha256: str
    tensors: int
    head_replaced: list[str] = field(default_factory=list)  # keys left at their fresh init (head resized)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "tensors": self.tensors, "head_replaced": self.head_replaced,
                "notes": self.notes}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise SeEdgeError(f"cannot read weights {path}: unknown suffix {path.suffix or '(none)'!r}; valid: "
                          f"{', '.join(SUFFIXES)} (a state dict)")
    if not path.is_file():
        raise SeEdgeError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise SeEdgeError("reading .safetensors needs the safetensors package: pip install safetensors") from None
        try:
            state = load_file(str(path), device="cpu")
        except Exception as e:
            raise SeEdgeError(f"cannot read weights {path}: not a valid .safetensors file ({one_line(e)})") from None
        return _unwrap(state, path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if isinstance(e, pickle.UnpicklingError) or "weights_only" in str(e):
            found = re.search(r"GLOBAL (\S+)", str(e))
            what = f"it would import {found.group(1)}" if found else "it holds more than tensors"
            raise SeEdgeError(f"refusing weights {path}: {what}, and se_edge never runs code from a weights file; "
                              "save torch.save(model.state_dict(), path) or a .safetensors file") from None
        raise SeEdgeError(f"cannot read weights {path}: {one_line(e)}") from None
    return _unwrap(state, path)


def _unwrap(state, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, dict):
        for key in _WRAPPERS:
            if isinstance(state.get(key), dict) and not isinstance(state.get(key), torch.Tensor):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kind = type(state).__name__
        raise SeEdgeError(f"{path} holds a {kind}, not a state dict of tensors; save torch.save(model.state_dict(), path)")
    if state and all(k.startswith("module.") for k in state):  # saved from a DDP-wrapped model
        state = {k[len("module."):]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())]
    if bad:  # a diverged or damaged checkpoint: training on it records chance accuracy, quantising it fails later
        v = state[bad[0]]
        raise SeEdgeError(f"refusing weights {path}: {_some(bad)} hold{'s' if len(bad) == 1 else ''} NaN or infinite "
                          f"values ({int((~torch.isfinite(v)).sum())} of {v.numel()} in {bad[0]}); every weight must "
                          "be a finite number")
    return state


def head_keys(model: nn.Module) -> set[str]:
    """The parameters of the model's classifier: its last Linear (or 1x1 conv in a conv-only head)."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)):
            last = name
    if last is None:
        return set()
    return {f"{last}.{p}" if last else p for p, _ in model.get_submodule(last).named_parameters(recurse=False)}


def load_weights(model: nn.Module, path: str | os.PathLike) -> LoadedWeights:
    """Load `path` into `model` strictly (in place); a resized classifier head is the one allowed mismatch."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected {_some(unexpected)}")
        raise SeEdgeError(f"weights {path} do not fit the model: {'; '.join(parts)} (a state dict of this "
                          "exact architecture is needed)")
    resized = sorted(k for k in own if tuple(state[k].shape) != tuple(own[k].shape))
    head = head_keys(model)
    if resized and not set(resized) <= head:
        shapes = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in resized if k not in head)
        raise SeEdgeError(f"weights {path} do not fit the model: shape mismatch at {_some(shapes.split(', '))}")
    result = LoadedWeights(str(Path(path).resolve()), sha256_file(path), len(state))
    if resized:  # the head's size follows the dataset's classes: keep the fresh head, load everything else
        weight = next(k for k in sorted(head) if k.endswith("weight"))
        result.head_replaced = sorted(head)
        result.notes.append(f"classifier head {weight.rsplit('.', 1)[0] or weight} replaced: the weights have "
                            f"{state[weight].shape[0]} outputs, the dataset {own[weight].shape[0]} classes; the new "
                            "head starts from a fresh init (train it: --epochs N)")
        state = {k: v for k, v in state.items() if k not in head}
    model.load_state_dict(state, strict=not resized)  # non-strict only for the head, which was checked above
    return result


def _some(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
