"""report.json (a stable interface), report.md and plots for a run."""
from __future__ import annotations

import os
from pathlib import Path

from se_edge.io import write_json, write_text
from se_edge.report.figures import save as _save
from se_edge.report.figures import subplots
from se_edge.report.table import fmt as _fmt
from se_edge.report.table import markdown_table

APP_CLIENTS = "app_clients.json"  # what `make app-test` measured the apps' classifiers to do with the app file
REQUIRED_ARTIFACT_KEYS = ("path", "runtime", "dtype", "accuracy", "agreement_with_reference", "max_abs_diff",
                          "latency_ms", "graph")


def graph_cell(graph: dict | None) -> str:
    if not graph:
        return "—"
    if graph.get("target"):  # a file for an accelerator: its partitions run there, the rest on its host CPU
        text = (f"{graph['target']}: {graph['partitions']} NPU partition(s) with {_fmt(graph.get('ops_on_npu'), 'd')} "
                f"ops, {graph['non_delegated_ops']} op(s) on the CPU")
        if graph.get("non_delegated"):
            text += " (" + ", ".join(f"{k}×{v}" for k, v in graph["non_delegated"].items()) + ")"
        return text
    text = f"{graph['partitions']} partition(s), {graph['non_delegated_ops']} non-delegated"
    if "float_islands" in graph:
        text = f"{graph['float_islands']} float islands, {sum(graph['ops'].values())} ops; XNNPACK " + text
    if graph.get("non_delegated"):
        text += " (" + ", ".join(f"{k}×{v}" for k, v in graph["non_delegated"].items()) + ")"
    return text


def artifacts_table(artifacts: dict) -> str:
    return markdown_table(
        ["artifact", "runtime", "dtype", "accuracy", "agreement", "vs float", "max abs diff", "p50 ms", "p90 ms", "graph"],
        [[name, a["runtime"], a["dtype"], _fmt(a.get("accuracy")),
          f"{_fmt(a.get('agreement_with_reference'))} vs {a.get('reference', '—')}", _fmt(a.get("agreement_with_float")),
          _fmt(a.get("max_abs_diff"), ".3g"), _fmt((a.get("latency_ms") or {}).get("p50"), ".3f"),
          _fmt((a.get("latency_ms") or {}).get("p90"), ".3f"), graph_cell(a.get("graph"))]
         for name, a in artifacts.items()], align="lllrrrrrrl")


def yardstick_cell(y: dict | None) -> str:
    """One yardstick (parity.yardstick) in a cell: agreement, decisions apart, largest difference, and float's
    top-1 margin where decisions part (its median over all images in brackets)."""
    if not y:
        return "—"
    diff = f"{y['max_lsb']:g} LSB" if y.get("max_lsb") is not None else f"{y['max_abs_diff']:.2g}"
    text = f"{y['agreement']:.4f}, {y['apart']} apart, max {diff}"
    if y.get("float_margin_where_apart") is not None:
        text += f"; float margin there ≤ {y['float_margin_where_apart']:.3g} ({y['float_margin_median']:.3g})"
    return text


def yardsticks_table(artifacts: dict) -> str:
    """Each artifact against float, its reference and the other runtime (parity.compare's `yardsticks`)."""
    rows = []
    for name, a in artifacts.items():
        ys = a.get("yardsticks") or {}
        if not ys:
            continue
        cells = [yardstick_cell(ys.get(k)) for k in ("float", "reference", "runtime")]
        if ys.get("reference"):
            form = f" ({a['reference_hard_swish']} hard-swish)" if a.get("reference_hard_swish") else ""
            cells[1] = f"{ys['reference']['against']}{form}: " + cells[1]
        if ys.get("runtime"):
            cells[2] = f"{ys['runtime']['against']}: " + cells[2]
        rows.append([name, _fmt(a.get("accuracy")), *cells])
    return markdown_table(["artifact", "accuracy", "vs float", "vs its int8 reference", "vs the other runtime"], rows,
                          align="lrlll")


