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


# The form of hard-swish each target's int8 file takes, chosen by measurement (README, "Forms per target"; `se-edge
# bench forms`), all from the one QAT graph, whose quantizer writes hard-swish out (x * (relu6(x + 3) * (1/6)),
# quantize/decompose.py): written out where the int8 op would leave the delegate (LiteRT's XNNPACK has no int8
# HARD_SWISH); native (quantize/convert.native_hard_swish) where the target runs it as one op: ExecuTorch's XNNPACK
# (int8 in, fp32 hard-swish, int8 out, at equal delegation), Vela (one lookup table, against three elementwise ops).
# Each file is held to an int8 reference of its own form (quantize/integer.int8_reference).
FORMS = {"litert": "written", "executorch": "native", "ethos-u": "native"}


def to_tflite(prepared, sample: torch.Tensor, path: str | os.PathLike, strict_qdq: bool = False, metadata=None,
              hard_swish: str = FORMS["litert"]) -> Path:
    """The int8 `.tflite` of a prepared PT2E graph (converted for LiteRT: Q/DQ pairs kept for the converter);
    `strict_qdq` for a graph with layers kept in float (quantize/mixed.py), which the converter would quantise;
    `hard_swish`: the form its hard-swishes take (FORMS["ethos-u"] for a file Vela compiles)."""
    from se_edge.export.litert import export_tflite
    from se_edge.quantize.convert import convert

    return export_tflite(convert(prepared, "litert", hard_swish), sample, path, quantized=True, strict_qdq=strict_qdq,
                         metadata=metadata)


def to_pte(prepared, sample: torch.Tensor, path: str | os.PathLike, hard_swish: str = FORMS["executorch"]) -> Path:
    """The int8 `.pte` of a prepared PT2E graph (converted for ExecuTorch, lowered to XNNPACK)."""
    from se_edge.export.executorch import export_pte
    from se_edge.quantize.convert import convert

    return export_pte(convert(prepared, "executorch", hard_swish), sample, path)


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
                 delegable_activations: bool = True, fp16: bool = False, npu: bool = False,
                 hard_swish: str | None = None) -> dict[str, Path]:
    """`{"tflite", "pte"}` int8 files (`{"tflite_fp32", "pte_fp32"}` beside them with `fp32`, `{"tflite_fp16",
    "pte_fp16"}` with `fp16`); `delegable_activations=False` quantises hard activations as the stock XNNPACK
    quantizer does. `npu`: also `"tflite_npu"`, the int8 .tflite in the Ethos-U's form (FORMS["ethos-u"]: native
    hard-swish, one lookup table on the NPU), for Vela. `hard_swish`: one form for both int8 files (a benchmark of
    forms); None gives each its target's (FORMS)."""
    from se_edge.export import export_pte, export_tflite
    from se_edge.export.fp16 import export_fp16_pte, fp16_weights
    from se_edge.export.litert import write_tflite

    out_dir = Path(out_dir)
    prepared = quantize_for_structure(model, input_shape, delegable_activations=delegable_activations)
    sample = torch.randn(1, *input_shape[1:], generator=torch.Generator().manual_seed(1))
    paths, converted = {}, []
    if "litert" in backends:
        paths["tflite"] = to_tflite(prepared, sample, out_dir / f"{stem}_int8.tflite",
                                    hard_swish=hard_swish or FORMS["litert"])
    if "executorch" in backends:
        paths["pte"] = to_pte(prepared, sample, out_dir / f"{stem}_int8.pte", hard_swish=hard_swish or FORMS["executorch"])
    if (fp32 or fp16) and "litert" in backends:
        path = out_dir / f"{stem}_fp32.tflite"
        export_tflite(model, sample, path, quantized=False, edit=lambda b: converted.append(b) or b)
        if fp32:
            paths["tflite_fp32"] = path
        if fp16:
            paths["tflite_fp16"] = write_tflite(converted[0], out_dir / f"{stem}_fp16.tflite", edit=fp16_weights)
    if fp32 and "executorch" in backends:
        paths["pte_fp32"] = export_pte(model, sample, out_dir / f"{stem}_fp32.pte")
    if fp16 and "executorch" in backends:
        paths["pte_fp16"] = export_fp16_pte(model, sample, out_dir / f"{stem}_fp16.pte")
    if npu:
        paths["tflite_npu"] = to_tflite(prepared, sample, out_dir / f"{stem}_int8_npu.tflite",
                                        hard_swish=FORMS["ethos-u"])
    return paths
