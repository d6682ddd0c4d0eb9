"""Convert a prepared QAT graph to the integer reference each backend lowers from.

`convert_pt2e` runs on a deep copy per backend: ExecuTorch needs folded (int8) weights,
`fold_quantize=True`, or lowering misses out-variants; litert-torch needs `fold_quantize=False`
(it reads the weight quantize ops itself).
"""
from __future__ import annotations

import copy

import torch

BACKENDS = ("executorch", "litert")


def convert(prepared: torch.fx.GraphModule, backend: str = "executorch") -> torch.fx.GraphModule:
    """An int8 reference graph (quantize/dequantize around int8 kernels) for `backend`."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    from se_edge.quantize.qat import set_eval

    model = copy.deepcopy(prepared).to("cpu")
    set_eval(model)
    return convert_pt2e(model, fold_quantize=backend == "executorch")
