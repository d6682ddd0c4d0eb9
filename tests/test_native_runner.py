"""The native ExecuTorch runner (native/pte_runner), built with CMake against the executorch wheel:
it runs the int8 .pte without Python, gives the Python runtime's outputs, and reports the same
statistics. Skips with the reason where cmake or a C++ compiler is missing."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from se_edge import runner
from se_edge.device import native
from se_edge.device.local import LocalTransport
from se_edge.device.remote_bench import DeviceBenchConfig, bench_on_device
from se_edge.run import Run

# a sibling test module: pytest puts tests/ on sys.path
from test_remote_bench import IMAGES, fake_device, reuse_host_references  # noqa: F401  (fixtures)
from test_transports import fakes  # noqa: F401  (fake_device needs it)

STATS_KEYS = {"load_ms", "first_ms", "warmup", "threads", "runtime", "count", "min", "mean", "std", "p50", "p90", "p99",
              "peak_rss_mb", "model", "runtime_version", "device"}
DEVICE_KEYS = {"machine", "system", "cpu_model", "cores", "int8_features", "fp16_features", "load_average"}  # what a device report says


@pytest.fixture(scope="module")
def pte_runner(tmp_path_factory):
    if problem := native.toolchain_problem():
        pytest.skip(f"native runner not buildable here: {problem}")
    return native.build(tmp_path_factory.mktemp("build") / "pte_runner")


def run_native(binary, *args):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_native_runner_links_the_xnnpack_delegate(pte_runner):
    proc = subprocess.run(["ldd", str(pte_runner)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("ldd not available")
    for lib in ("libexecutorch.so", "libexecutorch_backend_xnnpack.so", "libexecutorch_kernels_optimized.so"):
        assert lib in proc.stdout and "not found" not in proc.stdout, proc.stdout


def test_native_outputs_match_the_python_runtime(pte_runner, demo_run, tmp_path):
    out, _ = demo_run
    x = np.random.default_rng(0).standard_normal((6, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for name in ("model_int8.pte", "model_fp32.pte"):
        proc = run_native(pte_runner, out / name, "--inputs", tmp_path / "x.npy", "--outputs", tmp_path / "y.npy",
                          "--runs", 7, "--warmup", 2, "--json", tmp_path / "s.json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        y = np.load(tmp_path / "y.npy")
        expected = runner.predict(runner.open_model(str(out / name)), x)
        assert y.shape == (6, 10)
        np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5, err_msg=name)
        stats = json.loads((tmp_path / "s.json").read_text())
        assert STATS_KEYS <= stats.keys() and stats["runtime"] == "executorch-native"
        assert stats["device"].keys() == DEVICE_KEYS and stats["device"]["cores"] >= 1, stats["device"]
        assert stats["runtime_version"] == __import__("importlib.metadata").metadata.version("executorch")
        assert stats["count"] == 7 and stats["warmup"] == 2 and stats["threads"] == 1
        assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"] and stats["load_ms"] > 0
        assert 0 < stats["peak_rss_mb"] < 200, "its own memory, not the parent's"


def test_native_runner_accepts_executor_runner_flags(pte_runner, demo_run):
    out, _ = demo_run
    proc = run_native(pte_runner, out / "model_int8.pte", "--num_executions=3", "--cpu_threads=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["count"] == 3


@pytest.mark.parametrize("args, message", [
    (("--runs", "0"), "--runs must be an integer >= 1"),
    (("--bogus", "1"), "unknown option --bogus"),
    (("missing.pte",), "model not found: missing.pte"),
])
def test_native_runner_errors_are_one_line_exit_2(pte_runner, demo_run, args, message):
    out, _ = demo_run
    argv = args if args[0].endswith(".pte") else (out / "model_int8.pte", *args)
    proc = run_native(pte_runner, *argv)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr


def test_not_a_pte_file(pte_runner, demo_run):
    out, _ = demo_run
    proc = run_native(pte_runner, out / "model_int8.tflite")
    assert proc.returncode == 2 and "cannot load" in proc.stderr and "as an ExecuTorch program" in proc.stderr


def test_bench_reports_native_p50_beside_the_python_runtime(pte_runner, demo_run):
    out, _ = demo_run
    result = bench_on_device(Run(out), LocalTransport(), DeviceBenchConfig(
        runs=20, warmup=3, images=IMAGES, artifacts=("executorch_int8",), native=str(pte_runner)))
    entry = result["artifacts"]["executorch_int8"]
    assert entry["status"] == "ok" and entry["native"]["status"] == "ok"
    assert entry["native"]["agreement_with_reference"] == entry["agreement_with_reference"] >= 0.99
    assert entry["native"]["max_abs_diff"] == pytest.approx(entry["max_abs_diff"], abs=1e-5)
    print(f"executorch_int8 p50: pte_runner {entry['native']['latency_ms']['p50']:.4f} ms, "
          f"runner.py {entry['latency_ms']['p50']:.4f} ms")
    assert entry["native"]["latency_ms"]["count"] == 20 and entry["native"]["latency_ms"]["p50"] > 0


def test_build_without_a_toolchain_says_why(monkeypatch):
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    assert native.toolchain_problem() == "cmake not found on PATH (needed to build native/pte_runner)"
    proc = subprocess.run([sys.executable, "-m", "se_edge.device.native", "build"], capture_output=True, text=True,
                          env={"PATH": "/nonexistent"}, timeout=120)
    assert proc.returncode == 0 and proc.stdout.splitlines() == [
        "native-runner: skipped pte_runner: cmake not found on PATH (needed to build native/pte_runner)",
        "native-runner: skipped tflite_runner: cmake not found on PATH (needed to build native/tflite_runner)"], proc.stdout


# ---------------------------------------------------------------- tflite_runner (LiteRT's C API, no Python)


@pytest.fixture(scope="module")
def tflite_runner(tmp_path_factory):
    if problem := native.toolchain_problem("tflite_runner"):
        pytest.skip(f"tflite_runner not buildable here: {problem}")
    return native.build(tmp_path_factory.mktemp("build") / "tflite_runner", runner="tflite_runner")


def test_tflite_runner_gives_the_python_runtimes_outputs_for_every_tflite(tflite_runner, demo_run, tmp_path):
    """Float images (quantised by the runner for int8 inputs, as runner.py quantises) and an app file's uint8
    pixels in; float32 outputs (int8 dequantised) equal to ai-edge-litert's Interpreter's, bit for bit."""
    out, _ = demo_run
    x = np.random.default_rng(0).standard_normal((6, 1, 32, 32)).astype(np.float32)
    pixels = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "pixels.npy", pixels)
    files = {"model_int8.tflite": x, "model_fp32.tflite": x, "model_int8_ptq.tflite": x, "model_int8_app.tflite": pixels}
    for name, inputs in files.items():
        npy = tmp_path / ("pixels.npy" if inputs is pixels else "x.npy")
        proc = run_native(tflite_runner, out / name, "--inputs", npy, "--outputs", tmp_path / "y.npy", "--runs", 7,
                          "--warmup", 2, "--json", tmp_path / "s.json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        y = np.load(tmp_path / "y.npy")
        expected = runner.predict(runner.open_model(str(out / name)), inputs)
        assert y.shape == (6, 10) and np.array_equal(y, expected), (name, np.abs(y - expected).max())
        stats = json.loads((tmp_path / "s.json").read_text())
        assert STATS_KEYS <= stats.keys() and stats["runtime"] == "litert-native" and stats["model"] == name
        assert stats["device"].keys() == DEVICE_KEYS and stats["device"]["cpu_model"], stats["device"]
        assert stats["runtime_version"] == __import__("importlib.metadata").metadata.version("ai-edge-litert")
        assert stats["count"] == 7 and stats["warmup"] == 2 and stats["threads"] == 1
        assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"] and stats["load_ms"] > 0
        assert stats["first_ms"] > 0 and 0 < stats["peak_rss_mb"] < 200


@pytest.mark.parametrize("args, message", [
    (("--runs", "0"), "--runs must be an integer >= 1"),
    (("--threads", "x"), "--threads must be an integer >= 1"),
    (("--bogus", "1"), "unknown option --bogus"),
    (("missing.tflite",), "model not found: missing.tflite"),
    (("model_int8.pte",), "cannot load"),
])
def test_tflite_runner_errors_are_one_line_exit_2(tflite_runner, demo_run, args, message):
    out, _ = demo_run
    argv = (out / args[0],) if args[0].endswith(".pte") else args if args[0].endswith(".tflite") else (
        out / "model_int8.tflite", *args)
    proc = run_native(tflite_runner, *argv)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr


def test_bench_runs_both_native_runners_beside_the_python_runtime(pte_runner, tflite_runner, demo_run):
    out, _ = demo_run
    result = bench_on_device(Run(out), LocalTransport(), DeviceBenchConfig(
        runs=20, warmup=3, images=IMAGES, artifacts=("tflite_int8", "tflite_int8_app", "executorch_int8"),
        native=str(pte_runner), native_tflite=str(tflite_runner)))
    for name, program in (("tflite_int8", "tflite_runner"), ("tflite_int8_app", "tflite_runner"),
                          ("executorch_int8", "pte_runner")):
        entry = result["artifacts"][name]
        assert entry["status"] == "ok" and entry["native"]["status"] == "ok", (name, entry)
        assert entry["native"]["agreement_with_reference"] == entry["agreement_with_reference"] >= 0.99, (name, entry)
        assert entry["native"]["max_abs_diff"] == pytest.approx(entry["max_abs_diff"], abs=1e-6), (name, entry)
        assert entry["native"]["latency_ms"]["count"] == 20 and entry["native"]["binary"].endswith(program), entry
        print(f"{name} p50: native {entry['native']['latency_ms']['p50']:.4f} ms, runner.py {entry['latency_ms']['p50']:.4f} ms")


def test_bench_on_a_device_profiles_each_file_through_its_native_runner(pte_runner, tflite_runner, demo_run):
    """`bench latency --device ... --native --profile`: each native runner records its profile on the device, pulled
    back, read as untrusted input and summarised with the model's SE blocks named, beside the device's p50."""
    from se_edge.device.report import markdown

    out, _ = demo_run
    result = bench_on_device(Run(out), LocalTransport(), DeviceBenchConfig(
        runs=4, warmup=1, images=IMAGES, artifacts=("tflite_int8", "executorch_int8", "executorch_fp32"),
        native=str(pte_runner), native_tflite=str(tflite_runner), profile=True))
    for name, runtime in (("tflite_int8", "litert"), ("executorch_int8", "executorch"),
                          ("executorch_fp32", "executorch")):
        native = result["artifacts"][name]["native"]
        p = native["profile"]
        assert native["status"] == "ok" and p["runtime"] == runtime and p["runs"] == 4, (name, native)
        assert p["se"]["found"] == p["se"]["expected"] == 3 and p["se"]["named"], (name, p["se"])
        assert p["by_kind"]["conv"]["ops"] == 6 and p["ops_ms"] > 0, (name, p["by_kind"])
        assert p["p50_ms"] == native["latency_ms"]["p50"] and p["ops_vs_p50"] == pytest.approx(p["ops_ms"] / p["p50_ms"])
        assert "profile" not in result["artifacts"][name], "runner.py records no profile"
    text = markdown(result)
    assert "## Per-op profiles on local" in text and "### executorch_int8 (executorch, 4 runs)" in text, text[-3000:]
    assert "SE blocks found 3 of 3" in text


# ---------------------------------------------------------------- a phone: no Python, both formats native


def test_adb_phone_without_python_runs_both_formats_through_a_native_directory(pte_runner, tflite_runner, demo_run,
                                                                              fake_device, tmp_path):
    """`--native DIR` on an adb device with no Python: both runners and the libraries beside them are pushed, every
    file runs natively with parity and the output check; runner.py is skipped with the reason."""
    import shutil

    from se_edge.device.adb import AdbTransport

    out, _ = demo_run
    device_dir, calls = fake_device
    phone_build = tmp_path / "android build"
    phone_build.mkdir()
    for binary in (pte_runner, tflite_runner):
        shutil.copy2(binary, phone_build / binary.name)
    (phone_build / "libLiteRt.so").write_bytes(b"stands for the phone's LiteRT library")
    transport = AdbTransport("emulator-5554", python="/system/bin/no-python3", device_dir=device_dir)
    runners, libs = native.runners_for(transport, str(phone_build))
    result = bench_on_device(Run(out), transport, DeviceBenchConfig(
        runs=3, warmup=1, images=IMAGES, artifacts=("tflite_int8", "executorch_int8", "tflite_int8_app"),
        native=str(runners["pte_runner"]), native_tflite=str(runners["tflite_runner"]), native_libs=tuple(map(str, libs))))
    for name in ("tflite_int8", "executorch_int8", "tflite_int8_app"):
        entry = result["artifacts"][name]
        assert entry["status"] == "skipped" and "cannot run runner.py" in entry["reason"], entry
        n = entry["native"]
        assert n["status"] == "ok" and n["agreement_with_reference"] >= 0.99 and n["check"]["within"], (name, n)
        assert n["check"]["values"] == IMAGES * 10 and n["check"]["bit_identical"] == IMAGES * 10, (name, n["check"])
        assert n["device"]["cores"] >= 1 and n["runtime_version"] not in ("", "unknown"), n
    pushed = [c[-1].rsplit("/", 1)[-1] for c in calls() if "push" in c]
    assert {"libLiteRt.so", "pte_runner", "tflite_runner"} <= set(pushed) and pushed.count("libLiteRt.so") == 1


def test_a_device_output_off_by_two_lsb_is_reported_apart_and_fails_the_command(tflite_runner, demo_run, tmp_path):
    """A runner whose outputs are wrong (here: the real tflite_runner, then one value moved) is a mismatch with the
    figures, listed apart, and the command exits 1; one LSB apart is still within."""
    from conftest import cli
    from se_edge.evaluate.parity import output_lsb

    out, _ = demo_run
    lsb = output_lsb(Run(out), ["tflite_int8"])["tflite_int8"]
    for shift, expect in ((1, 0), (2, 1)):
        wrapper = tmp_path / f"shift{shift}" / "tflite_runner"
        wrapper.parent.mkdir()
        wrapper.write_text(f"#!{sys.executable}\nimport subprocess, sys\nimport numpy as np\n"
                           f"rc = subprocess.call([{str(tflite_runner)!r}, *sys.argv[1:]])\n"
                           "path = sys.argv[sys.argv.index('--outputs') + 1]\ny = np.load(path)\n"
                           f"y[0, 0] += np.float32({shift} * {lsb!r})\nnp.save(path, y)\nsys.exit(rc)\n")
        wrapper.chmod(0o755)
        report = tmp_path / f"shift{shift}" / "dev.json"
        proc = cli("--quiet", "bench", "latency", "--run", out, "--device", "local", "--native", wrapper,
                       "--artifacts", "tflite_int8", "--images", str(IMAGES), "--runs", "3", "--warmup", "0",
                       "--json", report)
        assert proc.returncode == expect, proc.stderr
        entry = json.loads(report.read_text())["artifacts"]["tflite_int8"]
        assert entry["status"] == "ok" and entry["check"]["within"]  # runner.py, untouched
        c = entry["native"]["check"]
        assert c["bit_identical"] == IMAGES * 10 - 1 and c["max_lsb"] == pytest.approx(shift, abs=1e-3), c
        md = report.with_suffix(".md").read_text()
        if shift == 1:
            assert entry["native"]["status"] == "ok" and "Outputs that differ" not in md
        else:
            assert entry["native"]["status"] == "mismatch" and not c["within"]
            assert "## Outputs that differ from this host's" in md and f"{IMAGES * 10 - 1} of {IMAGES * 10} values" in md
            errors = [line for line in proc.stderr.splitlines() if line.strip()]
            assert len(errors) == 1 and "1 output check(s) failed on local: tflite_int8:" in errors[0], proc.stderr


# ---- per-op profiles where there is no Python: pte_runner --etdump, tflite_runner --profile (issue 25)

def _se_parts(summary: dict) -> list[list[int]]:
    """Per SE block found: its ops per role (squeeze, excitation, gate, scale)."""
    from se_edge.device.profile import ROLES

    return [[sum(1 for op in summary["ops"] if op["se"] == b["name"] and op["role"] == r) for r in ROLES]
            for b in summary["se"]["blocks"]]


def test_native_runners_record_per_op_profiles_that_find_every_se_block(pte_runner, tflite_runner, demo_run, tmp_path):
    from se_edge.device import profile
    from se_edge.run import Run

    out, _ = demo_run
    run = Run(out)
    se_names = profile.se_module_names(run.load_float())
    proc = run_native(pte_runner, out / "model_int8.pte", "--runs", "3", "--warmup", "1", "--json", tmp_path / "s.json",
                      "--etdump", tmp_path / "p.etdp", "--profile-runs", "4")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "s.json").read_text())["count"] == 3, "the timed runs are the stats', untraced"
    pte = profile.summarize_profile(profile.read_etdump(tmp_path / "p.etdp"), se_names)
    assert pte["runs"] == 4 and pte["se"]["named"] and _se_parts(pte) == [[1, 2, 1, 1]] * 3, pte["se"]
    tfl = profile.summarize_profile(profile.profile_tflite_native(out / "model_int8.tflite",
                                                                  run.example_input("tflite_int8"), runs=4, warmup=1,
                                                                  binary=tflite_runner), se_names)
    assert tfl["runs"] == 4 and tfl["se"]["named"] and _se_parts(tfl) == [[1, 2, 1, 1]] * 3, tfl["se"]
    assert tfl["total_ms"] > 0 and tfl["by_kind"]["conv"]["ops"] == pte["by_kind"]["conv"]["ops"] == 6
    for binary, args in ((pte_runner, ["--profile-runs", "0", "--etdump", tmp_path / "q.etdp"]),
                         (tflite_runner, ["--profile-runs", "2"])):
        bad = run_native(binary, out / ("model_int8.pte" if binary == pte_runner else "model_int8.tflite"), *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "q.etdp").exists()
