"""`se-edge bench --runtimes`: is int8 fast where it runs? fp32 vs int8, with and without SE, on
LiteRT and ExecuTorch, with the delegation of every file as the runtime loads it.

Per model (default SE-MobileNetV3-small/large, SE-ResNet18/50 at 224 px, ImageNet stem, 1000
classes), with its default SE blocks and without SE: fp32 and int8 `.tflite` and `.pte` (int8 from
PT2E with ranges observed on random batches: speed and structure do not depend on trained weights).
Each model's eight files are opened in this process and timed interleaved, single-image, 1 thread by
default, so machine drift spreads over all of them. Models are timed one after another, not
interleaved with each other: after a run of an 80 ms SE-ResNet50 a 2 ms MobileNet starts from cold
caches, which inflated its p50 by 30-50 % in one measured run. Reported: p50 per file, int8 ÷ fp32, SE ÷ no SE, XNNPACK
partitions and ops outside. With `profile`, where SE's int8 time goes: each model's int8 files with and without SE
profiled op by op (ETDump; LiteRT's profiler through the native tflite_runner) in turn, several rounds, and the SE
model's own SE ops (squeeze, excitation, gate, scale) set beside what its other ops cost against the no-SE model's.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

MODELS = ("se_mobilenetv3_small", "se_mobilenetv3_large", "se_resnet18", "se_resnet50")
FILES = {"tflite_fp32": ("litert", "fp32"), "tflite": ("litert", "int8"), "pte_fp32": ("executorch", "fp32"),
         "pte": ("executorch", "int8")}


def export_variants(models: tuple[str, ...], size: int, out_dir: Path, progress: bool = True) -> dict:
    """`{model: {"se"|"no_se": {file key: path}}}`: fp32 and int8 files of each model with and without SE."""
    import torch
    from tqdm.auto import tqdm

    from se_edge.export.int8 import int8_exports
    from se_edge.models import create_model

    files = {}
    jobs = [(m, se) for m in models for se in ("se", "no_se")]
    for model, se in tqdm(jobs, desc="export", unit="model", disable=not progress):
        torch.manual_seed(0)
        kwargs = {} if se == "se" else {"se": None}
        net = create_model(model, num_classes=1000, in_chans=3, stem="imagenet", **kwargs)
        files.setdefault(model, {})[se] = int8_exports(net, (1, 3, size, size), out_dir / "files", f"{model}_{se}",
                                                       fp32=True)
    return files


def measure(files: dict, size: int, warmup: int, runs: int, threads: int, progress: bool = True) -> dict:
    import numpy as np

    from se_edge.evaluate.latency import measure_latency
    from se_edge.evaluate.structure import graph_summary
    from se_edge.quiet import captured_output
    from se_edge.runner import open_model

    x1 = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    flat, latency = {}, {}
    for m, variants in files.items():
        group = {f"{m}/{se}/{key}": path for se, paths in variants.items() for key, path in paths.items()}
        with captured_output():
            opened = {name: open_model(str(path), threads) for name, path in group.items()}
        latency.update(measure_latency(opened, x1, warmup, runs, threads, progress))
        flat.update(group)
        del opened
    result = {}
    for name, path in flat.items():
        model, se, key = name.split("/")
        runtime, dtype = FILES[key]
        result.setdefault(model, {}).setdefault(se, {})[f"{runtime}_{dtype}"] = {
            "path": str(path), "latency_ms": latency[name], "graph": graph_summary(path)}
    for model, variants in result.items():
        for se, per_file in variants.items():
            for runtime in ("litert", "executorch"):
                per_file[f"{runtime}_int8_over_fp32"] = (per_file[f"{runtime}_int8"]["latency_ms"]["p50"]
                                                         / per_file[f"{runtime}_fp32"]["latency_ms"]["p50"])
        for runtime in ("litert", "executorch"):
            for dtype in ("fp32", "int8"):
                key = f"{runtime}_{dtype}"
                variants.setdefault("se_over_no_se", {})[key] = (variants["se"][key]["latency_ms"]["p50"]
                                                                 / variants["no_se"][key]["latency_ms"]["p50"])
    return result


PROFILE_ROUNDS = 5
INT8_FILES = {"litert": "tflite", "executorch": "pte"}


def se_cost(se: dict, no_se: dict) -> dict:
    """Where an SE model's int8 time goes, from the op profiles (device/profile.py summarize_profile) of its file
    (SE blocks found and named) and of the same model without SE: the ops' sums and the p50s timed beside them
    (SE ÷ no SE), the SE ops by role, and the SE model's other ops against all of the no-SE model's ops (what SE
    costs outside its own ops: 0 where the rest of the graph runs as it would without SE), per op kind too."""
    from se_edge.device.profile import ROLES

    other = sum(op["ms"] for op in se["ops"] if not op["se"])
    beside = se.get("beside_p50_ms"), no_se.get("beside_p50_ms")
    kinds = list(dict.fromkeys([*se["by_kind"], *no_se["by_kind"]]))
    return {"ops_ratio": se["ops_ms"] / no_se["ops_ms"], "p50_ratio": beside[0] / beside[1] if all(beside) else None,
            "se_ms": se["ops_ms"], "no_se_ms": no_se["ops_ms"], "se_ops_ms": se["se"]["ms"],
            **{f"{r}_ms": se["se"][f"{r}_ms"] for r in ROLES},
            "found": se["se"]["found"], "expected": se["se"]["expected"],
            "other_ops_ms": other, "other_minus_no_se_ms": other - no_se["ops_ms"],
            "by_kind": {k: {"se_ms": se["by_kind"].get(k, {}).get("ms", 0.0),
                            "no_se_ms": no_se["by_kind"].get(k, {}).get("ms", 0.0)} for k in kinds}}


def profile_se_cost(files: dict, size: int, rounds: int = PROFILE_ROUNDS, warmup: int = 10, runs: int = 100,
                    threads: int = 1, progress: bool = True) -> dict:
    """`{model: {runtime: se_cost(...) | {"skipped": reason}}}`: each model's int8 files with and without SE profiled
    one after the other, `rounds` times; se_cost of each round's pair (the two timed seconds apart, so drift moves
    both), and of those each figure's median over the rounds."""
    import numpy as np
    from tqdm.auto import tqdm

    from se_edge.device.profile import profile_pte, profile_tflite_native, se_module_names, summarize_profile
    from se_edge.models import create_model

    x1 = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    names = {m: se_module_names(create_model(m, num_classes=1000, in_chans=3, stem="imagenet")) for m in files}
    out: dict[str, dict] = {m: {} for m in files}
    jobs = [(m, rt) for m in files for rt in INT8_FILES]
    for model, runtime in tqdm(jobs, desc="profile", unit="pair", disable=not progress):
        profile = profile_pte if runtime == "executorch" else profile_tflite_native
        pairs, skipped = [], None
        for _ in range(rounds):
            p = {se: profile(files[model][se][INT8_FILES[runtime]], x1, runs, warmup, threads)
                 for se in ("se", "no_se")}
            if skipped := p["se"].get("skipped"):
                break
            pairs.append(se_cost(summarize_profile(p["se"], names[model]), summarize_profile(p["no_se"], [])))
        out[model][runtime] = {"skipped": skipped} if skipped else {**_median_of(pairs), "rounds": rounds, "runs": runs}
    return out


