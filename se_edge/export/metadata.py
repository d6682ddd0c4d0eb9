"""TFLite model metadata (the `TFLITE_METADATA` format of tflite-support's metadata_schema.fbs) for image
classifiers: the model's name, version, input normalisation and labels, which Android's Support library
(`MetadataExtractor`) and Android Studio's model binding read from every .tflite se_edge writes. MediaPipe
Tasks' and the Task Library's `ImageClassifier` also check the tensors' form, which only the app file has
(export/app_io.py; `make app-test` runs both clients on it).

The metadata is a `ModelMetadata` flatbuffer (file identifier "M001") in one of the model's buffers,
named by a `Metadata` entry "TFLITE_METADATA"; the label file it names is packed into the model as a
zip archive appended to the flatbuffer (where tflite-support's MetadataPopulator puts associated files).
The runtimes ignore both. Only the fields an image classifier needs are written:

    ModelMetadata      name, description, version, subgraph_metadata, author, min_parser_version
    input tensor       name, description, content = ImageProperties(color space), process_units =
                       [NormalizationOptions(mean, std)] over pixel values 0..255, stats (min, max)
    output tensor      name, description, content = FeatureProperties, stats, associated_files =
                       [labels.txt, TENSOR_AXIS_LABELS]

For the app file these are what tflite-support's `image_classifier.MetadataWriter.create_for_inference`
writes for that input: RGB, the normalisation the file expects of its input (none: mean 0, std 1, since it
takes pixels 0..255 and normalises inside), stats [0]/[255] for a uint8 input, (0 - mean) / std and
(255 - mean) / std per channel for a float one, and [0]/[1] for a float32 probability output.

No tflite-support (it needs TensorFlow): the flatbuffer is built here with `flatbuffers`, field by field
from the schema (slot numbers below), and the model re-packed with LiteRT's own schema module.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

METADATA_NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
PARSER_VERSION = "1.0.0"  # every field written here exists in schema 1.0.0

# metadata_schema.fbs: enum values and each table's field slots (declaration order; a union takes two)
_GRAYSCALE, _RGB = 2, 1
_IMAGE_PROPERTIES, _FEATURE_PROPERTIES = 2, 1  # ContentProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType


@dataclass(frozen=True)
class ClassifierInfo:
    name: str
    version: str
    description: str
    mean: list[float]  # per channel, over pixel values 0..255
    std: list[float]
    channels: int
    labels: list[str]
    author: str = "se_edge"
    input_type: str = "float"  # the input tensor's type: float | uint8
    output: str = "logits"  # logits | probabilities


def classifier_info(model: str, prep, labels: list[str], version: str, description: str,
                    app_input: str | None = None) -> ClassifierInfo:
    """A run's model as the metadata describes it: its preprocessing (data.Preprocessing: images in 0..1, then
    (x - mean) / std) rescaled to pixels 0..255, and its class labels. `app_input` ("uint8" or "float"): the app
    file's form instead, RGB pixels 0..255 in, probabilities out."""
    if app_input is not None:
        return ClassifierInfo(name=model, version=version, description=description, mean=[0.0] * 3,
                              std=[1.0] * 3, channels=3, labels=list(labels), input_type=app_input,
                              output="probabilities")
    channels = prep.in_chans
    return ClassifierInfo(name=model, version=version, description=description,
                          mean=[255.0 * prep.mean] * channels, std=[255.0 * prep.std] * channels,
                          channels=channels, labels=list(labels))


def _table(b, fields: list[tuple]) -> int:
    """A table from (slot, kind, value) fields; kind: "offset", "int8", "uint8" or "uint32"."""
    b.StartObject(max(slot for slot, _, _ in fields) + 1)
    for slot, kind, value in fields:
        if kind == "offset":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "int8":
            b.PrependInt8Slot(slot, value, 0)
        elif kind == "uint8":
            b.PrependUint8Slot(slot, value, 0)
        else:
            b.PrependUint32Slot(slot, value, 0)
    return b.EndObject()


