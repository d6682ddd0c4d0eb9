"""The benchmark tables render what they were given, including a machine without Vela."""
import pytest

from se_edge.benchmarks import forms, runtimes
from se_edge.benchmarks.gates import markdown as gates_markdown
from se_edge.benchmarks.zoo import delegation_cell, zoo_markdown

ONE = {"partitions": 1, "delegates": {"XNNPACK": 1}, "non_delegated_ops": 0, "non_delegated": {}}
CUT = {"partitions": 3, "delegates": {"XNNPACK": 3}, "non_delegated_ops": 2, "non_delegated": {"RELU_0_TO_1": 2}}


def _lat(p50):
    return {"p50": p50, "p90": p50, "p99": p50, "threads": 1}


def test_delegation_cell_names_the_ops_outside():
    assert delegation_cell(ONE) == "1 / 0"
    assert delegation_cell(CUT) == "3 / 2 (RELU_0_TO_1×2)"
    assert delegation_cell(None) == "—"


def test_runtimes_markdown_ratios_come_from_the_latencies():
    files = {"litert_fp32": 4.0, "litert_int8": 1.0, "executorch_fp32": 3.0, "executorch_int8": 2.0}
    variants = {se: {k: {"latency_ms": _lat(v * (1.1 if se == "se" else 1.0)), "graph": ONE if "fp32" in k else CUT}
                     for k, v in files.items()} for se in ("se", "no_se")}
    for se in ("se", "no_se"):
        for rt in ("litert", "executorch"):
            variants[se][f"{rt}_int8_over_fp32"] = files[f"{rt}_int8"] / files[f"{rt}_fp32"]
    variants["se_over_no_se"] = {k: 1.1 for k in files}
    md = runtimes.markdown({"size": 224, "threads": 1, "runs": 5, "warmup": 1, "models": {"m": variants}})
    rows = [line for line in md.splitlines() if line.startswith("| m |")]
    assert len(rows) == 4, md
    assert rows[0] == "| m | yes | LiteRT | 4.400 | 1.100 | 0.250 | 1.100 | 1 / 0 | 3 / 2 (RELU_0_TO_1×2) |", rows[0]
    assert rows[3].startswith("| m | no | ExecuTorch | 3.000 | 2.000 | 0.667 | — |"), rows[3]


def test_forms_markdown_has_a_row_per_candidate():
    graphs = {"tflite": {**CUT, "float_islands": 0, "ops": {}}, "tflite_fp32": ONE, "pte": ONE, "pte_fp32": ONE}
    row = {"name": "x", "formula": "f(z)", "max_abs_diff_float": 1e-7, "graphs": graphs, "transposes_int8": 2,
           "npu": {"npu_ops": 9, "cpu_ops": 1, "cpu_op_list": ["Transpose"]}}
    md = forms.markdown({"gates": [row], "activations": [{**row, "name": "y"}]})
    assert "| x: `f(z)` | 1.0e-07 | 1 / 0 | 3 / 2 (RELU_0_TO_1×2) | 0 / 2 | 1 / 0 | 1 / 0 | 1 (Transpose) |" in md, md
    assert "| y: `f(z)` |" in md
    assert len(forms.GATE_FORMS) >= 5 and len(forms.ACTIVATION_FORMS) >= 4


def test_gate_and_zoo_tables_without_vela():
    graph = {**ONE, "float_islands": 0, "ops": {}}
    result = {"model": "m", "size": 224, "accelerator": "ethos-u55-128",
              "variants": {"hw": {"gate": "hw", "squeeze": "avg", "tflite": graph, "pte": ONE,
                                  "latency_ms": {"litert": _lat(1.0), "executorch": _lat(2.0)}}}}
    md = gates_markdown(result)
    assert "| hw | hw | avg | — | 0 | 1 / 0 | 1 / 0 | — / — | — | — | 1.000 | 2.000 |" in md, md
    zoo = zoo_markdown({"size": 32, "models": {"m": {"hw": {"tflite": graph, "tflite_fp32": graph, "pte": ONE,
                                                                "pte_fp32": ONE},
                                                         "hard_sigmoid": {"tflite": {**CUT, "float_islands": 2}}}}})
    assert "| m | 1 / 0 | 1 / 0 | 0 | 1 / 0 | 1 / 0 | — / — | — | 2, 3 / 2 (RELU_0_TO_1×2), — |" in zoo, zoo


