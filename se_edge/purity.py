"""Is a model int8-pure on the mobile backends? Measured from its exported files.

`int8_exports(model, input_shape, out_dir)` quantises a model (PT2E, ranges from a few random
batches: structure does not depend on trained weights), exports the int8 `.tflite` and `.pte`,
and `purity(...)` reports, from those files: TFLite float islands and ops, ExecuTorch partitions
and non-delegated ops, and (when Vela is installed) Ethos-U NPU/CPU operators and estimated time.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


def quantize_for_structure(model: torch.nn.Module, input_shape: tuple[int, ...], batches: int = 2, seed: int = 0):
    """A PT2E-prepared copy of `model` whose observers saw `batches` random batches (eval mode)."""
    from se_edge.quantize import prepare_qat
    from se_edge.quantize.qat import set_eval

    gen = torch.Generator().manual_seed(seed)
    prepared = prepare_qat(model, torch.randn(2, *input_shape[1:], generator=gen))
    with torch.no_grad():
        for _ in range(batches):
            prepared(torch.randn(2, *input_shape[1:], generator=gen))
    set_eval(prepared)
    return prepared


def int8_exports(model: torch.nn.Module, input_shape: tuple[int, ...], out_dir: str | os.PathLike, stem: str = "model",
                 backends: tuple[str, ...] = ("litert", "executorch")) -> dict[str, Path]:
    from se_edge.export import export_pte, export_tflite
    from se_edge.quantize import convert

    out_dir = Path(out_dir)
    prepared = quantize_for_structure(model, input_shape)
    sample = torch.randn(1, *input_shape[1:], generator=torch.Generator().manual_seed(1))
    paths = {}
    if "litert" in backends:
        paths["tflite"] = export_tflite(convert(prepared, "litert"), sample, out_dir / f"{stem}_int8.tflite", quantized=True)
    if "executorch" in backends:
        paths["pte"] = export_pte(convert(prepared, "executorch"), sample, out_dir / f"{stem}_int8.pte")
    return paths


def purity(paths: dict[str, Path], npu: bool = True) -> dict:
    """`{"tflite": {...}, "pte": {...}, "npu": {...}}` for files made by `int8_exports`."""
    from se_edge.graph import pte_graph, tflite_graph
    from se_edge.npu import vela_executable, vela_report

    out = {}
    if "tflite" in paths:
        out["tflite"] = tflite_graph(paths["tflite"])
        if npu and vela_executable():
            out["npu"] = vela_report(paths["tflite"])
    if "pte" in paths:
        out["pte"] = pte_graph(paths["pte"])
    return out


def is_pure(result: dict) -> bool:
    ok = True
    if "tflite" in result:
        ok &= result["tflite"]["float_islands"] == 0
    if "pte" in result:
        ok &= result["pte"]["partitions"] == 1 and result["pte"]["non_delegated_ops"] == 0
    if "npu" in result:
        ok &= result["npu"]["cpu_ops"] == 0
    return bool(ok)


def zoo_purity(models: list[str] | None = None, size: int = 32, out_dir: str | os.PathLike = "runs/zoo-purity",
               progress: bool = True) -> dict:
    """Every registered model with the hw gate (small stem, `size` px): purity on both runtimes and the
    NPU; beside it, the same model with F.hardsigmoid's gate on the NPU. Written as JSON + Markdown."""
    from tqdm.auto import tqdm

    from se_edge.io import write_json, write_text
    from se_edge.models import create_model, list_models

    out_dir = Path(out_dir)
    rows = {}
    for name in tqdm(models or list_models(), desc="zoo purity", unit="model", disable=not progress):
        row = {}
        for gate, backends in (("hw", ("litert", "executorch")), ("hard_sigmoid", ("litert",))):
            torch.manual_seed(0)
            model = create_model(name, num_classes=10, in_chans=1, stem="small", se=gate)
            row[gate] = purity(int8_exports(model, (1, 1, size, size), out_dir / "files", f"{name}_{gate}", backends))
        rows[name] = row
    result = {"size": size, "models": rows}
    write_json(out_dir / "zoo_purity.json", result)
    write_text(out_dir / "zoo_purity.md", zoo_markdown(result))
    return result


def zoo_markdown(result: dict) -> str:
    lines = [f"| model (hw gate, {result['size']} px) | TFLite int8 float islands | .pte partitions | .pte non-delegated ops | "
             "Ethos-U55 NPU / CPU ops | est. ms | with F.hardsigmoid: float islands, CPU ops |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in result["models"].items():
        hw, hs = row["hw"], row["hard_sigmoid"]
        npu, hs_npu = hw.get("npu", {}), hs.get("npu", {})
        lines.append(f"| {name} | {hw['tflite']['float_islands']} | {hw['pte']['partitions']} | "
                     f"{hw['pte']['non_delegated_ops']} | {npu.get('npu_ops', '—')} / {npu.get('cpu_ops', '—')} | "
                     f"{npu.get('inference_time_ms', float('nan')):.2f} | "
                     f"{hs['tflite']['float_islands']}, {hs_npu.get('cpu_ops', '—')} |")
    return "\n".join(lines) + "\n"
