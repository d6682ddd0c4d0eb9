"""The int8 files as a camera app feeds them: NHWC input, and raw uint8 pixels (0..255) in place of the
run's normalised floats.

    --io nhwc       the graph takes (1, H, W, C) and permutes to PyTorch's NCHW first; LiteRT's converter
                    then cancels that permute against its own NCHW->NHWC layout, so the .tflite has no
                    TRANSPOSE at its input (today's files have one, or a RESHAPE for one channel), and
                    XNNPACK in ExecuTorch takes the permute into its partition.
    --input uint8   the file takes pixels p in 0..255. The run normalises x = (p / 255 - mean) / std, which
                    is p read as a uint8 tensor with scale 1 / (255 std) and zero point 255 mean. So
                    the .tflite's input becomes that uint8 tensor, and DEQUANTIZE -> QUANTIZE turn it
                    into the int8 the first layer reads. One QUANTIZE from uint8 to int8 would do the
                    same, but LiteRT's XNNPACK delegate never takes it ("unsupported combination" of
                    input and output types: it requantises only int8 -> int8 and uint8 -> uint8), so it
                    ran outside on the builtin kernel; a uint8 DEQUANTIZE and a float -> int8 QUANTIZE
                    are both delegated (LiteRT builds XNNPACK with its QU8 and QS8 flags on). LiteRT's
                    converter refuses a uint8 graph input, so the two ops are added to the converted
                    flatbuffer here. The zero point is rounded to a whole number: by at most half a
                    pixel step. The .pte casts uint8 to float and normalises in the graph, since
                    ExecuTorch's XNNPACK partitioner takes no uint8 input; the cast runs outside the
                    delegate (listed by `se-edge export`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

LAYOUTS = ("nchw", "nhwc")
INPUTS = ("float", "uint8")


@dataclass(frozen=True)
class AppIO:
    layout: str = "nchw"
    input: str = "float"

    def __post_init__(self):
        from se_edge.errors import SeEdgeError

        if self.layout not in LAYOUTS:
            raise SeEdgeError(f"unknown --io {self.layout!r}; valid: {', '.join(LAYOUTS)}")
        if self.input not in INPUTS:
            raise SeEdgeError(f"unknown --input {self.input!r}; valid: {', '.join(INPUTS)}")

    @property
    def default(self) -> bool:
        return self == AppIO()

    def record(self, prep: dict) -> dict:
        """run.json's `app_io` for files made with this input: layout, input type, the pixels' quantisation."""
        scale, zero_point = pixel_quantization(prep)
        return {"layout": self.layout, "input": self.input, "pixel_scale": scale, "pixel_zero_point": zero_point}


def pixel_quantization(prep: dict) -> tuple[float, int]:
    """(scale, zero point) that make a uint8 pixel p read as the run's normalised (p / 255 - mean) / std."""
    return 1.0 / (255.0 * prep["std"]), int(min(255, max(0, round(255.0 * prep["mean"]))))


class AppInput(nn.Module):
    """`graph` (NCHW, normalised float input) behind the app's input: NHWC and/or uint8 pixels."""

    def __init__(self, graph: nn.Module, io: AppIO, prep: dict, normalise: bool):
        super().__init__()
        self.model = graph  # not `graph`: an exported copy of this module is a GraphModule, whose .graph is its fx graph
        self.nhwc = io.layout == "nhwc"
        self.scale, self.zero_point = pixel_quantization(prep)
        self.normalise = normalise and io.input == "uint8"

    def forward(self, x):
        if self.normalise:
            x = (x.to(torch.float32) - self.zero_point) * self.scale
        if self.nhwc:
            x = x.permute(0, 3, 1, 2)
        return self.model(x)


def app_sample(sample: torch.Tensor, io: AppIO) -> torch.Tensor:
    x = sample.permute(0, 2, 3, 1).contiguous() if io.layout == "nhwc" else sample
    if io.input == "uint8":
        x = torch.randint(0, 256, x.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return x


def uint8_pixel_input(model: bytes, scale: float, zero_point: int) -> bytes:
    """A .tflite whose int8 input is fed by a new uint8 input (`scale`, `zero_point`) through DEQUANTIZE ->
    QUANTIZE, both of which LiteRT's XNNPACK delegate runs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from se_edge.errors import SeEdgeError

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    old = sg.inputs[0]
    t = sg.tensors[old]
    if t.type != schema.TensorType.INT8:
        raise SeEdgeError("--input uint8 needs a file whose input is int8 (a QAT or PTQ export)")

    def tensor(name: bytes, dtype, quantization=None) -> int:
        new = schema.TensorT()
        new.shape = list(t.shape)
        new.shapeSignature = list(t.shapeSignature) if t.shapeSignature is not None else None
        new.type, new.name, new.quantization = dtype, name, quantization
        m.buffers.append(schema.BufferT())
        new.buffer = len(m.buffers) - 1
        sg.tensors.append(new)
        return len(sg.tensors) - 1

    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(scale)], [int(zero_point)]
    pixels = tensor(b"pixels", schema.TensorType.UINT8, q)
    normalised = tensor(b"pixels_normalised", schema.TensorType.FLOAT32)
    dequantize = _operator(m, schema.BuiltinOperator.DEQUANTIZE, 1, [pixels], [normalised],  # v1: uint8 input
                           schema.BuiltinOptions.DequantizeOptions, schema.DequantizeOptionsT())
    quantize = _operator(m, schema.BuiltinOperator.QUANTIZE, 2, [normalised], [old],  # v2: int8 output
                         schema.BuiltinOptions.QuantizeOptions, schema.QuantizeOptionsT())
    sg.operators[:0] = [dequantize, quantize]
    sg.inputs = [pixels if i == old else i for i in sg.inputs]
    for sig in m.signatureDefs or []:
        for entry in sig.inputs or []:
            if entry.tensorIndex == old:
                entry.tensorIndex = pixels
    b = flatbuffers.Builder(len(model) + 1024)
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
        c.builtinCode = c.deprecatedBuiltinCode = builtin
        c.version = version
        m.operatorCodes.append(c)
        code = len(m.operatorCodes) - 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, inputs, outputs
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def to_app_tflite(prepared, prep: dict, io: AppIO, sample: torch.Tensor, path, metadata=None):
    from se_edge.export.litert import export_tflite
    from se_edge.quantize.convert import convert

    module = AppInput(convert(prepared, "litert"), io, prep, normalise=False)
    edit = None
    if io.input == "uint8":
        scale, zero_point = pixel_quantization(prep)
        edit = lambda data: uint8_pixel_input(data, scale, zero_point)  # noqa: E731
    x = app_sample(sample, AppIO(io.layout, "float"))  # the converter sees the int8 graph's float input
    return export_tflite(module, x, path, quantized=True, metadata=metadata, edit=edit)


def to_app_pte(prepared, prep: dict, io: AppIO, sample: torch.Tensor, path):
    from se_edge.export.executorch import export_pte
    from se_edge.quantize.convert import convert

    return export_pte(AppInput(convert(prepared, "executorch"), io, prep, normalise=True), app_sample(sample, io), path)
