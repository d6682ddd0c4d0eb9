"""se-edge debug on a planted fault, end to end: the faulty layer is ranked first, sensitivity finds it, and
`export --keep-float` on it brings accuracy back. One long test (debug, an export, parity) in a file of its own,
and the healthy run's debug in another (test_debug_healthy.py), so that pytest-xdist's --dist loadfile can run
them beside each other and beside the rest of test_debug.py."""
import json
import shutil

import torch

from conftest import cli
from se_edge.evaluate import debug
from se_edge.run import Run


def _plant_fault(run: Run, layer: str) -> int:
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
    from se_edge.evaluate.structure import graph_summary, tflite_graph

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    planted = _plant_fault(Run(copy), "stages.1.0.0")
    proc = cli("debug", "--run", copy, "--images", "32", "--sensitivity", "2")
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
    proc = cli("export", "--run", copy, "--keep-float", "stages.1.0.0")
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
    parity = cli("parity", "--run", copy, "--json", tmp_path / "p.json")
    assert parity.returncode == 0, parity.stderr[-3000:]
    arts = json.loads((tmp_path / "p.json").read_text())["artifacts"]
    assert all(arts[n]["agreement_with_reference"] >= 0.99 and arts[n]["reference"] == "reference_int8_mixed"
               for n in ("tflite_int8_mixed", "executorch_int8_mixed")), arts
