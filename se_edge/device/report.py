"""A device bench as a Markdown table and a latency plot (p50 bars, p90 whiskers) per artifact:
the Python runtime there, and beside it the native runners (pte_runner, tflite_runner) and TFLite's benchmark_model
where run."""
from __future__ import annotations

import re
from pathlib import Path

from se_edge.io import write_json, write_text
from se_edge.report.figures import save, subplots
from se_edge.report.run_report import fp16_text
from se_edge.report.table import fmt, markdown_table

TOOLS = (("runner.py", None), ("native runner", "native"), ("benchmark_model", "benchmark_model"))


def _fmt(v, spec: str = ".3f") -> str:
    return fmt(v, spec)


def _latency(entry: dict | None, key: str):
    lat = (entry or {}).get("latency_ms") or {}
    return lat.get(key)


def device_slug(device: dict) -> str:
    """A file-name-safe name for a device: local, local-venv-tflite-old, adb-SERIAL, ssh-pi_board."""
    spec = device["spec"]
    if spec.startswith("local:"):
        python = Path(spec[len("local:"):])
        spec = "local-" + (python.parents[1].name if python.parent.name == "bin" else python.name)
    return re.sub(r"[^A-Za-z0-9.-]+", "_", spec.replace(":", "-", 1)).strip("._-") or "device"


def emulated(result: dict) -> bool:
    return bool(result["device"].get("emulated"))


def latency_table(result: dict) -> str:
    ms = "emulated ms" if emulated(result) else "ms"  # QEMU's time is never a device's, so never headed as one
    rows = []
    for name, a in result["artifacts"].items():
        native = a.get("native") or {}
        module = (f"{a['runtime_module']} {a.get('runtime_version') or ''}".strip() if a.get("runtime_module") else
                  f"{a['runtime']} {native['runtime_version']} (native)" if native.get("runtime_version") else a["runtime"])
        # where runner.py could not run (no Python there), status and parity are the native runner's
        shown = native if a.get("status") == "skipped" and native.get("status") in ("ok", "mismatch") else a
        rows.append([name, module, a["dtype"], shown["status"],
                     f"{_fmt(shown.get('agreement_with_reference'), '.4f')} vs {a['reference']}",
                     _fmt(shown.get("max_abs_diff"), ".3g"), _fmt(_latency(a, "p50")), _fmt(_latency(a, "p90")),
                     _fmt(_latency(a, "p99")), _fmt(_latency(a.get("native"), "p50")),
                     _fmt(_latency(a.get("benchmark_model"), "p50"))])
    return markdown_table(["artifact", "runtime there", "dtype", "status", "agreement", "max abs diff", f"p50 {ms}",
                           f"p90 {ms}", f"p99 {ms}", f"native p50 {ms}", f"benchmark_model p50 {ms}"], rows,
                          align="llllrrrrrrr")


def device_facts(result: dict) -> dict:
    """What the runners reported about the machine they ran on (the native runners' `device`, else runner.py's)."""
    for a in result["artifacts"].values():
        for e in (a.get("native"), a):
            if e and isinstance(e.get("device"), dict):
                return e["device"]
    return result["device"].get("device_info") or {}


def _device_line(facts: dict) -> str | None:
    if not facts:
        return None
    load = facts.get("load_average")
    features = ", ".join(map(str, facts.get("int8_features") or [])) or "none of asimddp, i8mm, sve, sme, avx512_vnni, avxvnni"
    return (f"- CPU: {facts.get('cpu_model', '?')} ({facts.get('machine', '?')}), {facts.get('cores', '?')} cores; "
            f"int8 ISA features: {features}"
            + (f"; fp16 arithmetic: {fp16_text(facts['fp16_features'])}" if isinstance(facts.get("fp16_features"), list)
               else "")
            + (f"; load average at start {load[0]:.2f}" if isinstance(load, list) and load and load[0] is not None
               and load[0] >= 0 else ""))


def check_rows(result: dict) -> list[str]:
    """Each runner's outputs against the same file run on this host: bit-identical values, the largest difference."""
    rows = []
    for name, a in result["artifacts"].items():
        for tool, entry in (("runner.py", a), ("native", a.get("native"))):
            c = (entry or {}).get("check")
            if c:
                apart = f"{c['max_lsb']:.2f} LSB" if "max_lsb" in c else f"{c['max_abs_diff']:.3g}"
                rows.append([name, tool, f"{c['bit_identical']} of {c['values']}", apart, c["tolerance"],
                             "yes" if c["within"] else "**no**"])
    if not rows:
        return []
    return ["", "Outputs against the same file run on this host:", "",
            markdown_table(["artifact", "runner", "bit-identical", "max apart", "allowed", "within"], rows,
                           align="llrrll")]


