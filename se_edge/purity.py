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
