"""`se-edge bench --device`: a run's files pushed to a device, run there, compared with the host.

The devices are this host: `local` (this Python, or a wrapper Python without ExecuTorch), and fake
`adb`/`ssh`/`scp` on PATH that act on this host's files (see test_transports.py), so the whole
push -> run -> pull -> compare path runs for real without a phone or a board.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from se_edge import runner
from se_edge.device import remote_bench
from se_edge.device.adb import AdbTransport
from se_edge.device.benchmark_model import parse_output
from se_edge.device.local import LocalTransport
from se_edge.device.remote_bench import DeviceBenchConfig, bench_on_device
from se_edge.device.report import markdown
from se_edge.device.ssh import SshTransport
from se_edge.run import RUNNABLE, Run
from conftest import assert_one_line_error, cli, se_edge
from se_edge.errors import SeEdgeError

# a sibling test module: pytest puts tests/ on sys.path
from test_transports import fakes  # noqa: F401  (the fake adb/ssh/scp fixture)

BENCHMARK_MODEL_OUTPUT = """INFO: Initialized session in 3.2ms.
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=812
INFO: Running benchmark for at least 5 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=5 first=70 curr=66 min=61 max=70 avg=65.2 std=3 p5=61 median=65 p95=70
INFO: Inference timings in us: Init: 3200, First inference: 812, Warmup (avg): 812, Inference (avg): 65.2
INFO: Peak memory footprint (MB): init=2.5 overall=3.75
"""


IMAGES = 40  # parity images in the in-process tests: the same inputs each time, so references are reused
_REFERENCES: dict = {}


@pytest.fixture(autouse=True)
def reuse_host_references(monkeypatch):
    """The host's int8 reference takes ~20 s to rebuild (export + convert); each in-process bench
    here computes it for the same run and images, so compute it once per session."""
    real = remote_bench.host_references

    def cached(run, x, names):
        digest = hashlib.sha1(x.tobytes()).hexdigest()
        for name in names - {n for n, d in _REFERENCES if d == digest}:
            _REFERENCES[name, digest] = real(run, x, {name})[name]
        return {name: _REFERENCES[name, digest] for name in names}

    monkeypatch.setattr(remote_bench, "host_references", cached)


@pytest.fixture
def fake_device(fakes, tmp_path_factory):
    """Fake adb/ssh/scp on PATH (test_transports' fixture); returns (device dir, recorded argv lists)."""
    return str(tmp_path_factory.mktemp("device")), fakes


def copy_run(src: Path, dst: Path, files=("run.json", "float.pt", "qat.pt", "model_int8.tflite")) -> Path:
    dst.mkdir(parents=True)
    for f in files:
        shutil.copy(src / f, dst / f)
    return dst


def python_without_executorch(directory: Path) -> Path:
    """A Python (at a path with a space and a quote) that cannot import executorch, like a board without it."""
    stub = directory / "stub"
    (stub / "executorch").mkdir(parents=True)
    (stub / "executorch" / "__init__.py").write_text("raise ImportError('executorch is not installed on this board')\n")
    python = directory / "board's python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(stub))} exec {shlex.quote(sys.executable)} \"$@\"\n")
    python.chmod(0o755)
    return python


# ---------------------------------------------------------------- local


