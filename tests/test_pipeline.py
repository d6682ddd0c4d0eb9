"""End to end on digits: every exported file, run in its own runtime, agrees with its reference."""
import json
import shutil

import numpy as np
import pytest

from se_edge.evaluate.models import open_artifact
from se_edge.evaluate.parity import run_parity
from se_edge.report.run_report import REQUIRED_ARTIFACT_KEYS
from se_edge.run import ARTIFACTS, Run

EXPECTED = {"float", "reference_int8", "tflite_fp32", "tflite_int8", "executorch_fp32", "executorch_int8",
            "tflite_fp16", "executorch_fp16", "reference_int8_ptq", "tflite_int8_ptq", "executorch_int8_ptq",
            "tflite_int8_app", "executorch_int8_app"}


def test_report_has_the_stable_shape(demo_run):
    out, report = demo_run
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["artifacts"].keys() == report["artifacts"].keys() == EXPECTED
    for key in ("model", "dataset", "num_test", "device"):
        assert key in on_disk
    assert on_disk["num_test"] == 360
    for name, a in on_disk["artifacts"].items():
        missing = [k for k in REQUIRED_ARTIFACT_KEYS if k not in a]
        assert not missing, f"{name} lacks {missing}"
        assert a["runtime"] == ARTIFACTS[name].runtime and a["dtype"] == ARTIFACTS[name].dtype
        assert 0.0 <= a["accuracy"] <= 1.0 and 0.0 <= a["agreement_with_reference"] <= 1.0
        assert 0 < a["latency_ms"]["p50"] <= a["latency_ms"]["p90"] and a["latency_ms"]["threads"] == 1
    for f in ("report.md", "accuracy.png", "latency.png", "model_fp32.tflite", "model_int8.tflite",
              "model_fp32.pte", "model_int8.pte"):
        assert (out / f).stat().st_size > 0, f
    assert not list(out.glob("*.tmp")), "temp files left behind"


def test_report_has_size_parameters_macs_and_memory_per_artifact(demo_run):
    import torch.nn as nn

    from se_edge.evaluate.footprint import count_macs

    out, _ = demo_run
    arts = json.loads((out / "report.json").read_text())["artifacts"]
    for name, a in arts.items():
        assert a["size_bytes"] == (out / ARTIFACTS[name].filename).stat().st_size, name
        assert a["params"] > 10_000 and a["macs"] > a["params"], (name, a["params"], a["macs"])
        if ARTIFACTS[name].runtime == "pytorch":
            assert a["peak_rss_mb"] is None
        else:  # measured in a fresh process: above the runtime alone, far below this test process's
            assert 0 < a["runtime_rss_mb"] < a["peak_rss_mb"] < 2048, (name, a)
    assert arts["tflite_int8"]["size_bytes"] < arts["tflite_fp32"]["size_bytes"] / 2.5
    md = (out / "report.md").read_text()
    assert "### Size and memory" in md and f"| tflite_int8 | {arts['tflite_int8']['size_bytes'] / 1024:.1f} |" in md
    assert (out / "tradeoff.png").stat().st_size > 0
    # MACs: a known answer. conv 1->4, 3x3 on 8x8 (padding 1): 8*8*4*9 = 2304; linear 4*8*8 -> 10: 2560.
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 10))
    import torch

    assert count_macs(model, torch.zeros(3, 1, 8, 8)) == 2304 + 2560
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=4)  # depthwise: 8*8*4*(1*9)
    assert count_macs(grouped, torch.zeros(1, 4, 8, 8)) == 2304


def test_int8_files_report_agreement_with_float_and_the_shifted_set(demo_run):
    out, report = demo_run
    a = report["artifacts"]
    int8 = [n for n in a if a[n]["dtype"] == "int8"]
    assert len(int8) == 8  # QAT, PTQ and the app files, and the two references
    for name in int8:
        assert 0.9 <= a[name]["agreement_with_float"] <= 1.0, (name, a[name])
    assert "agreement_with_float" not in a["float"]
    # agreement with float is what the two comparisons say together: float -> reference -> file
    assert a["reference_int8"]["agreement_with_float"] == a["reference_int8"]["agreement_with_reference"]
    stress = json.loads((out / "report.json").read_text())["stress"]
    assert stress["seed"] == 0 and stress["num_test"] == 360 and stress["artifacts"].keys() == EXPECTED
    shifted, clean = stress["artifacts"]["float"]["accuracy"], a["float"]["accuracy"]
    assert shifted < clean, "the shift makes the test harder"
    for name in int8:
        assert 0.0 <= stress["artifacts"][name]["agreement_with_float"] <= 1.0
    md = (out / "report.md").read_text()
    assert "### Under a seeded shift (seed 0)" in md and "decisions apart from the reference" in md