def test_forms_per_target_table_names_the_fastest_form_at_the_best_delegation():
    t = {"model": "m", "size": 224, "runs": 50, "targets": {
        "litert": {"forms": {"written": {"ms": 1.2, "outside": 0, "delegation": ONE},
                             "native": {"ms": 0.9, "outside": 2, "delegation": CUT}},
                   "fastest": "written", "exported": "written"},
        "executorch": {"forms": {"written": {"ms": 2.0, "outside": 0, "delegation": ONE},
                                 "native": {"ms": 1.6, "outside": 0, "delegation": ONE}},
                       "fastest": "native", "exported": "written"}}}
    md = "\n".join(forms.target_lines(t))
    assert ("| LiteRT (XNNPACK) | 1.200 ms, 1 / 0 partitions / outside | 0.900 ms, 3 / 2 (RELU_0_TO_1×2) partitions / "
            "outside | written | written |") in md, md
    assert "| ExecuTorch (XNNPACK) | 2.000 ms, 1 / 0 partitions / outside | 1.600 ms, 1 / 0 partitions / outside | " \
           "native | written (**not the fastest**) |" in md, md


def test_zoo_fp16_table_shows_delegation_and_agreement():
    graph = {**ONE, "float_islands": 0, "ops": {}}
    casts = {**ONE, "non_delegated_ops": 2, "non_delegated": {"dim_order_ops::_to_dim_order_copy": 2}}
    hw = {"tflite": graph, "pte": ONE, "tflite_fp16": graph, "pte_fp16": casts}
    result = {"size": 32, "models": {"m": {"hw": hw, "hard_sigmoid": {"tflite": graph}}},
              "fp16": {"m": {"float_accuracy": 0.95, "num_test": 360, "epochs": 3,
                             "tflite_fp16": {"agreement_with_float": 1.0, "max_abs_diff": 0.004},
                             "pte_fp16": {"agreement_with_float": 0.9972, "max_abs_diff": 0.03}}}}
    md = zoo_markdown(result)
    assert "| m | 1 / 0 | 1 / 2 (dim_order_ops::_to_dim_order_copy×2) | 0.9500 | 1.0000 (0.004) | 0.9972 (0.03) |" in md, md
    assert "360 images), each model trained 3 float epochs at 32 px" in md


def test_readme_block_replacement_keeps_the_rest():
    from se_edge.benchmarks.readme import replace_block

    text = "a\n<!-- t:begin -->\nold\n<!-- t:end -->\nb\n"
    assert replace_block(text, "t", "new\n") == "a\n<!-- t:begin -->\nnew\n<!-- t:end -->\nb\n"
    import pytest

    with pytest.raises(ValueError, match="no <!-- u:begin -->"):
        replace_block(text, "u", "x")


def test_qat_step_cost_times_the_loops_that_train(demo_run, monkeypatch):
    """Regression: the "QAT step / float step" figure timed a hand-written SGD step, not `fit`."""
    import se_edge.quantize as quantize
    import se_edge.train as train
    from se_edge.benchmarks.qat import step_time_ratio

    calls = {"fit": 0, "qat_finetune": 0}
    real_fit, real_qat = train.fit, quantize.qat_finetune

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(train, "fit", counting("fit", real_fit))
    monkeypatch.setattr(quantize, "qat_finetune", counting("qat_finetune", real_qat))
    out, _ = demo_run
    r = step_time_ratio(out, steps=8, warmup=1, batch_size=16, repeats=2)
    assert calls["qat_finetune"] == 5, "QAT through qat_finetune: an untimed pass, then short and longer epochs, twice"
    assert calls["fit"] >= 5, "float timed through train.fit"
    assert r["float_step_s"] > 0 and r["qat_step_s"] > 0 and r["qat_over_float"] == r["qat_step_s"] / r["float_step_s"]
    assert r["batch_size"] == 16 and r["steps"] == 8 and r["repeats"] == 2


