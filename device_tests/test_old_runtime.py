"""A board with an older runtime, stood in for by a venv with only numpy<2 and tflite-runtime 2.14
(no torch, no ai-edge-litert): the run's .tflite files run there through the `local:` transport and
agree with the host's reference; the .pte files are listed as skipped with the reason.

    make old-runtime-venv      creates .venv-tflite-old/ (needs PyPI access once)
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from se_edge.run import ARTIFACTS

OLD_PYTHON = Path(__file__).resolve().parents[1] / ".venv-tflite-old" / "bin" / "python"


@pytest.fixture(scope="module")
def old_runtime_bench(run_dir, request) -> dict:
    if not OLD_PYTHON.is_file():
        pytest.skip(f"no old-runtime venv at {OLD_PYTHON.parents[1]} (make old-runtime-venv)")
    from se_edge.device import parse_device_spec
    from se_edge.device.remote_bench import DeviceBenchConfig, bench_on_device
    from se_edge.run import Run

    config = DeviceBenchConfig(runs=request.config.getoption("--latency-runs"), warmup=5, images=200)
    return bench_on_device(Run(run_dir), parse_device_spec(f"local:{OLD_PYTHON}"), config)


def test_the_old_venv_has_no_torch_and_an_old_tflite_runtime():
    if not OLD_PYTHON.is_file():
        pytest.skip(f"no old-runtime venv at {OLD_PYTHON.parents[1]} (make old-runtime-venv)")
    probe = subprocess.run([str(OLD_PYTHON), "-c", "import importlib.util as u, tflite_runtime, numpy; "
                            "print(u.find_spec('torch') is None, u.find_spec('ai_edge_litert') is None, "
                            "tflite_runtime.__version__, numpy.__version__.split('.')[0])"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.split() == ["True", "True", "2.14.0", "1"], probe.stderr


@pytest.mark.parametrize("tflite", ["tflite_int8", "tflite_fp32"])
def test_tflite_runs_on_the_old_runtime_and_agrees_with_the_host(old_runtime_bench, tflite):
    artifact = tflite
    entry = old_runtime_bench["artifacts"].get(artifact)
    if entry is None:
        pytest.skip(f"{ARTIFACTS[artifact].filename} was not exported in this run")
    assert entry["status"] == "ok", entry.get("reason")
    assert (entry["runtime_module"], entry["runtime_version"]) == ("tflite_runtime", "2.14.0")
    lat = entry["latency_ms"]
    print(f"{artifact} on tflite-runtime 2.14.0: p50 {lat['p50']:.3f} ms, p90 {lat['p90']:.3f} ms, "
          f"p99 {lat['p99']:.3f} ms, agreement {entry['agreement_with_reference']:.4f}, "
          f"max |diff| {entry['max_abs_diff']:.3g}")
    assert entry["agreement_with_reference"] >= 0.99
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]


def test_pte_files_are_skipped_with_the_reason(old_runtime_bench):
    pte = {n: a for n, a in old_runtime_bench["artifacts"].items() if a["runtime"] == "executorch"}
    assert pte, "the run exported no .pte files"
    for name, entry in pte.items():
        assert entry["status"] == "skipped" and "no ExecuTorch runtime" in entry["reason"], (name, entry)
