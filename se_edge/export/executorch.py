"""Export to ExecuTorch (`.pte`), lowered to the XNNPACK delegate.

export -> to_edge_transform_and_lower(XnnpackPartitioner) -> to_executorch -> serialise. An int8
model is the PT2E-converted graph with folded (int8) weights.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from se_edge.quiet import captured_output
from se_edge.io import write_bytes


def export_pte(model: torch.nn.Module, sample: torch.Tensor, path: str | os.PathLike) -> Path:
    """Lower `model` (float module or PT2E-converted graph) to XNNPACK and write `path` atomically."""
    with captured_output():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        if not any(isinstance(m, torch.fx.GraphModule) for m in model.modules()):
            model = model.eval()  # a PT2E graph (or a wrapper around one) is already in its eval form
        exported = torch.export.export(model, (sample,))
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
        data = program.buffer
    return write_bytes(path, data)
