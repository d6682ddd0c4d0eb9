"""se-edge debug: per-layer SQNR that finds the layer whose int8 rounding parts from float."""
import json
import math
import shutil

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, se_edge
from se_edge import debug
from se_edge.artifacts import RunDir


def test_sqnr_has_the_known_values():
    x = np.ones(1000)
    assert debug.sqnr(x, x) == math.inf
    assert debug.sqnr(x, x + 0.1) == pytest.approx(20.0)  # |x|^2 / |0.1|^2 = 100 -> 20 dB
    assert debug.sqnr(x, x * 1.01) == pytest.approx(40.0)


class _Tiny(torch.nn.Module):
    """conv -> relu -> mean -> linear: each point's int8 value is known from its float value."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def _tiny_int8():
    """The tiny model, 16 random images, its PTQ-prepared graph calibrated on them, and its int8 reference."""
    from se_edge.quantize import calibrate, prepare_ptq
    from se_edge.quantize.integer import int8_reference
    from se_edge.quantize.qat import set_eval

    torch.manual_seed(0)
    model = _Tiny().eval()
    x = torch.rand(16, 1, 8, 8)
    prepared = prepare_ptq(model, x[:1])
    calibrate(prepared, x.numpy())
    set_eval(prepared)
    return model, x, prepared, int8_reference(prepared)


def test_points_are_named_by_module_and_match_float_and_int8_on_a_small_model(tmp_path):
    from se_edge.export.int8 import to_tflite

    model, x, prepared, reference = _tiny_int8()
    points = debug.reference_points(reference)
    assert [(p.layer, p.op, p.inputs) for p in points] == [
        ("input", "input", []), ("conv", "conv2d+relu", [0]), ("mean", "mean", [1]), ("fc", "linear", [2])]
    debug.match_observers(points, reference, prepared)
    debug.capture_float(prepared, points, x)
    debug.capture_reference(reference, points, x)
    # The float values are the float model's own activations...
    with torch.no_grad():
        relu = model.act(model.conv(x)).numpy()
        logits = model(x).numpy()
    np.testing.assert_allclose(points[1].values["float"], relu, atol=1e-5)
    np.testing.assert_allclose(points[-1].values["float"], logits, atol=1e-5)
    # ...and the int8 reference's are float values rounded to the point's grid: within half an LSB at the input,
    # where nothing has accumulated yet, and on the grid everywhere.
    p0 = points[0]
    assert np.abs(p0.values["reference_int8"] - p0.values["float"]).max() <= p0.scale / 2 + 1e-7
    for p in points:
        q = p.values["reference_int8"] / p.scale + p.zero_point
        np.testing.assert_allclose(q, np.round(q), atol=1e-3)
    # The .tflite's tensors are found by scale, zero point and shape, and equal the reference within one LSB.
    path = tmp_path / "tiny.tflite"
    to_tflite(prepared, x[:1], path)
    matched = debug.capture_tflite(str(path), points, x.numpy())
    assert len(matched) >= 3
    for p in points:
        if "tflite_int8" in p.values:
            assert np.abs(p.values["tflite_int8"] - p.values["reference_int8"]).max() <= p.scale * 1.001
    # ExecuTorch: one XNNPACK call per op, its outputs from ETDump; the input, conv+relu, mean and linear found,
    # each within one LSB of the reference.
    matched = debug.capture_executorch(reference, points, x[:4].numpy(), tmp_path)
    assert sorted(matched) == [0, 1, 2, 3], matched
    for i in matched:
        p = points[i]
        assert p.values["executorch_int8"].shape == p.values["reference_int8"][:4].shape
        assert np.abs(p.values["executorch_int8"] - p.values["reference_int8"][:4]).max() <= p.scale * 1.001


def test_own_arithmetic_puts_a_layer_s_own_error_on_that_layer_not_on_those_after_it():
    """A stand-in runtime that computes the tiny model as the reference does except that its conv adds 3 LSB:
    every point after the conv differs from the reference (it inherited the shift), but fed the runtime's own
    inputs, only the conv's arithmetic differs, by 3 LSB, and every later layer is exact."""
    import copy

    _, x, _, reference = _tiny_int8()
    points = debug.reference_points(reference)
    debug.capture_reference(reference, points, x)
    conv = points[1]
    shifted = copy.deepcopy(reference)
    with torch.no_grad():
        shifted.converted.get_parameter("conv.bias").add_(3 * conv.scale)
    runtime = copy.deepcopy(points)
    debug.capture_reference(shifted, runtime, x)
    for p, r in zip(points, runtime):
        p.values["tflite_int8"] = r.values["reference_int8"]
    assert debug.capture_own(reference, points, x, "tflite_int8") == len(points)
    rows = {r["layer"]: r for r in debug.summarise(points)}
    inherited = {layer: rows[layer]["max_lsb"]["tflite_int8_vs_reference_int8"] for layer in ("mean", "fc")}
    assert all(v >= 1 for v in inherited.values()), inherited  # the shift reached every later layer...
    own = {layer: rows[layer]["own_max_lsb"]["tflite_int8"] for layer in rows}
    assert own["input"] == 0 and own["mean"] == 0 and own["fc"] == 0, own  # ...whose own arithmetic is exact
    assert abs(own["conv"] - 3) < 1e-3, own  # and the conv's own error is its 3 LSB
    summary = debug.own_summary({"points": list(rows.values())})["tflite_int8"]
    assert summary["worst"]["layer"] == "conv" and summary["exact"] == 3 and summary["layers"] == 4, summary