def _median_of(costs: list[dict]) -> dict:
    """Each number's median over `costs` (se_cost dicts of one shape), nested dicts alike; the rest from the first."""
    from statistics import median

    first = costs[0]
    return {k: (_median_of([c[k] for c in costs]) if isinstance(v, dict) else
                median(c[k] for c in costs) if isinstance(v, (int, float)) and not isinstance(v, bool)
                and k not in ("found", "expected") else v) for k, v in first.items()}


def compare_runtimes(models: tuple[str, ...] = MODELS, size: int = 224, out_dir: str | os.PathLike = "runs/bench-runtimes",
                     warmup: int = 10, runs: int = 50, threads: int = 1, progress: bool = True,
                     profile: bool = False) -> dict:
    from se_edge.io import write_json, write_text

    start = time.perf_counter()
    out_dir = Path(out_dir)
    files = export_variants(models, size, out_dir, progress)
    result = {"size": size, "threads": threads, "runs": runs, "warmup": warmup, "models": measure(files, size, warmup, runs, threads, progress)}
    if profile:
        result["se_cost"] = profile_se_cost(files, size, threads=threads, progress=progress)
    result["plot"] = plot(result, out_dir / "runtimes.png")
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_json(out_dir / "runtimes.json", result)
    write_text(out_dir / "runtimes.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    from se_edge.benchmarks.zoo import delegation_cell
    from se_edge.report.table import markdown_table

    lines = [f"Single-image p50 in ms at {result['size']} px, {result['threads']} thread(s), each model's files interleaved in "
             f"one process ({result['runs']} runs after {result['warmup']} warm-up). Delegation: XNNPACK partitions / "
             "ops outside, as the runtime loaded the file.", ""]
    rows = []
    for model, variants in result["models"].items():
        for se in ("se", "no_se"):
            for runtime, label in (("litert", "LiteRT"), ("executorch", "ExecuTorch")):
                f32, i8 = variants[se][f"{runtime}_fp32"], variants[se][f"{runtime}_int8"]
                overhead = f"{variants['se_over_no_se'][f'{runtime}_int8']:.3f}" if se == "se" else "—"
                rows.append([model, "yes" if se == "se" else "no", label, f"{f32['latency_ms']['p50']:.3f}",
                             f"{i8['latency_ms']['p50']:.3f}", f"{variants[se][f'{runtime}_int8_over_fp32']:.3f}",
                             overhead, delegation_cell(f32["graph"]), delegation_cell(i8["graph"])])
    lines.append(markdown_table(["model", "SE", "runtime", "fp32 p50", "int8 p50", "int8 ÷ fp32", "SE ÷ no SE (int8)",
                                 "fp32 delegation", "int8 delegation"], rows, align="lllrrrrll"))
    if result.get("se_cost"):
        lines += ["", se_cost_markdown(result["se_cost"])]
    return "\n".join(lines) + "\n"


def se_cost_markdown(costs: dict) -> str:
    """The `se_cost` table: per model and runtime, SE ÷ no SE from the op profiles, SE's own ops by role, and what
    the SE model's other ops cost beyond the no-SE model's."""
    from se_edge.device.profile import ROLES
    from se_edge.report.table import fmt, markdown_table

    first = next((c for runtimes in costs.values() for c in runtimes.values() if "skipped" not in c), None)
    lines = ["Where SE's int8 time goes: the int8 files with and without SE profiled op by op in turn"
             + (f" ({first['rounds']} rounds of {first['runs']} runs each; each figure the median over the rounds of "
                "the pair's)" if first else "")
             + ". `other ops` is the SE model's ops outside its SE blocks minus all of the no-SE model's ops: what SE "
             "costs the rest of the graph.", ""]
    rows, skipped = [], []
    for model, runtimes in costs.items():
        for runtime, c in runtimes.items():
            if "skipped" in c:
                skipped.append(f"- {model} {runtime}: not profiled: {c['skipped']}")
                continue
            rows.append([model, runtime, fmt(c["ops_ratio"], ".3f"), fmt(c["p50_ratio"], ".3f"),
                         f"{c['found']}" + (f" of {c['expected']}" if c["expected"] is not None else ""),
                         fmt(c["se_ops_ms"], ".3f"), *(fmt(c[f"{r}_ms"], ".3f") for r in ROLES),
                         fmt(100 * c["scale_ms"] / c["se_ops_ms"] if c["se_ops_ms"] else None, ".0f"),
                         f"{c['other_minus_no_se_ms']:+.3f}"])
    lines.append(markdown_table(["model", "runtime", "SE ÷ no SE (ops' sum)", "SE ÷ no SE (p50 beside)", "SE blocks",
                                 "SE ops ms", "squeeze", "excitation", "gate", "scale", "scale %", "other ops ms"],
                                rows, align="llrrrrrrrrrr"))
    return "\n".join(lines + ([""] + skipped if skipped else []))


def plot(result: dict, path: Path) -> str:

    from se_edge.report.figures import save, subplots

    models = list(result["models"])
    bars = [(se, runtime, dtype) for se in ("se", "no_se") for runtime in ("litert", "executorch") for dtype in ("fp32", "int8")]
    fig, ax = subplots(figsize=(max(6, 2.6 * len(models)), 4))
    width = 0.8 / len(bars)
    for i, (se, runtime, dtype) in enumerate(bars):
        values = [result["models"][m][se][f"{runtime}_{dtype}"]["latency_ms"]["p50"] for m in models]
        ax.bar([x + (i - len(bars) / 2 + 0.5) * width for x in range(len(models))], values, width,
               label=f"{runtime} {dtype}{'' if se == 'se' else ' no SE'}", hatch="" if se == "se" else "//",
               color=f"C{(0 if runtime == 'litert' else 2) + (dtype == 'int8')}")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("p50 ms (log)")
    ax.set_yscale("log")
    ax.set_title(f"Single-image latency at {result['size']} px, {result['threads']} thread(s)")
    ax.legend(fontsize=7, ncol=2)
    return save(fig, path)
