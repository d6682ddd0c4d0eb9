"""The app files (export/app_io.py): NHWC RGB pixels in, probabilities out, the run's normalisation done
exactly in the graph, one XNNPACK partition, the same decisions as the float-input int8 files fed the same
pixels. (MediaPipe and the Task Library themselves run in `make app-test`: device_tests/test_app_clients.py.)"""
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import cli
from se_edge.data import Preprocessing
from se_edge.evaluate.structure import graph_summary, tflite_graph


def _ops(path) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    return [o["op_name"] for o in Interpreter(model_path=str(path))._get_ops_details()]


def test_a_run_exports_app_files_in_the_form_the_apps_take(demo_run):
    from se_edge.run import Run
    from se_edge.runner import PteModel, TFLiteModel

    out, report = demo_run
    record = json.loads((out / "run.json").read_text())
    prep, k = record["preprocessing"], record["num_classes"]
    assert record["app_io"]["input"] == "uint8" and record["app_io"]["output"] == "probabilities"

    # .tflite: uint8 (1, H, W, 3) -> DEQUANTIZE -> 1x1 CONV_2D (grey, normalised) -> QUANTIZE -> the int8 graph ->
    # DEQUANTIZE -> SOFTMAX -> float32 (1, classes); one XNNPACK partition, nothing outside, no TRANSPOSE.
    app = TFLiteModel(str(out / "model_int8_app.tflite"))
    assert app.input["dtype"] == np.uint8 and tuple(app.input["shape"]) == (1, prep["size"], prep["size"], 3)
    assert app.output["dtype"] == np.float32 and tuple(app.output["shape"]) == (1, k)
    ops = _ops(out / "model_int8_app.tflite")
    assert ops[:3] == ["DEQUANTIZE", "CONV_2D", "QUANTIZE"] and ops[-2:] == ["DEQUANTIZE", "SOFTMAX"], ops
    graph = tflite_graph(out / "model_int8_app.tflite")
    assert "TRANSPOSE" not in graph["ops"] and graph["non_delegated"] == {} and graph["partitions"] == 1, graph
    pte = PteModel(str(out / "model_int8_app.pte"))
    assert pte.takes_uint8 and pte.input_shape == (1, prep["size"], prep["size"], 3)
    summary = graph_summary(out / "model_int8_app.pte")
    assert summary["partitions"] == 1 and summary["non_delegated"] == {"dim_order_ops::_to_dim_order_copy": 1}, summary

    # Parity fed them pixels, against the float-input files fed the same pixels: the acceptance's figures.
    arts = report["artifacts"]
    for name, base in (("tflite_int8_app", "tflite_int8"), ("executorch_int8_app", "executorch_int8")):
        a = arts[name]
        assert a["reference"] == base and "uint8 RGB pixels" in a["fed"], a
        assert a["agreement_with_reference"] >= 0.999, (name, a["agreement_with_reference"])
        assert a["agreement_with_float"] >= arts[base]["agreement_with_float"] - 0.002, (name, a, arts[base])
        assert a["yardsticks"]["runtime"]["max_abs_diff"] < 1e-6, a["yardsticks"]  # the two runtimes alike
    assert "tflite_int8_app" in (out / "report.md").read_text() and "## In an app" in (out / "report.md").read_text()

    # Probabilities: in [0, 1], one per class, summing to 1, equal to the softmax of the float-input file's logits.
    from se_edge.data import read_eval_images
    from se_edge.evaluate.metrics import softmax
    from se_edge.evaluate.models import predict
    from se_edge.evaluate.parity import eval_pixels
    from se_edge.export.app_io import pixels_to_input

    run = Run(out)
    _, raw = read_eval_images(record["dataset"], run_spec=record["dataset"], seed=record["split"]["seed"],
                              test_fraction=record["split"]["test_fraction"])
    pixels = eval_pixels(raw, Preprocessing.from_dict(prep))[:64]
    probs = predict(app, pixels)
    assert probs.min() >= 0 and probs.max() <= 1 and np.abs(probs.sum(1) - 1).max() < 1e-5
    base = TFLiteModel(str(run.artifact_path("tflite_int8")))
    logits = np.concatenate([base(x[None]) for x in pixels_to_input(pixels, Preprocessing.from_dict(prep))])
    assert np.abs(probs - softmax(logits)).max() < 1e-6


def test_export_input_float_rewrites_only_the_app_pair_and_measures_it(demo_run, tmp_path):
    from se_edge.runner import TFLiteModel

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    before = {p.name: p.stat().st_mtime_ns for p in copy.glob("model_*") if "_app" not in p.name}
    proc = cli("export", "--run", copy, "--input", "float")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tflite_int8_app:" in proc.stdout and "same decision as tflite_int8 on 1.0000" in proc.stdout, proc.stdout
    assert before == {p.name: p.stat().st_mtime_ns for p in copy.glob("model_*") if "_app" not in p.name}
    record = json.loads((copy / "run.json").read_text())
    assert record["app_io"]["input"] == "float"
    app = TFLiteModel(str(copy / "model_int8_app.tflite"))
    assert app.input["dtype"] == np.float32 and app.input["shape"][-1] == 3
    assert tflite_graph(copy / "model_int8_app.tflite")["partitions"] == 1
    parity = cli("parity", "--run", copy, "--json", tmp_path / "p.json")
    assert parity.returncode == 0, parity.stderr[-3000:]
    arts = json.loads((tmp_path / "p.json").read_text())["artifacts"]
    assert arts["tflite_int8_app"]["agreement_with_reference"] >= 0.999
    assert arts["executorch_int8_app"]["agreement_with_reference"] >= 0.999
    bad = cli("export", "--run", copy, "--io", "nchw")
    assert bad.returncode == 2 and "invalid choice: 'nchw'" in bad.stderr