def test_qat_markdown_gives_agreement_with_float_beside_accuracy():
    from se_edge.benchmarks.qat import markdown

    r = {"float": 0.52, "ptq": {"tflite": 0.51, "executorch": 0.51}, "qat": {"tflite": 0.53, "executorch": 0.52},
         "ptq_agreement_with_float": {"tflite": 0.9277, "executorch": 0.9290},
         "qat_agreement_with_float": {"tflite": 0.9812, "executorch": 0.9799},
         "qat_agreement": {"tflite": 1.0, "executorch": 1.0}}
    md = markdown({"dataset": "d", "unseen": "u", "unseen_fraction": 0.25,
                   "models": {"m": {**r, "num_test": 761, "step_time": {"qat_over_float": 3.1}, "epochs": 20,
                                    "qat_epochs": 4, "unseen": {**r, "num_images": 900}}}})
    assert "QAT agreement with float (worst)" in md
    assert "| m | 761 | 0.5200 | 0.5100 | 0.5100 | 0.5300 | 0.5200 | +0.0000 | 0.9277 | 0.9799 | 1.0000 | 3.10× |" in md
    old = {k: v for k, v in r.items() if "with_float" not in k}  # a bench_qat.json made before the column
    assert "| — | — |" in markdown({"dataset": "d", "models": {"m": {**old, "num_test": 1, "step_time": {"qat_over_float": 1}}}})


def test_recipe_variants_are_checked_before_any_training():
    from conftest import assert_one_line_error, se_edge
    from se_edge.benchmarks.recipe import parse_variant

    assert parse_variant("epochs=8, temperature=4") == {"epochs": 8, "temperature": 4.0}
    assert parse_variant("default") == {} and parse_variant("freeze_observers_after=none") == {"freeze_observers_after": None}
    proc = se_edge("bench", "recipe", "--run", "nowhere", "--variant", "epochs=2")
    assert_one_line_error(proc, "nowhere")
    for bad, fragment in (("epoch=2", "FIELD=VALUE"), ("epochs=two", "takes a whole number"), ("temperature=0", "temperature")):
        with pytest.raises(Exception) as e:
            parse_variant(bad)
        assert fragment in str(e.value), (bad, str(e.value))


