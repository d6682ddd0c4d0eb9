"""The PT2E quantizer: symmetric int8, per-channel weights, as XNNPACK executes it.

One quantizer annotates the graph for both runtimes: ExecuTorch lowers it to XNNPACK, and
litert-torch converts the same quantised graph to a fully int8 TFLite model (litert-torch's own
QAT quantizer fails on conv-bn; see FIELD_NOTES).
"""
from __future__ import annotations


def xnnpack_quantizer(is_qat: bool = True):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat)
    return XNNPACKQuantizer().set_global(config)
