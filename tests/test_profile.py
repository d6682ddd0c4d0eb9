"""Per-op profiles (se_edge/device/profile.py): the SE blocks are found in a runtime's op order by their shape and
named by the model's SE modules; ExecuTorch's ETDump of a real .pte gives every SE block's four parts; a profile
file that is not one is one line."""
import json

import pytest
from conftest import assert_one_line_error, cli

from se_edge.device import profile
from se_edge.errors import SeEdgeError

# se_cnn's int8 .pte as ExecuTorch's XNNPACK delegate runs it (names as ETDump reports them)
SE_CNN_PTE = ["Transpose (ND, X8) #1", "Convert (NC) #1", "Convolution (NHWC, QC8) IGEMM #1",
              "Convolution (NHWC, QC8) IGEMM #2", "Mean (ND) #1", "Fully Connected (NC, QS8, QC8W) GEMM #1",
              "Fully Connected (NC, QS8, QC8W) GEMM #2", "Multiply (ND) #1", "Multiply (ND) #2",
              "Convolution (NHWC, QC8) IGEMM #3", "Mean (ND) #2", "Transpose (ND, X8) #2", "Static Reshape (NC) #1",
              "Fully Connected (NC, QS8, QC8W) GEMM #3", "Convert (NC) #2"]


def ops(names, ms=None):
    return [{"name": n, "ms": (ms or {}).get(n, 0.01)} for n in names]


def roles(names):
    return [{role: [names[j] for j in span[role]] for role in profile.ROLES} for span in profile.se_spans(ops(names))]


