"""PT2E quantisation-aware training: export -> prepare_qat -> fine-tune on a schedule.

The prepared model is a GraphModule; its state dict (weights, batch-norm statistics, observer
ranges) is the QAT checkpoint. `load_prepared` re-traces the float architecture and loads it, so a
checkpoint never needs unpickling of code.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from se_edge.data import ImageSet
from se_edge.config import QatConfig  # noqa: F401  (re-exported)
from se_edge.train import cross_entropy, fit, resolve_device


def distillation_loss(teacher: nn.Module, weight: float = 1.0, temperature: float = 1.0):
    """`loss_fn` for `fit`: weight * T^2 * KL(teacher || student, at temperature T) + (1 - weight) * CE."""
    import torch.nn.functional as F

    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = F.log_softmax(teacher(images) / temperature, dim=1)
        kd = F.kl_div(F.log_softmax(logits / temperature, dim=1), target, log_target=True, reduction="batchmean")
        loss = weight * temperature ** 2 * kd
        if weight < 1:
            loss = loss + (1 - weight) * F.cross_entropy(logits, labels)
        return loss

    return loss_fn


def qat_loss(cfg: QatConfig, teacher: nn.Module | None):
    """The recipe's loss: distilled from `teacher` (the float model) when `cfg.distill` > 0, else the labels'."""
    if cfg.distill <= 0:
        return cross_entropy
    if teacher is None:
        raise ValueError("QAT with distill > 0 needs the float model as teacher")
    return distillation_loss(teacher, cfg.distill, cfg.temperature)


def _export_for_training(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    # A dynamic batch dimension: otherwise the graph guards the batch size and batch 1 fails later.
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = example[:2] if example.shape[0] >= 2 else example.repeat(2, 1, 1, 1)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()


def prepare_qat(model: nn.Module, example: torch.Tensor, delegable_activations: bool = True,
                fused_clamps: bool = True) -> torch.fx.GraphModule:
    """Insert fake-quant (symmetric int8, per-channel weights) into a copy of `model`'s graph; hard-swish
    and hard-sigmoid written out in the form every delegate takes unless `delegable_activations` is off."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from se_edge.quantize.quantizer import xnnpack_quantizer

    from se_edge.quantize.patterns import traced_once

    model = model.to("cpu").train()
    with traced_once():  # torchao's pattern graphs, traced once per process
        return prepare_qat_pt2e(_export_for_training(model, example),
                                xnnpack_quantizer(True, delegable_activations, fused_clamps))


def prepare_ptq(model: nn.Module, example: torch.Tensor, delegable_activations: bool = True,
                fused_clamps: bool = True) -> torch.fx.GraphModule:
    """Insert observers (same int8 scheme as QAT) for post-training calibration, the PTQ baseline."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from se_edge.quantize.quantizer import xnnpack_quantizer

    from se_edge.quantize.patterns import traced_once

    model = model.to("cpu").eval()
    with traced_once():
        return prepare_pt2e(_export_for_training(model, example),
                            xnnpack_quantizer(False, delegable_activations, fused_clamps))


@torch.no_grad()
def calibrate(prepared: torch.fx.GraphModule, x, batch_size: int = 64, max_images: int = 1024) -> None:
    """Run up to `max_images` of `x` (numpy, N x C x H x W) through the observers."""
    for i in range(0, min(len(x), max_images), batch_size):
        prepared(torch.from_numpy(x[i:i + batch_size]))


def load_prepared(model: nn.Module, state_dict: dict, example: torch.Tensor, kind: str = "qat") -> torch.fx.GraphModule:
    """Rebuild a prepared graph (`qat` or `ptq`) from the float architecture and its checkpoint. A checkpoint
    made before a conv and its ReLU6 were quantised as one (quantizer.fuse_clamps) has an observer between
    them: its graph is rebuilt as it was prepared."""
    import copy

    prepare = prepare_qat if kind == "qat" else prepare_ptq
    prepared = prepare(copy.deepcopy(model), example)
    try:
        prepared.load_state_dict(state_dict)
    except RuntimeError:
        prepared = prepare(model, example, fused_clamps=False)
        prepared.load_state_dict(state_dict)
    set_eval(prepared)
    return prepared


def set_train(prepared: torch.fx.GraphModule) -> None:
    from torchao.quantization.pt2e import move_exported_model_to_train

    move_exported_model_to_train(prepared)


def set_eval(prepared: torch.fx.GraphModule) -> None:
    from torchao.quantization.pt2e import move_exported_model_to_eval

    move_exported_model_to_eval(prepared)


def qat_finetune(prepared: torch.fx.GraphModule, train: ImageSet, val: ImageSet, cfg: QatConfig,
                 checkpoint=None, resume: bool = False, teacher: nn.Module | None = None) -> list[dict]:
    """Fine-tune a prepared graph. From `freeze_bn_after` epochs on, batch-norm uses its running
    statistics (the graph runs in eval form, which also disables dropout); from
    `freeze_observers_after` on, quantisation ranges stop moving. Both as in torchvision's recipe.
    `teacher`: the float model, distilled from when `cfg.distill` > 0."""
    from torchao.quantization.pt2e import disable_observer

    state = {"bn_frozen": False}

    def on_epoch_start(epoch: int) -> None:
        if cfg.freeze_bn_after is not None and epoch >= cfg.freeze_bn_after:
            state["bn_frozen"] = True
        if cfg.freeze_observers_after is not None and epoch >= cfg.freeze_observers_after:
            prepared.apply(disable_observer)

    def train_mode(m: torch.fx.GraphModule) -> None:
        (set_eval if state["bn_frozen"] else set_train)(m)

    resuming = resume and checkpoint is not None and Path(checkpoint).is_file()
    if cfg.calibration_images and not resuming:
        # Ranges start from the data in inference form (as PTQ's do), not from the first training batch.
        set_eval(prepared)
        calibrate(prepared, train.x, max_images=cfg.calibration_images)
    loss_fn = qat_loss(cfg, teacher.to(resolve_device(cfg.device)) if teacher is not None else None)
    return fit(prepared, train, val, cfg, desc="qat", set_train=train_mode, set_eval=set_eval,
               on_epoch_start=on_epoch_start, checkpoint=checkpoint, resume=resume, loss_fn=loss_fn)