def _plant_fault(run: RunDir, layer: str) -> int:
    """Make one layer's output range 20x too small after QAT (so its activations clip), then make qat.pt and
    the int8 .tflite and .pte again from it (the app files, made from the old qat.pt, are removed: stale);
    returns the planted point's index."""
    from se_edge.export.int8 import to_pte, to_tflite

    prepared, reference = run.load_prepared("qat"), run.int8_reference("qat")
    points = debug.reference_points(reference)
    debug.match_observers(points, reference, prepared)
    point = next(p for p in points if p.layer == layer and p.observer)
    node = next(n for n in prepared.graph.nodes if n.name == point.observer)
    fq = prepared.get_submodule(node.target)
    fq.activation_post_process.max_val.mul_(0.05)
    fq.activation_post_process.min_val.mul_(0.05)
    scale, zero_point = fq.calculate_qparams()
    fq.scale.copy_(scale)
    fq.zero_point.copy_(zero_point)
    torch.save(prepared.state_dict(), run.artifact_path("reference_int8"))
    run.made("reference_int8")
    for name in ("executorch_int8", "tflite_int8", "tflite_int8_app", "executorch_int8_app"):
        run.artifact_path(name).unlink(missing_ok=True)
    to_tflite(prepared, run.sample_input(), run.artifact_path("tflite_int8"))
    run.made("tflite_int8")
    to_pte(prepared, run.sample_input(), run.artifact_path("executorch_int8"))
    run.made("executorch_int8")
    return point.index


