"""Is a model int8-pure on the mobile backends? Measured from its exported files.

`int8_exports(model, input_shape, out_dir)` quantises a model (PT2E, ranges from a few random
batches: structure does not depend on trained weights), exports the int8 `.tflite` and `.pte` (and,
with `fp32=True`, the float files too), and `purity(...)` reports, from those files: TFLite float
islands and ops, the XNNPACK partitions and ops left outside as LiteRT and ExecuTorch run them, and
(when Vela is installed) Ethos-U NPU/CPU operators and estimated time.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


def quantize_for_structure(model: torch.nn.Module, input_shape: tuple[int, ...], batches: int = 2, seed: int = 0,
                           delegable_activations: bool = True):
    """A PT2E-prepared copy of `model` whose observers saw `batches` random batches (eval mode)."""
    from se_edge.quantize import prepare_qat
    from se_edge.quantize.qat import set_eval

    gen = torch.Generator().manual_seed(seed)
    prepared = prepare_qat(model, torch.randn(2, *input_shape[1:], generator=gen), delegable_activations)
    with torch.no_grad():
        for _ in range(batches):
            prepared(torch.randn(2, *input_shape[1:], generator=gen))
    set_eval(prepared)
    return prepared


def int8_exports(model: torch.nn.Module, input_shape: tuple[int, ...], out_dir: str | os.PathLike, stem: str = "model",
                 backends: tuple[str, ...] = ("litert", "executorch"), fp32: bool = False,
                 delegable_activations: bool = True) -> dict[str, Path]:
    """`{"tflite", "pte"}` int8 files (`{"tflite_fp32", "pte_fp32"}` beside them with `fp32`);
    `delegable_activations=False` quantises hard activations as the stock XNNPACK quantizer does."""
    from se_edge.export import export_pte, export_tflite
    from se_edge.quantize import convert

    out_dir = Path(out_dir)
    prepared = quantize_for_structure(model, input_shape, delegable_activations=delegable_activations)
    sample = torch.randn(1, *input_shape[1:], generator=torch.Generator().manual_seed(1))
    paths = {}
    if "litert" in backends:
        paths["tflite"] = export_tflite(convert(prepared, "litert"), sample, out_dir / f"{stem}_int8.tflite", quantized=True)
    if "executorch" in backends:
        paths["pte"] = export_pte(convert(prepared, "executorch"), sample, out_dir / f"{stem}_int8.pte")
    if fp32 and "litert" in backends:
        paths["tflite_fp32"] = export_tflite(model, sample, out_dir / f"{stem}_fp32.tflite", quantized=False)
    if fp32 and "executorch" in backends:
        paths["pte_fp32"] = export_pte(model, sample, out_dir / f"{stem}_fp32.pte")
    return paths


def purity(paths: dict[str, Path], npu: bool = True) -> dict:
    """`{"tflite": {...}, "pte": {...}, "npu": {...}}` for files made by `int8_exports` (and
    "tflite_fp32", "pte_fp32" where those were made)."""
    from se_edge.graph import graph_summary
    from se_edge.npu import vela_executable, vela_report

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


def _ms(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def zoo_markdown(result: dict) -> str:
    lines = [f"Defaults (hw gate, small stem, {result['size']} px). Partitions / ops outside the XNNPACK delegate, "
             "as ai-edge-litert and ExecuTorch load each file; float islands read from the int8 .tflite.", "",
             "| model | LiteRT fp32 | LiteRT int8 | TFLite int8 float islands | .pte fp32 | .pte int8 | "
             "Ethos-U55 NPU / CPU ops | est. ms | F.hardsigmoid gate, stock quantizer: float islands, LiteRT int8, CPU ops |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in result["models"].items():
        hw, hs = row["hw"], row["hard_sigmoid"]
        npu, hs_npu = hw.get("npu", {}), hs.get("npu", {})
        lines.append(f"| {name} | {delegation_cell(hw.get('tflite_fp32'))} | {delegation_cell(hw['tflite'])} | "
                     f"{hw['tflite']['float_islands']} | {delegation_cell(hw.get('pte_fp32'))} | "
                     f"{delegation_cell(hw['pte'])} | {npu.get('npu_ops', '—')} / {npu.get('cpu_ops', '—')} | "
                     f"{_ms(npu.get('inference_time_ms'))} | "
                     f"{hs['tflite']['float_islands']}, {delegation_cell(hs['tflite'])}, {hs_npu.get('cpu_ops', '—')} |")
    return "\n".join(lines) + "\n"
