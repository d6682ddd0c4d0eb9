"""The arm64 board (`make arm64-board`): every exported file of a run on arm64 kernels, through the native runners
under QEMU user mode, in a Debian bookworm arm64 sysroot with no Python.

    make device-test-arm64 RUN=runs/demo

Checks, per file: it ran natively there; an int8 file's outputs are within one LSB of the same file run on this
host (and how many are bit-identical, printed), an fp32 file's within 1e-4, an fp16 file's within fp16 rounding of
its largest output (the A76 computes in fp16, this host in fp32); the latency is labelled emulated and never plotted.
Per-op profiles are recorded there, with no Python, by the native runners. The sysroot the runs used holds no Python. A wrong output is reported apart, and the CPU model that
QEMU 7.2 computes wrong int8 results on is refused.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from se_edge.device import arm64, profile
from se_edge.run import RUNNABLE, Run

BOARD = arm64.BOARD_DIR


@pytest.fixture(scope="module")
def board() -> dict:
    if not (BOARD / "board.json").is_file():
        pytest.skip(f"no arm64 board at {BOARD}: `make arm64-board` could not build it here (its output says why)")
    return arm64.load_board(BOARD)


@pytest.fixture(scope="module")
def bench(board, run_dir, tmp_path_factory):
    """`se-edge bench latency --device qemu-arm64 --native` on the run, as a user runs it."""
    report = tmp_path_factory.mktemp("arm64") / "device-qemu.json"
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "bench", "latency", "--run", str(run_dir), "--device",
                           "qemu-arm64", "--native", "--runs", "10", "--warmup", "2", "--json", str(report)],
                          capture_output=True, text=True, timeout=1800)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(report.read_text()), report, proc.stdout


def test_the_sysroot_the_runs_used_has_no_python(bench, board):
    result, _, _ = bench
    sysroot = Path(result["device"]["sysroot"])
    assert sysroot == Path(board["sysroot"]).resolve() and (sysroot / "opt/se_edge/bin/pte_runner").is_file()
    assert result["device"]["python_in_sysroot"] == [] and arm64.pythons_in(sysroot) == []
    assert not list(sysroot.rglob("python*")) and (sysroot / "lib/ld-linux-aarch64.so.1").exists()
    assert result["device"]["python_executable"] is None


def test_every_exported_file_runs_on_arm64_kernels_and_matches_this_host(bench, run_dir):
    result, _, _ = bench
    exported = [a.name for a in RUNNABLE if Run(run_dir).artifact_path(a.name).is_file()]
    assert list(result["artifacts"]) == exported and len(exported) >= 6
    lines = []
    for name, entry in result["artifacts"].items():
        n = entry["native"]
        assert n["status"] == "ok", (name, n.get("reason"))
        assert n["device"]["machine"] == "aarch64" and n["device"]["cpu_model"] == "ARM Cortex-A76", n["device"]
        assert "asimddp" in n["device"]["int8_features"]  # the dot product int8 kernels use on this core
        c = n["check"]
        assert c["within"] and c["values"] == result["num_test"] * 10, (name, c)
        if entry["dtype"] == "fp32":
            assert c["max_abs_diff"] <= 1e-4
        elif "max_lsb" in c:
            assert c["max_lsb"] <= 1 + 1e-3
        lines.append(f"{name}: {c['bit_identical']} of {c['values']} values bit-identical, "
                     + (f"max {c['max_lsb']:.2f} LSB" if "max_lsb" in c else f"max abs diff {c['max_abs_diff']:.3g}")
                     + f", agreement {n['agreement_with_reference']:.4f} vs {entry['reference']}, emulated p50 "
                       f"{n['latency_ms']['p50']:.3f} ms")
    print("\n".join(lines))


def test_emulated_latency_is_labelled_and_never_plotted(bench):
    result, report, stdout = bench
    assert result["device"]["emulated"] and result["plots"] == []
    assert not report.with_name(report.stem + "_latency.png").exists()
    md = report.with_suffix(".md").read_text()
    assert "(emulated)" in md and "p50 emulated ms" in md and "EMULATED" in stdout


def test_the_native_runners_profile_each_file_on_the_board(board, run_dir, tmp_path):
    """`--profile` on the board: pte_runner's ETDump and tflite_runner's profile JSON recorded there (no Python),
    pulled back and summarised with every SE block of the model found and named, under an EMULATED heading."""
    report = tmp_path / "device-profile.json"
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "--quiet", "bench", "latency", "--run", str(run_dir),
                           "--device", "qemu-arm64", "--native", "--profile", "--runs", "3", "--warmup", "1",
                           "--artifacts", "tflite_int8,executorch_int8", "--json", str(report)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(report.read_text())
    expected = len(profile.se_module_names(Run(run_dir).load_float()))
    for name, runtime in (("tflite_int8", "litert"), ("executorch_int8", "executorch")):
        p = result["artifacts"][name]["native"]["profile"]
        assert p["runtime"] == runtime and p["runs"] == 3 and p["by_kind"]["conv"]["ms"] > 0, (name, p["by_kind"])
        assert p["se"]["found"] == p["se"]["expected"] == expected > 0 and p["se"]["named"], (name, p["se"])
        print(f"{name} on the board: ops sum {p['ops_ms']:.3f} ms = {100 * p['ops_vs_p50']:.0f} % of the emulated p50; "
              f"SE {100 * p['se']['share']:.1f} % of the ops' time")
    assert "## Per-op profiles on qemu-arm64" in proc.stdout and "EMULATED" in proc.stdout
    assert "## Per-op profiles on qemu-arm64" in report.with_suffix(".md").read_text()


def test_a_wrong_output_on_the_board_is_reported_apart(board, run_dir, tmp_path):
    """The board's own tflite_runner on the int8 file, held against this host's outputs moved by 2 LSB on one value:
    the run is a mismatch with the figures, never a passing row."""
    from se_edge.device.qemu import QemuTransport
    from se_edge.device.remote_bench import DeviceBenchConfig, eval_images
    from se_edge.device.session import Check, DeviceSession
    from se_edge.evaluate.models import predict
    from se_edge.evaluate.models import open_artifact
    from se_edge.evaluate.parity import output_lsb

    run = Run(run_dir)
    _, images = eval_images(run, 16)
    here = predict(open_artifact(run, "tflite_int8"), images.x)
    lsb = output_lsb(run, ["tflite_int8"])["tflite_int8"]
    moved = here.copy()
    moved[0, 0] += np.float32(2 * lsb)
    transport = QemuTransport()
    config = DeviceBenchConfig(runs=2, warmup=0, native_tflite=str(transport.installed("tflite_runner")),
                               artifacts=("tflite_int8",))
    with transport:
        session = DeviceSession(transport, tmp_path, images.x, config)
        session.probe()
        entry = session.run_artifact(run, "tflite_int8", here, images.y, Check(moved, lsb))
    n = entry["native"]
    assert n["status"] == "mismatch" and n["check"]["bit_identical"] == 16 * 10 - 1, n
    assert n["check"]["max_lsb"] == pytest.approx(2, abs=1e-3) and "2.00 LSB" in n["reason"]


def test_the_cpu_model_that_computes_wrong_int8_is_refused(board, run_dir):
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "bench", "latency", "--run", str(run_dir), "--device",
                           "qemu-arm64:max", "--native"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "CPU model 'max' is refused" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
