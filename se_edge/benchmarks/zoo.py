"""`se-edge bench zoo`: is every zoo model int8-pure and delegated on the mobile backends? Measured
from its exported files: TFLite float islands and ops, the XNNPACK partitions and ops left outside as
LiteRT and ExecuTorch run them, and (when Vela is installed) Ethos-U NPU/CPU operators and estimated time.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from se_edge.export.int8 import int8_exports
from se_edge.report.table import fmt, markdown_table


def purity(paths: dict[str, Path], npu: bool = True) -> dict:
    """`{"tflite": {...}, "pte": {...}, "npu": {...}}` for files made by `int8_exports` (and
    "tflite_fp32", "pte_fp32" where those were made)."""
    from se_edge.evaluate.structure import graph_summary
    from se_edge.evaluate.vela import vela_executable, vela_report

    out = {key: graph_summary(path) for key, path in paths.items()}
    if "tflite" in paths and npu and vela_executable():
        out["npu"] = vela_report(paths["tflite"])
    return out


def zoo_purity(models: list[str] | None = None, size: int = 32, out_dir: str | os.PathLike = "runs/zoo-purity",
               progress: bool = True) -> dict:
    """Every registered model with its defaults (hw gate, small stem, `size` px): purity and delegation
    of its fp32 and int8 files on both runtimes and the NPU; beside it, the same model with
    F.hardsigmoid's gate as the stock XNNPACK quantizer leaves it. Written as JSON + Markdown."""
    from tqdm.auto import tqdm

    from se_edge.io import write_json, write_text
    from se_edge.models import create_model, list_models

    out_dir = Path(out_dir)
    rows = {}
    for name in tqdm(models or list_models(), desc="zoo purity", unit="model", disable=not progress):
        row = {}
        for gate, backends, fp32 in (("hw", ("litert", "executorch"), True), ("hard_sigmoid", ("litert",), False)):
            torch.manual_seed(0)
            model = create_model(name, num_classes=10, in_chans=1, stem="small", se=gate)
            paths = int8_exports(model, (1, 1, size, size), out_dir / "files", f"{name}_{gate}", backends, fp32=fp32,
                                 delegable_activations=gate == "hw")
            row[gate] = purity(paths)
        rows[name] = row
    result = {"size": size, "models": rows}
    write_json(out_dir / "zoo_purity.json", result)
    write_text(out_dir / "zoo_purity.md", zoo_markdown(result))
    return result


def delegation_cell(graph: dict | None) -> str:
    """`partitions / ops outside (OP×n, ...)` for a .tflite or .pte graph summary."""
    if not graph:
        return "—"
    text = f"{graph['partitions']} / {graph['non_delegated_ops']}"
    if graph.get("non_delegated"):
        text += " (" + ", ".join(f"{k}×{v}" for k, v in graph["non_delegated"].items()) + ")"
    return text


def zoo_markdown(result: dict) -> str:
    lines = [f"Defaults (hw gate, small stem, {result['size']} px). Partitions / ops outside the XNNPACK delegate, "
             "as ai-edge-litert and ExecuTorch load each file; float islands read from the int8 .tflite.", ""]
    rows = []
    for name, row in result["models"].items():
        hw, hs = row["hw"], row["hard_sigmoid"]
        npu, hs_npu = hw.get("npu", {}), hs.get("npu", {})
        rows.append([name, delegation_cell(hw.get("tflite_fp32")), delegation_cell(hw["tflite"]),
                     hw["tflite"]["float_islands"], delegation_cell(hw.get("pte_fp32")), delegation_cell(hw["pte"]),
                     f"{npu.get('npu_ops', '—')} / {npu.get('cpu_ops', '—')}", fmt(npu.get("inference_time_ms"), ".2f"),
                     f"{hs['tflite']['float_islands']}, {delegation_cell(hs['tflite'])}, {hs_npu.get('cpu_ops', '—')}"])
    lines.append(markdown_table(
        ["model", "LiteRT fp32", "LiteRT int8", "TFLite int8 float islands", ".pte fp32", ".pte int8",
         "Ethos-U55 NPU / CPU ops", "est. ms", "F.hardsigmoid gate, stock quantizer: float islands, LiteRT int8, CPU ops"],
        rows))
    return "\n".join(lines) + "\n"
