"""Configs: frozen, validated, each default once; settings reach every stage that uses them."""
import dataclasses
import json
import shutil

import pytest

from conftest import assert_one_line_error, cli, se_edge
from se_edge.config import OPTIONS, QatConfig, RunConfig, TrainConfig
from se_edge.errors import SeEdgeError
from se_edge.run import Run


def test_configs_are_frozen_and_validate_themselves():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.epochs = 3
    for options, fragment in (({"epochs": -1}, "epochs must be a whole number"), ({"distill": 3}, "distill must be from 0 to 1"),
                              ({"qat_epochs": 0}, "QAT needs 1 epoch"), ({"device": "tpu"}, "unknown device 'tpu'"),
                              ({"val_fraction": 0.5, "test_fraction": 0.5}, "must leave images to train on"),
                              ({"calibration_images": 0}, "--calibration-images 0"), ({"runs": 0}, "runs must be > 0"),
                              ({"qat_epoch": 2}, "unknown option qat_epoch; valid: "), ({"model": "x.py"}, "no factory"),
                              ({"model": "timm:x", "se": "hw"}, "shape zoo models only")):
        with pytest.raises(SeEdgeError, match=fragment):
            RunConfig.from_options(**options)
    assert isinstance(SeEdgeError("x"), ValueError), "API callers can catch ValueError"


def test_shared_settings_reach_float_training_and_qat():
    cfg = RunConfig.from_options(batch_size=16, device="cpu", seed=7, epochs=0, qat_epochs=2, qat_lr=2e-4)
    assert (cfg.train.batch_size, cfg.qat.batch_size) == (16, 16), "--batch-size reaches QAT too"
    assert cfg.train.device == cfg.qat.device == "cpu" and cfg.train.seed == cfg.qat.seed == cfg.data.seed == 7
    assert (cfg.train.epochs, cfg.qat.epochs, cfg.qat.lr) == (0, 2, 2e-4)
    assert RunConfig.from_options(epochs=None).train.epochs == TrainConfig.epochs, "None keeps the one default"
    assert RunConfig().qat.epochs == QatConfig.epochs == 4
    assert {"batch_size", "qat_epochs", "weights", "rewrite", "warmup"} <= set(OPTIONS)


def test_qat_gets_the_batch_size_and_the_runs_flips(demo_run, tmp_path, monkeypatch):
    """Regression: QAT trained with the default batch size and no flips whatever the run used."""
    import se_edge.quantize as quantize
    from se_edge.pipeline import qat_stage

    out, _ = demo_run
    run_dir = tmp_path / "rgb"
    shutil.copytree(out, run_dir, ignore=shutil.ignore_patterns("*.tflite", "*.pte", "*.ckpt"))
    seen = {}

    def fake_finetune(prepared, train, val, cfg, **kwargs):
        seen["cfg"] = cfg
        return []

    monkeypatch.setattr(quantize, "qat_finetune", fake_finetune)
    qat_stage(Run(run_dir), RunConfig.from_options(batch_size=24, device="cpu").qat, progress=False)
    assert seen["cfg"].batch_size == 24 and seen["cfg"].flip is False  # digits: greyscale, never flipped
    record = json.loads((run_dir / "run.json").read_text())
    record["preprocessing"]["in_chans"] = 3  # the same run, as if its images were RGB photos
    del record["lineage"], record["version"]  # (version 1, before lineage: its float.pt was not made with 3 channels)
    (run_dir / "run.json").write_text(json.dumps(record))
    monkeypatch.setattr(quantize, "prepare_qat", lambda model, sample: model)  # the 1-channel model never sees RGB here
    monkeypatch.setattr("se_edge.pipeline._test_accuracy", lambda *a, **k: 0.0)
    monkeypatch.setattr("se_edge.pipeline._save_state", lambda *a, **k: None)
    qat_stage(Run(run_dir), QatConfig(device="cpu"), progress=False)
    assert seen["cfg"].flip is True, "RGB runs fine-tune with the flips float training used"