def yardstick_lines(artifacts: dict) -> list[str]:
    if not any(a.get("yardsticks") for a in artifacts.values()):
        return []
    return ["", "### Parity: three yardsticks", "",
            "Top-1 agreement of each file with float (how many of float's decisions int8 changes), with the int8 "
            "reference it is made from (run in the delegates' integer arithmetic: does the runtime compute what it "
            "should) and with the same model in the other runtime; the largest logit difference, in LSB of the "
            "int8 output scale; where decisions part, float's top-1 margin there and, in brackets, its median over "
            "all images (a part at a near tie is rounding, not a fault). The app files (`*_app`) are fed the "
            "images as uint8 RGB pixels, as an app feeds them, and output probabilities: they are held against "
            "float and their runtime's float-input int8 file fed the same pixels, and their differences are in "
            "probability."
            + (" A .pte holds the QAT graph's hard-swishes as one native op each, the fastest form on ExecuTorch's "
               "XNNPACK, where the .tflite writes them out as the QAT graph does (LiteRT's XNNPACK takes no int8 "
               "HARD_SWISH): each is held to the int8 reference in its own form, and the two runtimes' files part "
               "by the intermediate roundings the native op leaves out."
               if any(a.get("reference_hard_swish") for a in artifacts.values()) else ""),
            "", yardsticks_table(artifacts)]


def stress_table(stress: dict) -> str:
    """The shifted-set evaluation (`parity --stress`): accuracy and agreement per artifact."""
    rows = []
    n = stress["num_test"]
    for name, a in stress["artifacts"].items():
        agree = a.get("agreement_with_reference")
        apart = "—" if agree is None or name == "float" else f"{round((1 - agree) * n)} of {n}"
        margin = ("—" if a.get("reference_margin_where_apart") is None else
                  f"≤ {a['reference_margin_where_apart']:.3g} ({a['reference_margin_median']:.3g})")
        rows.append([name, _fmt(a.get("accuracy")), f"{_fmt(agree)} vs {a.get('reference', '—')}",
                     _fmt(a.get("agreement_with_float")), _fmt(a.get("max_abs_diff"), ".3g"), apart, margin])
    return markdown_table(["artifact", "accuracy", "agreement", "vs float", "max abs diff",
                           "decisions apart from the reference", "reference's top-1 margin there (median, all images)"],
                          rows)


def stress_lines(stress: dict | None) -> list[str]:
    if not stress:
        return []
    s = stress["shift"]
    return ["", f"### Under a seeded shift (seed {stress['seed']})", "",
            f"The same {stress['num_test']} test images, each rotated up to {s['rotation_deg']:g} degrees, moved up to "
            f"{s['translate']:.0%} of its side, its contrast scaled by {s['contrast'][0]:g}-{s['contrast'][1]:g}, with "
            f"noise of {s['noise']:g}: decisions sit near class boundaries, where int8 rounding shows "
            "(`se-edge parity --stress`).", "", stress_table(stress), "", "Its three yardsticks:", "",
            yardsticks_table(stress["artifacts"])]


# Per runtime, the float model's files and the QAT file: the table a user weighs int8 against fp16 and fp32 with.
PRECISIONS = {"litert": ("tflite_fp32", "tflite_fp16", "tflite_int8"),
              "executorch": ("executorch_fp32", "executorch_fp16", "executorch_int8")}
DTYPE_COLOURS = {"fp32": "#4c72b0", "fp16": "#55a868", "int8": "#dd8452"}


def precision_table(artifacts: dict) -> str | None:
    """fp32, fp16 and int8 side by side per runtime: size, accuracy, agreement with float, p50 and its ratio to fp32,
    delegation. None where a run has no fp16 file (made before se_edge wrote them)."""
    rows = []
    for runtime, names in PRECISIONS.items():
        present = [n for n in names if n in artifacts]
        if len(present) < 2 or not any(artifacts[n]["dtype"] == "fp16" for n in present):
            continue
        base = ((artifacts.get(names[0]) or {}).get("latency_ms") or {}).get("p50")
        for name in present:
            a = artifacts[name]
            p50 = (a.get("latency_ms") or {}).get("p50")
            size = a.get("size_bytes")
            rows.append([runtime, a["dtype"], name, "—" if size is None else f"{size / 1024:.1f}", _fmt(a.get("accuracy")),
                         _fmt(a.get("agreement_with_float")), _fmt(a.get("max_abs_diff"), ".3g"),
                         _fmt(p50, ".3f"), "—" if not (p50 and base) else f"{p50 / base:.2f}", graph_cell(a.get("graph"))])
    if not rows:
        return None
    return markdown_table(["runtime", "dtype", "artifact", "size KiB", "accuracy", "agreement with float",
                           "max abs diff", "p50 ms", "÷ fp32", "delegation"], rows, align="llllrrrrrl")


def fp16_text(features: list) -> str:
    """What a CPU's fp16 ISA features (runner.FP16_FEATURES) mean for an fp16 file's speed."""
    if features:
        return ", ".join(map(str, features))
    return ("none (no asimdhp or avx512_fp16: XNNPACK's fp16 kernels convert to fp32 around every op, so fp16 is not "
            "timed here as a phone with fp16 arithmetic runs it)")


