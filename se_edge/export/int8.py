"""The int8 path per backend, in one place: a PT2E-prepared graph -> convert for that backend ->
export -> save. `to_tflite` / `to_pte` take a prepared graph (from `prepare_qat`/`prepare_ptq`);
`int8_exports(model, input_shape, out_dir)` quantises a model with ranges from a few random batches
(structure and speed do not depend on trained weights) and writes its int8 files, and with
`fp32=True` the float files beside them.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


def to_tflite(prepared, sample: torch.Tensor, path: str | os.PathLike, strict_qdq: bool = False, metadata=None) -> Path:
    """The int8 `.tflite` of a prepared PT2E graph (converted for LiteRT: Q/DQ pairs kept for the converter);
    `strict_qdq` for a graph with layers kept in float (quantize/mixed.py), which the converter would quantise."""
    from se_edge.export.litert import export_tflite
    from se_edge.quantize.convert import convert

    return export_tflite(convert(prepared, "litert"), sample, path, quantized=True, strict_qdq=strict_qdq,
                         metadata=metadata)


def to_pte(prepared, sample: torch.Tensor, path: str | os.PathLike) -> Path:
    """The int8 `.pte` of a prepared PT2E graph (converted for ExecuTorch, lowered to XNNPACK)."""
    from se_edge.export.executorch import export_pte
    from se_edge.quantize.convert import convert

    return export_pte(convert(prepared, "executorch"), sample, path)


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

    out_dir = Path(out_dir)
    prepared = quantize_for_structure(model, input_shape, delegable_activations=delegable_activations)
    sample = torch.randn(1, *input_shape[1:], generator=torch.Generator().manual_seed(1))
    paths = {}
    if "litert" in backends:
        paths["tflite"] = to_tflite(prepared, sample, out_dir / f"{stem}_int8.tflite")
    if "executorch" in backends:
        paths["pte"] = to_pte(prepared, sample, out_dir / f"{stem}_int8.pte")
    if fp32 and "litert" in backends:
        paths["tflite_fp32"] = export_tflite(model, sample, out_dir / f"{stem}_fp32.tflite", quantized=False)
    if fp32 and "executorch" in backends:
        paths["pte_fp32"] = export_pte(model, sample, out_dir / f"{stem}_fp32.pte")
    return paths