def mismatches(result: dict) -> list[tuple[str, str]]:
    return [(n, e["reason"]) for n, a in result["artifacts"].items() for e in (a, a.get("native"))
            if e and e.get("status") == "mismatch"]


def markdown(result: dict, plot_name: str | None = None) -> str:
    d, s = result["device"], result["settings"]
    runtimes = ", ".join(f"{k} {v['module']} {v.get('version') or ''}".strip() for k in ("litert", "executorch")
                         if (v := d.get(k)))
    where = (f"Python {d.get('python', '?')} at {d['python_executable']}" if d.get("python_executable") else
             "no Python: native runners only")
    lines = [f"# Device bench: {result['model']} on {d['spec']}" + (" (emulated)" if emulated(result) else ""), "",
             f"- device: {d['spec']} ({d.get('machine', '?')}, {d.get('system', '?')}; {where}); "
             f"Python runtimes: {runtimes or 'none'}",
             *filter(None, [_device_line(device_facts(result))]),
             f"- parity images: {result['num_test']} of {result['dataset']}; agreement is top-1 agreement with the host's "
             "PyTorch reference named",
             f"- latency: single-image runs, {s['warmup']} warm-up then {s['runs']} timed, {s['threads']} thread(s); "
             "load and first inference apart, below"]
    if emulated(result):
        lines.append(f"- **emulated**: {d.get('qemu', 'QEMU')} with CPU model {d.get('cpu_model_qemu', '?')} on this host; "
                     "its times prove nothing about a device's speed (emulation is 150-900x slower) and are never "
                     "plotted or tabled beside a device's. What it proves is the outputs on arm64 kernels, below.")
    lines += ["", latency_table(result), *load_rows(result)]
    lines += check_rows(result)
    if apart := mismatches(result):
        lines += ["", "## Outputs that differ from this host's", ""] + [f"- {name}: {reason}" for name, reason in apart]
    lines += int8_vs_fp32_lines(result)
    if skipped := skipped_lines(result):
        lines += ["", "Skipped:"] + [f"- {line}" for line in skipped]
    lines += profile_lines(result)
    if plot_name:
        lines += ["", f"![device latency]({plot_name})"]
    return "\n".join(lines) + "\n"


def profiles(result: dict) -> dict[str, dict]:
    """`{artifact: profile summary}` of the files the native runners profiled (`--profile`)."""
    return {name: a["native"]["profile"] for name, a in result["artifacts"].items()
            if isinstance(a.get("native"), dict) and a["native"].get("profile")}


def profile_lines(result: dict) -> list[str]:
    """Each profiled file's per-op tables (device/profile.py's markdown), under a heading that says where they ran."""
    found = profiles(result)
    if not found:
        return []
    from se_edge.device.profile import markdown as profile_markdown

    where = (" (EMULATED: each op's share of the run on arm64 kernels; the times are QEMU's, not a device's)"
             if emulated(result) else "")
    return ["", f"## Per-op profiles on {result['device']['spec']}{where}", "", profile_markdown(found)]


def load_rows(result: dict) -> list[str]:
    """Load time and first inference per file and runner, beside the steady-state p50."""
    rows = []
    for name, a in result["artifacts"].items():
        for tool, entry in (("runner.py", a), ("native", a.get("native")), ("benchmark_model", a.get("benchmark_model"))):
            if entry and entry.get("status") in ("ok", "mismatch") and entry.get("load_ms") is not None:
                rows.append([name, tool, _fmt(entry.get("load_ms")), _fmt(entry.get("first_ms")),
                             _fmt(_latency(entry, "p50"))])
    if not rows:
        return []
    return ["", markdown_table(["artifact", "runner", "load ms", "first inference ms", "p50 ms"], rows, align="llrrr")]


OLD_TFLITE_RUNTIME = ("tflite_runtime", (2, 15))  # before this, se_edge measured its int8 on the builtin kernels