def test_recipe_sweep_measures_each_variant_s_int8_model_against_float(demo_run, tmp_path):
    from se_edge.benchmarks.recipe import recipe_sweep

    out, _ = demo_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = recipe_sweep(out, [{"epochs": 1}, {"epochs": 1, "distill": 0.0}], tmp_path / "recipe", train_images=64,
                          progress=False)
    assert [r["variant"] for r in result["variants"]] == [{"epochs": 1}, {"epochs": 1, "distill": 0.0}]
    for r in result["variants"]:
        for k in ("train", "val", "test"):
            assert 0.8 <= r[f"{k}_agreement_with_float"] <= 1.0, r  # digits: int8 keeps most of float's decisions
    assert result["images"]["train"] == 64 and "(best on val)" in (tmp_path / "recipe" / "recipe.md").read_text()
    assert all(r["gap_moved_median"] >= 0 and r["test_apart"] >= 0 for r in result["variants"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before, "the run is left as it was"


def test_near_ties_measures_how_far_int8_moves_float_s_top_two():
    import numpy as np

    from se_edge.benchmarks.recipe import near_ties

    fl = np.array([[2.0, 1.9, 0.0], [5.0, 0.0, 1.0], [0.0, 3.0, 0.5]], np.float32)  # margins 0.1, 4.0, 2.5
    q = fl.copy()
    q[0] = [1.8, 2.0, 0.0]  # the near tie flips: its gap moves by 0.3
    q[1, 0] = 4.5  # a gap moved by 0.5, the decision kept
    r = near_ties(fl, q)
    assert r["test_apart"] == 1 and r["float_margin_where_apart"] == pytest.approx(0.1)
    assert r["images_at_or_below_that_margin"] == 1 and r["gap_moved_median"] == pytest.approx(0.3)
    assert r["float_margin_median"] == pytest.approx(2.5)


def test_int8_exports_give_each_target_its_form_unless_a_bench_names_one(monkeypatch, tmp_path):
    """Exports follow FORMS (LiteRT written out, ExecuTorch native); `bench forms` passes the form it measures, or
    its 'written' .pte would be re-formed to native and the two forms it compares would be one."""
    import torch

    from se_edge.export import int8

    calls = []
    monkeypatch.setattr(int8, "quantize_for_structure", lambda *a, **k: "prepared")
    monkeypatch.setattr(int8, "to_tflite", lambda p, s, path, hard_swish="?", **k: calls.append(("tflite", hard_swish)))
    monkeypatch.setattr(int8, "to_pte", lambda p, s, path, hard_swish="?": calls.append(("pte", hard_swish)))
    net = torch.nn.Conv2d(3, 4, 1)
    int8.int8_exports(net, (1, 3, 8, 8), tmp_path)
    assert calls == [("tflite", "written"), ("pte", "native")] and int8.FORMS["executorch"] == "native"
    for form in ("written", "native"):
        calls.clear()
        int8.int8_exports(net, (1, 3, 8, 8), tmp_path, hard_swish=form)
        assert calls == [("tflite", form), ("pte", form)]


def test_se_cost_splits_the_se_models_time_into_its_se_ops_and_the_rest():
    """bench runtimes --profile: SE ÷ no SE from the ops' sums, SE's own ops by role, and the SE model's other ops
    against the no-SE model's, each computed from the profiles it is given."""
    from se_edge.device.profile import summarize_profile

    rest = {"Convolution #1": 0.5, "Fully Connected #1": 0.2}
    se_ops = {"Mean (ND) #1": 0.01, "Fully Connected #2": 0.02, "Fully Connected #3": 0.03, "Multiply (ND) #1": 0.001,
              "Multiply (ND) #2": 0.08}
    order = ["Convolution #1", *se_ops, "Fully Connected #1"]
    times = {**rest, **se_ops, "Convolution #1": 0.52}  # the SE model's conv 0.02 ms slower than the no-SE model's
    se = summarize_profile({"runtime": "litert", "runs": 5, "ops": [{"name": n, "ms": times[n]} for n in order],
                            "total_ms": 1.0, "beside_p50_ms": 0.9}, ["blocks.0.se"])
    no_se = summarize_profile({"runtime": "litert", "runs": 5, "ops": [{"name": n, "ms": ms} for n, ms in rest.items()],
                               "total_ms": 0.75, "beside_p50_ms": 0.72}, [])
    c = runtimes.se_cost(se, no_se)
    assert c["found"] == c["expected"] == 1
    assert c["se_ops_ms"] == pytest.approx(0.141) and c["scale_ms"] == pytest.approx(0.08)
    assert c["squeeze_ms"] == pytest.approx(0.01) and c["excitation_ms"] == pytest.approx(0.05)
    assert c["gate_ms"] == pytest.approx(0.001)
    assert c["other_minus_no_se_ms"] == pytest.approx(0.02) and c["ops_ratio"] == pytest.approx(0.861 / 0.7)
    assert c["p50_ratio"] == pytest.approx(0.9 / 0.72)
    assert c["by_kind"]["multiply"] == {"se_ms": pytest.approx(0.081), "no_se_ms": 0.0}
    slower = runtimes.se_cost(se, {**no_se, "ops_ms": 0.5, "beside_p50_ms": 0.6})
    rounds = runtimes._median_of([c, slower, c])  # each figure's median over the rounds' pairs
    assert rounds["ops_ratio"] == c["ops_ratio"] and rounds["p50_ratio"] == c["p50_ratio"]
    assert rounds["by_kind"] == c["by_kind"] and rounds["found"] == 1
    assert runtimes._median_of([c, slower])["ops_ratio"] == pytest.approx((c["ops_ratio"] + 0.861 / 0.5) / 2)
    md = runtimes.se_cost_markdown({"m": {"litert": {**c, "rounds": 5, "runs": 100},
                                          "executorch": {"skipped": "no runner"}}})
    assert "(5 rounds of 100 runs each; each figure the median" in md and "- m executorch: not profiled: no runner" in md
    assert "| m | litert | 1.230 | 1.250 | 1 of 1 | 0.141 | 0.010 | 0.050 | 0.001 | 0.080 | 57 | +0.020 |" in md, md
