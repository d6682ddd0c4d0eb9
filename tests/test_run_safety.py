"""Nothing lost, nothing clobbered: outputs checked before work, one run per directory, no stale files."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_one_line_error, cli, se_edge


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_json_outputs_never_replace_the_runs_files_links_or_directories(run_copy, tmp_path):
    before = _snapshot(run_copy)
    assert_one_line_error(cli("parity", "--run", run_copy, "--json", run_copy / "run.json"),
                          "refusing to write", "one of the run's own files")
    assert_one_line_error(cli("bench", "latency", "--run", run_copy, "--json", run_copy / "float.pt"),
                          "one of the run's own files")
    target = tmp_path / "kept.json"
    target.write_text("keep")
    (tmp_path / "link.json").symlink_to(target)
    assert_one_line_error(cli("parity", "--run", run_copy, "--json", tmp_path / "link.json"), "it is a symlink")
    assert_one_line_error(cli("parity", "--run", run_copy, "--json", tmp_path), "it is a directory")
    assert_one_line_error(cli("parity", "--run", run_copy, "--json", tmp_path / ("x" * 300 + ".json")),
                          "longer than 255 bytes")
    if Path("/proc/self").is_dir():  # root passes os.access there; only creating a file tells
        proc = cli("parity", "--run", run_copy, "--json", "/proc/x.json")
        assert_one_line_error(proc, "cannot write /proc/x.json")
        assert proc.stdout == "", "the --json path is checked before the evaluation, whose table goes to stdout"
    assert (tmp_path / "link.json").is_symlink() and target.read_text() == "keep"
    assert _snapshot(run_copy) == before


def test_unusable_out_directories_fail_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_one_line_error(cli("train", "--out", tmp_path / "file", "--epochs", "0"), "exists and is not a directory")
    assert_one_line_error(cli("train", "--out", tmp_path / "file" / "run", "--epochs", "0"),
                          "cannot create output directory")
    assert (tmp_path / "file").read_text() == "x"
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here: a directory no one can create files in")
    assert_one_line_error(cli("train", "--out", "/proc/se_edge_run", "--epochs", "0"),
                          "cannot create output directory /proc/se_edge_run")


def test_a_second_run_into_a_busy_directory_refuses(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / ".se_edge.lock").write_text(str(os.getpid()))  # this test process is alive: the directory is in use
    assert_one_line_error(cli("train", "--out", busy, "--epochs", "0"), "is in use by another se-edge process")
    assert sorted(p.name for p in busy.iterdir()) == [".se_edge.lock"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (busy / ".se_edge.lock").write_text(dead.stdout.strip())  # left by a killed run
    proc = cli("--quiet", "train", "--out", busy, "--epochs", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (busy / "float.pt").is_file() and not (busy / ".se_edge.lock").exists()


def test_retraining_into_a_finished_run_removes_what_it_outdates(run_copy):
    assert (run_copy / "qat.pt").is_file() and (run_copy / "model_int8.tflite").is_file()
    proc = cli("train", "--out", run_copy, "--epochs", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "removed" in proc.stdout and "qat.pt" in proc.stdout
    stale = [n for n in ("qat.pt", "ptq.pt", "model_fp32.tflite", "model_int8.tflite", "model_int8.pte",
                         "model_int8_ptq.tflite", "report.json", "report.md") if (run_copy / n).exists()]
    assert stale == [] and (run_copy / "float.pt").is_file() and (run_copy / "run.json").is_file()
    assert_one_line_error(se_edge("parity", "--run", run_copy), "qat.pt is missing", "se-edge quantize")


@pytest.mark.parametrize("args, fragment", [
    (("run", "--lr", "nan"), "--lr: must be a finite number > 0"),
    (("run", "--qat-lr", "inf"), "--qat-lr: must be a finite number > 0"),
    (("run", "--warmup", "-1"), "--warmup: must be 0 or more"),
    (("bench", "latency", "--run", "x", "--timeout", "nan"), "--timeout: must be a number of seconds > 0 and at most 86400"),
    (("bench", "latency", "--run", "x", "--warmup", "-5"), "--warmup: must be 0 or more"),
    (("train", "--size", "100000", "--epochs", "0"), "size must be from 1 to 4096 pixels"),
])
def test_arguments_are_checked_for_range_and_finiteness(args, fragment, tmp_path):
    assert_one_line_error(cli(*args, "--out", tmp_path / "r") if args[0] != "bench" else cli(*args), fragment)
    assert not (tmp_path / "r").exists()


def _record(run):
    return json.loads((run / "run.json").read_text())


def test_each_file_records_its_parent_and_stale_or_foreign_files_are_refused(run_copy):
    # the refusals below run in a fresh process (se_edge, not cli), as test_files_not_in_the_lineage... says why
    import torch

    from se_edge.run import Run

    lineage = _record(run_copy)["lineage"]
    assert lineage["qat.pt"]["parent"] == "float.pt" and lineage["model_int8.pte"]["parent"] == "qat.pt"
    assert lineage["model_int8.tflite"]["parent_sha256"] == lineage["qat.pt"]["sha256"]
    assert lineage["float.pt"]["parent"] is None and lineage["float.pt"]["settings_sha256"]
    # qat.pt made again (here: one weight nudged) while the old exports stay: they are stale now.
    state = torch.load(run_copy / "qat.pt", weights_only=True)
    key = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[key] = state[key] * 1.01
    torch.save(state, run_copy / "qat.pt")
    Run(run_copy).made("reference_int8")
    assert_one_line_error(se_edge("parity", "--run", run_copy), "model_int8.tflite is stale",
                          "the qat.pt it was made from is another one now", "se-edge export")
    assert_one_line_error(se_edge("bench", "latency", "--run", run_copy, "--runs", "2"), "is stale")
    # A checkpoint of another graph in qat.pt's place (the PTQ one: histogram observers) is one line too. (Its
    # stale exports removed: every file's lineage is checked before any is loaded, so they would be named first.)
    shutil.copy(run_copy / "ptq.pt", run_copy / "qat.pt")
    Run(run_copy).made("reference_int8")
    for stale in ("model_int8.tflite", "model_int8.pte", "model_int8_app.tflite", "model_int8_app.pte"):
        (run_copy / stale).unlink()
    assert_one_line_error(se_edge("parity", "--run", run_copy), "cannot load", "qat.pt into the run's model",
                          "se-edge quantize")


def test_files_not_in_the_lineage_or_with_other_settings_are_refused(run_copy):
    # se_edge, not cli: these commands load runtimes before they refuse, and a runtime another test already set
    # up in this process logs lines ("Resetting threadpool") that a user's fresh command would not
    record = _record(run_copy)
    entry = record["lineage"].pop("model_int8_ptq.pte")  # as if the file were copied in from another run
    (run_copy / "run.json").write_text(json.dumps(record))
    assert_one_line_error(se_edge("parity", "--run", run_copy), "model_int8_ptq.pte is not in the run's lineage")
    record["lineage"]["model_int8_ptq.pte"] = entry
    record["qat"]["epochs"] += 1  # run.json now describes another QAT than the one in qat.pt
    (run_copy / "run.json").write_text(json.dumps(record))
    assert_one_line_error(se_edge("parity", "--run", run_copy), "qat.pt was made with other settings")
    import torch

    from se_edge.run import Run

    torch.save({"conv.weight": torch.zeros(1)}, run_copy / "float.pt")  # a float.pt with the wrong keys
    Run(run_copy).made("float")
    # parity checks every file's lineage before it loads one: what was made from the old float.pt is named first
    assert_one_line_error(se_edge("parity", "--run", run_copy), "qat.pt is stale", "the float.pt it was made from")
    assert_one_line_error(se_edge("export", "--run", run_copy), "cannot load", "float.pt into the run's model",
                          "se-edge train")


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path):
    """RLIMIT_FSIZE makes writes past 16 kB fail with EFBIG, as a full disk fails them with ENOSPC."""
    pytest.importorskip("resource")
    run = tmp_path / "r"
    assert se_edge("--quiet", "train", "--out", run, "--epochs", "0").returncode == 0
    before = (run / "float.pt").read_bytes()
    assert len(before) > 16_000

    # The limit is set by the child itself (no preexec_fn: forking a threaded pytest can deadlock).
    limited = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000)); "
               "sys.argv = ['se-edge', *sys.argv[1:]]; runpy.run_module('se_edge.cli', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", limited, "train", "--out", str(run), "--epochs", "0", "--seed", "1"],
                          capture_output=True, text=True)
    assert_one_line_error(proc, f"cannot write {run / 'float.pt'}: File too large", "nothing was replaced")
    assert (run / "float.pt").read_bytes() == before
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


def test_a_run_without_lineage_stays_without_one_when_a_file_is_made(demo_run, tmp_path):
    """A run made before lineage existed: recording a new file must not start a lineage that lists only it
    (which would then refuse every other file as 'not in the run's lineage')."""
    import json
    import shutil

    from se_edge.run import Run

    out, _ = demo_run
    copy = tmp_path / "legacy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt", "*.tflite", "*.pte"))
    record = json.loads((copy / "run.json").read_text())
    del record["lineage"], record["version"]  # version 1: the releases before lineage
    (copy / "run.json").write_text(json.dumps(record))
    run = Run(copy)
    run.made("reference_int8", qat=record["qat"])
    assert run.record.lineage is None and not run.vouched and "lineage" not in json.loads((copy / "run.json").read_text())
    assert run.require("float") == copy / "float.pt" and run.require("reference_int8") == copy / "qat.pt"


def test_a_refused_quantize_leaves_every_file_of_the_run_as_it_was(demo_run, tmp_path):
    """`se-edge quantize --device cuda` where there is no GPU is refused before the stale exports and reports are
    removed (issue 24's first case): every file of the run is still there, byte for byte."""
    import hashlib

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))

    def files():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in copy.iterdir()}

    before = files()
    assert {"model_int8.tflite", "model_int8.pte", "report.json", "report.md", "accuracy.png"} <= set(before)
    assert_one_line_error(cli("quantize", "--run", copy, "--device", "cuda"), "no CUDA GPU is available")
    assert_one_line_error(cli("quantize", "--run", copy, "--calibration-images", "0"), "nothing to calibrate on")
    assert files() == before
