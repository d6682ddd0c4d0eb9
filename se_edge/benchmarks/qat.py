"""`se-edge bench --qat`: float vs PTQ vs QAT, measured on the exported files, per model.

First a share of the dataset is set aside, unseen (`data.holdout`: written as its own dataset
under `<out>/data/unseen`). For each model (default se_resnet18 and se_mobilenetv3_small, small-image
stems) a full run on the rest, which the run splits into train/val/test: float training, the PTQ
baseline, QAT, export, and the accuracy of each int8 file in its runtime on the run's test split;
then the same files evaluated on the unseen set, as `se-edge parity --run RUN --data UNSEEN` does;
plus the cost of QAT: a step of the QAT loop (qat_finetune) divided by a step of the float loop (fit),
both timed as they train, on the run's images.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from se_edge.io import write_json, write_text
from se_edge.report.table import fmt, markdown_table

MODELS = ("se_resnet18", "se_mobilenetv3_small")
RUNTIMES = ("tflite", "executorch")


def step_time_ratio(run_dir: str | os.PathLike, steps: int = 10, warmup: int = 3, batch_size: int | None = None,
                    repeats: int = 3) -> dict:
    """Seconds per training step of the loops that train: `train.fit` with the run's float recipe, and
    `qat_finetune` with the QAT recipe (prepared graph, the float teacher's forward pass when it distils,
    AdamW, augmentation), both on the run's own training images. Each loop runs one epoch of
    `warmup` steps and one of `warmup + steps` steps; the difference divided by `steps` is the step
    time, so set-up, the validation pass and the first steps' warm-up are not counted. Each epoch is timed
    `repeats` times and the fastest kept (a busy machine only ever adds time); a difference that is still not
    positive is reported as unmeasurable, never as a step time."""

    import torch

    from se_edge.config import QatConfig, TrainConfig
    from se_edge.data import ImageSet
    from se_edge.quantize import prepare_qat, qat_finetune
    from se_edge.run import Run
    from se_edge.train import fit

    run = Run(run_dir)
    record = run.check()
    batch_size = batch_size or record.float_training.batch_size
    train = run.splits().train
    need = (warmup + steps) * batch_size
    reps = -(-need // len(train))
    pool = ImageSet(train.x.repeat(reps, 0)[:need], train.y.repeat(reps, 0)[:need])
    tiny_val = ImageSet(train.x[:1], train.y[:1])
    flip = record.preprocessing.in_chans == 3
    float_cfg = TrainConfig(epochs=1, batch_size=batch_size, device="cpu", progress=False, flip=flip)
    qat_cfg = QatConfig(epochs=1, batch_size=batch_size, device="cpu", progress=False, flip=flip, calibration_images=0)

    def loop_seconds(n_steps: int, quantised: bool) -> float:
        images = ImageSet(pool.x[:n_steps * batch_size], pool.y[:n_steps * batch_size])
        torch.manual_seed(0)
        if quantised:
            prepared = prepare_qat(run.load_float(), run.sample_input())
            teacher = run.load_float() if qat_cfg.distill > 0 else None
            start = time.perf_counter()
            qat_finetune(prepared, images, tiny_val, qat_cfg, teacher=teacher)
        else:
            model = run.load_float()
            start = time.perf_counter()
            fit(model, images, tiny_val, float_cfg, desc="float")
        return time.perf_counter() - start

    per_step = {}
    for kind, quantised in (("float", False), ("qat", True)):
        loop_seconds(warmup, quantised)  # untimed: the process's first pass through this loop pays one-off costs
        short = min(loop_seconds(warmup, quantised) for _ in range(repeats))
        long = min(loop_seconds(warmup + steps, quantised) for _ in range(repeats))
        if long <= short:
            raise RuntimeError(f"{kind} step time not measurable: {warmup + steps} steps took {long:.3f} s, "
                               f"{warmup} steps {short:.3f} s (the machine is too busy; time more steps)")
        per_step[kind] = (long - short) / steps
    return {"float_step_s": per_step["float"], "qat_step_s": per_step["qat"],
            "qat_over_float": per_step["qat"] / per_step["float"], "batch_size": batch_size, "steps": steps, "repeats": repeats,
            "qat_distills": qat_cfg.distill > 0, "timed": "train.fit and quantize.qat_finetune"}


def _accuracies(artifacts: dict) -> dict:
    """float / PTQ / QAT accuracy of the exported files, their agreement with float (how many of float's decisions
    int8 changes: what QAT is for), and the QAT files' agreement with the int8 reference."""
    return {
        "float": artifacts["float"]["accuracy"],
        "ptq": {k: artifacts[f"{k}_int8_ptq"]["accuracy"] for k in RUNTIMES},
        "qat": {k: artifacts[f"{k}_int8"]["accuracy"] for k in RUNTIMES},
        "ptq_agreement_with_float": {k: artifacts[f"{k}_int8_ptq"]["agreement_with_float"] for k in RUNTIMES},
        "qat_agreement_with_float": {k: artifacts[f"{k}_int8"]["agreement_with_float"] for k in RUNTIMES},
        "qat_agreement": {k: artifacts[f"{k}_int8"]["agreement_with_reference"] for k in RUNTIMES},
    }


