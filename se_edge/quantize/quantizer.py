"""The PT2E quantizer: symmetric int8, per-channel weights, as XNNPACK executes it.

One quantizer annotates the graph for both runtimes: ExecuTorch lowers it to XNNPACK, and
litert-torch converts the same quantised graph to a fully int8 TFLite model (litert-torch's own
QAT quantizer fails on conv-bn; see FIELD_NOTES).

The XNNPACK quantizer leaves hard-swish unannotated. Where hard-swish feeds a quantised op the
converters still fuse it into an int8 HARD_SWISH, but where it feeds an SE block (whose squeeze
only shares its input's quantisation) the whole SE branch falls back to float: 9 float islands in
SE-MobileNetV3-small, and Vela refuses the float HARD_SWISH. So hard-swish is annotated here,
before the XNNPACK annotators run, so that their propagation reaches the squeeze.

With `delegable_activations` (the default), hard-swish and hard-sigmoid calls are first written out
as ADD/RELU6/MUL (decompose.py): LiteRT's XNNPACK delegate refuses int8 HARD_SWISH. The annotation
above then only matters for graphs quantised with `delegable_activations=False`.

Average pooling (the `avgpool` SE squeeze, which Ethos-U runs as AVERAGE_POOL_2D at half the cycles
of MEAN) is annotated to share its input's quantisation, as max pooling already is: otherwise
its output is requantised by a separate QUANTIZE op in TFLite. Zero padding (the SE-ResNet stem's
pad before its max pool) shares its input's quantisation the same way: otherwise the int8 file
gained a QUANTIZE and two TRANSPOSEs around it.
"""
from __future__ import annotations

import functools

_ACTIVATIONS = ("hardswish", "hardswish_")
_SHARING = ("avg_pool2d", "pad", "constant_pad_nd")


@functools.cache
def _quantizer_class():
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import get_input_act_qspec, get_output_act_qspec
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    activations = {getattr(torch.ops.aten, name).default for name in _ACTIVATIONS}
    sharing = {getattr(torch.ops.aten, name).default for name in _SHARING if hasattr(torch.ops.aten, name)}

    from se_edge.quantize.decompose import decompose_hard_activations

    class SeEdgeQuantizer(XNNPACKQuantizer):
        """XNNPACKQuantizer that also quantises hard-swish and average pooling."""

        delegable_activations = True
        fused_clamps = True

        def transform_for_annotation(self, model):
            if self.delegable_activations:
                decompose_hard_activations(model)
            return super().transform_for_annotation(model)

        def annotate(self, model):
            config = self.global_config
            for node in model.graph.nodes:
                if node.op != "call_function" or "quantization_annotation" in node.meta:
                    continue
                if node.target in activations:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={node.args[0]: get_input_act_qspec(config)},
                        output_qspec=get_output_act_qspec(config), _annotated=True)
                elif node.target in sharing:
                    shared = SharedQuantizationSpec(node.args[0])
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={node.args[0]: shared}, output_qspec=shared, _annotated=True)
            model = super().annotate(model)
            if self.fused_clamps:
                fuse_clamps(model, config)
            return model

    return SeEdgeQuantizer


_PRODUCERS = ("aten.conv2d.default", "aten.linear.default", "aten.batch_norm.default")
_CLAMPS = ("aten.relu6.default", "aten.relu6_.default", "aten.hardtanh.default", "aten.hardtanh_.default")


def _is_relu6(node) -> bool:
    if str(node.target) in ("aten.relu6.default", "aten.relu6_.default"):
        return True
    bounds = tuple(node.args[1:3]) if len(node.args) >= 3 else ()
    return bounds == (0.0, 6.0) or bounds == (0, 6)


def fuse_clamps(model, config) -> int:
    """A conv (or its QAT batch norm, or a linear) followed by ReLU6 (or hardtanh(0, 6)) gets one quantisation,
    at the ReLU6's output, as the files compute it (LiteRT's CONV_2D with a fused RELU6, XNNPACK's merged
    clamp); the XNNPACK quantizer fuses only ReLU so and otherwise observes both, and QAT then trained through
    a rounding the files do not have. Other clamps stay as they were: hardtanh(0, 1) is no activation a TFLite
    conv can fuse, and its float conv output would become a float island. Returns how many pairs."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import get_output_act_qspec
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    count = 0
    for node in model.graph.nodes:
        if node.op != "call_function" or str(node.target) not in _CLAMPS or not _is_relu6(node):
            continue
        src = node.args[0]
        if str(getattr(src, "target", "")) not in _PRODUCERS or len(src.users) != 1:
            continue
        producer = src.meta.get("quantization_annotation")
        if producer is None or producer.output_qspec is None:
            continue
        producer.output_qspec = None
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={}, output_qspec=get_output_act_qspec(config), _annotated=True)
        count += 1
    return count


def xnnpack_quantizer(is_qat: bool = True, delegable_activations: bool = True, fused_clamps: bool = True):
    """`fused_clamps=False`: a conv and its ReLU6 quantised apart, as runs made before fuse_clamps were."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat)
    quantizer = _quantizer_class()().set_global(config)
    quantizer.delegable_activations = delegable_activations
    quantizer.fused_clamps = fused_clamps
    return quantizer