def test_cli_bench_on_local_device_writes_json_markdown_and_plot(demo_run, tmp_path):
    out, _ = demo_run
    proc = cli("--quiet", "bench", "--run", out, "--device", "local", "--runs", 4, "--warmup", 1,
                   "--json", tmp_path / "dev.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "dev.json").read_text())
    on_disk = {a.name for a in RUNNABLE if Run(out).artifact_path(a.name).is_file()}
    assert set(result["artifacts"]) == on_disk >= {"tflite_fp32", "tflite_int8", "executorch_fp32", "executorch_int8"}
    assert result["device"]["litert"]["module"] == "ai_edge_litert" and result["num_test"] == 360
    for name, a in result["artifacts"].items():
        assert a["status"] == "ok", (name, a.get("reason"))
        assert a["agreement_with_reference"] >= 0.99, (name, a)
        lat = a["latency_ms"]
        assert lat["count"] == 4 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"] and lat["threads"] == 1
    assert "| tflite_int8 | ai_edge_litert" in proc.stdout
    assert "| executorch_int8 |" in (tmp_path / "dev.md").read_text()
    assert (tmp_path / "dev_latency.png").stat().st_size > 0


def test_a_runtime_the_device_lacks_is_skipped_with_the_reason(demo_run, tmp_path):
    out, _ = demo_run
    python = python_without_executorch(tmp_path / "py dir")
    transport = LocalTransport(str(python))
    result = bench_on_device(Run(out), transport, DeviceBenchConfig(runs=3, warmup=0, images=IMAGES,
                                                                       artifacts=("tflite_fp32", "executorch_int8")))
    assert result["device"]["executorch"] is None and result["num_test"] == IMAGES
    tfl, pte = result["artifacts"]["tflite_fp32"], result["artifacts"]["executorch_int8"]
    assert tfl["status"] == "ok" and tfl["agreement_with_reference"] == 1.0 and tfl["max_abs_diff"] < 1e-3
    assert pte["status"] == "skipped" and pte["latency_ms"] is None
    assert pte["reason"] == f"no ExecuTorch runtime (executorch) in local:{python}"
    assert f"- executorch_int8: {pte['reason']}" in markdown(result)


def test_unknown_artifact_names_what_is_valid(demo_run):
    out, _ = demo_run
    with pytest.raises(SeEdgeError, match="unknown artifact.*tflite_int4; valid: tflite_fp32, tflite_int8"):
        bench_on_device(Run(out), LocalTransport(), DeviceBenchConfig(artifacts=("tflite_int4",)))


# ---------------------------------------------------------------- adb and ssh (fakes)


def test_adb_device_with_benchmark_model(demo_run, fake_device, tmp_path):
    out, _ = demo_run
    device_dir, calls = fake_device
    tool = tmp_path / "android tools" / "benchmark_model"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\ncat <<'EOF'\n" + BENCHMARK_MODEL_OUTPUT + "EOF\n")
    transport = AdbTransport("emulator-5554", python=sys.executable, device_dir=device_dir)
    w = transport.workdir
    result = bench_on_device(Run(out), transport, DeviceBenchConfig(runs=5, warmup=1, images=IMAGES,
                                                                       artifacts=("tflite_int8",), runner_bin=str(tool)))
    entry = result["artifacts"]["tflite_int8"]
    assert entry["status"] == "ok" and entry["agreement_with_reference"] >= 0.99 and entry["latency_ms"]["count"] == 5
    bm = entry["benchmark_model"]
    assert bm["status"] == "ok" and bm["latency_ms"]["p50"] == 0.065 and bm["latency_ms"]["count"] == 5
    assert bm["load_ms"] == 3.2 and bm["first_ms"] == 0.812

    adb = [shutil.which("adb"), "-s", "emulator-5554"]
    python, runner_py, model = shlex.quote(sys.executable), f"{w}/runner.py", f"{w}/model_int8.tflite"
    assert calls() == [
        [*adb, "get-state"],
        [*adb, "shell", f"mkdir -p {w}"],
        [*adb, "push", str(runner.__file__), runner_py],
        [*adb, "push", calls()[3][4], f"{w}/inputs.npy"],
        [*adb, "shell", f"cd {w} && {python} {runner_py} --runtimes"],
        [*adb, "push", str(out / "model_int8.tflite"), model],
        [*adb, "shell", f"cd {w} && {python} {runner_py} {model} --inputs {w}/inputs.npy --outputs "
                        f"{w}/tflite_int8.outputs.npy --runs 5 --warmup 1 --threads 1 --json {w}/tflite_int8.stats.json"],
        [*adb, "pull", f"{w}/tflite_int8.outputs.npy", calls()[7][5]],
        [*adb, "pull", f"{w}/tflite_int8.stats.json", calls()[8][5]],
        [*adb, "push", str(tool), f"{w}/benchmark_model"],
        [*adb, "shell", f"cd {w} && chmod 755 {w}/benchmark_model"],
        [*adb, "shell", f"cd {w} && {w}/benchmark_model --graph={model} --num_threads=1 --num_runs=5 "
                        "--warmup_runs=1 --min_secs=0 --warmup_min_secs=0"],
        [*adb, "shell", f"rm -rf {w}"],
    ]


def test_adb_device_without_python_still_runs_benchmark_model(demo_run, fake_device, tmp_path):
    out, _ = demo_run
    device_dir, _ = fake_device
    tool = tmp_path / "benchmark_model"
    tool.write_text("#!/bin/sh\ncat <<'EOF'\n" + BENCHMARK_MODEL_OUTPUT + "EOF\n")
    transport = AdbTransport(None, python="no-python-on-this-phone", device_dir=device_dir)
    result = bench_on_device(Run(out), transport, DeviceBenchConfig(runs=5, warmup=1, images=IMAGES,
                                                                       artifacts=("tflite_int8",), runner_bin=str(tool)))
    entry = result["artifacts"]["tflite_int8"]
    assert entry["status"] == "skipped" and "no-python-on-this-phone cannot run runner.py on adb" in entry["reason"]
    assert entry["benchmark_model"]["status"] == "ok" and entry["benchmark_model"]["latency_ms"]["p50"] == 0.065


def test_ssh_board_with_a_run_path_holding_a_space_and_a_quote(demo_run, fake_device, tmp_path):
    out, _ = demo_run
    device_dir, calls = fake_device
    run_dir = copy_run(out, tmp_path / "my run's dir")
    transport = SshTransport("pi@board", 2222, python=sys.executable, device_dir=device_dir)
    result = bench_on_device(Run(run_dir), transport, DeviceBenchConfig(runs=3, warmup=0, images=IMAGES))
    assert list(result["artifacts"]) == ["tflite_int8"], "only the files the run holds"
    entry = result["artifacts"]["tflite_int8"]
    assert entry["status"] == "ok" and entry["agreement_with_reference"] >= 0.99
    scp = [shutil.which("scp"), "-q", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-P", "2222"]
    assert [*scp, str(run_dir / "model_int8.tflite"), f"pi@board:{transport.workdir}/model_int8.tflite"] in calls()
    assert not Path(transport.workdir).exists()


def test_a_runner_crash_on_the_device_is_an_error(demo_run, fake_device, tmp_path):
    out, _ = demo_run
    device_dir, _ = fake_device
    crashing = tmp_path / "python"
    crashing.write_text(f"#!/bin/sh\ncase \"$*\" in *--runtimes*) exec {shlex.quote(sys.executable)} \"$@\";; esac\n"
                        "echo 'Segmentation fault' >&2\nexit 139\n")
    crashing.chmod(0o755)
    transport = AdbTransport("s1", python=str(crashing), device_dir=device_dir)
    with pytest.raises(SeEdgeError, match=r"runner.py failed on adb:s1 for tflite_int8 \(exit 139: killed by SIGSEGV, "
                                           r"the runtime crashed\): Segmentation fault"):
        bench_on_device(Run(out), transport, DeviceBenchConfig(runs=2, warmup=0, images=IMAGES, artifacts=("tflite_int8",)))


# ---------------------------------------------------------------- CLI errors


def test_cli_bad_device_spec(demo_run):
    out, _ = demo_run
    assert_one_line_error(cli("bench", "--run", out, "--device", "usb:phone"), "unknown device 'usb:phone'",
                          "valid: local, local:/path/to/python, adb, adb:SERIAL, ssh:[user@]host[:port]")


def test_cli_device_options_need_a_device(demo_run):
    out, _ = demo_run
    assert_one_line_error(cli("bench", "--run", out, "--native"), "--native need --device SPEC")


def test_cli_missing_adb(demo_run, tmp_path):
    out, _ = demo_run
    assert_one_line_error(cli("bench", "--run", out, "--device", "adb:emulator-5554", env={"PATH": str(tmp_path)}),
                          "adb not found on PATH")


def test_cli_native_host_build_is_for_local_devices_only(demo_run):
    out, _ = demo_run
    assert_one_line_error(cli("bench", "--run", out, "--device", "ssh:board", "--native"),
                          "which run on --device local only", "--native PATH")


# ---------------------------------------------------------------- runner.py --runtimes, benchmark_model output


def test_runner_lists_runtimes_without_importing_them(tmp_path):
    proc = subprocess.run([sys.executable, runner.__file__, "--runtimes"], capture_output=True, text=True, timeout=60)
    info = json.loads(proc.stdout)
    assert info["litert"]["module"] == "ai_edge_litert" and info["executorch"]["module"] == "executorch"
    python = python_without_executorch(tmp_path)
    proc = subprocess.run([str(python), runner.__file__, "--runtimes"], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout)["executorch"] is None


def test_benchmark_model_output_is_parsed_in_milliseconds():
    s = parse_output(BENCHMARK_MODEL_OUTPUT, threads=2)
    assert s["count"] == 5 and s["p50"] == 0.065 and s["p5"] == 0.061 and s["p95"] == 0.07
    assert s["mean"] == pytest.approx(0.0652) and s["min"] == 0.061 and s["max"] == 0.07 and s["std"] == 0.003
    assert s["p90"] is None and s["p99"] is None, "benchmark_model does not compute them"
    assert (s["load_ms"], s["first_ms"], s["peak_memory_mb"], s["threads"]) == (3.2, 0.812, 3.75, 2)


def test_old_benchmark_model_output():
    s = parse_output("count=459 first=2143 curr=2101 min=2056 max=2656 avg=2177.1 std=124\n\n"
                     "Average inference timings in us: Warmup: 2331.42, Init: 896, no stats: 2177.1\n")
    assert s["count"] == 459 and s["mean"] == pytest.approx(2.1771) and s["p50"] is None and s["load_ms"] == 0.896
    same = parse_output("INFO: count=3 curr=1500(all same)")
    assert same["p50"] == same["min"] == same["mean"] == 1.5 and same["std"] == 0


def test_benchmark_model_output_without_statistics():
    with pytest.raises(SeEdgeError, match="no statistics in benchmark_model's output.*Failed to load model"):
        parse_output("ERROR: Failed to load model\n")


def test_bench_on_a_device_where_nothing_ran_exits_2(monkeypatch, tmp_path, capsys):
    """Regression: `bench --device` exited 0 when every file was skipped."""
    import se_edge.device.remote_bench as rb
    import se_edge.device.report as device_report
    from se_edge.cli import main

    skipped = {"status": "skipped", "reason": "python3 cannot run runner.py on adb"}
    result = {"device": {"spec": "adb:phone"}, "artifacts": {"tflite_int8": dict(skipped), "executorch_int8": dict(skipped)}}
    monkeypatch.setattr(rb, "device_bench", lambda *a, **k: (result, {"json": str(tmp_path / "d.json")}))
    monkeypatch.setattr(device_report, "summary", lambda r: "summary")
    assert main(["--quiet", "bench", "latency", "--run", str(tmp_path), "--device", "adb:phone"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "nothing ran on adb:phone: every file was skipped (python3 cannot run runner.py" in err
    result["artifacts"]["tflite_int8"] = {"status": "ok"}
    assert main(["--quiet", "bench", "latency", "--run", str(tmp_path), "--device", "adb:phone"]) == 0
