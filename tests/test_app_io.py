"""The app-facing int8 files (export --io nhwc --input uint8): camera-frame layout, raw pixels, the same
decisions as the float-input files."""
import json
import shutil

import numpy as np
import torch

from conftest import se_edge
from se_edge.graph import graph_summary, tflite_graph


def _input_ops(path) -> list[str]:
    """The ops of a .tflite up to its first convolution, in execution order."""
    from ai_edge_litert.interpreter import Interpreter

    ops = [o["op_name"] for o in Interpreter(model_path=str(path))._get_ops_details()]
    first = next(i for i, op in enumerate(ops) if "CONV" in op)
    return ops[:first]


def test_app_files_take_nhwc_uint8_pixels_and_decide_as_the_float_input_files(demo_run, tmp_path):
    from se_edge.artifacts import RunDir
    from se_edge.runner import PteModel, TFLiteModel

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    proc = se_edge("export", "--run", copy, "--io", "nhwc", "--input", "uint8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tflite_int8_app:" in proc.stdout and "same decision as tflite_int8 on" in proc.stdout, proc.stdout
    record = json.loads((copy / "run.json").read_text())
    prep = record["preprocessing"]
    assert record["app_io"]["layout"] == "nhwc" and record["app_io"]["input"] == "uint8"
    for name in ("tflite_int8_app", "executorch_int8_app"):
        assert record["app_tradeoff"]["agreement_with_twin"][name] >= 0.999, record["app_tradeoff"]

    # The .tflite: (1, H, W, C) uint8 whose quantisation is the run's normalisation, DEQUANTIZE -> QUANTIZE into
    # the int8 graph, both inside XNNPACK's one partition, no TRANSPOSE.
    app = TFLiteModel(str(copy / "model_int8_app.tflite"))
    assert app.input["dtype"] == np.uint8 and tuple(app.input["shape"]) == (1, prep["size"], prep["size"], 1)
    scale, zero = app.input["quantization"]
    assert abs(scale - 1 / (255 * prep["std"])) < 1e-6 * scale and zero == round(255 * prep["mean"])
    assert _input_ops(copy / "model_int8_app.tflite") == ["DEQUANTIZE", "QUANTIZE"]
    graph = tflite_graph(copy / "model_int8_app.tflite")
    assert "TRANSPOSE" not in graph["ops"] and graph["ops"]["QUANTIZE"] == 1 and graph["float_ops"] == 0, graph
    assert graph["non_delegated"] == {} and graph["partitions"] == 1, graph

    # Raw pixels in, the float-input int8 file's decisions out.
    run = RunDir(copy)
    test = run.splits().test
    pixels = np.clip(np.round((test.x * prep["std"] + prep["mean"]) * 255), 0, 255).astype(np.uint8)
    pixels = np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))
    base = TFLiteModel(str(copy / "model_int8.tflite"))
    pte = PteModel(str(copy / "model_int8_app.pte"))
    assert pte.takes_uint8 and pte.input_shape == (1, prep["size"], prep["size"], 1)
    base_top1 = np.array([base(test.x[i:i + 1]).argmax() for i in range(len(test.y))])
    for model in (app, pte):
        top1 = np.array([model(pixels[i:i + 1]).argmax() for i in range(len(test.y))])
        assert (top1 == base_top1).mean() >= 0.999, (type(model).__name__, (top1 != base_top1).sum())
    assert graph_summary(copy / "model_int8_app.pte")["partitions"] == 1
    from se_edge.runner import measure_memory, probe

    probe(str(copy / "model_int8_app.pte"))  # the child's load-and-run-once check feeds it uint8 zeros
    assert measure_memory(str(copy / "model_int8_app.pte"))["peak_rss_mb"] > 0

    parity = se_edge("parity", "--run", copy, "--json", tmp_path / "p.json")
    assert parity.returncode == 0, parity.stderr[-3000:]
    arts = json.loads((tmp_path / "p.json").read_text())["artifacts"]
    assert arts["tflite_int8_app"]["agreement_with_reference"] >= 0.99
    assert arts["executorch_int8_app"]["agreement_with_reference"] >= 0.99


def test_an_rgb_model_in_nhwc_has_no_transpose_at_its_input(tmp_path):
    from se_edge.export.app_io import AppIO, to_app_tflite
    from se_edge.export.int8 import quantize_for_structure, to_tflite
    from se_edge.models import create_model

    torch.manual_seed(0)
    model = create_model("se_cnn", num_classes=4, in_chans=3).eval()
    prepared = quantize_for_structure(model, (1, 3, 16, 16))
    sample = torch.randn(1, 3, 16, 16)
    prep = {"mean": 0.45, "std": 0.25, "in_chans": 3, "size": 16}
    to_tflite(prepared, sample, tmp_path / "nchw.tflite")
    to_app_tflite(prepared, prep, AppIO("nhwc", "float"), sample, tmp_path / "nhwc.tflite")
    to_app_tflite(prepared, prep, AppIO("nhwc", "uint8"), sample, tmp_path / "u8.tflite")
    assert "TRANSPOSE" in _input_ops(tmp_path / "nchw.tflite")  # what an app pays today
    assert _input_ops(tmp_path / "nhwc.tflite") == []
    assert _input_ops(tmp_path / "u8.tflite") == ["DEQUANTIZE", "QUANTIZE"]
    assert "TRANSPOSE" not in tflite_graph(tmp_path / "u8.tflite")["ops"]
