"""What a model costs to ship besides latency: file size, parameters, MACs, and memory in its runtime.

    size_bytes      the artifact's file on disk
    params          the float model's parameters (each file holds the same network; batch norms fold
                    into the convs on export, which is why the files hold slightly fewer numbers)
    macs            multiply-accumulates of one inference of the float model: convolutions and linear
                    layers, counted from the shapes they produce on the run's input
    peak_rss_mb     resident memory at the peak of loading the file and running it once, in a fresh
                    process with only its runtime (runner.py --memory); runtime_rss_mb is that process
                    before loading, so the model's own cost is the difference. The .pte figures include
                    torch, which ExecuTorch's Python runtime imports; its C++ runtime on a phone does not.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def count_macs(model: nn.Module, sample: torch.Tensor) -> int:
    """MACs of one forward pass of `model` on one `sample` image: Conv1d/2d and Linear layers."""
    total = 0

    def conv(module, inputs, output):
        nonlocal total
        k = 1
        for d in module.kernel_size:
            k *= d
        total += output[:1].numel() * (module.in_channels // module.groups) * k

    def linear(module, inputs, output):
        nonlocal total
        total += output[:1].numel() * module.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    try:
        with torch.no_grad():
            model.eval()(sample[:1])
    finally:
        for h in hooks:
            h.remove()
    return int(total)


def measure(run, names: list[str], progress: bool = True) -> dict[str, dict]:
    """`{artifact: {"size_bytes", "params", "macs", "peak_rss_mb", "runtime_rss_mb"}}` for `names` of `run`;
    the memory figures for the exported files (a PyTorch artifact has None there)."""
    from tqdm.auto import tqdm

    from se_edge.errors import SeEdgeError
    from se_edge.run import ARTIFACTS
    from se_edge.runner import RunnerError, measure_memory

    model = run.load_float()
    params = int(sum(p.numel() for p in model.parameters()))
    macs = count_macs(model, run.sample_input())
    out = {}
    for name in tqdm(names, desc="footprint", unit="file", disable=not progress):
        path = run.artifact_path(name)
        row = {"size_bytes": path.stat().st_size, "params": params, "macs": macs, "peak_rss_mb": None,
               "runtime_rss_mb": None}
        if ARTIFACTS[name].runtime != "pytorch":
            try:
                row.update(measure_memory(str(path)))
            except RunnerError as e:
                raise SeEdgeError(str(e)) from None
        out[name] = row
    return out
