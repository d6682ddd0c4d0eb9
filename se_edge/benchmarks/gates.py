"""`se-edge bench --compare-gates`: what each SE gate and squeeze costs once deployed.

For one network (default SE-MobileNetV3-small at 224 px), int8, every variant — each gate with the
full-mean squeeze, each squeeze with the hw gate, and the network without SE — is exported to
`.tflite` and `.pte` and measured: LiteRT and ExecuTorch CPU latency (1 thread, all files timed
interleaved in one process), TFLite float islands, XNNPACK delegation in both runtimes, and
Ethos-U55 NPU/CPU operators and estimated inference time from Vela. `hard_sigmoid` is quantised as
the stock XNNPACK quantizer leaves it (se_edge's own quantizer would write it out, as `hw`). Vela reads each
variant's int8 file in the Ethos-U's form (export/int8.py FORMS: native hard-swish, one lookup table on the NPU;
the CPU runtimes' files write it out). `hw_avgpool_rd_in` sizes the SE from the block's input channels
(EfficientNet's choice) instead of the expanded ones. Optionally each squeeze's accuracy is measured by a full QAT
run on a dataset (e.g. ../shared/data/mnist-8k).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from se_edge.errors import SeEdgeError
from se_edge.io import write_json, write_text
from se_edge.report.table import fmt, markdown_table

# (label, gate, squeeze, SE hidden width: a quarter of the expanded or of the block's input channels)
VARIANTS = (
    ("no_se", None, "avg", "expanded"),
    ("hw", "hw", "avg", "expanded"),
    ("hw_clamp", "hw_clamp", "avg", "expanded"),
    ("hard_sigmoid", "hard_sigmoid", "avg", "expanded"),
    ("sigmoid", "sigmoid", "avg", "expanded"),
    ("hw_max", "hw", "max", "expanded"),
    ("hw_avgmax", "hw", "avgmax", "expanded"),
    ("hw_avg_s2", "hw", "avg_s2", "expanded"),
    ("hw_avgpool", "hw", "avgpool", "expanded"),
    ("hw_avgpool_rd_in", "hw", "avgpool", "input"),
)
CHEAP_SQUEEZE = "avgpool"  # the squeeze se_edge recommends for NPUs; see squeeze.py


def measure_variants(model: str = "se_mobilenetv3_small", size: int = 224, out_dir: str | os.PathLike = "runs/compare-gates",
                     warmup: int = 10, runs: int = 50, threads: int = 1, progress: bool = True) -> dict:
    import torch

    from se_edge.benchmarks.zoo import purity
    from se_edge.evaluate.latency import measure_latency
    from se_edge.export.int8 import int8_exports
    from se_edge.models import create_model
    from se_edge.quiet import captured_output
    from se_edge.runner import open_model

    out_dir = Path(out_dir)
    shape = (1, 3, size, size)
    results, files = {}, {}
    for label, gate, squeeze, rd in tqdm(VARIANTS, desc="export variants", unit="variant", disable=not progress):
        torch.manual_seed(0)
        kwargs = {"se_rd": rd} if rd != "expanded" else {}
        net = create_model(model, num_classes=1000, in_chans=3, stem="imagenet", se=gate, se_squeeze=squeeze, **kwargs)
        paths = int8_exports(net, shape, out_dir / "files", label, delegable_activations=label != "hard_sigmoid",
                             npu=True)
        results[label] = {"gate": gate, "squeeze": squeeze if gate else None, "se_rd": rd if gate else None,
                          **{k: v for k, v in purity(paths).items()}}
        files[label] = paths
    models = {}
    with captured_output():
        for label, paths in files.items():
            models[f"{label}/litert"] = open_model(str(paths["tflite"]), threads)
            models[f"{label}/executorch"] = open_model(str(paths["pte"]), threads)
    x1 = torch.randn(shape, generator=torch.Generator().manual_seed(0)).numpy()
    latency = measure_latency(models, x1, warmup, runs, threads, progress)
    base = results["no_se"].get("npu", {}).get("inference_time_ms")
    for label, r in results.items():
        r["latency_ms"] = {"litert": latency[f"{label}/litert"], "executorch": latency[f"{label}/executorch"]}
        if base and "npu" in r:
            r["npu_overhead_vs_no_se"] = r["npu"]["inference_time_ms"] / base
    return results


def squeeze_accuracy(data: str, squeezes: tuple[str, ...] = ("avg", CHEAP_SQUEEZE), model: str = "se_mobilenetv3_small",
                     out_dir: str | os.PathLike = "runs/compare-gates", epochs: int | None = None, qat_epochs: int | None = None,
                     seed: int = 0, progress: bool = True) -> dict:
    """Full runs (float -> QAT -> export -> parity) on `data`, one per squeeze; int8 accuracies."""
    from se_edge.pipeline import RunConfig, run_all

    out = {}
    for squeeze in squeezes:
        cfg = RunConfig.from_options(model=model, data=data, out=str(Path(out_dir) / f"acc-{squeeze}"), se="hw",
                                     se_squeeze=squeeze, stem="small", epochs=epochs, qat_epochs=qat_epochs, seed=seed,
                                     runs=10, warmup=2, progress=progress)
        report = run_all(cfg)
        a = report["artifacts"]
        out[squeeze] = {"dataset": report["dataset"], "num_test": report["num_test"],
                        **{name: a[name]["accuracy"] for name in ("float", "reference_int8", "tflite_int8", "executorch_int8")}}
    return out


def _ratio(v) -> str:
    return "—" if v is None else f"{v:.3f}×"


def markdown(result: dict) -> str:
    from se_edge.benchmarks.zoo import delegation_cell

    lines = [f"# SE gates and squeezes: {result['model']} at {result['size']} px, int8", "",
             "CPU: single-image p50, 1 thread, all files interleaved in one process. NPU: Vela's estimate for "
             f"{result['accelerator']} of the int8 file in the NPU's form (native hard-swish: one lookup table); "
             "overhead = estimated time ÷ the network without SE. SE width from: its hidden width is a quarter of "
             "the block's expanded channels (MobileNetV3) or of its input channels (EfficientNet).", ""]
    rows = []
    for label, r in result["variants"].items():
        npu = r.get("npu", {})
        rows.append([label, r["gate"] or "—", r["squeeze"] or "—", r.get("se_rd") or "—", r["tflite"]["float_islands"],
                     delegation_cell(r["tflite"]), delegation_cell(r["pte"]),
                     f"{npu.get('npu_ops', '—')} / {npu.get('cpu_ops', '—')}",
                     fmt(npu.get("inference_time_ms"), ".3f"), _ratio(r.get("npu_overhead_vs_no_se")),
                     f"{r['latency_ms']['litert']['p50']:.3f}", f"{r['latency_ms']['executorch']['p50']:.3f}"])
    lines.append(markdown_table(
        ["variant", "gate", "squeeze", "SE width from", "TFLite float islands", "LiteRT partitions / outside",
         ".pte partitions / outside", "NPU ops / CPU ops", "NPU est. ms", "NPU overhead", "LiteRT p50 ms",
         "ExecuTorch p50 ms"], rows, align="llllrrrrrrrr"))
    se_rows = [(label, r) for label, r in result["variants"].items() if r.get("npu", {}).get("se_cycles")]
    if se_rows:
        rows = []
        for label, r in se_rows:
            c = r["npu"]["se_cycles"]
            squeeze = sum(v for k, v in c.items() if k in ("Mean", "AvgPool", "MaxPool", "StridedSlice", "Add"))
            rows.append([label, f"{squeeze:,.0f}", f"{c.get('Conv2D', 0):,.0f}", f"{c.get('Mul', 0):,.0f}",
                         f"{sum(c.values()):,.0f}"])
        lines += ["", "NPU cycles inside SE blocks, by original operator (from Vela's per-operator report):", "",
                  markdown_table(["variant", "squeeze", "excitation convs", "scale MUL", "total SE"], rows)]
    if result.get("accuracy"):
        rows = [[squeeze, f"{a['float']:.4f}", f"{a['reference_int8']:.4f}", f"{a['tflite_int8']:.4f}",
                 f"{a['executorch_int8']:.4f}"] for squeeze, a in result["accuracy"].items()]
        lines += ["", f"Squeeze accuracy on {next(iter(result['accuracy'].values()))['dataset']} (QAT, int8 files in their runtimes):", "",
                  markdown_table(["squeeze", "float", "int8 reference", "TFLite int8", "ExecuTorch int8"], rows)]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> str:

    from se_edge.report.figures import save, subplots

    labels = list(result["variants"])
    fig, axes = subplots(1, 2, figsize=(11, 3.8))
    npu = [result["variants"][k].get("npu", {}).get("inference_time_ms", 0) for k in labels]
    axes[0].bar(labels, npu, color=["#999999"] + ["#dd8452"] * (len(labels) - 1))
    axes[0].set_ylabel(f"{result['accelerator']} est. ms")
    axes[0].set_title("NPU estimated inference time")
    width = 0.4
    xs = range(len(labels))
    axes[1].bar([x - width / 2 for x in xs], [result["variants"][k]["latency_ms"]["litert"]["p50"] for k in labels], width,
                label="LiteRT")
    axes[1].bar([x + width / 2 for x in xs], [result["variants"][k]["latency_ms"]["executorch"]["p50"] for k in labels],
                width, label="ExecuTorch")
    axes[1].set_xticks(list(xs), labels)
    axes[1].set_ylabel("CPU p50 ms (1 thread)")
    axes[1].set_title("CPU latency, int8")
    axes[1].legend()
    for ax in axes:
        ax.tick_params(axis="x", rotation=40)
    return save(fig, path)


def compare_gates(model: str = "se_mobilenetv3_small", size: int = 224, out_dir: str | os.PathLike = "runs/compare-gates",
                  warmup: int = 10, runs: int = 50, threads: int = 1, accuracy_data: str | None = None,
                  epochs: int | None = None, qat_epochs: int | None = None, progress: bool = True) -> dict:
    from se_edge.evaluate.vela import DEFAULT_ACCELERATOR, vela_executable

    if vela_executable() is None:  # the NPU columns are the point of this benchmark: say so before minutes of export
        raise SeEdgeError("bench gates measures the Ethos-U NPU with Vela, which is not installed here; "
                          "pip install 'se_edge[bench]' (ethos-u-vela), or use `se-edge bench runtimes` for CPU only")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    result = {"model": model, "size": size, "accelerator": DEFAULT_ACCELERATOR, "threads": threads,
              "variants": measure_variants(model, size, out_dir, warmup, runs, threads, progress)}
    result["plot"] = plot(result, out_dir / "compare_gates.png")
    _write(result, out_dir, start)  # the variants are kept even if the accuracy runs fail
    if accuracy_data:
        result["accuracy"] = squeeze_accuracy(accuracy_data, model=model, out_dir=out_dir, epochs=epochs,
                                              qat_epochs=qat_epochs, progress=progress)
        _write(result, out_dir, start)
    return result


def _write(result: dict, out_dir: Path, start: float) -> None:
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_json(out_dir / "compare_gates.json", result)
    write_text(out_dir / "compare_gates.md", markdown(result))
