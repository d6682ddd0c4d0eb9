"""Latency of each artifact in its runtime, in this process: warm-up, then timed single-image runs.

Artifacts are timed interleaved (one run of each in turn, rotating the order), so drift in the
machine's speed spreads over all of them instead of favouring whichever ran first.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from se_edge.evaluate.models import open_artifacts
from se_edge.run import Run
from se_edge.runner import summarize, time_once


def measure_latency(models: dict, x1: np.ndarray | dict, warmup: int = 10, runs: int = 50, threads: int = 1,
                    progress: bool = True) -> dict[str, dict]:
    """`{name: {"p50", "p90", "p99", "mean", "min", "std", "count", "threads"}}` in milliseconds; `x1`: one
    input for every model, or one per model name."""
    import torch

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the PyTorch models; runtimes got `threads` when loaded
    try:
        names = list(models)
        for name in names:
            models[name].set_input(x1[name] if isinstance(x1, dict) else x1)
            for _ in range(warmup):
                models[name].invoke()
        times = {name: [] for name in names}
        for r in tqdm(range(runs), desc="latency", unit="round", disable=not progress):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(time_once(models[name]))
    finally:
        torch.set_num_threads(saved_threads)
    return {name: {**summarize(t), "threads": threads} for name, t in times.items()}


def run_latency(run: Run, warmup: int = 10, runs: int = 50, threads: int = 1, progress: bool = True) -> dict:
    names = run.present()
    models = open_artifacts(run, names, threads)
    return measure_latency(models, {n: run.example_input(n) for n in names}, warmup, runs, threads, progress)
