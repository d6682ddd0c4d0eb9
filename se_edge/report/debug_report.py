"""debug.json rendered: debug.md (worst layers first, each runtime's own arithmetic, sensitivity, every layer) and
debug.png (SQNR along the depth). The analysis is evaluate/debug.py's."""
from __future__ import annotations

from pathlib import Path

from se_edge.evaluate.debug import own_summary
from se_edge.io import write_json, write_text
from se_edge.report.figures import save, subplots
from se_edge.report.table import markdown_table


def markdown(result: dict, top: int = 10) -> str:
    rows = result["points"]
    shifted = "" if result.get("stress") is None else f", shifted with seed {result['stress']}"
    lines = [f"# Per-layer parity: {result['model']} on {result['dataset']} ({result['images']} images{shifted})", "",
             "SQNR (dB) of each int8 activation against float and against the PyTorch int8 reference, in graph "
             "order; *drop* is how much lower it is than at the layer's own inputs (what that layer's rounding "
             "lost); LSB is the largest difference in units of the activation's scale.", ""]
    for k, order in result["worst_first"].items():
        lines += [f"## {k}: worst first", "", markdown_table(
            ["#", "layer", "op", "SQNR dB", "drop dB", "max LSB"],
            [[i, rows[i]["layer"], rows[i]["op"], f"{rows[i]['sqnr_db'][k]:.1f}", f"{rows[i]['drop_db'][k]:.1f}",
              f"{rows[i]['max_lsb'][k]:.1f}"] for i in order[:top]], align="rllrrr"), ""]
    lines += own_lines(result, top)
    if result.get("sensitivity"):
        lines += sensitivity_lines(result) + [""]
    lines += ["## Every layer, in graph order", "", markdown_table(
        ["#", "layer", "op", *(f"{k} dB" for k in result["worst_first"])],
        [[r["index"], r["layer"], r["op"], *(f"{r['sqnr_db'][k]:.1f}" if k in r["sqnr_db"] else "—"
                                              for k in result["worst_first"])] for r in rows],
        align="rll" + "r" * len(result["worst_first"]))]
    return "\n".join(lines) + "\n"


def own_lines(result: dict, top: int = 5) -> list[str]:
    """The runtimes' own arithmetic per layer, as text (markdown)."""
    summary = own_summary(result)
    if not summary:
        return []
    lines = ["## Each layer's own arithmetic in the runtime", "",
             "The int8 reference run with every activation the runtime has replaced by the runtime's value "
             "(teacher forcing), so each layer gets the runtime's own int8 inputs: what is left is that layer's "
             "arithmetic in the runtime (accumulation, requantisation, rounding), not what earlier layers handed "
             "it. *share*: the values at least half an LSB apart.", ""]
    for source, s in summary.items():
        w = s["worst"]
        lines += [f"{source}: {s['within_1_lsb']} of {s['layers']} layers within 1 LSB of the reference on the same "
                  f"inputs ({s['exact']} exact); worst {w['layer']} ({w['op']}), {w['max_lsb']:.0f} LSB on "
                  f"{100 * w['share']:.2f}% of its values.", "",
                  markdown_table(["#", "layer", "op", "max LSB", "share"],
                                 [[i, r["layer"], r["op"], f"{r['own_max_lsb'][source]:.0f}",
                                   f"{100 * r['own_share'][source]:.2f}%"]
                                  for i in s["ranked"][:top] for r in [result["points"][i]]], align="rllrr"), ""]
    return lines


def sensitivity_lines(result: dict) -> list[str]:
    f = result.get("float_test_accuracy")
    lines = ["## Sensitivity: one layer in float", "",
             f"Test accuracy of the int8 reference with that one layer left in float (`se-edge export --keep-float "
             f"LAYER` makes the files), the worst layers against float first; all int8: "
             f"{result['sensitivity'][0]['int8_accuracy']:.4f}" + (f", float: {f:.4f}" if f is not None else "") + ".",
             "", markdown_table(["#", "layer", "accuracy", "gain"],
                                [[s["index"], s["layer"], f"{s['accuracy']:.4f}", f"{s['gain']:+.4f}"]
                                 for s in result["sensitivity"]], align="rlrr")]
    return lines


def plot(result: dict, path) -> str:

    fig, ax = subplots(figsize=(9, 4))
    for k in result["worst_first"]:
        pts = [(r["index"], r["sqnr_db"][k]) for r in result["points"] if k in r["sqnr_db"]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=k)
    ax.set_xlabel("int8 activation, in graph order")
    ax.set_ylabel("SQNR (dB)")
    ax.set_title(f"{result['model']}: SQNR along the depth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def write_debug(result: dict, out_dir) -> list[str]:
    out = Path(out_dir)
    write_json(out / "debug.json", result)
    write_text(out / "debug.md", markdown(result) + "\n![sqnr](debug.png)\n")
    return [str(out / "debug.json"), str(out / "debug.md"), plot(result, out / "debug.png")]
