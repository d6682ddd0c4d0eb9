"""fp16 files: the float model at half the precision, the baseline int8 is weighed against.

`.tflite`: TFLite's float16 form, made from the fp32 flatbuffer by ai-edge-quantizer's FLOAT_CASTING
(no TensorFlow): the weights of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED stored as float16 behind a
DEQUANTIZE each, input, output and activations float32. LiteRT's XNNPACK delegate takes the DEQUANTIZEs of
static fp16 weights inside the partition; it computes in fp32 unless the app asks it for fp16 inference
(and the CPU has fp16 arithmetic), so the file is half the size and, by default, as fast as fp32.

`.pte`: the model in float16 (`model.half()`), lowered to ExecuTorch's XNNPACK delegate, which computes in
fp16. The file takes and returns float32, as the other files do, so an app feeds it the same tensors: the
two casts at its ends are ops the XNNPACK partitioner does not take (its ToDimOrderCopyConfig refuses dtype
conversions), and run on ExecuTorch's portable kernels, on one image and one row of logits. ExecuTorch 1.5.1
serialises convolution weights as fp32 for XNNPACK (`op_conv2d.py`, force_fp32) and converts them when the
program loads, so this file is about the size of the fp32 one.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
import torch.nn as nn

# The two ops of a float32-in, float32-out fp16 .pte that ExecuTorch's XNNPACK partitioner leaves outside.
PTE_CASTS = {"dim_order_ops::_to_dim_order_copy": 2}


def fp16_weights(tflite: bytes) -> bytes:
    """`tflite` (an fp32 flatbuffer) with its convolution and fully-connected weights stored as float16."""
    from se_edge.quiet import captured_output

    with captured_output():  # the quantizer prints a summary of every model it writes
        from ai_edge_quantizer import qtyping, quantizer
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        q = quantizer.Quantizer(bytearray(tflite))
        weights = qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT)
        q.update_quantization_recipe(
            regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            op_config=qtyping.OpQuantizationConfig(weight_tensor_config=weights,
                                                   compute_precision=qtyping.ComputePrecision.FLOAT,
                                                   explicit_dequantize=True),
            algorithm_key=AlgorithmName.FLOAT_CASTING)
        return bytes(q.quantize(enable_progress_bar=False, enable_progress_report=False).quantized_model)


class Float16(nn.Module):
    """`model` in float16 between float32 input and output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model).eval().half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half()).float()


def export_fp16_pte(model: nn.Module, sample: torch.Tensor, path: str | os.PathLike) -> Path:
    """The fp16 `.pte` of a float module (float32 in and out), lowered to XNNPACK."""
    from se_edge.export.executorch import export_pte

    return export_pte(Float16(model), sample.float(), path)