def precision_lines(report: dict) -> list[str]:
    table = precision_table(report["artifacts"])
    if table is None:
        return []
    features = (report.get("host") or {}).get("fp16_features")
    lines = ["", "### int8, fp16 and fp32 per runtime", "",
             "The fp32 and fp16 files are float.pt (fp16: LiteRT's float16 weights, computed in fp32 unless the app "
             "asks XNNPACK for fp16 inference; ExecuTorch's XNNPACK computes in fp16), the int8 file the QAT model. "
             "Max abs diff: the fp files' against float, the int8 file's against its int8 reference."]
    if isinstance(features, list):
        lines[-1] += f" fp16 arithmetic on this CPU: {fp16_text(features)}."
    return lines + ["", table]


def footprint_table(artifacts: dict) -> str:
    """Size, parameters, MACs and runtime memory beside accuracy and p50 (evaluate/footprint.py)."""
    rows = []
    for name, a in artifacts.items():
        if a.get("size_bytes") is None:
            continue
        lat = a.get("latency_ms") or {}
        rss = "—" if a.get("peak_rss_mb") is None else f"{a['peak_rss_mb']:.1f} ({_fmt(a.get('runtime_rss_mb'), '.1f')})"
        rows.append([name, f"{a['size_bytes'] / 1024:.1f}", f"{a['params']:,}", f"{a['macs'] / 1e6:.2f}", rss,
                     _fmt(a.get("accuracy")), _fmt(lat.get("p50"), ".3f")])
    return markdown_table(["artifact", "size KiB", "params", "MMACs", "peak RSS MiB (runtime alone)", "accuracy",
                           "p50 ms"], rows)


def footprint_lines(artifacts: dict) -> list[str]:
    if not any(a.get("size_bytes") is not None for a in artifacts.values()):
        return []
    return ["", "### Size and memory", "",
            "Peak RSS: a fresh process with only the file's Python runtime loads the file and runs it once; the "
            "figure in brackets is that process before loading (the .pte's includes torch, which ExecuTorch's "
            "Python runtime imports). MACs and parameters are the float model's.", "", footprint_table(artifacts)]


def latency_table(latency: dict) -> str:
    """`se-edge bench latency`'s table: {artifact: latency summary} from evaluate.latency.run_latency."""
    from se_edge.run import ARTIFACTS

    return markdown_table(["artifact", "runtime", "dtype", "p50 ms", "p90 ms", "p99 ms", "runs", "threads"],
                          [[name, ARTIFACTS[name].runtime, ARTIFACTS[name].dtype, f"{lat['p50']:.3f}", f"{lat['p90']:.3f}",
                            f"{lat['p99']:.3f}", lat["count"], lat["threads"]] for name, lat in latency.items()],
                          align="lllrrrrr")


