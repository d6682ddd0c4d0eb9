"""The end-to-end job, as stages over a run directory:

    train (float) -> quantize (PT2E QAT) -> export (.tflite, .pte; fp32 and int8)
                  -> parity (each file in its runtime) -> latency -> report

Each stage reads what the earlier ones wrote to `runs/<name>/` and writes its own outputs there,
so `se-edge train|quantize|export|parity|bench` can run one stage at a time and `se-edge run`
runs them all.
"""
from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from se_edge.artifacts import EXPORTED, RunDir
from se_edge.errors import SeEdgeError


@dataclass
class RunConfig:
    model: str = "se_cnn"
    data: str = "digits"
    out: str | None = None  # default: runs/<model>-<dataset name>
    size: int = 32
    in_chans: int | None = None  # None: the dataset's own (1 greyscale, 3 RGB)
    se: str | None = None  # SE gate ("none": no SE); None keeps the model's default
    se_squeeze: str | None = None  # SE squeeze form; None keeps the model's default
    stem: str | None = None  # "small" (28-32 px) or "imagenet"; None keeps the model's default
    seed: int = 0
    epochs: int = 30
    qat_epochs: int = 4
    qat_lr: float | None = None  # None: QatConfig's default
    distill: float | None = None  # None: QatConfig's default (distil from the float model)
    calibration_images: int | None = None  # None: 1024 (PTQ, and QAT's starting ranges)
    resume: bool = False  # continue float training and QAT from their per-epoch checkpoints
    freeze_bn_after: int | None = None  # None: QatConfig's default
    freeze_observers_after: int | None = None  # None: QatConfig's default
    ptq: bool = True  # also make the PTQ baseline, so the report shows float vs PTQ vs QAT
    batch_size: int = 64
    lr: float = 3e-3
    device: str = "auto"
    warmup: int = 10
    runs: int = 50
    threads: int = 1
    progress: bool = True
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    timings_s: dict = field(default_factory=dict)


def default_out(model: str, data: str) -> str:
    return str(Path("runs") / f"{model}-{Path(data).name or 'data'}")


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[se-edge] {msg}", flush=True)


def _splits_for(run: RunDir):
    from se_edge.data import Preprocessing, load_splits

    cfg = run.config()
    s = cfg["split"]
    return load_splits(cfg["dataset"], seed=s["seed"], val_fraction=s["val_fraction"], test_fraction=s["test_fraction"],
                       prep=Preprocessing.from_dict(cfg["preprocessing"]))


