"""TFLite metadata round trip: what `se-edge export` writes, read back by a reader written here from
metadata_schema.fbs (flatbuffers' generic Table, no code shared with se_edge/export/metadata.py) and the
label file by Python's zipfile."""
import json
import zipfile

import flatbuffers
import numpy as np
from flatbuffers.table import Table

from se_edge.run import ARTIFACTS


class Reader:
    """A flatbuffer table: field `slot` is at vtable entry 4 + 2 * slot (the schema's declaration order)."""

    def __init__(self, buf: bytes, pos: int):
        self.t = Table(bytearray(buf), pos)

    @classmethod
    def root(cls, buf: bytes) -> "Reader":
        return cls(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))

    def _field(self, slot: int) -> int:
        return self.t.Offset(4 + 2 * slot)

    def string(self, slot: int):
        o = self._field(slot)
        return self.t.String(o + self.t.Pos).decode() if o else None

    def byte(self, slot: int) -> int:
        o = self._field(slot)
        return self.t.Get(flatbuffers.number_types.Int8Flags, o + self.t.Pos) if o else 0

    def table(self, slot: int):
        o = self._field(slot)
        return Reader(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, slot: int) -> list:
        o = self._field(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [Reader(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(self.t.VectorLen(o))]

    def floats(self, slot: int) -> list[float]:
        o = self._field(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [self.t.Get(flatbuffers.number_types.Float32Flags, start + 4 * i) for i in range(self.t.VectorLen(o))]


def read_metadata(path) -> bytes:
    """The TFLITE_METADATA buffer of a .tflite, through LiteRT's schema module (the TFLite container)."""
    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(open(path, "rb").read())
    model = schema.Model.GetRootAs(buf, 0)
    entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    assert "TFLITE_METADATA" in entries, entries
    return bytes(model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy())


def test_every_tflite_of_a_run_carries_metadata_that_reads_back(demo_run):
    out, _ = demo_run
    run = json.loads((out / "run.json").read_text())
    prep = run["preprocessing"]
    files = [a for a in ARTIFACTS.values() if a.runtime == "litert" and (out / a.filename).is_file()
             and a.fed != "pixels"]
    assert len(files) == 4, files  # fp32, fp16, int8, int8 PTQ (the app file: the next test)
    for a in files:
        path = out / a.filename
        buf = read_metadata(path)
        assert buf[4:8] == b"M001"
        meta = Reader.root(buf)
        assert meta.string(0) == run["model"]  # name
        assert a.name in meta.string(1) and "digits" in meta.string(1)  # description
        parent = ARTIFACTS[a.parent or a.reference].filename
        assert meta.string(2).startswith("0.1.0+") and len(meta.string(2)) == len("0.1.0+") + 12, meta.string(2)
        assert parent in meta.string(1)
        assert meta.string(4) == "se_edge" and meta.string(7) == "1.0.0"  # author, min_parser_version
        (subgraph,) = meta.tables(3)
        (image,), (logits,) = subgraph.tables(2), subgraph.tables(3)
        assert image.string(0) == "image" and logits.string(0) == "logits"
        content = image.table(3)
        assert content.byte(0) == 2 and content.table(1).byte(0) == 2  # ImageProperties, GRAYSCALE
        (unit,) = image.tables(4)
        assert unit.byte(0) == 1  # NormalizationOptions
        norm = unit.table(1)
        np.testing.assert_allclose(norm.floats(0), [255 * prep["mean"]], rtol=1e-6)
        np.testing.assert_allclose(norm.floats(1), [255 * prep["std"]], rtol=1e-6)
        stats = image.table(5)  # max, min of the normalised input
        np.testing.assert_allclose(stats.floats(0), [(1 - prep["mean"]) / prep["std"]], rtol=1e-5)
        np.testing.assert_allclose(stats.floats(1), [-prep["mean"] / prep["std"]], rtol=1e-5)
        assert logits.table(3).byte(0) == 1  # FeatureProperties
        (labels,) = logits.tables(6)
        assert labels.string(0) == "labels.txt" and labels.byte(2) == 2  # TENSOR_AXIS_LABELS
        with zipfile.ZipFile(path) as z:
            names = z.read("labels.txt").decode().splitlines()
        assert names == [str(i) for i in range(run["num_classes"])]


def test_metadata_carries_the_class_names_a_source_gives(tmp_path):
    from se_edge.data import Preprocessing
    from se_edge.export.metadata import classifier_info, metadata_buffer

    info = classifier_info("se_cnn", Preprocessing(size=32, mean=0.5, std=0.25, in_chans=3), ["cat", "dog", "owl"],
                           "2.0", "three animals")
    assert info.labels == ["cat", "dog", "owl"] and info.mean == [127.5] * 3 and info.std == [63.75] * 3
    meta = Reader.root(metadata_buffer(info))
    assert (meta.string(0), meta.string(1), meta.string(2)) == ("se_cnn", "three animals", "2.0")
    image = meta.tables(3)[0].tables(2)[0]
    assert image.table(3).table(1).byte(0) == 1  # RGB
    assert image.tables(4)[0].table(1).floats(0) == [127.5] * 3


def test_the_app_file_carries_what_tflite_supports_writer_writes_for_its_input(demo_run):
    """The app file: RGB, no normalisation left to the client (mean 0, std 1: it takes pixels and normalises
    inside), stats [0]/[255] for its uint8 input and [0]/[1] for its probabilities, as tflite-support's
    image_classifier.MetadataWriter.create_for_inference writes them for such a model (device_tests/
    test_app_clients.py checks the clients read it)."""
    out, _ = demo_run
    run = json.loads((out / "run.json").read_text())
    meta = Reader.root(read_metadata(out / "model_int8_app.tflite"))
    assert "tflite_int8_app" in meta.string(1) and "qat.pt" in meta.string(1)
    (subgraph,) = meta.tables(3)
    (image,), (probability,) = subgraph.tables(2), subgraph.tables(3)
    assert image.string(0) == "image" and probability.string(0) == "probability"
    assert image.table(3).byte(0) == 2 and image.table(3).table(1).byte(0) == 1  # ImageProperties, RGB
    norm = image.tables(4)[0].table(1)
    assert norm.floats(0) == [0.0] * 3 and norm.floats(1) == [1.0] * 3
    assert image.table(5).floats(0) == [255.0] and image.table(5).floats(1) == [0.0]  # max, min: uint8 pixels
    assert probability.table(3).byte(0) == 1  # FeatureProperties
    assert probability.table(5).floats(0) == [1.0] and probability.table(5).floats(1) == [0.0]
    (labels,) = probability.tables(6)
    assert labels.string(0) == "labels.txt" and labels.byte(2) == 2
    with zipfile.ZipFile(out / "model_int8_app.tflite") as z:
        assert z.read("labels.txt").decode().splitlines() == [str(i) for i in range(run["num_classes"])]
