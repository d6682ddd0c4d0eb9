"""The CLI: thin over the API; bad input is one line on stderr and exit code 2."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import assert_one_line_error, cli, se_edge


def test_help_is_fast_and_lists_subcommands():
    proc = se_edge("--help")
    assert proc.returncode == 0
    for cmd in ("run", "train", "quantize", "export", "parity", "bench"):
        assert cmd in proc.stdout
        assert se_edge(cmd, "--help").returncode == 0
    probe = subprocess.run([sys.executable, "-c", "import sys, se_edge.cli; se_edge.cli.build_parser(); "
                            "print(any(m.split('.')[0] in ('torch', 'executorch', 'litert_torch') for m in sys.modules))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "False", "the CLI must not import torch/executorch/litert_torch to parse arguments"


def test_unknown_model(tmp_path):
    assert_one_line_error(se_edge("run", "--model", "resnet9000", "--out", tmp_path / "r"), "unknown model 'resnet9000'",
                          "valid: se_cnn")


def test_unknown_dataset(tmp_path):
    assert_one_line_error(se_edge("train", "--data", "imagenet", "--out", tmp_path / "r"), "unknown dataset 'imagenet'",
                          "digits")


def test_missing_and_malformed_idx_directory(tmp_path):
    assert_one_line_error(cli("train", "--data", tmp_path / "missing", "--out", tmp_path / "r"), "no such directory")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    (bad / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abcde")
    assert_one_line_error(cli("train", "--data", bad, "--out", tmp_path / "r"), "malformed IDX file")


def test_missing_run_directory(tmp_path):
    assert_one_line_error(se_edge("parity", "--run", tmp_path / "nothing"), "run directory not found")


def test_corrupt_artifacts_give_one_line(demo_run, tmp_path):
    # se_edge, not cli: these commands load runtimes before they refuse, and a runtime another test already set
    # up in this process logs lines ("Resetting threadpool") that a user's fresh command would not
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    data = bytearray((copy / "model_int8.pte").read_bytes())
    data[4:8] = b"\x00\x13\x37\x00"  # ExecuTorch aborts the process on this (SIGABRT, no message) if it loads it
    (copy / "model_int8.pte").write_bytes(bytes(data))
    # The run's lineage catches it first: the file is not the one se_edge wrote.
    assert_one_line_error(se_edge("parity", "--run", copy), "model_int8.pte has changed since se_edge made it",
                          "se-edge export")
    # Without lineage (a run from before it was recorded), the header check stops it before ExecuTorch loads it.
    record = json.loads((copy / "run.json").read_text())
    del record["lineage"], record["version"]  # a version-1 record: no lineage to check the files
    (copy / "run.json").write_text(json.dumps(record))
    assert_one_line_error(se_edge("parity", "--run", copy), "model_int8.pte is not a valid .pte file", "ExecuTorch")
    assert_one_line_error(se_edge("bench", "latency", "--run", copy, "--runs", "2"), "model_int8.pte is not a valid")
    (copy / "model_int8.pte").unlink()
    (copy / "float.pt").write_bytes(b"PK\x03\x04 truncated")
    assert_one_line_error(se_edge("parity", "--run", copy), "cannot load checkpoint", "float.pt")


def test_debug_shows_traceback(tmp_path):
    proc = se_edge("parity", "--run", tmp_path / "nothing", env={"SE_EDGE_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_parity_json_on_unseen_data(demo_run, idx_dir, tmp_path):
    out, _ = demo_run
    proc = cli("--quiet", "parity", "--run", out, "--data", idx_dir, "--json", tmp_path / "p.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["num_test"] == 297
    assert result["artifacts"]["tflite_int8"]["runtime"] == "litert"
    assert "tflite_int8" in proc.stdout
    assert "stress" not in result


def test_parity_stress_prints_and_writes_the_shifted_set(demo_run, tmp_path):
    out, _ = demo_run
    proc = cli("--quiet", "parity", "--run", out, "--stress", "3", "--json", tmp_path / "p.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stress = json.loads((tmp_path / "p.json").read_text())["stress"]
    assert stress["seed"] == 3 and stress["num_test"] == 360 and len(stress["artifacts"]) == 13  # the fp16 pair too
    assert "### Under a seeded shift (seed 3)" in proc.stdout
    table = proc.stdout.split("seed 3)")[1]
    for name, a in stress["artifacts"].items():
        assert f"| {name} | {a['accuracy']:.4f} |" in table
    assert_one_line_error(cli("parity", "--run", out, "--stress", "-1"), "--stress: must be a whole number from 0 to 4294967295")


def test_bench_json(demo_run, tmp_path):
    out, _ = demo_run
    proc = cli("--quiet", "bench", "latency", "--run", out, "--runs", "5", "--warmup", "1", "--json", tmp_path / "b.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lat = json.loads((tmp_path / "b.json").read_text())["artifacts"]
    assert set(lat) >= {"tflite_int8", "executorch_int8"}
    assert all(v["latency_ms"]["count"] == 5 and v["latency_ms"]["p50"] > 0 for v in lat.values())


def test_device_tests_stop_with_one_line_on_a_damaged_pte(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    data = bytearray((copy / "model_int8.pte").read_bytes())
    data[4:8] = b"\x00\x13\x37\x00"
    (copy / "model_int8.pte").write_bytes(bytes(data))
    for lineage in (True, False):
        if not lineage:  # a run from before lineage: the header check names the file
            record = json.loads((copy / "run.json").read_text())
            del record["lineage"], record["version"]
            (copy / "run.json").write_text(json.dumps(record))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "device_tests",
                               "--run-dir", str(copy)], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr[-2000:])
        assert "model_int8.pte" in lines[0] and ("has changed" if lineage else "is not a valid .pte file") in lines[0]
