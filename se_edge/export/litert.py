"""Export to TFLite / LiteRT (`.tflite`) with litert-torch.

fp32: the float module converts as is. int8: the PT2E-converted graph (fold_quantize=False)
converts with a static litert quantizer config, which makes litert-torch emit the graph's
quantisation as TFLite int8 tensors: int8 kernels and int8 input/output.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from se_edge.quiet import captured_output
from se_edge.io import write_bytes


def export_tflite(model: torch.nn.Module, sample: torch.Tensor, path: str | os.PathLike, quantized: bool) -> Path:
    """Convert `model` (float module, or PT2E-converted graph if `quantized`) and write `path` atomically."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    with captured_output():
        import litert_torch

        quant_config = None
        if quantized:
            from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
            from litert_torch.quantize.quant_config import QuantConfig

            quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
            quant_config = QuantConfig(pt2e_quantizer=quantizer)
        model = model.eval() if not quantized else model
        edge_model = litert_torch.convert(model, (sample,), quant_config=quant_config)
        data = edge_model.model_content()
    return write_bytes(path, data)
