"""Each exported file, on the device given by --se-device (default: local), through the same
transport and runner.py that `se-edge bench --device` uses: it runs there or says why not, agrees
with the host's PyTorch reference, and has a measured latency; the native pte_runner beside it."""
from __future__ import annotations

import pytest

from se_edge.run import ARTIFACTS


def _entry(device_bench, artifact, key=None) -> dict:
    entry = device_bench["artifacts"].get(artifact)
    if entry is None:
        pytest.skip(f"{ARTIFACTS[artifact].filename} was not exported in this run")
    if key is not None:
        entry = entry.get(key)
        if entry is None:
            pytest.skip(f"no {key} measurement for {artifact}")
    if entry["status"] == "skipped":
        assert entry["reason"], "a skipped file must say why"
        pytest.skip(f"{artifact} on {device_bench['device']['spec']}: {entry['reason']}")
    assert entry["status"] == "ok", entry
    return entry


def test_runs_on_the_device_or_says_why_not(device_bench, artifact):
    entry = _entry(device_bench, artifact)
    assert entry["runtime_module"] and entry["latency_ms"] and entry["accuracy"] is not None


def test_device_outputs_agree_with_the_host_reference(device_bench, artifact):
    entry = _entry(device_bench, artifact)
    assert entry["agreement_with_reference"] >= 0.99, (
        f"{artifact} on {device_bench['device']['spec']}: top-1 agreement {entry['agreement_with_reference']:.4f} "
        f"with {entry['reference']}, max |diff| {entry['max_abs_diff']:.3g}")
    if ARTIFACTS[artifact].dtype == "fp32":
        assert entry["max_abs_diff"] < 1e-3, entry["max_abs_diff"]


def test_device_latency_is_measured(device_bench, artifact, request):
    lat = _entry(device_bench, artifact)["latency_ms"]
    print(f"{artifact} on {device_bench['device']['spec']}: p50 {lat['p50']:.3f} ms, p90 {lat['p90']:.3f} ms, "
          f"p99 {lat['p99']:.3f} ms")
    assert lat["count"] == request.config.getoption("--latency-runs")
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]


def test_native_runner_beside_the_python_runtime(device_bench, artifact, native_runner):
    if ARTIFACTS[artifact].runtime != "executorch":
        pytest.skip("the native runner runs .pte files")
    if native_runner is None:
        pytest.skip("native runner not built (make native-runner) and no --native-runner given")
    native = _entry(device_bench, artifact, "native")
    python_p50 = (device_bench["artifacts"][artifact].get("latency_ms") or {}).get("p50")
    print(f"{artifact}: pte_runner p50 {native['latency_ms']['p50']:.3f} ms, runner.py p50 "
          + (f"{python_p50:.3f} ms" if python_p50 is not None else "not measured"))
    assert native["agreement_with_reference"] >= 0.99 and 0 < native["latency_ms"]["p50"]


def test_benchmark_model_beside_the_python_runtime(device_bench, artifact, request):
    if ARTIFACTS[artifact].runtime != "litert":
        pytest.skip("benchmark_model runs .tflite files")
    if not request.config.getoption("--runner-bin"):
        pytest.skip("no TFLite benchmark_model given (--runner-bin)")
    lat = _entry(device_bench, artifact, "benchmark_model")["latency_ms"]
    assert lat["count"] >= 1 and lat["mean"] > 0