def qat_bench(data: str, models: tuple[str, ...] = MODELS, out_dir: str | os.PathLike = "runs/bench-qat",
              epochs: int | None = None, qat_epochs: int | None = None, size: int = 32, device: str = "auto", progress: bool = True,
              unseen_fraction: float = 0.25, seed: int = 0, resume: bool = False) -> dict:
    from se_edge.data.holdout import hold_out
    from se_edge.evaluate.parity import run_parity
    from se_edge.pipeline import RunConfig, run_all
    from se_edge.run import Run

    out_dir = Path(out_dir)
    pool, unseen = hold_out(data, out_dir / "data", unseen_fraction, seed)
    result = {"dataset": data, "pool": pool, "unseen": unseen, "unseen_fraction": unseen_fraction, "models": {}}
    for name in models:
        cfg = RunConfig.from_options(model=name, data=pool, out=str(out_dir / name), size=size, stem="small",
                                     epochs=epochs, qat_epochs=qat_epochs, device=device, seed=seed, runs=10, warmup=2,
                                     progress=progress, resume=resume)
        start = time.perf_counter()
        report = run_all(cfg)
        seconds = round(time.perf_counter() - start, 1)
        on_unseen = run_parity(Run(out_dir / name), unseen, progress=progress)
        result["models"][name] = {
            "run": str(out_dir / name), "epochs": cfg.train.epochs, "qat_epochs": cfg.qat.epochs,
            "num_test": report["num_test"], **_accuracies(report["artifacts"]),
            "unseen": {"num_images": on_unseen["num_test"], **_accuracies(on_unseen["artifacts"])},
            "step_time": step_time_ratio(out_dir / name), "seconds": seconds,
        }
    write_json(out_dir / "bench_qat.json", result)
    write_text(out_dir / "bench_qat.md", markdown(result))
    return result


def _row(name: str, n: int, r: dict, last: str) -> list:
    worst = min(r["qat"].values()) - r["float"]
    with_float = [min(r[f"{k}_agreement_with_float"].values()) if f"{k}_agreement_with_float" in r else None
                  for k in ("ptq", "qat")]
    return [name, n, f"{r['float']:.4f}", f"{r['ptq']['tflite']:.4f}", f"{r['ptq']['executorch']:.4f}",
            f"{r['qat']['tflite']:.4f}", f"{r['qat']['executorch']:.4f}", f"{worst:+.4f}",
            *(fmt(v, ".4f") for v in with_float), f"{min(r['qat_agreement'].values()):.4f}", last]


def _table(rows: list, last: str) -> str:
    return markdown_table(["model", "images", "float", "PTQ TFLite", "PTQ ExecuTorch", "QAT TFLite", "QAT ExecuTorch",
                           "QAT − float (worst)", "PTQ agreement with float (worst)",
                           "QAT agreement with float (worst)", "QAT agreement with int8 reference (worst)", last], rows)


def markdown(result: dict) -> str:
    rows = [_row(name, r["num_test"], r, f"{r['step_time']['qat_over_float']:.2f}×")
            for name, r in result["models"].items()]
    lines = [f"# Float vs PTQ vs QAT on {result['dataset']} (int8 files in their runtimes)", "",
             "Each run's held-out test split:", "", _table(rows, "QAT step ÷ float step")]
    if any("unseen" in r for r in result["models"].values()):
        rows = [_row(name, r["unseen"]["num_images"], r["unseen"], f"{r['epochs']} + {r['qat_epochs']}")
                for name, r in result["models"].items()]
        lines += ["", f"The same files on `{result['unseen']}` ({result['unseen_fraction']:g} of the dataset, set "
                  "aside before training; `se-edge parity --run RUN --data UNSEEN`):", "", _table(rows, "epochs (float + QAT)")]
    return "\n".join(lines) + "\n"