def test_the_se_blocks_are_found_by_their_shape_and_nothing_else():
    # ExecuTorch: one block; the head's mean -> reshape -> one layer is not one
    assert roles(SE_CNN_PTE) == [{"squeeze": ["Mean (ND) #1"],
                                  "excitation": ["Fully Connected (NC, QS8, QC8W) GEMM #1",
                                                 "Fully Connected (NC, QS8, QC8W) GEMM #2"],
                                  "gate": ["Multiply (ND) #1"], "scale": ["Multiply (ND) #2"]}]
    # TFLite ops, SE-ResNet: the residual ADD and its RELU after the scale are not the block's
    resnet = ["CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "FULLY_CONNECTED", "MUL", "MUL", "ADD", "RELU", "CONV_2D"]
    assert roles(resnet) == [{"squeeze": ["MEAN"], "excitation": ["FULLY_CONNECTED", "FULLY_CONNECTED"],
                              "gate": ["MUL"], "scale": ["MUL"]}]
    # a sigmoid gate; an inner hard-swish written out (its multiplies are the excitation's, not the scale)
    assert roles(["Mean (ND)", "Fully Connected", "Fully Connected", "Sigmoid (NC)", "Multiply (ND)", "Convolution"]
                 )[0]["gate"] == ["Sigmoid (NC)"]
    inner = roles(["Mean", "Fully Connected", "Add (ND)", "Multiply (ND)", "Multiply (ND)", "Fully Connected",
                   "Multiply (ND)", "Multiply (ND)", "Convolution"])
    assert [len(inner[0][r]) for r in profile.ROLES] == [1, 5, 1, 1]
    # MobileNetV3's head: pool -> conv -> written-out hard-swish (ends in a multiply) -> classifier: no block
    assert roles(["Convolution", "Mean (ND) Reduce", "Convolution", "Add (ND)", "Multiply (ND)", "Multiply (ND)",
                  "Fully Connected"]) == []
    # a squeeze that is not followed by two layers, or a block cut off by the end of the list
    assert roles(["Mean", "Multiply", "Fully Connected", "Fully Connected"]) == []
    assert roles(["Mean", "Fully Connected", "Fully Connected"]) == []


def test_the_summary_names_blocks_only_when_the_model_has_as_many():
    names = SE_CNN_PTE + SE_CNN_PTE[4:9]
    p = {"runtime": "executorch", "runs": 3, "total_ms": 0.5,
         "ops": ops(names, {"Convolution (NHWC, QC8) IGEMM #1": 0.2, "Multiply (ND) #2": 0.05, "Mean (ND) #1": 0.02})}
    s = profile.summarize_profile(p, ["stages.0.2", "stages.1.2"])
    assert s["se"]["found"] == 2 and s["se"]["named"] and [b["name"] for b in s["se"]["blocks"]] == ["stages.0.2",
                                                                                                      "stages.1.2"]
    first = s["se"]["blocks"][0]
    assert first["squeeze_ms"] == pytest.approx(0.02) and first["scale_ms"] == pytest.approx(0.05)
    assert first["excitation_ms"] == pytest.approx(0.02) and first["ops"] == 5
    assert s["ops_ms"] == pytest.approx(sum(op["ms"] for op in p["ops"])) and s["coverage"] == s["ops_ms"] / 0.5
    assert s["se"]["share"] == pytest.approx(s["se"]["ms"] / s["ops_ms"])
    assert s["by_kind"]["conv"]["ops"] == 3
    unnamed = profile.summarize_profile(p, ["only_one"])
    assert not unnamed["se"]["named"] and unnamed["se"]["expected"] == 1
    assert [b["name"] for b in unnamed["se"]["blocks"]] == ["SE #1", "SE #2"]
    md = profile.markdown({"executorch_int8": s})
    assert "SE blocks found 2 of 2" in md and "| stages.1.2 | 5 |" in md


def test_an_etdump_profile_counts_the_kernels_outside_the_delegate_and_the_runtime_s_own_time():
    """ExecuTorch's events per run (ns): the delegate's operators inside DELEGATE_CALL, a kernel ExecuTorch runs
    itself inside OPERATOR_CALL (native_call_<op>), all inside Method::execute."""
    def run(shift):  # two runs, the second 10 us slower in its first operator
        return [("Method::execute", 0, 1_000_000 + shift), ("OPERATOR_CALL", 10_000, 90_000),
                ("native_call__to_dim_order_copy.out", 20_000, 80_000),
                ("DELEGATE_CALL", 100_000, 900_000 + shift), ("Convolution (NHWC, QC8) IGEMM #1", 200_000, 500_000 + shift),
                ("Mean (ND) #1", 500_000 + shift, 600_000 + shift), ("OPERATOR_CALL", 910_000 + shift, 950_000 + shift),
                ("native_call__to_dim_order_copy.out", 915_000 + shift, 945_000 + shift)]

    p = profile._etdump_profile([run(0), run(10_000)], "x.etdp")
    names = [op["name"] for op in p["ops"]]
    assert names == ["_to_dim_order_copy (ExecuTorch kernel, outside the delegate) #1",
                     "Convolution (NHWC, QC8) IGEMM #1", "Mean (ND) #1",
                     "_to_dim_order_copy (ExecuTorch kernel, outside the delegate) #2"], names
    ms = {op["name"].split(" (")[0] + op["name"][-2:]: op["ms"] for op in p["ops"]}
    assert ms == pytest.approx({"_to_dim_order_copy#1": 0.06, "Convolution#1": 0.305, "Mean#1": 0.1,
                                "_to_dim_order_copy#2": 0.03})
    # DELEGATE_CALL 0.8/0.81 ms around operators of 0.4/0.41 ms; the method's 1.0/1.01 ms less 0.8/0.81 ms of delegate
    # call and 0.08 + 0.04 ms of kernel calls
    assert p["outside"] == pytest.approx({"delegate_call_ms": 0.4, "method_ms": 0.08})
    assert p["total_ms"] == pytest.approx(1.005) and p["delegate_ms"] == pytest.approx(0.805)
    s = profile.with_latency({"executorch_fp16": profile.summarize_profile({**p, "beside_p50_ms": 1.25})}, {})
    s = s["executorch_fp16"]
    assert s["by_kind"]["layout"]["ops"] == 2 and s["call_vs_beside"] == pytest.approx(1.005 / 1.25)
    md = profile.markdown({"executorch_fp16": s})
    assert "the profiled call = 80 % of it" in md and "| ExecuTorch method, outside its delegate and kernel calls | " \
        "0.080 |" in md and "| XNNPACK delegate call, outside its operators (its reshape and setup per call) | " \
        "0.400 |" in md, md


def test_a_real_pte_profile_has_every_se_block_of_the_model(demo_run):
    from se_edge.run import Run

    out, _ = demo_run
    run = Run(out)
    names = profile.se_module_names(run.load_float())
    assert names == ["stages.0.2", "stages.1.2", "stages.2.1"]
    p = profile.profile_pte(run.artifact_path("executorch_int8"), run.example_input("executorch_int8"), runs=5,
                            warmup=1)
    assert p["runs"] == 5 and p["total_ms"] > 0 and len(p["ops"]) >= 20 and p["beside_p50_ms"] > 0
    s = profile.summarize_profile(p, names)
    assert s["se"]["found"] == 3 and s["se"]["named"], [op["name"] for op in p["ops"]]
    for block in s["se"]["blocks"]:
        parts = {r: [op["name"] for op in s["ops"] if op["se"] == block["name"] and op["role"] == r]
                 for r in profile.ROLES}
        assert [n.split(" (")[0] for n in parts["squeeze"]] == ["Mean"], parts
        assert [n.split(" (")[0] for n in parts["excitation"]] == ["Fully Connected"] * 2, parts
        assert [n.split(" (")[0] for n in parts["gate"] + parts["scale"]] == ["Multiply"] * 2, parts
    assert s["by_kind"]["conv"]["ms"] > 0 and 0 < s["ops_ms"] <= s["total_ms"] * 1.05
    assert not [op for op in p["ops"] if "ExecuTorch kernel" in op["name"]] and s["outside"]["delegate_call_ms"] > 0
    # the fp16 file's two casts run outside the delegate (its graph report names them): the profile times both
    graph = demo_run[1]["artifacts"]["executorch_fp16"]["graph"]["non_delegated"]
    assert graph == {"dim_order_ops::_to_dim_order_copy": 2}, graph
    p16 = profile.profile_pte(run.artifact_path("executorch_fp16"), run.example_input("executorch_fp16"), runs=3,
                              warmup=1)
    kernels = [op for op in p16["ops"] if op["name"].startswith("_to_dim_order_copy (ExecuTorch kernel")]
    assert len(kernels) == 2 and all(op["ms"] > 0 and op["count"] == 1 for op in kernels), p16["ops"]


def test_bench_latency_profile_prints_and_writes_the_profiles(run_copy, tmp_path):
    proc = cli("--quiet", "bench", "latency", "--run", run_copy, "--profile", "--runs", "3", "--warmup", "1",
               "--json", tmp_path / "lat.json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "### executorch_int8 (executorch, 3 runs)" in proc.stdout and "SE blocks found 3 of 3" in proc.stdout
    arts = json.loads((tmp_path / "lat.json").read_text())["artifacts"]
    p = arts["executorch_int8"]["profile"]
    assert p["se"]["found"] == 3 and p["p50_ms"] == arts["executorch_int8"]["latency_ms"]["p50"]
    assert p["ops_vs_p50"] == pytest.approx(p["ops_ms"] / p["p50_ms"])
    assert p["beside_p50_ms"] > 0 and p["ops_vs_beside"] == pytest.approx(p["ops_ms"] / p["beside_p50_ms"])
    assert p["call_vs_beside"] == pytest.approx(p["total_ms"] / p["beside_p50_ms"])
    assert f"timed beside it {p['beside_p50_ms']:.3f} ms, ops sum = {100 * p['ops_vs_beside']:.0f} % of it, the " \
        f"profiled call = {100 * p['call_vs_beside']:.0f} % of it" in proc.stdout
    assert set(p["outside"]) == {"delegate_call_ms", "method_ms"} and 0 < p["outside"]["delegate_call_ms"] < p["total_ms"]
    for name in ("tflite_int8", "tflite_int8_app"):  # by the native runner where one is built (the app file fed its
        tfl = arts[name]["profile"]                     # uint8 pixels), else the profile says why not
        assert ("skipped" in tfl and "make native-runner" in tfl["skipped"]) or (
            tfl["se"]["found"] == 3 and tfl["beside_p50_ms"] > 0), (name, tfl)
    assert_one_line_error(cli("bench", "latency", "--run", run_copy, "--profile", "--device", "local"),
                          "--profile on a device needs --native")


def test_a_profile_file_that_is_not_one_is_one_line(tmp_path, monkeypatch):
    bad = tmp_path / "x.etdp"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(SeEdgeError, match="is not an ETDump file ExecuTorch can read"):
        profile.read_etdump(bad)
    monkeypatch.setattr(profile, "MAX_ETDUMP_BYTES", 16)
    with pytest.raises(SeEdgeError, match="more than an ETDump of a profile holds"):
        profile.read_etdump(bad)
    cases = [([1, 2], "not an object"),
             ({"runs": 0, "events": []}, "'runs' \\(a whole number >= 1\\)"),
             ({"runs": 2, "events": [{"name": "Conv\n", "type": "operator", "ms": 1}]}, "expected .*printable"),
             ({"runs": 2, "events": [{"name": "Conv", "type": "operator", "ms": -1}]}, "a number >= 0"),
             ({"runs": 2, "events": [{"name": "Conv", "type": "operator", "ms": True}]}, "a number >= 0")]
    for data, fragment in cases:
        (tmp_path / "p.json").write_text(json.dumps(data))
        with pytest.raises(SeEdgeError, match=fragment):
            profile.read_litert_profile(tmp_path / "p.json")
    (tmp_path / "p.json").write_text(json.dumps({"runs": 2, "events": [
        {"name": "Invoke", "type": "default", "ms": 0.5}, {"name": "Mean (ND) Reduce", "type":
                                                          "delegate_profiled_operator", "ms": 0.1}]}))
    assert profile.read_litert_profile(tmp_path / "p.json")["ops"] == [{"name": "Mean (ND) Reduce", "ms": 0.1,
                                                                         "count": None}]
    assert profile.read_litert_profile(tmp_path / "p.json")["total_ms"] == 0.5
