"""Several processes (GPUs or machines) through torchrun: DistributedDataParallel.

    torchrun --nproc_per_node N -m se_edge.cli train|quantize ...

Each process trains on its own shard of every epoch's shuffled order (same seed everywhere);
gradients are averaged by DDP (nccl on GPU, gloo on CPU). Only rank 0 logs, checkpoints, exports
and writes reports; the others wait at barriers. Without torchrun this is all a no-op.
"""
from __future__ import annotations

import os

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def is_distributed() -> bool:
    return world_size() > 1 and torch.distributed.is_available()


def init(device: torch.device) -> torch.device:
    """Join the process group torchrun describes; returns this process's device."""
    if not is_distributed():
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    if is_distributed() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around `model` when distributed (a PT2E-prepared graph wraps too), else `model`."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's share of an epoch's order (every rank holds the same permutation)."""
    if not is_distributed():
        return indices
    return indices[rank()::world_size()]
