"""The torch-free runner: loads files in their runtimes, quantises int8 I/O, and times runs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from se_edge import runner


def test_runner_module_imports_no_torch():
    path = runner.__file__
    probe = subprocess.run([sys.executable, "-c", f"import importlib.util, sys; s=importlib.util.spec_from_file_location('r', {path!r}); "
                            "m=importlib.util.module_from_spec(s); s.loader.exec_module(m); "
                            "print('torch' in sys.modules, 'se_edge' in sys.modules)"], capture_output=True, text=True)
    assert probe.stdout.split() == ["False", "False"], probe.stderr


def test_summarize_percentiles():
    s = runner.summarize(list(range(1, 101)))
    assert s["count"] == 100 and s["min"] == 1 and s["p50"] == 50.5 and abs(s["p90"] - 90.1) < 1e-9


def test_runner_cli_outputs_and_stats(demo_run, tmp_path):
    out, _ = demo_run
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, runner.__file__, str(out / "model_int8.tflite"), "--inputs", str(tmp_path / "x.npy"),
                           "--outputs", str(tmp_path / "y.npy"), "--runs", "7", "--warmup", "2",
                           "--json", str(tmp_path / "s.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 10) and np.isfinite(y).all()
    model = runner.open_model(str(out / "model_int8.tflite"))
    np.testing.assert_array_equal(y, runner.predict(model, x))
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["count"] == 7 and stats["threads"] == 1 and stats["runtime"] == "litert"
    assert stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"] and stats["load_ms"] > 0


def test_runner_cli_bad_model_is_exit_2(tmp_path):
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run([sys.executable, runner.__file__, str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "is not a valid .tflite file" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, runner.__file__, str(tmp_path / "m.onnx")], capture_output=True, text=True)
    assert proc.returncode == 2 and "valid: .tflite, .pte" in proc.stderr


def test_damaged_headers_are_refused_before_the_runtime_loads_them(tmp_path):
    """ExecuTorch aborts the whole process (SIGABRT, no message) on a .pte with damaged header bytes."""
    from se_edge.runner import RunnerError, open_model

    for name, data in (("bad.pte", b"\x3c\x00\x00\x00XX12" + bytes(64)), ("random.pte", bytes((i * 37 + 11) % 256 for i in range(256))),
                       ("bad.tflite", b"\x1c\x00\x00\x00TFL4" + bytes(64)), ("short.tflite", b"TFL3"),
                       ("offset.pte", b"\xff\xff\x00\x00ET12" + bytes(16))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(RunnerError, match=f"{name} is not a valid"):
            open_model(str(tmp_path / name))


def test_probe_turns_a_runtime_crash_into_one_line(tmp_path, monkeypatch):
    """A runtime that aborts on a file (native code; no exception to catch) kills only the probe's child."""
    model = tmp_path / "model.pte"
    model.write_bytes(b"\x10\x00\x00\x00ET12" + bytes(64))  # passes the header check
    aborting = tmp_path / "aborting-python"
    aborting.write_text("#!/bin/sh\nkill -ABRT $$\n")  # stands in for a runtime that aborts while loading
    aborting.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(aborting))
    with pytest.raises(runner.RunnerError, match=r"model.pte: the ExecuTorch runtime crashed \(SIGABRT\) loading and "
                                                 r"running it; the file is damaged .*; re-export it"):
        runner.probe(str(model))


def test_probe_passes_a_good_file_and_names_a_bad_one(demo_run, tmp_path):
    tflite_model = demo_run[0] / "model_int8.tflite"
    runner.probe(str(tflite_model))  # loads and runs once in a child: no error
    damaged = tmp_path / "damaged.tflite"
    data = tflite_model.read_bytes()
    damaged.write_bytes(data[:8] + bytes(len(data) - 8)[:len(data) // 2])  # header kept, body gone
    with pytest.raises(runner.RunnerError, match=r"cannot load .*damaged.tflite as a TFLite model"):
        runner.probe(str(damaged))
