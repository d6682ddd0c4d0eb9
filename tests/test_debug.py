"""se-edge debug: per-layer SQNR that finds the layer whose int8 rounding parts from float."""
import json
import math
import shutil
import sys

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, cli, se_edge
from se_edge.errors import SeEdgeError
from se_edge.evaluate import debug
from se_edge.run import Run


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


def test_keep_float_refuses_an_unknown_layer(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt", "*.tflite", "*.pte"))
    for bad, says in (("no.such.layer", "no layer named 'no.such.layer' in the model; valid: module names such as stem"),
                      ("stem.0,,x", "--keep-float takes module names separated by commas")):
        proc = cli("export", "--run", copy, "--keep-float", bad)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (copy / "mixed.pt").exists()


def test_debug_needs_a_quantised_run(tmp_path):
    assert_one_line_error(cli("debug", "--run", tmp_path / "none"), "run directory not found")


def test_export_for_an_ethos_u_target_says_what_it_needs(demo_run, tmp_path, monkeypatch):
    """The Arm backend lives in its own venv (Vela 5.1.0 against the benches' 5.2.0): without it, one line."""
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt", "*.tflite", "*.pte"))
    monkeypatch.setenv("SE_EDGE_ETHOSU_VENV", str(tmp_path / "no-venv"))
    assert_one_line_error(cli("export", "--run", copy, "--target", "ethos-u55-128"),
                          "needs ExecuTorch's Arm backend with ethos-u-vela 5.1.0", "make ethosu-venv")
    assert_one_line_error(cli("export", "--run", copy, "--target", "ethos-u99"),
                          "unknown --target 'ethos-u99'; valid: ethos-u55-32", "ethos-u85-2048")
    assert not (copy / "model_int8_ethosu.pte").exists()


_STAND_IN_CHILD = '''
import json, shutil, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
assert sys.argv[1:3] == ["-m", "se_edge.cli.ethosu_child"], sys.argv
run = Path(args["--run"])
out = run / "model_int8_ethosu.pte"
shutil.copyfile(run / "model_int8.pte", out)
print("Vela: cycles 1234 (a line Vela prints)")
print(json.dumps({"target": args["--target"], "file": str(out), "size_bytes": out.stat().st_size,
                  "calibration_images": 256, "relu6_as_hardtanh": 3, "partitions": 1, "ops_on_npu": 40,
                  "npu_ops": {"aten.convolution.default": 12, "aten.hardtanh.default": 3}, "ops_on_cpu": 2,
                  "cpu_ops": {"quantized_decomposed.quantize_per_tensor.default": 1}, "seconds": 0.1}))
'''


def test_the_ethos_u_file_is_an_artifact_of_the_run_in_its_lineage_and_report(demo_run, tmp_path, monkeypatch):
    """`export --target` with a stand-in for .venv-ethosu's Python (this machine has no Arm backend; make ethosu-test
    runs the real one): the file joins the lineage, and the report's artifact table gains its row, with the
    partitions and CPU ops read from the file itself and the NPU ops the export recorded. No accuracy or latency is
    claimed for it: this host cannot run an Ethos-U program."""
    from se_edge.evaluate.structure import graph_summary
    from se_edge.run import Run

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    venv = tmp_path / "venv-ethosu"
    (venv / "bin").mkdir(parents=True)
    (venv / "child.py").write_text(_STAND_IN_CHILD)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{venv / "child.py"}" "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("SE_EDGE_ETHOSU_VENV", str(venv))
    before = json.loads((copy / "report.json").read_text())

    proc = cli("export", "--run", copy, "--target", "ethos-u55-128")
    assert proc.returncode == 0, proc.stderr
    assert "40 ops in 1 NPU partition(s), 2 on the CPU" in proc.stdout, proc.stdout
    run = Run(copy)
    assert run.require("ethosu_int8") == copy / "model_int8_ethosu.pte"  # in the lineage, made from float.pt
    assert json.loads((copy / "run.json").read_text())["lineage"]["model_int8_ethosu.pte"]["parent"] == "float.pt"
    assert "ethosu_int8" in run.present(None) and "ethosu_int8" not in run.present()
    assert json.loads((copy / "ethosu.json").read_text())["vela_summary"] == ["Vela: cycles 1234 (a line Vela prints)"]

    report = json.loads((copy / "report.json").read_text())
    row = report["artifacts"]["ethosu_int8"]
    from_file = graph_summary(copy / "model_int8.pte")
    assert row["target"] == "ethos-u" and row["accuracy"] is None and row["latency_ms"] is None, row
    assert row["graph"]["partitions"] == from_file["partitions"] >= 1
    assert row["graph"]["non_delegated"] == from_file["non_delegated"]
    assert row["graph"]["npu_ops"] == {"aten.convolution.default": 12, "aten.hardtanh.default": 3}
    assert {k: v for k, v in report["artifacts"].items() if k != "ethosu_int8"} == before["artifacts"]
    md = (copy / "report.md").read_text()
    assert "| ethosu_int8 | executorch | int8 | — | — vs float |" in md
    assert f"ethos-u55-128: {from_file['partitions']} NPU partition(s) with 40 ops" in md
    assert "**ethosu_int8 ops on the NPU:** aten.convolution.default 12, aten.hardtanh.default 3" in md

    # A changed file is refused by the lineage; a new qat.pt leaves the file (made from float.pt), a new float.pt not.
    assert run.clear_downstream("quantize") and (copy / "model_int8_ethosu.pte").is_file()
    run.require("ethosu_int8")
    with open(copy / "model_int8_ethosu.pte", "ab") as f:
        f.write(b"\0")
    with pytest.raises(SeEdgeError, match="has changed since se_edge made it"):
        run.require("ethosu_int8")
    assert "model_int8_ethosu.pte" in run.clear_downstream("float")
