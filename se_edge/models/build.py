"""The one place a run's float model is made, and remade from its run.json.

    build_float(model_cfg, num_classes, in_chans, example)
        spec -> model -> --weights (strict; a resized head is the one exception) -> to_hardware_aware
    rebuild(record)
        the same architecture from run.json's "model", "model_kwargs" and "rewrite" (weights come
        from the run's float.pt afterwards); a model file edited since the run was made is refused.

The rewrite runs after the weights are loaded, so a user's SE modules carry their trained weights
into the hardware-aware form. Zoo models given an explicit `se` gate keep it (that is the point of
choosing one); every other model is rewritten unless `rewrite=False`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from se_edge.errors import SeEdgeError
from se_edge.models.sources import ModelSpec


def zoo_kwargs(model_cfg, size: int) -> dict:
    kwargs = {"stem": model_cfg.stem or ("small" if size <= 64 else "imagenet")}
    for key in ("se", "se_squeeze"):
        if getattr(model_cfg, key) is not None:
            kwargs[key] = getattr(model_cfg, key)
    return kwargs


def rewrites(model_cfg) -> bool:
    spec = ModelSpec.parse(model_cfg.spec)
    return model_cfg.rewrite and not (spec.kind == "zoo" and model_cfg.se is not None)


def build_float(model_cfg, num_classes: int, in_chans: int, size: int,
                example: torch.Tensor | None = None) -> tuple[nn.Module, dict]:
    """The float model and run.json's model fields: `model`, `model_kwargs`, `model_sha256`, `weights`, `rewrite`."""
    spec = ModelSpec.parse(model_cfg.spec)
    kwargs = {"num_classes": num_classes, "in_chans": in_chans}
    if spec.kind == "zoo":
        kwargs.update(zoo_kwargs(model_cfg, size))
    model = spec.build(**kwargs)
    record = {"model": str(spec), "model_kwargs": kwargs, "model_sha256": spec.source_sha256(), "weights": None}
    if model_cfg.weights:
        from se_edge.models.weights import load_weights

        record["weights"] = load_weights(model, model_cfg.weights).to_dict()
    record["rewrite"] = {"enabled": False, "silu": False}
    if rewrites(model_cfg):
        model, record["rewrite"] = rewrite(model, model_cfg.rewrite_silu, example)
    return model.eval(), record


def rewrite(model: nn.Module, silu: bool, example: torch.Tensor | None) -> tuple[nn.Module, dict]:
    from se_edge.blocks.rewrite import to_hardware_aware

    model, report = to_hardware_aware(model.eval(), example, inplace=True, silu=silu)
    return model, {"enabled": True, "silu": silu, "replaced": report.replaced, "exact": report.exact,
                   "native_activations": report.native_activations, "max_abs_deviation": report.max_abs_deviation,
                   "deviation_images": None if example is None else int(example.shape[0])}


def rebuild(model: str, kwargs: dict, sha256: str | None = None, rewritten: bool = False,
            silu: bool = False) -> nn.Module:
    """The float architecture a run recorded (randomly initialised; load float.pt into it): the model SPEC, its
    kwargs, the model file's sha256 when it was made, and whether (and with SiLU) it was rewritten."""
    spec = ModelSpec.parse(model)
    if sha256 and spec.source_sha256() != sha256:
        raise SeEdgeError(f"model file {spec.path} changed since this run was made (sha256 {sha256[:12]}... recorded); "
                          "restore it, or start a new run")
    model = spec.build(**kwargs)
    if rewritten:
        from se_edge.blocks.rewrite import to_hardware_aware

        model, _ = to_hardware_aware(model, inplace=True, silu=silu)
    return model.eval()