@pytest.mark.parametrize("in_chans", [1, 3])
def test_pixels_are_normalised_in_the_graph_as_the_run_normalises_images(in_chans):
    """The 1x1 conv's arithmetic on pixels is the run's preprocessing (resize's grey = mean of RGB, then
    (x - mean) / std) on the same pixels, to float32 rounding: no rounded zero point."""
    from se_edge.data import resize
    from se_edge.export.app_io import pixels_to_input, to_pixels

    prep = Preprocessing(size=8, mean=0.30506, std=0.4173, in_chans=in_chans)  # 255 * mean = 77.79
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    ours = pixels_to_input(pixels, prep)
    x01 = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255
    theirs = (resize(x01, 8, in_chans) - prep.mean) / prep.std
    assert ours.shape == (5, in_chans, 8, 8) and np.abs(ours - theirs).max() < 2e-6
    grey = rng.random((2, 1, 8, 8)).astype(np.float32)
    p = to_pixels(grey)
    assert p.shape == (2, 8, 8, 3) and (p[..., 0] == p[..., 1]).all() and (p[..., 0] == p[..., 2]).all()
    assert np.array_equal(p[..., 0], np.round(grey[:, 0] * 255).astype(np.uint8))


def test_an_rgb_model_app_file_decides_as_its_float_input_file_and_has_no_transpose(tmp_path):
    from se_edge.evaluate.metrics import softmax
    from se_edge.export.app_io import AppIO, pixels_to_input, to_app_tflite
    from se_edge.export.int8 import quantize_for_structure, to_tflite
    from se_edge.models import create_model
    from se_edge.runner import TFLiteModel

    torch.manual_seed(0)
    model = create_model("se_cnn", num_classes=4, in_chans=3).eval()
    prepared = quantize_for_structure(model, (1, 3, 16, 16))
    sample = torch.randn(1, 3, 16, 16)
    prep = Preprocessing(size=16, mean=0.45, std=0.25, in_chans=3)
    to_tflite(prepared, sample, tmp_path / "nchw.tflite")
    to_app_tflite(prepared, prep, AppIO(), sample, tmp_path / "app.tflite")
    ops = _ops(tmp_path / "app.tflite")
    assert "TRANSPOSE" in _ops(tmp_path / "nchw.tflite")  # what an NCHW file makes an app pay
    assert "TRANSPOSE" not in ops and ops[:3] == ["DEQUANTIZE", "CONV_2D", "QUANTIZE"], ops
    pixels = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    app, base = TFLiteModel(str(tmp_path / "app.tflite")), TFLiteModel(str(tmp_path / "nchw.tflite"))
    probs = np.concatenate([app(p[None]) for p in pixels])
    logits = np.concatenate([base(x[None]) for x in pixels_to_input(pixels, prep)])
    assert np.abs(probs - softmax(logits)).max() < 1e-6 and (probs.argmax(1) == logits.argmax(1)).all()


def test_a_model_that_is_neither_grey_nor_rgb_has_no_app_form():
    from se_edge.errors import SeEdgeError
    from se_edge.export.app_io import pixel_weights

    with pytest.raises(SeEdgeError, match="1 or 3 channels"):
        pixel_weights(Preprocessing(size=8, mean=0.5, std=0.2, in_chans=4))


def test_app_files_are_held_against_logits_as_probabilities():
    """An app file outputs probabilities: the logits it is compared with (float, its float-input twin) are turned
    into probabilities first, so max_abs_diff is a difference of probabilities, never of logits and probabilities."""
    from se_edge.evaluate.metrics import softmax
    from se_edge.evaluate.parity import compare

    y = np.array([0, 1, 2])
    fl = np.array([[4.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 2.0, 2.5]], np.float32)
    tfl = fl + np.float32(0.25)
    app = softmax(tfl)
    app[2] = softmax(np.array([[0.0, 2.6, 2.5]], np.float32))  # one decision apart from its twin
    m = compare({"float": fl, "tflite_int8": tfl, "tflite_int8_app": app, "executorch_int8_app": app}, y)
    a = m["tflite_int8_app"]
    assert a["reference"] == "tflite_int8" and a["agreement_with_reference"] == pytest.approx(2 / 3)
    assert 0 < a["max_abs_diff"] < 1 and a["yardsticks"]["float"]["max_abs_diff"] < 1, a
    assert a["yardsticks"]["float"]["max_abs_diff"] == pytest.approx(np.abs(app - softmax(fl)).max())
    assert a["yardsticks"]["runtime"] == {**a["yardsticks"]["runtime"], "against": "executorch_int8_app", "apart": 0}
