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
    """`{"tflite": {...}, "pte": {...}, "npu": {...}}` for files made by `int8_exports` (and "tflite_fp32",
    "pte_fp32", "tflite_fp16", "pte_fp16", "tflite_npu" where those were made); Vela reads "tflite_npu" where
    there is one."""
    from se_edge.evaluate.structure import graph_summary
    from se_edge.evaluate.vela import vela_executable, vela_report

    out = {key: graph_summary(path) for key, path in paths.items()}
    npu_file = paths.get("tflite_npu", paths.get("tflite"))  # the NPU's own form where int8_exports made it
    if npu_file is not None and npu and vela_executable():
        out["npu"] = vela_report(npu_file)
    return out


def fp16_agreement(models: list[str], size: int, epochs: int, out_dir: Path, progress: bool = True) -> dict:
    """Each model trained `epochs` float epochs on digits (at `size` px, 1 channel), its fp16 `.tflite` and `.pte`
    run in their runtimes on the digits test split: top-1 agreement with the PyTorch float model, the largest
    logit difference, and the float model's own accuracy (agreement means little for a model that learned nothing)."""
    import numpy as np

    from se_edge.config import TrainConfig
    from se_edge.data.splits import load_splits
    from se_edge.evaluate.metrics import accuracy, agreement
    from se_edge.export.fp16 import export_fp16_pte, fp16_weights
    from se_edge.export.litert import export_tflite
    from se_edge.models import create_model
    from se_edge.quiet import captured_output
    from se_edge.runner import open_model, predict
    from se_edge.train import fit

    splits = load_splits("digits", size=size, in_chans=1)
    x, y = splits.test.x, splits.test.y
    out = {}
    for name in models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=splits.num_classes, in_chans=1, stem="small")
        fit(model, splits.train, splits.val, TrainConfig(epochs=epochs, progress=progress, device="cpu"), desc=name)
        model.eval()
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        sample = torch.from_numpy(x[:1])
        files = {"tflite_fp16": export_tflite(model, sample, out_dir / f"{name}_fp16.tflite", quantized=False,
                                              edit=fp16_weights),
                 "pte_fp16": export_fp16_pte(model, sample, out_dir / f"{name}_fp16.pte")}
        row = {"float_accuracy": accuracy(ref, y), "num_test": len(y), "epochs": epochs}
        for key, path in files.items():
            with captured_output():
                runtime = open_model(str(path), 1)
            logits = predict(runtime, x)
            row[key] = {"agreement_with_float": agreement(logits, ref),
                        "max_abs_diff": float(np.abs(logits - ref).max()), "size_bytes": path.stat().st_size}
        out[name] = row
    return out


def zoo_purity(models: list[str] | None = None, size: int = 32, out_dir: str | os.PathLike = "runs/zoo-purity",
               progress: bool = True, fp16_epochs: int | None = None) -> dict:
    """Every registered model with its defaults (hw gate, small stem, `size` px): purity and delegation
    of its fp32, fp16 and int8 files on both runtimes and the NPU; beside it, the same model with
    F.hardsigmoid's gate as the stock XNNPACK quantizer leaves it. With `fp16_epochs`, each model trained that
    many epochs on digits and its fp16 files held against float on the test split (fp16_agreement).
    Written as JSON + Markdown."""
    from tqdm.auto import tqdm

    from se_edge.io import write_json, write_text
    from se_edge.models import create_model, list_models

    out_dir = Path(out_dir)
    rows = {}
    for name in tqdm(models or list_models(), desc="zoo purity", unit="model", disable=not progress):
        row = {}
        for gate, backends, fp in (("hw", ("litert", "executorch"), True), ("hard_sigmoid", ("litert",), False)):
            torch.manual_seed(0)
            model = create_model(name, num_classes=10, in_chans=1, stem="small", se=gate)
            paths = int8_exports(model, (1, 1, size, size), out_dir / "files", f"{name}_{gate}", backends, fp32=fp,
                                 fp16=fp, delegable_activations=gate == "hw")
            row[gate] = purity(paths)
        rows[name] = row
    result = {"size": size, "models": rows}
    if fp16_epochs is not None:
        result["fp16"] = fp16_agreement(list(rows), size, fp16_epochs, out_dir / "fp16", progress)
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
    lines += fp16_lines(result)
    return "\n".join(lines) + "\n"


def fp16_lines(result: dict) -> list[str]:
    """The fp16 files of each model: delegation, and agreement with float where fp16_agreement measured it."""
    models = {n: r["hw"] for n, r in result["models"].items() if "tflite_fp16" in r["hw"]}
    if not models:
        return []
    agree = result.get("fp16") or {}
    rows = []
    for name, hw in models.items():
        a = agree.get(name)
        cells = ["—", "—", "—"] if a is None else [
            f"{a['float_accuracy']:.4f}", *(f"{a[k]['agreement_with_float']:.4f} ({a[k]['max_abs_diff']:.2g})"
                                            for k in ("tflite_fp16", "pte_fp16"))]
        rows.append([name, delegation_cell(hw["tflite_fp16"]), delegation_cell(hw["pte_fp16"]), *cells])
    some = next(iter(agree.values()), None)
    note = ("" if some is None else f" Agreement: top-1 agreement with the PyTorch float model on the digits test split "
            f"({some['num_test']} images), each model trained {some['epochs']} float epochs at {result['size']} px; "
            "in brackets the largest logit difference.")
    return ["", "fp16 files (export/fp16.py): partitions / ops outside, as the runtimes load them; the .pte's two ops "
            "outside are its float32 input's and output's casts, which ExecuTorch's XNNPACK partitioner does not take."
            + note, "",
            markdown_table(["model", "LiteRT fp16", ".pte fp16", "float accuracy", "LiteRT fp16 agreement",
                            ".pte fp16 agreement"], rows, align="lllrrr")]