def test_compare_gives_the_reference_s_margin_where_a_file_parts_from_it():
    """How close were the decisions a file changed: the reference's top-1 minus top-2 logit there, beside its
    median over all images."""
    from se_edge.evaluate.parity import compare

    ref = np.array([[2.0, 1.9, 0.0], [5.0, 0.0, 1.0], [0.0, 3.0, 0.5]], np.float32)  # margins 0.1, 4.0, 2.5
    out = ref.copy()
    out[0] = [1.9, 2.0, 0.0]  # the file parts from the reference on the near tie only
    m = compare({"reference_int8": ref, "tflite_int8": out}, np.array([0, 0, 1]))
    assert m["tflite_int8"]["agreement_with_reference"] == pytest.approx(2 / 3)
    assert m["tflite_int8"]["reference_margin_where_apart"] == pytest.approx(0.1)
    assert m["tflite_int8"]["reference_margin_median"] == pytest.approx(2.5)
    same = compare({"reference_int8": ref, "tflite_int8": ref.copy()}, np.array([0, 0, 1]))["tflite_int8"]
    assert "reference_margin_where_apart" not in same  # no decision apart, nothing to measure


def test_compare_holds_each_file_against_float_its_reference_and_the_other_runtime():
    """Three yardsticks, each with decisions apart, the largest difference in LSB of the output scale, and
    float's margin where decisions part beside its median."""
    from se_edge.evaluate.parity import compare

    y = np.array([0, 0, 1])
    fl = np.array([[2.0, 1.8, 0.0], [5.0, 0.0, 1.0], [0.0, 3.0, 0.5]], np.float32)  # float margins 0.2, 4.0, 2.5
    ref = fl.copy()
    ref[0] = [1.8, 2.0, 0.0]  # int8 changes float's near tie
    tfl, pte = ref.copy(), ref.copy()
    pte[2, 1] += 0.5  # the .pte one LSB (scale 0.5) above the .tflite on one logit, the same decisions
    m = compare({"float": fl, "reference_int8": ref, "tflite_int8": tfl, "executorch_int8": pte}, y,
                lsb={"tflite_int8": 0.5, "executorch_int8": 0.5})
    ys = m["executorch_int8"]["yardsticks"]
    assert ys["float"] == {"against": "float", "agreement": pytest.approx(2 / 3), "apart": 1, "max_abs_diff": pytest.approx(0.5),
                           "max_lsb": pytest.approx(1.0), "float_margin_median": pytest.approx(2.5),
                           "float_margin_where_apart": pytest.approx(0.2)}
    assert ys["reference"]["against"] == "reference_int8" and ys["reference"]["apart"] == 0
    assert ys["reference"]["max_lsb"] == pytest.approx(1.0) and ys["reference"]["float_margin_where_apart"] is None
    assert ys["runtime"]["against"] == "tflite_int8" and ys["runtime"]["agreement"] == 1.0
    assert m["tflite_int8"]["yardsticks"]["runtime"]["max_lsb"] == pytest.approx(1.0)
    assert "reference" not in m["reference_int8"]["yardsticks"]  # its reference is float: one yardstick, not two
    assert m["float"]["yardsticks"] == {}


