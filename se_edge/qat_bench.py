"""`se-edge bench --qat`: float vs PTQ vs QAT, measured on the exported files, per model.

First a share of the dataset is set aside, unseen (`data.holdout`: written as its own dataset
under `<out>/data/unseen`). For each model (default se_resnet18 and se_mobilenetv3_small, small-image
stems) a full run on the rest, which the run splits into train/val/test: float training, the PTQ
baseline, QAT, export, and the accuracy of each int8 file in its runtime on the run's test split;
then the same files evaluated on the unseen set, as `se-edge parity --run RUN --data UNSEEN` does;
plus the cost of QAT: a QAT training step's time divided by a float step's, on the same batches.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from se_edge.io import write_json, write_text

MODELS = ("se_resnet18", "se_mobilenetv3_small")
RUNTIMES = ("tflite", "executorch")


def step_time_ratio(run_dir: str | os.PathLike, steps: int = 10, warmup: int = 3, batch_size: int = 64) -> dict:
    """Seconds per training step of the float model and of QAT as the recipe runs it (the prepared
    graph, plus the float teacher's forward pass when it distils), on the same batches."""
    import torch

    from se_edge.artifacts import RunDir
    from se_edge.quantize import QatConfig, prepare_qat
    from se_edge.quantize.qat import qat_loss, set_train
    from se_edge.train import cross_entropy

    run = RunDir(run_dir)
    shape = tuple(run.sample_input().shape[1:])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *shape, generator=gen)
    y = torch.randint(0, run.config()["num_classes"], (batch_size,), generator=gen)

    def per_step(model, to_train, loss_fn) -> float:
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)
        to_train(model)
        for i in range(warmup + steps):
            if i == warmup:
                start = time.perf_counter()
            loss = loss_fn(model(x), y, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return (time.perf_counter() - start) / steps

    recipe = QatConfig()
    float_s = per_step(run.load_float(), lambda m: m.train(), cross_entropy)
    qat_s = per_step(prepare_qat(run.load_float(), run.sample_input()), set_train,
                     qat_loss(recipe, run.load_float() if recipe.distill > 0 else None))
    return {"float_step_s": float_s, "qat_step_s": qat_s, "qat_over_float": qat_s / float_s, "batch_size": batch_size,
            "qat_distills": recipe.distill > 0}


def _accuracies(artifacts: dict) -> dict:
    """float / PTQ / QAT accuracy of the exported files, and QAT files' agreement with the int8 reference."""
    return {
        "float": artifacts["float"]["accuracy"],
        "ptq": {k: artifacts[f"{k}_int8_ptq"]["accuracy"] for k in RUNTIMES},
        "qat": {k: artifacts[f"{k}_int8"]["accuracy"] for k in RUNTIMES},
        "qat_agreement": {k: artifacts[f"{k}_int8"]["agreement_with_reference"] for k in RUNTIMES},
    }


def qat_bench(data: str, models: tuple[str, ...] = MODELS, out_dir: str | os.PathLike = "runs/bench-qat",
              epochs: int = 30, qat_epochs: int = 4, size: int = 32, device: str = "auto", progress: bool = True,
              unseen_fraction: float = 0.25, seed: int = 0, resume: bool = False) -> dict:
    from se_edge.artifacts import RunDir
    from se_edge.data.holdout import hold_out
    from se_edge.parity import run_parity
    from se_edge.pipeline import RunConfig, run_all

    out_dir = Path(out_dir)
    pool, unseen = hold_out(data, out_dir / "data", unseen_fraction, seed)
    result = {"dataset": data, "pool": pool, "unseen": unseen, "unseen_fraction": unseen_fraction, "models": {}}
    for name in models:
        cfg = RunConfig(model=name, data=pool, out=str(out_dir / name), size=size, stem="small", epochs=epochs,
                        qat_epochs=qat_epochs, device=device, seed=seed, runs=10, warmup=2, progress=progress,
                        resume=resume)
        start = time.perf_counter()
        report = run_all(cfg)
        seconds = round(time.perf_counter() - start, 1)
        on_unseen = run_parity(RunDir(out_dir / name), unseen, progress=progress)
        result["models"][name] = {
            "run": str(out_dir / name), "epochs": epochs, "qat_epochs": qat_epochs,
            "num_test": report["num_test"], **_accuracies(report["artifacts"]),
            "unseen": {"num_images": on_unseen["num_test"], **_accuracies(on_unseen["artifacts"])},
            "step_time": step_time_ratio(out_dir / name), "seconds": seconds,
        }
    write_json(out_dir / "bench_qat.json", result)
    write_text(out_dir / "bench_qat.md", markdown(result))
    return result


def _row(name: str, n: int, r: dict, last: str) -> str:
    worst = min(r["qat"].values()) - r["float"]
    return (f"| {name} | {n} | {r['float']:.4f} | {r['ptq']['tflite']:.4f} | {r['ptq']['executorch']:.4f} | "
            f"{r['qat']['tflite']:.4f} | {r['qat']['executorch']:.4f} | {worst:+.4f} | "
            f"{min(r['qat_agreement'].values()):.4f} | {last} |")


def markdown(result: dict) -> str:
    header = ("| model | images | float | PTQ TFLite | PTQ ExecuTorch | QAT TFLite | QAT ExecuTorch | "
              "QAT − float (worst) | QAT agreement with int8 reference (worst) | {} |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [f"# Float vs PTQ vs QAT on {result['dataset']} (int8 files in their runtimes)", "",
             "Each run's held-out test split:", "", header.format("QAT step ÷ float step")]
    for name, r in result["models"].items():
        lines.append(_row(name, r["num_test"], r, f"{r['step_time']['qat_over_float']:.2f}×"))
    if any("unseen" in r for r in result["models"].values()):
        lines += ["", f"The same files on `{result['unseen']}` ({result['unseen_fraction']:g} of the dataset, set "
                  "aside before training; `se-edge parity --run RUN --data UNSEEN`):", "", header.format("epochs (float + QAT)")]
        for name, r in result["models"].items():
            lines.append(_row(name, r["unseen"]["num_images"], r["unseen"], f"{r['epochs']} + {r['qat_epochs']}"))
    return "\n".join(lines) + "\n"