def int8_vs_fp32_lines(result: dict) -> list[str]:
    """Per runtime on the device, the int8 file's p50 against the fp32 file's, said plainly where int8 is the slower
    (as on tflite-runtime 2.14, which runs se_edge's int8 files on its builtin, unaccelerated kernels)."""
    arts, out = result["artifacts"], []
    for runtime, fp32, int8 in (("litert", "tflite_fp32", "tflite_int8"), ("executorch", "executorch_fp32", "executorch_int8")):
        a, b = _latency(arts.get(fp32), "p50"), _latency(arts.get(int8), "p50")
        if not a or not b:
            continue
        module = arts[int8].get("runtime_module") or runtime
        version = arts[int8].get("runtime_version") or ""
        text = f"- {module} {version}: int8 p50 {b:.3f} ms, fp32 {a:.3f} ms (int8 / fp32 {b / a:.2f})".replace("  ", " ")
        if b > a:
            text += "; **int8 is slower than fp32 here**"
            if module == OLD_TFLITE_RUNTIME[0] and _version(version) < OLD_TFLITE_RUNTIME[1]:
                text += (f" ({module} before {'.'.join(map(str, OLD_TFLITE_RUNTIME[1]))} runs these int8 files on its "
                         "builtin kernels, not XNNPACK: ship fp32 there, or a newer runtime)")
        out.append(text)
    return ["", "int8 against fp32 on this device:", *out] if out else []


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2]) or (0,)


def summary(result: dict) -> str:
    """What `se-edge bench --device` prints: a header, the table, int8 against fp32, one line per skipped
    measurement."""
    lines = [f"{result['model']} on {result['device']['spec']}: parity on {result['num_test']} images of {result['dataset']}"
             + (" (EMULATED: outputs on arm64 kernels, not a device's speed)" if emulated(result) else ""),
             *filter(None, [_device_line(device_facts(result))]),
             latency_table(result), *check_rows(result), *int8_vs_fp32_lines(result)]
    lines += [f"MISMATCH {name}: {reason}" for name, reason in mismatches(result)]
    lines += [f"skipped {line}" for line in skipped_lines(result)]
    lines += profile_lines(result)
    return "\n".join(lines)


def skipped_lines(result: dict) -> list[str]:
    """One line per runner and reason: 'NAME: REASON' (runner.py's), 'NAME (TOOL): REASON' (another runner's), with
    'every file' for NAME where all share it."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    for name, a in result["artifacts"].items():
        for tool, entry in (("runner.py", a), ("native runner", a.get("native")), ("benchmark_model", a.get("benchmark_model"))):
            if entry and entry["status"] == "skipped":
                by_reason.setdefault((tool, entry["reason"]), []).append(name)
    every = len(result["artifacts"])
    return [f"{'every file' if len(names) == every > 1 else ', '.join(names)}"
            f"{'' if tool == 'runner.py' else f' ({tool})'}: {reason}" for (tool, reason), names in by_reason.items()]


def plot(result: dict, path: str | Path) -> str | None:
    """Grouped bars per artifact: p50 of each tool that ran it, p90 as a whisker where measured. None for an emulated
    device, whose times are not a device's."""
    if emulated(result):
        return None

    names = list(result["artifacts"])
    series = []
    for tool, key in TOOLS:
        entries = [result["artifacts"][n] if key is None else result["artifacts"][n].get(key) for n in names]
        if any(_latency(e, "p50") is not None for e in entries):
            series.append((tool, entries))
    if not series:
        return None
    fig, ax = subplots(figsize=(max(6, 1.6 * len(names)), 3.8))
    width = 0.8 / len(series)
    for i, (tool, entries) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        p50 = [_latency(e, "p50") or 0.0 for e in entries]
        p90 = [_latency(e, "p90") for e in entries]
        ax.bar(xs, p50, width, label=f"{tool} p50")
        whisker = [(x, a, b) for x, a, b in zip(xs, p50, p90, strict=True) if b is not None and a > 0]
        if whisker:
            wx, low, high = zip(*whisker, strict=True)
            ax.errorbar(wx, low, yerr=[[0] * len(wx), [h - lo for lo, h in zip(low, high, strict=True)]],
                        fmt="none", ecolor="black", capsize=3)
        for x, v, e in zip(xs, p50, entries, strict=True):
            if e is not None:  # a tool that does not apply to this file gets no label
                ax.text(x, v, f"{v:.3f}" if v else "skipped", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("latency per image (ms)")
    ax.set_title(f"{result['model']} on {result['device']['spec']}, {result['settings']['threads']} thread(s); whisker: p90")
    ax.legend(fontsize=8)
    return save(fig, path)


def write_device_report(result: dict, json_path: str | Path) -> dict[str, str]:
    """JSON at `json_path`, Markdown beside it (.md) and the plot (_latency.png); returns the paths."""
    json_path = Path(json_path)
    png = plot(result, json_path.with_name(json_path.stem + "_latency.png"))
    md = json_path.with_suffix(".md") if json_path.suffix != ".md" else json_path.with_name(json_path.name + ".md")
    write_json(json_path, {**result, "plots": [png] if png else []})
    write_text(md, markdown(result, Path(png).name if png else None))
    return {"json": str(json_path), "markdown": str(md), **({"plot": png} if png else {})}
