"""QAT under torchrun: 2 gloo processes on CPU, DistributedDataParallel, rank-0 checkpoint and export."""
import json
import shutil
import subprocess
import sys

import torch

from se_edge.evaluate.parity import run_parity
from se_edge.export.int8 import to_pte, to_tflite
from se_edge.run import Run


def test_two_process_gloo_qat_exports_and_evaluates(demo_run, tmp_path):
    out, _ = demo_run
    run_dir = tmp_path / "ddp"
    shutil.copytree(out, run_dir, ignore=shutil.ignore_patterns("*.tflite", "*.pte", "qat.pt", "ptq.pt", "*.ckpt"))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "se_edge.cli", "--quiet", "quantize", "--run-dir", str(run_dir), "--qat-epochs", "1", "--no-ptq",
         "--device", "cpu"],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("QAT result written") == 1, "only rank 0 reports"
    cfg = json.loads((run_dir / "run.json").read_text())
    assert cfg["qat"]["world_size"] == 2 and len(cfg["qat"]["history"]) == 1
    state = torch.load(run_dir / "qat.ckpt", weights_only=True)
    assert len(state["history"]) == 1

    # The QAT model's int8 pair (the float and app files' exports are the demo run's, tested there), then parity.
    run = Run(run_dir)
    for name, write in (("tflite_int8", to_tflite), ("executorch_int8", to_pte)):
        write(run.load_prepared("qat"), run.sample_input(), run.artifact_path(name))
        run.made(name)
    result = run_parity(run, progress=False)
    a = result["artifacts"]
    assert a["tflite_int8"]["agreement_with_reference"] >= 0.99
    assert a["executorch_int8"]["agreement_with_reference"] >= 0.99
    assert a["tflite_int8"]["accuracy"] >= a["float"]["accuracy"] - 0.03


def test_resume_continues_from_the_checkpoint(demo_run, tmp_path):
    from se_edge.config import QatConfig
    from se_edge.pipeline import qat_stage

    out, _ = demo_run
    run_dir = tmp_path / "resume"
    shutil.copytree(out, run_dir, ignore=shutil.ignore_patterns("*.tflite", "*.pte", "*.ckpt"))
    run = Run(run_dir)
    first = qat_stage(run, QatConfig(epochs=1, device="cpu"), progress=False)
    assert len(first["history"]) == 1
    resumed = qat_stage(run, QatConfig(epochs=2, device="cpu"), resume=True, progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == first["history"][0], "the first epoch comes from the checkpoint, not a rerun"
