"""The app files (`model_int8_app.tflite`, `model_int8_app.pte`): the QAT result in the form the apps'
classifiers take, as MediaPipe Tasks' and the Task Library's `ImageClassifier` check it (RGB only,
`1 x H x W x 3`, uint8 or float32 input, uint8 or float32 output).

    input   (1, H, W, 3) RGB pixels 0..255: uint8 (the default), or float32 values 0..255 (`--input float`),
            whatever the model's channels: a greyscale model converts RGB to grey inside the graph, as the
            run's own preprocessing does (the mean of the channels, data/splits.resize).
    output  (1, classes) float32 class probabilities: the int8 logits -> DEQUANTIZE -> SOFTMAX.

From pixels to the int8 graph the .tflite runs, all in XNNPACK's one partition:

    pixels uint8 --DEQUANTIZE (scale 1, zero point 0: exactly p)--> float p
      --CONV_2D 1x1 float (weights 1 / (255 std), or 1 / (3 * 255 std) each for grey; bias -mean / std)-->
      the run's normalised (p / 255 - mean) / std --QUANTIZE--> the int8 graph's own input

so the int8 the first layer reads is the float-input file's quantisation of the same normalised pixels, not a
rounded mean: there is no uint8 grid on which (p / 255 - mean) / std is exact when 255 * mean is not a whole
number (a zero point of 78 for 77.79 moved 15 % of an image's pixels by one step), and folding it into the
first conv's weights would change its zero padding (a padded 0 would become -mean / std). One QUANTIZE from
uint8 to int8 would be shorter, but XNNPACK requantises only int8 -> int8 and uint8 -> uint8, so LiteRT would
run it outside the delegate. LiteRT's converter refuses uint8 and the ops around the int8 graph are written
into the converted flatbuffer here.

The .pte computes the same in the exported graph (uint8 -> float, the 1x1 conv, the int8 graph, softmax);
ExecuTorch's XNNPACK partitioner takes no uint8 input, so that first cast runs outside the delegate on the
portable kernel (listed by `se-edge export`), and every other op inside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

LAYOUTS = ("nhwc",)
INPUTS = ("uint8", "float")
CHANNELS = 3  # the apps' image tensors are RGB


@dataclass(frozen=True)
class AppIO:
    layout: str = "nhwc"
    input: str = "uint8"

    def __post_init__(self):
        from se_edge.errors import SeEdgeError

        if self.layout not in LAYOUTS:
            raise SeEdgeError(f"unknown --io {self.layout!r}: the app files are NHWC, what the apps' classifiers "
                              f"take; valid: {', '.join(LAYOUTS)}")
        if self.input not in INPUTS:
            raise SeEdgeError(f"unknown --input {self.input!r}; valid: {', '.join(INPUTS)}")

    def record(self) -> dict:
        """run.json's `app_io` for the app files: layout, input type, channels, what they output (the output key
        tells these files from the earlier form, whose input was a uint8 tensor with the normalisation as its
        quantisation)."""
        return {"layout": self.layout, "input": self.input, "channels": CHANNELS, "pixels": "0..255 RGB",
                "output": "probabilities", "normalisation": "in the graph: (p / 255 - mean) / std, float"}


def pixel_weights(prep) -> tuple[np.ndarray, np.ndarray]:
    """The 1x1 convolution (weights (C, 3), bias (C,)) from RGB pixels 0..255 to the run's normalised input
    of C channels: `(mean over RGB for grey, or the channel itself) / 255 - mean) / std`."""
    channels, mean, std = int(prep.in_chans), float(prep.mean), float(prep.std)
    if channels == 1:
        mix = np.full((1, CHANNELS), 1.0 / CHANNELS)
    elif channels == CHANNELS:
        mix = np.eye(CHANNELS)
    else:
        from se_edge.errors import SeEdgeError

        raise SeEdgeError(f"an app file takes RGB images; a {channels}-channel model has no app form (1 or 3 channels)")
    weight = (mix / (255.0 * std)).astype(np.float32)
    bias = np.full(channels, -mean / std, dtype=np.float32)
    return weight, bias


def pixels_to_input(pixels: np.ndarray, prep) -> np.ndarray:
    """(N, H, W, 3) RGB pixels -> the run's normalised (N, C, H, W) float32 input, as the app file computes it
    (the float model fed "the same pixels")."""
    weight, bias = pixel_weights(prep)
    x = np.einsum("nhwk,ck->nchw", pixels.astype(np.float32), weight, dtype=np.float32)
    return np.ascontiguousarray(x + bias[None, :, None, None], dtype=np.float32)


def to_pixels(resized: np.ndarray) -> np.ndarray:
    """Images in [0, 1] at the model's size, (N, C, H, W) with C 1 or 3 -> (N, H, W, 3) uint8 RGB pixels: what an
    app has (a grey image's three channels equal)."""
    p = np.clip(np.round(np.asarray(resized, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if p.shape[1] == 1:
        p = np.repeat(p, CHANNELS, axis=1)
    elif p.shape[1] != CHANNELS:
        from se_edge.errors import SeEdgeError

        raise SeEdgeError(f"app files take RGB images; these have {p.shape[1]} channels")
    return np.ascontiguousarray(p.transpose(0, 2, 3, 1))


class AppModel(nn.Module):
    """`graph` (NCHW, normalised float input, logits out) behind the app's form: NHWC RGB pixels in (uint8 or
    float 0..255), the normalisation as a 1x1 conv, probabilities out."""

    def __init__(self, graph: nn.Module, prep):
        super().__init__()
        self.model = graph  # not `graph`: an exported copy of this module is a GraphModule, whose .graph is its fx graph
        weight, bias = pixel_weights(prep)
        self.register_buffer("weight", torch.from_numpy(weight[:, :, None, None].copy()))
        self.register_buffer("bias", torch.from_numpy(bias.copy()))

    def forward(self, pixels):
        x = pixels.to(torch.float32).permute(0, 3, 1, 2)
        x = torch.nn.functional.conv2d(x, self.weight, self.bias)
        return torch.softmax(self.model(x), dim=1)


def app_sample(sample: torch.Tensor, io: AppIO) -> torch.Tensor:
    """An example input of the app file's form for (N, C, H, W) `sample`: seeded pixels."""
    n, _, h, w = sample.shape
    pixels = torch.randint(0, 256, (n, h, w, CHANNELS), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return pixels if io.input == "uint8" else pixels.to(torch.float32)


def app_tflite(model: bytes, prep, io: AppIO) -> bytes:
    """The converted int8 .tflite `model` (NHWC int8 input, int8 logits) in the app's form: RGB pixels ->
    [DEQUANTIZE] -> CONV_2D 1x1 (float) -> QUANTIZE -> the int8 graph -> DEQUANTIZE -> SOFTMAX -> probabilities."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from se_edge.errors import SeEdgeError

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    old_in, old_out = sg.inputs[0], sg.outputs[0]
    t_in, t_out = sg.tensors[old_in], sg.tensors[old_out]
    if t_in.type != schema.TensorType.INT8 or t_out.type != schema.TensorType.INT8:
        raise SeEdgeError("an app file is made from an int8 file (int8 input and output: a QAT or PTQ export)")
    n, h, w, c = (int(d) for d in t_in.shape)
    if c != int(prep.in_chans):
        raise SeEdgeError(f"the int8 file's input is {list(t_in.shape)}, not NHWC with {prep.in_chans} channels")

    def tensor(name: bytes, dtype, shape, quantization=None, data: bytes | None = None) -> int:
        new = schema.TensorT()
        new.shape = list(shape)
        new.type, new.name, new.quantization = dtype, name, quantization
        buffer = schema.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(data, dtype=np.uint8)
        m.buffers.append(buffer)
        new.buffer = len(m.buffers) - 1
        sg.tensors.append(new)
        return len(sg.tensors) - 1

    weight, bias = pixel_weights(prep)
    ops = []
    if io.input == "uint8":
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [1.0], [0]
        pixels = tensor(b"image", schema.TensorType.UINT8, (n, h, w, CHANNELS), q)
        as_float = tensor(b"image_float", schema.TensorType.FLOAT32, (n, h, w, CHANNELS))
        ops.append(_operator(m, schema.BuiltinOperator.DEQUANTIZE, 1, [pixels], [as_float],  # v1: uint8 input
                             schema.BuiltinOptions.DequantizeOptions, schema.DequantizeOptionsT()))
    else:
        pixels = as_float = tensor(b"image", schema.TensorType.FLOAT32, (n, h, w, CHANNELS))
    w_t = tensor(b"image_to_input/weight", schema.TensorType.FLOAT32, (c, 1, 1, CHANNELS),
                 data=weight.reshape(c, 1, 1, CHANNELS).astype("<f4").tobytes())
    b_t = tensor(b"image_to_input/bias", schema.TensorType.FLOAT32, (c,), data=bias.astype("<f4").tobytes())
    normalised = tensor(b"image_normalised", schema.TensorType.FLOAT32, (n, h, w, c))
    conv = schema.Conv2DOptionsT()
    conv.padding, conv.strideW, conv.strideH = schema.Padding.VALID, 1, 1
    conv.dilationWFactor = conv.dilationHFactor = 1
    conv.fusedActivationFunction = schema.ActivationFunctionType.NONE
    ops.append(_operator(m, schema.BuiltinOperator.CONV_2D, 1, [as_float, w_t, b_t], [normalised],
                         schema.BuiltinOptions.Conv2DOptions, conv))
    ops.append(_operator(m, schema.BuiltinOperator.QUANTIZE, 1, [normalised], [old_in],
                         schema.BuiltinOptions.QuantizeOptions, schema.QuantizeOptionsT()))
    logits = tensor(b"logits", schema.TensorType.FLOAT32, t_out.shape)
    probabilities = tensor(b"probability", schema.TensorType.FLOAT32, t_out.shape)
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    tail = [_operator(m, schema.BuiltinOperator.DEQUANTIZE, 2, [old_out], [logits],  # v2: int8 input
                      schema.BuiltinOptions.DequantizeOptions, schema.DequantizeOptionsT()),
            _operator(m, schema.BuiltinOperator.SOFTMAX, 1, [logits], [probabilities],
                      schema.BuiltinOptions.SoftmaxOptions, softmax)]
    sg.operators = ops + list(sg.operators) + tail
    sg.inputs = [pixels if i == old_in else i for i in sg.inputs]
    sg.outputs = [probabilities if i == old_out else i for i in sg.outputs]
    for sig in m.signatureDefs or []:
        for entry in sig.inputs or []:
            if entry.tensorIndex == old_in:
                entry.tensorIndex = pixels
        for entry in sig.outputs or []:
            if entry.tensorIndex == old_out:
                entry.tensorIndex = probabilities
    b = flatbuffers.Builder(len(model) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _operator(m, builtin: int, version: int, inputs: list[int], outputs: list[int], options_type, options):
    """An operator of `m` running `builtin` (its operator code reused where the model has one, at least
    `version`)."""
    from ai_edge_litert import schema_py_generated as schema

    codes = [i for i, c in enumerate(m.operatorCodes) if max(c.builtinCode, c.deprecatedBuiltinCode) == builtin]
    if codes:
        code = codes[0]
        m.operatorCodes[code].version = max(m.operatorCodes[code].version, version)
    else:
        c = schema.OperatorCodeT()
        c.builtinCode = builtin
        c.deprecatedBuiltinCode = min(builtin, 127)  # the old int8 field; 127 means "see builtinCode"
        c.version = version
        m.operatorCodes.append(c)
        code = len(m.operatorCodes) - 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, inputs, outputs
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


class _NHWC(nn.Module):
    """The int8 graph behind an NHWC input: LiteRT's converter cancels this permute against its own NCHW -> NHWC
    layout, so the converted file's int8 input is (1, H, W, C) with no TRANSPOSE."""

    def __init__(self, graph: nn.Module):
        super().__init__()
        self.model = graph

    def forward(self, x):
        return self.model(x.permute(0, 3, 1, 2))


def to_app_tflite(prepared, prep, io: AppIO, sample: torch.Tensor, path, metadata=None):
    from se_edge.export.int8 import FORMS
    from se_edge.export.litert import export_tflite
    from se_edge.quantize.convert import convert

    x = sample.permute(0, 2, 3, 1).contiguous()  # the converter sees the int8 graph's own float input, NHWC
    return export_tflite(_NHWC(convert(prepared, "litert", FORMS["litert"])), x, path, quantized=True, metadata=metadata,
                         edit=lambda data: app_tflite(data, prep, io))


def to_app_pte(prepared, prep, io: AppIO, sample: torch.Tensor, path):
    from se_edge.export.executorch import export_pte
    from se_edge.export.int8 import FORMS
    from se_edge.quantize.convert import convert

    return export_pte(AppModel(convert(prepared, "executorch", FORMS["executorch"]), prep), app_sample(sample, io), path)