def test_exported_files_agree_with_their_reference(demo_run):
    out, report = demo_run
    a = report["artifacts"]
    assert a["float"]["accuracy"] >= 0.95, "a short run on digits still learns"
    for name in ("tflite_fp32", "executorch_fp32"):
        assert a[name]["agreement_with_reference"] == 1.0 and a[name]["max_abs_diff"] < 1e-3, (name, a[name])
    for name in ("tflite_int8", "executorch_int8", "tflite_int8_ptq", "executorch_int8_ptq"):
        # The int8 reference computes what the delegates compute (quantize/integer.py): every logit within one LSB.
        ys = a[name]["yardsticks"]
        assert a[name]["agreement_with_reference"] == 1.0 and ys["reference"]["max_lsb"] <= 1.0, (name, ys)
        assert ys["reference"]["against"] == a[name]["reference"] and ys["runtime"]["against"] == ARTIFACTS[name].peer
        assert ys["runtime"]["agreement"] == 1.0 and ys["runtime"]["max_lsb"] <= 1.0, (name, ys)
        assert ys["float"]["agreement"] == a[name]["agreement_with_float"] and ys["float"]["max_lsb"] > 0, (name, ys)
    md = (out / "report.md").read_text()
    assert "### Parity: three yardsticks" in md and "| tflite_int8 |" in md.split("three yardsticks")[1]
    for name in ("tflite_int8", "executorch_int8"):
        assert abs(a[name]["accuracy"] - a["float"]["accuracy"]) <= 0.02, (name, a[name])
    assert a["tflite_int8_ptq"]["reference"] == "reference_int8_ptq"


def test_int8_files_are_pure(demo_run):
    out, report = demo_run
    a = report["artifacts"]
    # the hard-swish form each target's int8 file holds, as export wrote it (export/int8.py FORMS)
    assert json.loads((out / "run.json").read_text())["forms"] == {"litert": "written", "executorch": "native"}
    assert a["tflite_int8"]["graph"]["float_islands"] == 0, a["tflite_int8"]["graph"]
    assert a["executorch_int8"]["graph"]["partitions"] == 1
    assert a["executorch_int8"]["graph"]["non_delegated_ops"] == 0, a["executorch_int8"]["graph"]
    assert a["tflite_int8_ptq"]["graph"]["float_islands"] == 0
    assert a["executorch_fp32"]["graph"]["non_delegated_ops"] == 0
    for name in ("tflite_fp32", "tflite_int8", "tflite_int8_ptq", "executorch_fp32", "executorch_int8"):
        graph = a[name]["graph"]  # as the runtime loads the file: one XNNPACK partition, nothing outside
        assert (graph["partitions"], graph["non_delegated_ops"]) == (1, 0), (name, graph)


