"""`se-edge bench recipe`: which QAT recipe keeps float's decisions, measured on a run's own float model.

For each variant (QatConfig fields over the recipe's defaults, `epochs=8,temperature=4`), QAT fine-tunes the
run's float.pt afresh (seeded alike) and the resulting int8 reference, which computes what the exported files
compute (quantize/integer.py), is held against float: top-1 agreement on the training images (what the loss
sees), the validation split (to choose by) and the test split (to report), and its test accuracy. Nothing in
the run is changed. The variants are chosen by validation agreement, not test.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from se_edge.errors import SeEdgeError
from se_edge.io import write_json, write_text
from se_edge.report.table import fmt, markdown_table

DEFAULT_VARIANTS = ("", "temperature=4", "epochs=8", "lr=0.0003", "freeze_observers_after=2", "distill=0.5")
_FIXED = {"device", "progress", "flip", "augment", "seed"}  # set by the bench, or the comparison is not fair


def parse_variant(text: str) -> dict:
    """`epochs=8,temperature=4` -> {"epochs": 8, "temperature": 4.0}, each value of its QatConfig field's type;
    "" or "default" is the recipe as shipped. One line naming what is wrong otherwise."""
    from se_edge.config import QatConfig

    fields = {f.name: f for f in dataclasses.fields(QatConfig) if f.name not in _FIXED}
    out = {}
    for part in [p.strip() for p in text.split(",") if p.strip() and p.strip() != "default"]:
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise SeEdgeError(f"bad variant part {part!r}: give FIELD=VALUE with FIELD one of {', '.join(sorted(fields))}")
        kind = int if isinstance(fields[key].default, int) or fields[key].default is None else float
        try:
            out[key] = None if value.strip().lower() == "none" else kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise SeEdgeError(f"bad value in variant {part!r}: {key} takes {what} (or none)") from None
    QatConfig(**out)  # validates: one line naming the bad value
    return out


def near_ties(float_logits, int8_logits) -> dict:
    """What limits agreement: by how much int8 moves the gap between float's top two logits (median and 90th
    percentile over the images), the largest float margin among the decisions it changes, and how many
    images have a float margin no larger than that."""
    import numpy as np

    rows = np.arange(len(float_logits))
    order = np.argsort(float_logits, axis=1)
    first, second = order[:, -1], order[:, -2]
    margin = float_logits[rows, first] - float_logits[rows, second]
    moved = np.abs((int8_logits[rows, first] - int8_logits[rows, second]) - margin)
    apart = int8_logits.argmax(1) != first
    widest = float(margin[apart].max()) if apart.any() else None
    return {"test_apart": int(apart.sum()), "gap_moved_median": float(np.median(moved)),
            "gap_moved_p90": float(np.percentile(moved, 90)), "float_margin_where_apart": widest,
            "images_at_or_below_that_margin": int((margin <= widest).sum()) if widest is not None else 0,
            "float_margin_median": float(np.median(margin))}


def recipe_sweep(run_dir: str | os.PathLike, variants: list[dict], out_dir: str | os.PathLike,
                 train_images: int = 1000, progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    from se_edge.config import QatConfig
    from se_edge.quantize import prepare_qat, qat_finetune
    from se_edge.quantize.integer import int8_reference
    from se_edge.run import Run
    from se_edge.train import predict, seed_everything

    run = Run(run_dir)
    record = run.check()
    splits = run.splits()
    flip = record.preprocessing.in_chans == 3
    seed = record.split.seed
    teacher = run.load_float()
    x = {"train": splits.train.x[:train_images], "val": splits.val.x, "test": splits.test.x}
    float_logits = {k: predict(teacher, v) for k, v in x.items()}
    float_top1 = {k: v.argmax(1) for k, v in float_logits.items()}
    rows = []
    for variant in tqdm(variants, desc="recipe", unit="variant", disable=not progress):
        seed_everything(seed)
        cfg = QatConfig(**{"device": "cpu", "progress": False, "flip": flip, "seed": seed, **variant})
        start = time.perf_counter()
        prepared = prepare_qat(run.load_float(), run.sample_input())
        qat_finetune(prepared, splits.train, splits.val, cfg, teacher=run.load_float() if cfg.distill > 0 else None)
        reference = int8_reference(prepared.to("cpu"))
        logits = {k: predict(reference, v, set_eval=lambda m: None) for k, v in x.items()}  # no train mode
        row = {"variant": variant,
               **{f"{k}_agreement_with_float": float((logits[k].argmax(1) == float_top1[k]).mean()) for k in x},
               "test_accuracy": float((logits["test"].argmax(1) == splits.test.y).mean()),
               **near_ties(float_logits["test"], logits["test"]), "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
    result = {"run": str(run_dir), "model": record.model, "dataset": record.dataset,
              "images": {k: len(v) for k, v in x.items()}, "defaults": dataclasses.asdict(QatConfig()),
              "variants": rows}
    out_dir = Path(out_dir)
    write_json(out_dir / "recipe.json", result)
    write_text(out_dir / "recipe.md", markdown(result))
    return result


def _name(variant: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant.items()) or "as shipped"


def markdown(result: dict) -> str:
    n = result["images"]
    best = max(result["variants"], key=lambda r: r["val_agreement_with_float"])
    lines = [f"# QAT recipes on {result['model']} / {result['dataset']}: agreement of the int8 model with float", "",
             f"Top-1 agreement of each variant's int8 reference (what the files compute) with the float model, on "
             f"{n['train']} training, {n['val']} validation and {n['test']} test images; chosen by validation.", "",
             "What limits it, on the test split: *gap moved* is by how much the int8 model moves the gap between "
             "float's top two logits (median / 90th percentile); the decisions it changes sit at float margins up to "
             "*margin apart*, and *images there* have a float margin no larger.", ""]
    rows = []
    for r in result["variants"]:
        mark = " (best on val)" if r is best else ""
        rows.append([f"{_name(r['variant'])}{mark}", f"{r['train_agreement_with_float']:.4f}",
                     f"{r['val_agreement_with_float']:.4f}", f"{r['test_agreement_with_float']:.4f}",
                     f"{r['test_accuracy']:.4f}", f"{r['gap_moved_median']:.3g} / {r['gap_moved_p90']:.3g}",
                     f"{fmt(r['float_margin_where_apart'], '.3g')} ({r['float_margin_median']:.3g})",
                     r["images_at_or_below_that_margin"], f"{r['seconds']:.0f}"])
    lines.append(markdown_table(["variant", "train", "val", "test", "test accuracy", "gap moved",
                                 "margin apart (median margin)", "images there", "seconds"], rows))
    return "\n".join(lines) + "\n"
