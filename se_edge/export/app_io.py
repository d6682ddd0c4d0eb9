"""The int8 files as a camera app feeds them: NHWC input, and raw uint8 pixels (0..255) in place of the
run's normalised floats.

    --io nhwc       the graph takes (1, H, W, C) and permutes to PyTorch's NCHW first; LiteRT's converter
                    then cancels that permute against its own NCHW->NHWC layout, so the .tflite has no
                    TRANSPOSE at its input (today's files have one, or a RESHAPE for one channel), and
                    XNNPACK in ExecuTorch takes the permute into its partition.
    --input uint8   the file takes pixels p in 0..255. The run normalises x = (p / 255 - mean) / std, which
                    is p read as a uint8 tensor with scale 1 / (255 std) and zero point 255 mean. So
                    the .tflite's input becomes that uint8 tensor and one QUANTIZE requantises it to the
                    int8 the first layer reads (a shift by 128 where the observed input range was the
                    pixels' own); no float op. LiteRT's converter refuses a uint8 graph input, so the
                    QUANTIZE is added to the converted flatbuffer here. The zero point is rounded to a
                    whole number: by at most half a pixel step. The .pte casts uint8 to float and
                    normalises in the graph, since XNNPACK has no uint8 input; the cast runs outside
                    the delegate (listed by `se-edge export`).
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
    """A .tflite whose int8 input is fed by a new uint8 input (`scale`, `zero_point`) through one QUANTIZE."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from se_edge.errors import SeEdgeError

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    old = sg.inputs[0]
    t = sg.tensors[old]
    if t.type != schema.TensorType.INT8:
        raise SeEdgeError("--input uint8 needs a file whose input is int8 (a QAT or PTQ export)")
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(scale)], [int(zero_point)]
    pixels = schema.TensorT()
    pixels.shape, pixels.shapeSignature = list(t.shape), (list(t.shapeSignature) if t.shapeSignature is not None else None)
    pixels.type, pixels.name, pixels.quantization = schema.TensorType.UINT8, b"pixels", q
    empty = schema.BufferT()
    m.buffers.append(empty)
    pixels.buffer = len(m.buffers) - 1
    sg.tensors.append(pixels)
    index = len(sg.tensors) - 1
    codes = [i for i, c in enumerate(m.operatorCodes) if max(c.builtinCode, c.deprecatedBuiltinCode) ==
             schema.BuiltinOperator.QUANTIZE]
    if codes:
        code = codes[0]
        m.operatorCodes[code].version = max(m.operatorCodes[code].version, 2)
    else:
        c = schema.OperatorCodeT()
        c.builtinCode = c.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
        c.version = 2  # uint8 -> int8 requantisation
        m.operatorCodes.append(c)
        code = len(m.operatorCodes) - 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, [index], [old]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.QuantizeOptions, schema.QuantizeOptionsT()
    sg.operators.insert(0, op)
    sg.inputs = [index if i == old else i for i in sg.inputs]
    for sig in m.signatureDefs or []:
        for entry in sig.inputs or []:
            if entry.tensorIndex == old:
                entry.tensorIndex = index
    b = flatbuffers.Builder(len(model) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


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