def _model_kwargs(cfg: RunConfig, num_classes: int, in_chans: int) -> dict:
    kwargs = {"num_classes": num_classes, "in_chans": in_chans,
              "stem": cfg.stem or ("small" if cfg.size <= 64 else "imagenet")}
    for key in ("se", "se_squeeze"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    return kwargs


def _save_state(path, module) -> None:
    import torch

    from se_edge.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(module.state_dict(), tmp)


def _test_accuracy(model, splits, **predict_kwargs) -> float:
    from se_edge.train import predict

    return float((predict(model, splits.test.x, **predict_kwargs).argmax(1) == splits.test.y).mean())


def train_stage(cfg: RunConfig, resume: bool = False) -> RunDir:
    """Float training: writes run.json (first, so an interrupted run can resume) and float.pt."""
    from se_edge import distributed
    from se_edge.data import load_splits
    from se_edge.models import create_model
    from se_edge.train import TrainConfig, fit, resolve_device, seed_everything

    device = resolve_device(cfg.device)
    splits = load_splits(cfg.data, size=cfg.size, in_chans=cfg.in_chans, seed=cfg.seed,
                         val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
    model_kwargs = _model_kwargs(cfg, splits.num_classes, splits.preprocessing.in_chans)
    try:
        model = create_model(cfg.model, **model_kwargs)
    except ValueError as e:
        raise SeEdgeError(str(e)) from None
    run = RunDir(cfg.out or default_out(cfg.model, cfg.data))
    main = distributed.is_main()
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, device=str(device),
                       progress=cfg.progress and main, flip=splits.preprocessing.in_chans == 3)
    dataset = cfg.data if cfg.data == "digits" else str(Path(cfg.data).resolve())
    if main:
        run.path.mkdir(parents=True, exist_ok=True)
        run.save_config({
            "model": cfg.model, "model_kwargs": model_kwargs, "dataset": dataset, "dataset_name": splits.name,
            "num_classes": splits.num_classes, "preprocessing": splits.preprocessing.to_dict(),
            "split": {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "test_fraction": cfg.test_fraction,
                      "num_train": len(splits.train), "num_val": len(splits.val), "num_test": len(splits.test)},
            "device": str(device), "world_size": distributed.world_size(),
            "float_training": {k: v for k, v in dataclasses.asdict(tcfg).items() if k != "progress"},
        })
    _log(f"float training {cfg.model} on {splits.name}: {len(splits.train)} train / {len(splits.val)} val / "
         f"{len(splits.test)} test images, device {device} x {distributed.world_size()}", cfg.progress and main)
    seed_everything(cfg.seed)
    start = time.perf_counter()
    history = fit(model, splits.train, splits.val, tcfg, desc="float", checkpoint=run / "float.ckpt", resume=resume)
    model.to("cpu")
    if main:
        test_acc = _test_accuracy(model, splits)
        _save_state(run.artifact_path("float"), model)
        run.update_config(float_training={**run.config()["float_training"], "history": history,
                                          "test_accuracy": test_acc, "seconds": time.perf_counter() - start})
        _log(f"float test accuracy {test_acc:.4f}", cfg.progress)
    distributed.barrier()
    return run


def ptq_stage(run: RunDir, calibration_images: int | None = None, progress: bool = True) -> dict:
    """The PTQ baseline: observers calibrated on training images (None: QAT's default number, 1024),
    no training; writes ptq.pt."""
    from se_edge.quantize import QatConfig, calibrate, prepare_ptq
    from se_edge.quantize.qat import set_eval

    if calibration_images is None:
        calibration_images = QatConfig.calibration_images
    if calibration_images < 1:
        raise SeEdgeError("the PTQ baseline needs calibration images (--calibration-images 1 or more)")
    splits = _splits_for(run)
    start = time.perf_counter()
    prepared = prepare_ptq(run.load_float(), run.sample_input())
    calibrate(prepared, splits.train.x, max_images=calibration_images)
    set_eval(prepared)
    acc = _test_accuracy(prepared, splits, set_eval=set_eval)
    _save_state(run.artifact_path("reference_int8_ptq"), prepared)
    result = {"calibration_images": min(calibration_images, len(splits.train)), "int8_reference_test_accuracy": acc,
              "seconds": time.perf_counter() - start}
    run.update_config(ptq=result)
    _log(f"PTQ baseline ({result['calibration_images']} calibration images): int8 reference test accuracy {acc:.4f}",
         progress)
    return result


def quantize_stage(run: RunDir, epochs: int = 4, device: str = "auto", progress: bool = True, resume: bool = False,
                   **qat_options) -> dict | None:
    """PT2E QAT fine-tune from float.pt: writes qat.pt; returns the fake-quant test accuracy (rank 0)."""
    from se_edge import distributed
    from se_edge.quantize import QatConfig, prepare_qat, qat_finetune
    from se_edge.quantize.qat import set_eval
    from se_edge.train import resolve_device, seed_everything

    cfg = run.config()
    splits = _splits_for(run)
    dev = resolve_device(device)
    main = distributed.is_main()
    qcfg = QatConfig(epochs=epochs, seed=cfg["split"]["seed"], device=str(dev), progress=progress and main,
                     **{k: v for k, v in qat_options.items() if v is not None})
    seed_everything(qcfg.seed)
    _log(f"QAT fine-tune ({epochs} epochs, symmetric int8, per-channel weights; ranges calibrated on "
         f"{qcfg.calibration_images} images; batch-norm frozen after {qcfg.freeze_bn_after}, ranges after "
         f"{qcfg.freeze_observers_after} epochs; "
         f"{f'distilled from float, weight {qcfg.distill:g}' if qcfg.distill > 0 else 'labels only'}), device {dev} x "
         f"{distributed.world_size()}", progress and main)
    start = time.perf_counter()
    prepared = prepare_qat(run.load_float(), run.sample_input())
    history = qat_finetune(prepared, splits.train, splits.val, qcfg, checkpoint=run / "qat.ckpt", resume=resume,
                           teacher=run.load_float() if qcfg.distill > 0 else None)
    prepared.to("cpu")
    result = None
    if main:
        test_acc = _test_accuracy(prepared, splits, set_eval=set_eval)
        _save_state(run.artifact_path("reference_int8"), prepared)
        result = {**{k: v for k, v in dataclasses.asdict(qcfg).items() if k != "progress"}, "history": history,
                  "fake_quant_test_accuracy": test_acc, "seconds": time.perf_counter() - start,
                  "world_size": distributed.world_size()}
        run.update_config(qat=result)
        _log(f"QAT fake-quant test accuracy {test_acc:.4f}", progress)
    distributed.barrier()
    return result


def export_stage(run: RunDir, progress: bool = True) -> dict[str, str]:
    """Export float and int8 (QAT, and the PTQ baseline if present) to .tflite and .pte; returns {artifact: path}."""
    from tqdm.auto import tqdm

    from se_edge.export import export_pte, export_tflite
    from se_edge.quantize import convert

    float_model = run.load_float()
    sample = run.sample_input()
    jobs = {"tflite_fp32": lambda p: export_tflite(float_model, sample, p, quantized=False),
            "executorch_fp32": lambda p: export_pte(float_model, sample, p)}
    for kind, suffix in (("qat", ""), ("ptq", "_ptq")):
        if kind == "ptq" and not run.artifact_path("reference_int8_ptq").is_file():
            continue
        prepared = run.load_prepared(kind)
        jobs[f"tflite_int8{suffix}"] = lambda p, g=prepared: export_tflite(convert(g, "litert"), sample, p, quantized=True)
        jobs[f"executorch_int8{suffix}"] = lambda p, g=prepared: export_pte(convert(g, "executorch"), sample, p)
    paths = {}
    for name in (bar := tqdm(jobs, desc="export", unit="file", disable=not progress)):
        bar.set_postfix_str(name)
        paths[name] = str(jobs[name](run.artifact_path(name)))
    return paths


def graph_stage(run: RunDir) -> dict[str, dict]:
    from se_edge.graph import graph_summary

    return {a.name: graph_summary(run.artifact_path(a.name)) for a in EXPORTED if run.artifact_path(a.name).is_file()}


def report_stage(run: RunDir, parity: dict, latency: dict, graphs: dict, timings: dict | None = None) -> dict:
    from se_edge.report import write_report

    cfg = run.config()
    artifacts = {}
    for name, a in parity["artifacts"].items():
        artifacts[name] = {**a, "latency_ms": latency.get(name), "graph": graphs.get(name, {})}
    report = {
        "model": parity["model"], "dataset": parity["dataset"], "num_test": parity["num_test"],
        "device": cfg.get("device", "cpu"), "artifacts": artifacts,
        "preprocessing": cfg["preprocessing"],
        "training": {"float_epochs": cfg["float_training"]["epochs"], "qat_epochs": cfg.get("qat", {}).get("epochs")},
        "host": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                 "python": platform.python_version()},
        "versions": _versions(),
    }
    if timings:
        report["timings_s"] = timings
    return write_report(report, run.path)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "executorch", "litert-torch", "ai-edge-litert", "torchao"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def run_all(cfg: RunConfig) -> dict | None:
    """train -> PTQ baseline -> QAT -> export -> parity -> latency -> report; returns the report.

    Under torchrun every rank trains; only rank 0 exports, evaluates and reports (others return None).
    """
    from se_edge import distributed
    from se_edge.bench import run_latency
    from se_edge.parity import run_parity

    timings, t0 = {}, time.perf_counter()

    def lap(stage: str, start: float) -> float:
        now = time.perf_counter()
        timings[stage] = round(now - start, 2)
        return now

    t = time.perf_counter()
    run = train_stage(cfg, resume=cfg.resume)
    t = lap("train", t)
    if cfg.ptq and distributed.is_main():
        ptq_stage(run, calibration_images=cfg.calibration_images, progress=cfg.progress)
        t = lap("ptq", t)
    quantize_stage(run, epochs=cfg.qat_epochs, device=cfg.device, progress=cfg.progress, resume=cfg.resume, lr=cfg.qat_lr,
                   freeze_bn_after=cfg.freeze_bn_after, freeze_observers_after=cfg.freeze_observers_after,
                   distill=cfg.distill, calibration_images=cfg.calibration_images)
    t = lap("qat", t)
    if not distributed.is_main():
        return None
    export_stage(run, cfg.progress)
    t = lap("export", t)
    parity = run_parity(run, threads=cfg.threads, progress=cfg.progress)
    t = lap("parity", t)
    latency = run_latency(run, cfg.warmup, cfg.runs, cfg.threads, cfg.progress)
    t = lap("latency", t)
    graphs = graph_stage(run)
    timings["total"] = round(time.perf_counter() - t0, 2)
    return report_stage(run, parity, latency, graphs, timings)