def test_quantize_and_run_agree_on_resume(demo_run, tmp_path, monkeypatch):
    """`se-edge quantize --resume` and `se-edge run --resume` both call quantize_stages: an existing ptq.pt
    is kept, a missing one is made, and QAT resumes from its checkpoint."""
    import se_edge.pipeline as pipeline

    out, _ = demo_run
    run = Run(tmp_path / "r")
    shutil.copytree(out, run.path, ignore=shutil.ignore_patterns("*.tflite", "*.pte", "*.ckpt"))
    calls = []
    monkeypatch.setattr(pipeline, "ptq_stage", lambda run, qat, progress: calls.append("ptq") or {})
    monkeypatch.setattr(pipeline, "qat_stage", lambda run, qat, resume, progress: calls.append(("qat", resume)) or {})
    pipeline.quantize_stages(run, QatConfig(), ptq=True, resume=True, progress=False)
    assert calls == [("qat", True)], "ptq.pt exists: kept"
    run.artifact_path("reference_int8_ptq").unlink()
    calls.clear()
    pipeline.quantize_stages(run, QatConfig(), ptq=True, resume=True, progress=False)
    assert calls == ["ptq", ("qat", True)], "ptq.pt missing: made"
    calls.clear()
    pipeline.quantize_stages(run, QatConfig(), ptq=True, resume=False, progress=False)
    assert calls == ["ptq", ("qat", False)]
    from se_edge.cli import commands

    assert "quantize_stages" in commands.cmd_quantize.__code__.co_names


def test_bench_subcommands_and_old_flags(tmp_path):
    assert_one_line_error(cli("bench", "--zoo", "--size", "32"), "`se-edge bench --zoo` is now `se-edge bench zoo`",
                          "se-edge bench zoo --size 32")
    assert_one_line_error(cli("bench", "--compare-gates"), "is now `se-edge bench gates`")
    assert_one_line_error(cli("bench", "zoo", "--model", "nope"), "unknown model 'nope'", "valid: se_cnn")
    assert_one_line_error(cli("bench", "latency", "--run", tmp_path / "none"), "run directory not found")
    assert_one_line_error(cli("bench", "--run", tmp_path / "none"), "run directory not found")  # old form still works
    proc = se_edge("bench", "--help")
    assert proc.returncode == 0 and all(m in proc.stdout for m in ("latency", "runtimes", "forms", "gates", "zoo", "qat"))


def test_bench_gates_without_vela_says_so_before_any_export(monkeypatch, capsys):
    import se_edge.benchmarks.gates as gates
    import se_edge.evaluate.vela as npu
    from se_edge.cli import main

    monkeypatch.setattr(npu, "vela_executable", lambda: None)
    monkeypatch.setattr(gates, "measure_variants", lambda *a, **k: pytest.fail("exported without Vela"))
    assert main(["--quiet", "bench", "gates", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Vela, which is not installed here" in err and "ethos-u-vela" in err


def test_run_json_is_checked_against_its_schema(demo_run, tmp_path):
    from se_edge.run.record import RECORD_VERSION, RunRecord

    out, _ = demo_run
    record = Run(out).record
    assert isinstance(record, RunRecord) and record.model == "se_cnn" and record.rewrite.enabled is True
    assert record.version == RECORD_VERSION == json.loads((out / "run.json").read_text())["version"]
    run_dir = tmp_path / "r"
    shutil.copytree(out, run_dir, ignore=shutil.ignore_patterns("*.tflite", "*.pte", "*.ckpt"))
    data = json.loads((run_dir / "run.json").read_text())
    for broken, fragment in (({k: v for k, v in data.items() if k != "split"}, "missing split"),
                             ({**data, "num_classes": "ten"}, "'num_classes' should be a whole number, found str"),
                             ({**data, "preprocessing": {**data["preprocessing"], "size": None}}, "preprocessing.size"),
                             ([1, 2], "expected a JSON object")):
        (run_dir / "run.json").write_text(json.dumps(broken))
        with pytest.raises(SeEdgeError, match=fragment):
            Run(run_dir).check()
    assert_one_line_error(cli("export", "--run", run_dir), "expected a JSON object")
