"""Export to TFLite / LiteRT (`.tflite`) with litert-torch.

fp32: the float module converts as is. int8: the PT2E-converted graph (fold_quantize=False)
converts with a static litert quantizer config, which makes litert-torch emit the graph's
quantisation as TFLite int8 tensors: int8 kernels and int8 input/output.

In that mode the converter also quantises an op it finds between a DEQUANTIZE and a QUANTIZE even
when its weights are float (it quantises them itself), so a layer kept in float
(quantize/mixed.py) would come out int8. `strict_qdq=True` converts only the ops whose every input
is dequantised, weights included: the float layer stays DEQUANTIZE -> float op -> QUANTIZE, and the
file's input and output become float (a QUANTIZE and a DEQUANTIZE at its ends). litert-torch 0.10
sets the converter's `strict_qdq_mode` only in its V2 pipeline (which needs TensorFlow), so it is set
here on the converter config for the one conversion.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from se_edge.quiet import captured_output
from se_edge.io import write_bytes


@contextlib.contextmanager
def _strict_qdq():
    """litert-torch's converter passes run with `strict_qdq_mode` on, for the conversions inside."""
    from litert_torch._convert import litert_converter

    from se_edge.errors import SeEdgeError

    api = litert_converter.converter_api_ext
    if not hasattr(api.ConvertToTFLConfig(), "strict_qdq_mode"):
        raise SeEdgeError("this litert-torch's converter has no strict_qdq_mode, which keeping layers in float "
                          "needs; use litert-torch==0.10.0")
    original = api.run_convert_to_tfl_passes

    def passes(module, pass_manager, config):
        config.strict_qdq_mode = True
        return original(module, pass_manager, config)

    api.run_convert_to_tfl_passes = passes
    try:
        yield
    finally:
        api.run_convert_to_tfl_passes = original


def export_tflite(model: torch.nn.Module, sample: torch.Tensor, path: str | os.PathLike, quantized: bool,
                  strict_qdq: bool = False, metadata=None, edit=None) -> Path:
    """Convert `model` (float module, or PT2E-converted graph if `quantized`) and write `path` atomically;
    `strict_qdq`: keep float the ops whose weights are float (a mixed-precision graph); `metadata`: a
    metadata.ClassifierInfo written into the file as TFLITE_METADATA (with its labels.txt); `edit`: bytes ->
    bytes, applied to the converted flatbuffer first (app_io.app_tflite)."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    with captured_output(), (_strict_qdq() if strict_qdq else contextlib.nullcontext()):
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
    return write_tflite(data, path, metadata, edit)


def write_tflite(data: bytes, path: str | os.PathLike, metadata=None, edit=None) -> Path:
    """Converted flatbuffer bytes -> `path`, atomically: `edit` applied first, then `metadata` (as export_tflite)."""
    if edit is not None:
        data = edit(data)
    if metadata is not None:
        from se_edge.export.metadata import with_metadata

        data = with_metadata(data, metadata)
    return write_bytes(path, data)
