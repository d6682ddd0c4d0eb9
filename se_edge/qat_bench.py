"""`se-edge bench --qat`: float vs PTQ vs QAT, measured on the exported files, per model.

For each model (default se_resnet18 and se_mobilenetv3_small, small-image stems) a full run on the
dataset (a held-out split the tool makes): float training, the PTQ baseline, QAT, export, and the
accuracy of each int8 file in its runtime; plus the cost of QAT: a QAT training step's time
divided by a float step's, timed on the same batches.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from se_edge.io import write_json, write_text

MODELS = ("se_resnet18", "se_mobilenetv3_small")


def step_time_ratio(run_dir: str | os.PathLike, steps: int = 10, warmup: int = 3, batch_size: int = 64) -> dict:
    """Seconds per training step of the float model and of its QAT-prepared graph (same data)."""
    import torch
    import torch.nn.functional as F

    from se_edge.artifacts import RunDir
    from se_edge.quantize import prepare_qat
    from se_edge.quantize.qat import set_train

    run = RunDir(run_dir)
    shape = tuple(run.sample_input().shape[1:])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *shape, generator=gen)
    y = torch.randint(0, run.config()["num_classes"], (batch_size,), generator=gen)

    def per_step(model, to_train) -> float:
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)
        to_train(model)
        for i in range(warmup + steps):
            if i == warmup:
                start = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return (time.perf_counter() - start) / steps

    float_s = per_step(run.load_float(), lambda m: m.train())
    qat_s = per_step(prepare_qat(run.load_float(), run.sample_input()), set_train)
    return {"float_step_s": float_s, "qat_step_s": qat_s, "qat_over_float": qat_s / float_s, "batch_size": batch_size}


def qat_bench(data: str, models: tuple[str, ...] = MODELS, out_dir: str | os.PathLike = "runs/bench-qat",
              epochs: int = 30, qat_epochs: int = 4, size: int = 32, device: str = "auto", progress: bool = True) -> dict:
    from se_edge.pipeline import RunConfig, run_all

    out_dir = Path(out_dir)
    result = {"dataset": data, "models": {}}
    for name in models:
        cfg = RunConfig(model=name, data=data, out=str(out_dir / name), size=size, stem="small", epochs=epochs,
                        qat_epochs=qat_epochs, device=device, runs=10, warmup=2, progress=progress)
        start = time.perf_counter()
        report = run_all(cfg)
        a = report["artifacts"]
        result["models"][name] = {
            "num_test": report["num_test"], "float": a["float"]["accuracy"],
            "ptq": {k: a[f"{k}_int8_ptq"]["accuracy"] for k in ("tflite", "executorch")},
            "qat": {k: a[f"{k}_int8"]["accuracy"] for k in ("tflite", "executorch")},
            "qat_agreement": {k: a[f"{k}_int8"]["agreement_with_reference"] for k in ("tflite", "executorch")},
            "step_time": step_time_ratio(out_dir / name), "seconds": round(time.perf_counter() - start, 1),
        }
    write_json(out_dir / "bench_qat.json", result)
    write_text(out_dir / "bench_qat.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    lines = [f"# Float vs PTQ vs QAT on {result['dataset']} (int8 files in their runtimes)", "",
             "| model | test images | float | PTQ TFLite | PTQ ExecuTorch | QAT TFLite | QAT ExecuTorch | "
             "QAT − float (worst) | QAT step ÷ float step |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["models"].items():
        worst = min(r["qat"].values()) - r["float"]
        lines.append(f"| {name} | {r['num_test']} | {r['float']:.4f} | {r['ptq']['tflite']:.4f} | "
                     f"{r['ptq']['executorch']:.4f} | {r['qat']['tflite']:.4f} | {r['qat']['executorch']:.4f} | "
                     f"{worst:+.4f} | {r['step_time']['qat_over_float']:.2f}× |")
    return "\n".join(lines) + "\n"
