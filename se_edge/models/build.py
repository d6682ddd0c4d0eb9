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
    sha256 = spec.source_sha256()  # what is imported is what is recorded: the build checks the bytes it runs
    model = spec.build(**kwargs, sha256=sha256)
    check_forward(model, spec, num_classes, example if example is not None else torch.zeros(2, in_chans, size, size))
    record = {"model": str(spec), "model_kwargs": kwargs, "model_sha256": sha256, "weights": None}
    if model_cfg.weights:
        from se_edge.models.weights import load_weights

        record["weights"] = load_weights(model, model_cfg.weights).to_dict()
    record["rewrite"] = {"enabled": False, "silu": False}
    if rewrites(model_cfg):
        model, record["rewrite"] = rewrite(model, model_cfg.rewrite_silu, example)
    return model.eval(), record


def check_forward(model: nn.Module, spec, num_classes: int, example: torch.Tensor) -> None:
    """What se-edge does with every model, tried once before a run starts: `model(images)` on one (N, C, H, W)
    tensor must give one (N, num_classes) tensor of logits. A model that needs more arguments, returns a tuple or
    a dict, or ignores num_classes is one line here, not a traceback from the loss after run.json is written."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example[:2])
    except SeEdgeError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's forward, whatever it raises
        from se_edge.errors import one_line

        raise SeEdgeError(f"model {spec}: model(images) failed on a {tuple(example[:2].shape)} batch: "
                          f"{type(e).__name__}: {one_line(e)[:200]}; se-edge calls forward with one (N, C, H, W) "
                          "tensor") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise SeEdgeError(f"model {spec}: forward returned a {type(out).__name__}, not a tensor; se-edge needs one "
                          f"(N, num_classes) tensor of logits (wrap the model to return the logits only)")
    expected = (min(2, len(example)), num_classes)
    if tuple(out.shape) != expected:
        hint = (" (does its factory take num_classes?)" if out.ndim == 2 and out.shape[0] == expected[0] else "")
        raise SeEdgeError(f"model {spec}: forward returned shape {tuple(out.shape)} for a batch of {expected[0]}; "
                          f"expected {expected}, one logit per class of the dataset's {num_classes}{hint}")


def rewrite(model: nn.Module, silu: bool, example: torch.Tensor | None) -> tuple[nn.Module, dict]:
    from se_edge.blocks.rewrite import to_hardware_aware

    model, report = to_hardware_aware(model.eval(), example, inplace=True, silu=silu)
    return model, {"enabled": True, "silu": silu, "replaced": report.replaced, "exact": report.exact,
                   "native_activations": report.native_activations, "max_abs_deviation": report.max_abs_deviation,
                   "deviation_images": None if example is None else int(example.shape[0])}


def rebuild(model: str, kwargs: dict, sha256: str | None = None, rewritten: bool = False,
            silu: bool = False, vouched: bool = True, trust_model_file: bool = False) -> nn.Module:
    """The float architecture a run recorded (randomly initialised; load float.pt into it): the model SPEC, its
    kwargs, the model file's sha256 when it was made, and whether (and with SiLU) it was rewritten.

    run.json is data: a model file is imported only when its bytes have the recorded sha256, and only when the
    record itself is vouched for (`vouched`: its lineage holds, so `model` and `model_sha256` are what the run was
    made with). A record that names a file with no hash, or with nothing to vouch for it (a run made before
    lineage), is refused unless the user vouches for the file (`trust_model_file`, the CLI's --trust-model-file)."""
    spec = ModelSpec.parse(model)
    if spec.kind == "file" and not trust_model_file and (not sha256 or not vouched):
        why = "records no sha256 for it" if not sha256 else "has no lineage to vouch for that (an older run)"
        raise SeEdgeError(f"run.json names model file {spec.path} but {why}: se-edge runs no code a run directory "
                          "merely names; give --trust-model-file if you trust that file")
    model = spec.build(**kwargs, sha256=sha256 or None)
    if rewritten:
        from se_edge.blocks.rewrite import to_hardware_aware

        model, _ = to_hardware_aware(model, inplace=True, silu=silu)
    return model.eval()