def test_fp16_files_agree_with_float_and_stay_in_the_delegate(demo_run):
    from ai_edge_litert import schema_py_generated as schema

    from se_edge.export.fp16 import PTE_CASTS

    out, report = demo_run
    a = report["artifacts"]
    for name in ("tflite_fp16", "executorch_fp16"):
        assert a[name]["dtype"] == "fp16" and a[name]["reference"] == "float"
        # fp16 rounds every weight (and, in the .pte, every activation): logits move, decisions on digits do not
        assert a[name]["agreement_with_float"] >= 0.999 and 0 < a[name]["max_abs_diff"] < 0.5, (name, a[name])
        assert a[name]["yardsticks"]["runtime"]["against"] == ARTIFACTS[name].peer
    tfl, pte = a["tflite_fp16"]["graph"], a["executorch_fp16"]["graph"]
    assert (tfl["partitions"], tfl["non_delegated_ops"], tfl["float_islands"]) == (1, 0, 0), tfl
    # the fp32 input's and output's casts: the XNNPACK partitioner takes no dtype conversion
    assert (pte["partitions"], pte["non_delegated"]) == (1, PTE_CASTS), pte
    # the weights are float16 behind a DEQUANTIZE each: one per conv or linear of the fp32 file
    weighted = sum(tfl["ops"].get(op, 0) for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    assert tfl["ops"]["DEQUANTIZE"] == weighted > 0, tfl["ops"]
    model = schema.Model.GetRootAs((out / "model_fp16.tflite").read_bytes(), 0)
    sg = model.Subgraphs(0)
    halves = sum(sg.Tensors(i).Type() == schema.TensorType.FLOAT16 for i in range(sg.TensorsLength()))
    assert halves == weighted and sg.Tensors(sg.Inputs(0)).Type() == schema.TensorType.FLOAT32
    assert a["tflite_fp16"]["size_bytes"] < 0.6 * a["tflite_fp32"]["size_bytes"], a["tflite_fp16"]["size_bytes"]
    md = (out / "report.md").read_text()
    table = md.split("### int8, fp16 and fp32 per runtime")[1].split("###")[0]
    for runtime, names in (("litert", ("tflite_fp32", "tflite_fp16", "tflite_int8")),
                           ("executorch", ("executorch_fp32", "executorch_fp16", "executorch_int8"))):
        for name in names:
            p50 = a[name]["latency_ms"]["p50"]
            ratio = p50 / a[names[0]]["latency_ms"]["p50"]
            assert f"| {runtime} | {ARTIFACTS[name].dtype} | {name} |" in table and f"| {p50:.3f} | {ratio:.2f} |" in table
    assert "fp16 arithmetic on this CPU:" in table and "dim_order_ops::_to_dim_order_copy×2" in table
    meta = (out / "model_fp16.tflite").read_bytes()
    assert b"fp16 (tflite_fp16, from float.pt)" in meta and b"labels.txt" in meta  # its metadata, as the others


def test_report_md_shows_litert_delegation(demo_run):
    out, report = demo_run
    md = (out / "report.md").read_text()
    assert "0 float islands" in md and "XNNPACK 1 partition(s), 0 non-delegated" in md, md


def test_int8_tflite_matches_reference_within_one_output_step(demo_run):
    """Logits of the int8 TFLite file vs the PyTorch int8 reference: at most one quantisation step."""
    out, _ = demo_run
    run = Run(out)
    tfl = open_artifact(run, "tflite_int8")
    ref = open_artifact(run, "reference_int8")
    x = np.random.default_rng(0).standard_normal((20, 1, 32, 32)).astype(np.float32)
    scale = tfl.output["quantization"][0]
    diff = max(np.abs(tfl(x[i:i + 1]) - ref(x[i:i + 1])).max() for i in range(len(x)))
    assert diff <= scale * 1.01, f"max diff {diff} > one output LSB {scale}"


def test_parity_on_unseen_idx_directory(demo_run, idx_dir):
    out, _ = demo_run
    result = run_parity(Run(out), str(idx_dir), progress=False)
    assert result["num_test"] == 297 and result["dataset"] == idx_dir.name
    assert result["artifacts"].keys() == EXPECTED
    for name in ("tflite_int8", "executorch_int8"):
        assert result["artifacts"][name]["agreement_with_reference"] >= 0.98


def test_corrupt_artifact_is_a_one_line_error(demo_run, tmp_path):
    from se_edge.errors import SeEdgeError

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    data = (copy / "model_int8.tflite").read_bytes()
    (copy / "model_int8.tflite").write_bytes(data[: len(data) // 3])
    with pytest.raises(SeEdgeError, match="model_int8.tflite has changed since se_edge made it"):
        open_artifact(Run(copy), "tflite_int8")
    record = json.loads((copy / "run.json").read_text())
    del record["lineage"], record["version"]  # a version-1 run, from before lineage: the runtime's own check answers
    (copy / "run.json").write_text(json.dumps(record))
    with pytest.raises(SeEdgeError, match="cannot load .*model_int8.tflite as a TFLite model"):
        open_artifact(Run(copy), "tflite_int8")


def test_ptq_ranges_come_from_the_calibration_images_alone(demo_run):
    """ptq.pt is the graph calibrated on the training images and nothing else: the PTQ stage's own accuracy
    check once ran the test split through its running observers, which widened the ranges with test images."""
    import torch

    from se_edge.quantize import calibrate, prepare_ptq

    out, _ = demo_run
    run = Run(out)
    fresh = prepare_ptq(run.load_float(), run.sample_input())
    calibrate(fresh, run.splits().train.x, max_images=run.record.ptq.calibration_images)
    saved = torch.load(run.artifact_path("reference_int8_ptq"), weights_only=True)
    observed = {k: v for k, v in fresh.state_dict().items() if k.endswith(("min_val", "max_val"))}
    assert observed and all(torch.equal(saved[k], v) for k, v in observed.items()), "ptq.pt saw other images"
