"""Training loop shared by float training and QAT fine-tuning."""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from se_edge.data import ImageSet
from se_edge.errors import SeEdgeError

from se_edge.config import DEVICES, TrainConfig  # noqa: F401  (re-exported: the loop takes a TrainConfig)


def resolve_device(spec: str) -> torch.device:
    if spec not in DEVICES:
        raise SeEdgeError(f"unknown device {spec!r}; valid: {', '.join(DEVICES)}")
    if spec == "cuda" and not torch.cuda.is_available():
        raise SeEdgeError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(spec)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment(x: torch.Tensor, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """Small random affine jitter (shift <= 10 %, rotation <= 10 deg, scale 0.9-1.1), as for digits;
    with `flip`, also random horizontal flips, as for photos (CIFAR-10, ImageFolder)."""
    n = x.shape[0]

    def uniform(lo, hi):
        return torch.rand(n, generator=generator, device="cpu").to(x.device) * (hi - lo) + lo

    angle = uniform(-10, 10) * math.pi / 180
    scale = uniform(0.9, 1.1)
    tx, ty = uniform(-0.1, 0.1), uniform(-0.1, 0.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    if flip:
        theta[:, 0, :2] *= torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(x.device)[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_mode(model: nn.Module) -> None:
    model.train()


def eval_mode(model: nn.Module) -> None:
    model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, device: torch.device | str = "cpu", batch_size: int = 256,
            set_eval: Callable[[nn.Module], None] = eval_mode) -> np.ndarray:
    """Logits for all of `x`, in batches."""
    set_eval(model)
    out = [model(torch.from_numpy(x[i:i + batch_size]).to(device)).float().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean())


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
    """The labels' loss, in `fit`'s `loss_fn(logits, labels, images)` form."""
    return F.cross_entropy(logits, labels)


def fit(
    model: nn.Module,
    train: ImageSet,
    val: ImageSet,
    cfg: TrainConfig,
    *,
    desc: str = "train",
    set_train: Callable[[nn.Module], None] = train_mode,
    set_eval: Callable[[nn.Module], None] = eval_mode,
    on_epoch_start: Callable[[int], None] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> list[dict]:
    """AdamW + warm-up/cosine schedule, cross-entropy; returns per-epoch loss and validation accuracy.

    `set_train`/`set_eval` switch modes (a PT2E graph module needs its own functions for that);
    `on_epoch_start(epoch)` lets QAT freeze observers or batch-norm statistics on schedule.
    `loss_fn(logits, labels, images)` replaces cross-entropy (QAT distils from the float model).
    `checkpoint`: after every epoch the model, optimiser, schedule, RNG and history are saved there
    (atomically, rank 0 only); with `resume`, training continues from it. Under torchrun the model
    is wrapped in DistributedDataParallel and each rank trains on its shard of every epoch.
    """
    from se_edge import distributed

    loss_fn = loss_fn or cross_entropy
    device = distributed.init(resolve_device(cfg.device))
    model.to(device)
    net = distributed.wrap(model, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size / distributed.world_size())
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)))
    history: list[dict] = []
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        history = state["history"]
    x_all, y_all = torch.from_numpy(train.x), torch.from_numpy(train.y)
    main = distributed.is_main()
    bar = tqdm(range(len(history), cfg.epochs), desc=desc, unit="epoch", disable=not (cfg.progress and main),
               initial=len(history), total=cfg.epochs)
    for epoch in bar:
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        set_train(model)
        order = distributed.shard(torch.randperm(len(train), generator=gen))
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb, yb = x_all[idx].to(device), y_all[idx].to(device)
            if cfg.augment:
                xb = augment(xb, gen, cfg.flip)
            loss = loss_fn(net(xb), yb, xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            count += len(idx)
        val_acc = accuracy(predict(model, val.x, device, set_eval=set_eval), val.y) if len(val) else float("nan")
        history.append({"epoch": epoch + 1, "loss": total / max(count, 1), "val_accuracy": val_acc})
        bar.set_postfix(loss=f"{total / max(count, 1):.3f}", val_acc=f"{val_acc:.4f}")
        if checkpoint is not None and main:
            save_checkpoint(checkpoint, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(), "generator": gen.get_state(),
                                         "history": history})
    set_eval(model)
    return history


def save_checkpoint(path: str | Path, state: dict) -> None:
    from se_edge.io import write_torch

    write_torch(path, state)


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint, loaded without unpickling code (weights_only=True)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, or a pickle that needs code
        raise SeEdgeError(f"cannot resume from {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