def markdown(report: dict) -> str:
    lines = [f"# se_edge run: {report['model']} on {report['dataset']}", "",
             f"- test images: {report['num_test']}",
             f"- training device: {report['device']}"]
    if "timings_s" in report:
        lines.append("- time per stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report["timings_s"].items()))
    threads = {a["latency_ms"]["threads"] for a in report["artifacts"].values() if a.get("latency_ms")}
    lines += ["", "Latency: single-image runs after warm-up, artifacts interleaved, "
              f"{', '.join(map(str, sorted(threads))) or '—'} thread(s). Agreement is top-1 agreement "
              "with the reference named; int8 files are compared with the PyTorch int8 reference, run in the "
              "delegates' integer arithmetic.", "",
              artifacts_table(report["artifacts"]), *precision_lines(report), *yardstick_lines(report["artifacts"]),
              *footprint_lines(report["artifacts"]),
              *stress_lines(report.get("stress")), "",
              "Where an int8 file parts from float, layer by layer: `se-edge debug --run RUN` writes "
              "[debug.md](debug.md) here.", ""]
    for plot in report.get("plots", []):
        lines.append(f"![{Path(plot).stem}]({Path(plot).name})")
    lines += app_lines(report)
    lines += model_source_lines(report)
    ops = {n: a["graph"]["ops"] for n, a in report["artifacts"].items() if a.get("graph", {}).get("ops")}
    for name, counts in ops.items():
        lines += ["", f"**{name} ops:** " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    for name, a in report["artifacts"].items():
        if (a.get("graph") or {}).get("npu_ops"):
            lines += ["", f"**{name} ops on the NPU:** " + ", ".join(f"{k} {v}" for k, v in a["graph"]["npu_ops"].items())]
    return "\n".join(lines) + "\n"


CLIENT_NAMES = {"mediapipe": "MediaPipe Tasks `ImageClassifier`", "task_library": "Task Library `ImageClassifier` "
                "(tflite-support)"}


def app_lines(report: dict) -> list[str]:
    """"In an app": the app file's form, which clients were measured to load it (`make app-test`), and snippets."""
    app = report["artifacts"].get("tflite_int8_app")
    if not app:
        return []
    name = Path(app["path"]).name
    lines = ["", "## In an app", "",
             f"`{name}` takes (1, H, W, 3) RGB pixels 0..255 and outputs class probabilities; its metadata names "
             "the classes (labels.txt inside the file). Parity above feeds it the test images as such pixels.", ""]
    measured = report.get("app_clients")
    if measured:
        lines += ["| client | loads it | top-1 equal to se_edge's | exact ties | accuracy | scores unlike se_edge's "
                  "(max difference) |", "|---|---|---:|---:|---:|---|"]
        for client, r in measured["clients"].items():
            lines.append(f"| {CLIENT_NAMES.get(client, client)} {r['version']} | yes | {r['top1_equal']} of "
                         f"{r['images']} | {len(r['exact_ties'])} | {r['accuracy']:.4f} | "
                         f"{r.get('images_scores_differ', '—')} image(s) ({r['max_score_diff']:.2g}) |")
        lines += ["", f"Measured by `make app-test` on this file (sha256 {measured['sha256'][:12]}), each client "
                  "reading the test images from PNG files."]
    else:
        lines.append("No client measured on this file yet: `make app-test RUN=<this run>` runs MediaPipe and the "
                     "Task Library on it.")
    lines += ["", "MediaPipe (Python):", "", "```python",
              "import mediapipe as mp",
              "from mediapipe.tasks import python as tasks",
              "from mediapipe.tasks.python import vision",
              "",
              "options = vision.ImageClassifierOptions(",
              f"    base_options=tasks.BaseOptions(model_asset_path=\"{name}\"), max_results=3)",
              "with vision.ImageClassifier.create_from_options(options) as classifier:",
              "    result = classifier.classify(mp.Image.create_from_file(\"image.png\"))",
              "    for c in result.classifications[0].categories:",
              "        print(c.category_name, c.score)",
              "```", "", "Android (Kotlin, Task Library `org.tensorflow:tensorflow-lite-task-vision`; the same C++ "
              "classifier the Python client above measured):", "", "```kotlin",
              "val options = ImageClassifier.ImageClassifierOptions.builder().setMaxResults(3).build()",
              f"val classifier = ImageClassifier.createFromFileAndOptions(context, \"{name}\", options)",
              "val categories = classifier.classify(TensorImage.fromBitmap(bitmap))[0].categories",
              "categories.forEach { Log.i(\"se_edge\", \"${it.label} ${it.score}\") }",
              "```"]
    return lines


def app_clients(out_dir: str | os.PathLike) -> dict | None:
    """The run's app_clients.json where it measured the app file as it is now (same sha256), else None."""
    from se_edge.io import read_json
    from se_edge.io import file_sha256

    path, app = Path(out_dir) / APP_CLIENTS, Path(out_dir) / "model_int8_app.tflite"
    if not path.is_file() or not app.is_file():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) and data.get("sha256") == file_sha256(app) else None


def refresh_markdown(out_dir: str | os.PathLike) -> None:
    """report.json and report.md again from report.json, with what the app clients measured now."""
    from se_edge.io import read_json

    report = read_json(Path(out_dir) / "report.json")
    report = {k: v for k, v in report.items() if k != "app_clients"}
    measured = app_clients(out_dir)
    if measured:
        report["app_clients"] = measured
    write_json(Path(out_dir) / "report.json", report)
    write_text(Path(out_dir) / "report.md", markdown(report))


def model_source_lines(report: dict) -> list[str]:
    """The model's origin (spec, file hash, weights, a replaced head) and what the rewrite did, module by module."""
    source, rewrite = report.get("model_source") or {}, report.get("rewrite")
    if not source and not rewrite:
        return []
    lines = ["", "## Model", "", f"- spec: `{source.get('spec', report['model'])}`"
             + (f" (file sha256 {source['sha256'][:16]})" if source.get("sha256") else "")]
    if w := source.get("weights"):
        lines.append(f"- weights: `{w['path']}` (sha256 {w['sha256'][:16]}, {w['tensors']} tensors)")
        lines += [f"- {note}" for note in w.get("notes", [])]
    if not rewrite or not rewrite.get("enabled"):
        lines.append("- rewrite: off (the model's own blocks were kept)")
        return lines
    dev = rewrite.get("max_abs_deviation")
    replaced = rewrite.get("replaced", [])
    lines.append(f"- rewrite to hardware-aware blocks: {len(replaced)} module(s) replaced, "
                 f"{sum(r['exact'] for r in replaced)} exact; max |output difference| before vs after "
                 f"{'—' if dev is None else f'{dev:.3g}'} on {rewrite.get('deviation_images') or '—'} training images"
                 + (", SiLU rewritten too" if rewrite.get("silu") else ""))
    if native := rewrite.get("native_activations"):
        lines.append("- kept native (written out as ADD/RELU6/MUL when quantised): "
                     + ", ".join(f"{k} {v}" for k, v in native.items()))
    if replaced:
        lines += ["", "| module | was | now | gate was | exact |", "|---|---|---|---|---|"]
        lines += [f"| `{r['name'] or '(root)'}` | {r['source']} | {r['to']} | {r.get('gate_from', '—')} | "
                  f"{'yes' if r['exact'] else 'no'} |" for r in replaced]
    return lines


def plot(report: dict, out_dir: str | os.PathLike) -> list[str]:
    """accuracy.png and latency.png (p50 bar, p90 whisker) per artifact."""

    out_dir = Path(out_dir)
    arts = report["artifacts"]
    names = [n for n in arts if arts[n].get("accuracy") is not None]  # not the files for an accelerator
    colours = [DTYPE_COLOURS.get(arts[n]["dtype"], "#dd8452") for n in names]
    paths = []

    fig, ax = subplots(figsize=(7, 3.5))
    acc = [arts[n]["accuracy"] for n in names]
    ax.bar(names, acc, color=colours)
    lo = min(acc)
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    for i, v in enumerate(acc):
        ax.text(i, v, f"{v:.4f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{report['model']} on {report['dataset']} ({report['num_test']} images)")
    ax.tick_params(axis="x", rotation=30)
    paths.append(_save(fig, out_dir / "accuracy.png"))

    timed = [n for n in names if arts[n].get("latency_ms")]
    if timed:
        fig, ax = subplots(figsize=(7, 3.5))
        p50 = [arts[n]["latency_ms"]["p50"] for n in timed]
        p90 = [arts[n]["latency_ms"]["p90"] for n in timed]
        ax.bar(timed, p50, color=[colours[names.index(n)] for n in timed], label="p50")
        ax.errorbar(timed, p50, yerr=[[0] * len(timed), [b - a for a, b in zip(p50, p90)]], fmt="none",
                    ecolor="black", capsize=3, label="p90")
        for i, v in enumerate(p50):
            ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("latency per image (ms)")
        ax.set_title(f"single-image latency, {arts[timed[0]]['latency_ms']['threads']} thread(s)")
        ax.tick_params(axis="x", rotation=30)
        ax.legend()
        paths.append(_save(fig, out_dir / "latency.png"))
    sized = [n for n in timed if arts[n].get("size_bytes")]
    if sized:
        paths.append(tradeoff_plot(report, sized, out_dir / "tradeoff.png"))
    return paths


def tradeoff_plot(report: dict, names: list[str], path: Path) -> str:
    """Accuracy against p50 latency per exported file (log scale), the marker's area proportional to the file's
    size; the files are told apart by the legend, since int8 files often share one accuracy."""

    arts = report["artifacts"]
    files = [n for n in names if arts[n]["runtime"] != "pytorch"] or names
    fig, ax = subplots(figsize=(8, 4))
    biggest = max(arts[n]["size_bytes"] for n in files)
    markers = "osD^vP*Xh<>"
    for i, n in enumerate(files):
        a = arts[n]
        ax.scatter(a["latency_ms"]["p50"], a["accuracy"], s=30 + 500 * a["size_bytes"] / biggest, alpha=0.55,
                   marker=markers[i % len(markers)], edgecolors="black",
                   color=DTYPE_COLOURS.get(a["dtype"], "#dd8452"),
                   label=f"{n}: {a['size_bytes'] / 1024:.0f} KiB")
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per image (ms, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy against latency; marker area: file size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=0.5)
    return _save(fig, path)


def write_report(report: dict, out_dir: str | os.PathLike) -> dict:
    """Write plots, report.json and report.md into `out_dir`; returns the report with plot paths."""
    report = dict(report, plots=plot(report, out_dir))
    measured = app_clients(out_dir)
    if measured:
        report["app_clients"] = measured
    write_json(Path(out_dir) / "report.json", report)
    write_text(Path(out_dir) / "report.md", markdown(report))
    return report