def _offsets(b, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def _floats(b, values: list[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def metadata_buffer(info: ClassifierInfo) -> bytes:
    """The ModelMetadata flatbuffer for `info`."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    s = b.CreateString
    # input: normalisation, image content, value range after normalisation
    norm = _table(b, [(0, "offset", _floats(b, info.mean)), (1, "offset", _floats(b, info.std))])
    unit = _table(b, [(0, "uint8", _NORMALIZATION_OPTIONS), (1, "offset", norm)])
    image = _table(b, [(0, "int8", _GRAYSCALE if info.channels == 1 else _RGB)])
    in_content = _table(b, [(0, "uint8", _IMAGE_PROPERTIES), (1, "offset", image)])
    if info.input_type == "uint8":
        low, high = [0.0], [255.0]
    else:
        low = [(0.0 - m) / d for m, d in zip(info.mean, info.std)]
        high = [(255.0 - m) / d for m, d in zip(info.mean, info.std)]
    stats = _table(b, [(0, "offset", _floats(b, high)), (1, "offset", _floats(b, low))])
    in_name = s("image")
    in_desc = s(f"RGB image, pixels 0..255 ({info.input_type}); normalised inside the model"
                if info.output == "probabilities" else
                f"{info.channels}-channel image; pixels 0..255 normalised as (x - mean) / std")
    units = _offsets(b, [unit])
    tensor_in = _table(b, [(0, "offset", in_name), (1, "offset", in_desc), (3, "offset", in_content),
                           (4, "offset", units), (5, "offset", stats)])
    # output: logits per class, labelled by labels.txt
    labels = _table(b, [(0, "offset", s(LABELS_FILE)), (1, "offset", s("class names, one per line, by output index")),
                        (2, "int8", _TENSOR_AXIS_LABELS)])
    b.StartObject(0)  # FeatureProperties has no fields
    feature = b.EndObject()
    out_content = _table(b, [(0, "uint8", _FEATURE_PROPERTIES), (1, "offset", feature)])
    files = _offsets(b, [labels])
    if info.output == "probabilities":
        out_name, out_desc = s("probability"), s(f"probabilities of the {len(info.labels)} classes")
        out_stats = _table(b, [(0, "offset", _floats(b, [1.0])), (1, "offset", _floats(b, [0.0]))])
        out_fields = [(5, "offset", out_stats)]
    else:
        out_name, out_desc = s("logits"), s(f"unnormalised scores of the {len(info.labels)} classes (softmax for probabilities)")
        out_fields = []
    tensor_out = _table(b, [(0, "offset", out_name), (1, "offset", out_desc), (3, "offset", out_content),
                            *out_fields, (6, "offset", files)])
    inputs, outputs = _offsets(b, [tensor_in]), _offsets(b, [tensor_out])
    subgraph = _table(b, [(0, "offset", s(info.name)), (2, "offset", inputs), (3, "offset", outputs)])
    subgraphs = _offsets(b, [subgraph])
    name, desc, version = s(info.name), s(info.description), s(info.version)
    author, parser = s(info.author), s(PARSER_VERSION)
    root = _table(b, [(0, "offset", name), (1, "offset", desc), (2, "offset", version), (3, "offset", subgraphs),
                      (4, "offset", author), (7, "offset", parser)])
    b.Finish(root, file_identifier=IDENTIFIER)
    return bytes(b.Output())


def with_metadata(model: bytes, info: ClassifierInfo) -> bytes:
    """`model` (.tflite bytes) with `info` as TFLITE_METADATA and labels.txt packed in (any earlier
    TFLITE_METADATA entry replaced)."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for b in m.buffers or []:  # data stored after the flatbuffer (ai-edge-quantizer writes it so) is packed inline:
        if b.offset and b.offset > 1:  # re-packing the table alone would leave the offsets pointing past its end
            if b.offset + b.size > len(model):
                raise ValueError(f"buffer at offset {b.offset} of {b.size} bytes lies past the model's end")
            b.data, b.offset, b.size = np.frombuffer(model, np.uint8, b.size, b.offset), 0, 0
    buffer = schema.BufferT()
    buffer.data = list(metadata_buffer(info))
    m.buffers = list(m.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(m.buffers) - 1
    m.metadata = [e for e in (m.metadata or []) if _name(e.name) != METADATA_NAME] + [entry]
    import flatbuffers

    b = flatbuffers.Builder(len(model) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    text = labels_text(info.labels, _num_outputs(m) or len(info.labels))
    out = io.BytesIO(bytes(b.Output()))
    with zipfile.ZipFile(out, "a") as z:  # appended after the flatbuffer, as MetadataPopulator packs files
        z.writestr(LABELS_FILE, text)
    return out.getvalue()


def labels_text(labels: list[str], num_classes: int) -> str:
    """labels.txt: one class name per line, by output index. A reader takes line i as the name of output i, so
    the file must hold exactly `num_classes` lines: a name with a line break in it (or an empty one, which
    readers skip) would shift every later label. SeEdgeError otherwise, naming the first name at fault."""
    from se_edge.errors import SeEdgeError

    text = "\n".join(labels) + "\n"
    lines = text.splitlines()  # every line break a reader may split on: \r, \x0b, \x85, \u2028, ...
    if len(labels) == num_classes and len(lines) == num_classes and all(line.strip() for line in lines):
        return text
    fault = next(((i, name) for i, name in enumerate(labels) if name.splitlines() != [name] or not name.strip()), None)
    why = (f"class {fault[0]} is {fault[1]!r}, which is not one line of text; each class name must be one non-empty "
           f"line" if fault is not None else f"{len(labels)} class names were given; give one per class")
    raise SeEdgeError(f"{LABELS_FILE} would hold {len(lines)} lines for the model's {num_classes} classes: {why}")


def _num_outputs(m) -> int | None:
    """The last dimension of the model's first output tensor (its number of classes), where it says."""
    try:
        subgraph = m.subgraphs[0]
        shape = subgraph.tensors[subgraph.outputs[0]].shape
        return int(shape[-1]) if shape is not None and len(shape) and int(shape[-1]) > 0 else None
    except (AttributeError, IndexError, TypeError):
        return None


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