def test_debug_ranks_a_planted_fault_first_and_keep_float_on_it_brings_accuracy_back(demo_run, tmp_path):
    from se_edge.graph import graph_summary, tflite_graph

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    healthy = se_edge("debug", "--run", copy, "--images", "32", "--stress", "--sensitivity", "0")
    assert healthy.returncode == 0, healthy.stderr[-3000:]
    result = json.loads((copy / "debug.json").read_text())
    assert result["stress"] == 0 and "shifted with seed 0" in (copy / "debug.md").read_text()
    assert len(result["points"]) >= 20 and all(r["sqnr_db"].get("reference_int8_vs_float") is not None
                                               for r in result["points"])
    for source in ("tflite_int8", "executorch_int8"):
        found = [r for r in result["points"] if f"{source}_vs_reference_int8" in r["sqnr_db"]]
        assert len(found) >= len(result["points"]) // 2, f"most int8 activations are found in {source}"
    assert (copy / "debug.md").read_text().count("| stages.") >= 10 and (copy / "debug.png").stat().st_size > 0

    assert result["sensitivity"] == []
    # A healthy run's runtimes, fed their own inputs, compute each layer as the reference does to rounding.
    for source in ("tflite_int8", "executorch_int8"):
        own = [r["own_max_lsb"][source] for r in result["points"] if source in r.get("own_max_lsb", {})]
        assert len(own) >= len(result["points"]) // 2 and max(own) <= 1.0, (source, own)
    assert "own arithmetic" in (copy / "debug.md").read_text() and "within 1 LSB of the reference" in healthy.stdout

    planted = _plant_fault(RunDir(copy), "stages.1.0.0")
    proc = se_edge("debug", "--run", copy, "--images", "32", "--sensitivity", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((copy / "debug.json").read_text())
    for k in ("reference_int8_vs_float", "tflite_int8_vs_float", "executorch_int8_vs_float"):
        assert result["worst_first"][k][0] == planted, (k, result["worst_first"][k][:3])
    assert f"#{planted:<3} stages.1.0.0" in proc.stdout

    # Sensitivity: the planted layer alone in float wins the accuracy back, in the int8 reference.
    float_acc = json.loads((copy / "run.json").read_text())["float_training"]["test_accuracy"]
    first = result["sensitivity"][0]
    assert len(result["sensitivity"]) == 2 and first["layer"] == "stages.1.0.0", result["sensitivity"]
    assert first["int8_accuracy"] < float_acc - 0.2, "the planted fault costs accuracy"
    assert first["accuracy"] >= float_acc - 0.003 and first["gain"] > 0.2, first
    assert "| stages.1.0.0 |" in (copy / "debug.md").read_text()

    # --keep-float on it: both files run with the float layer in them and are back within 0.003 of float.
    proc = se_edge("export", "--run", copy, "--keep-float", "stages.1.0.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tflite_int8_mixed:" in proc.stdout and "ops outside the delegate:" in proc.stdout, proc.stdout
    record = json.loads((copy / "run.json").read_text())
    assert record["mixed"]["keep_float"] == ["stages.1.0.0"] and record["mixed"]["folded_batch_norms"]
    trade = record["mixed_tradeoff"]
    for name in ("reference_int8_mixed", "tflite_int8_mixed", "executorch_int8_mixed"):
        assert trade["accuracy"][name] >= float_acc - 0.003, (name, trade["accuracy"])
    for name in ("tflite_int8", "executorch_int8"):
        assert trade["accuracy"][name] < float_acc - 0.2, (name, trade["accuracy"])
        assert trade["latency_p50_ms"][name + "_mixed"] > 0 and name + "_mixed" in trade["non_delegated"]
    ops = tflite_graph(copy / "model_int8_mixed.tflite")
    assert ops["ops"].get("DEQUANTIZE", 0) >= 1 and ops["float_ops"] >= 1, ops  # the float CONV_2D and its DQ/Q
    assert tflite_graph(copy / "model_int8.tflite")["float_ops"] == 0
    assert graph_summary(copy / "model_int8_mixed.pte")["partitions"] >= 1
    parity = se_edge("parity", "--run", copy, "--json", tmp_path / "p.json")
    assert parity.returncode == 0, parity.stderr[-3000:]
    arts = json.loads((tmp_path / "p.json").read_text())["artifacts"]
    assert all(arts[n]["agreement_with_reference"] >= 0.99 and arts[n]["reference"] == "reference_int8_mixed"
               for n in ("tflite_int8_mixed", "executorch_int8_mixed")), arts


def test_keep_float_refuses_an_unknown_layer(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt", "*.tflite", "*.pte"))
    for bad, says in (("no.such.layer", "no layer named 'no.such.layer' in the model; valid: module names such as stem"),
                      ("stem.0,,x", "--keep-float takes module names separated by commas")):
        proc = se_edge("export", "--run", copy, "--keep-float", bad)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (copy / "mixed.pt").exists()


def test_debug_needs_a_quantised_run(tmp_path):
    assert_one_line_error(se_edge("debug", "--run", tmp_path / "none"), "run directory not found")


def test_export_for_an_ethos_u_target_says_what_it_needs(demo_run, tmp_path, monkeypatch):
    """The Arm backend lives in its own venv (Vela 5.1.0 against the benches' 5.2.0): without it, one line."""
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt", "*.tflite", "*.pte"))
    monkeypatch.setenv("SE_EDGE_ETHOSU_VENV", str(tmp_path / "no-venv"))
    assert_one_line_error(se_edge("export", "--run", copy, "--target", "ethos-u55-128"),
                          "needs ExecuTorch's Arm backend with ethos-u-vela 5.1.0", "make ethosu-venv")
    assert_one_line_error(se_edge("export", "--run", copy, "--target", "ethos-u99"),
                          "unknown --target 'ethos-u99'; valid: ethos-u55-32", "ethos-u85-2048")
    assert not (copy / "model_int8_ethosu.pte").exists()
