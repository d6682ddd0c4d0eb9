"""Parity: every artifact run in its own runtime on the same images, compared with its reference.

fp32 artifacts are compared with the PyTorch float model; int8 artifacts with the PyTorch int8
reference (the PT2E-converted graph run in the delegates' integer arithmetic, quantize/integer.py), with
float, and with the same model in the other runtime: three yardsticks, each with its largest difference in
LSB and float's margin where decisions part.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from se_edge.artifacts import ARTIFACTS, QUANTISED, RunDir, open_artifact
from se_edge.data import ImageSet, Preprocessing, apply, read_eval_images


def predict(model, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict"):
        return model.predict(x)
    from se_edge.runner import predict as runner_predict

    return runner_predict(model, x)


def compare(outputs: dict[str, np.ndarray], y: np.ndarray, lsb: dict[str, float] | None = None) -> dict[str, dict]:
    """Per artifact: accuracy, and three yardsticks (`yardsticks`): agreement with **float** (how many of
    float's decisions it changes: the user's question), with its **reference** (the int8 reference for an int8
    file: is the runtime computing what it should), and with the same model in the other **runtime**. Each
    gives the share of images deciding alike, how many apart, the largest logit difference (in LSB of the
    file's output scale where `lsb` has one) and, where decisions part, float's top-1 margin there beside its
    median over all images: apart decisions at near ties are rounding, not a fault. The flat keys
    (agreement_with_reference, max_abs_diff, agreement_with_float, reference_margin_*) stay as before."""
    lsb = lsb or {}
    metrics = {}
    float_margins = _margins(outputs["float"]) if "float" in outputs and outputs["float"].shape[1] > 1 else None
    for name, logits in outputs.items():
        a = ARTIFACTS[name]
        ref_name = a.reference
        ref = outputs.get(ref_name)
        m = {"accuracy": float((logits.argmax(1) == y).mean()), "reference": ref_name}
        if ref is not None:
            apart = logits.argmax(1) != ref.argmax(1)
            m["agreement_with_reference"] = float((~apart).mean())
            m["max_abs_diff"] = float(np.abs(logits - ref).max())
            if apart.any() and ref.shape[1] > 1:
                margins = _margins(ref)
                m["reference_margin_where_apart"] = float(margins[apart].max())
                m["reference_margin_median"] = float(np.median(margins))
        if "float" in outputs and name != "float":
            m["agreement_with_float"] = float((logits.argmax(1) == outputs["float"].argmax(1)).mean())
        against = {"float": "float" if name != "float" else None,
                   "reference": ref_name if ref_name not in (name, "float") else None, "runtime": a.peer}
        m["yardsticks"] = {k: yardstick(logits, outputs[other], other, lsb.get(name), float_margins)
                           for k, other in against.items() if other is not None and other in outputs}
        metrics[name] = m
    return metrics


def yardstick(logits: np.ndarray, other: np.ndarray, name: str, lsb: float | None,
              float_margins: np.ndarray | None) -> dict:
    """`logits` held against `other` (artifact `name`): agreement, decisions apart, max difference (and in LSB of
    scale `lsb`), float's top-1 margin where they part (the largest) and its median over all images."""
    apart = logits.argmax(1) != other.argmax(1)
    diff = float(np.abs(logits - other).max())
    out = {"against": name, "agreement": float((~apart).mean()), "apart": int(apart.sum()), "max_abs_diff": diff,
           "max_lsb": None if not lsb else round(diff / lsb, 3)}
    if float_margins is not None:
        out["float_margin_median"] = float(np.median(float_margins))
        out["float_margin_where_apart"] = float(float_margins[apart].max()) if apart.any() else None
    return out


def _margins(logits: np.ndarray) -> np.ndarray:
    """Per image, how far the top logit is above the second: how close the decision is."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def output_lsb(run: RunDir, names) -> dict[str, float]:
    """One LSB of each int8 artifact's logits: the output scale of the int8 reference it is made from."""
    kinds = {v: k for k, v in QUANTISED.items()}
    scales = {}
    for name in names:
        a = ARTIFACTS[name]
        source = name if name in kinds else a.reference
        if a.dtype == "int8" and source in kinds:
            scales[name] = run.int8_reference(kinds[source]).output_scale()
    return scales


def evaluate_models(models: dict, images: ImageSet, progress: bool = True, lsb: dict | None = None) -> dict[str, dict]:
    outputs = {}
    for name, model in tqdm(models.items(), desc="parity", unit="artifact", disable=not progress):
        outputs[name] = predict(model, images.x)
    return compare(outputs, images.y, lsb)


def run_parity(run: RunDir, data: str | None = None, threads: int = 1, progress: bool = True,
               stress: int | None = None) -> dict:
    """Evaluate every artifact of `run` on dataset `data` (default: the run's own test split),
    preprocessed exactly as the run was. Returns report.json's shape, without latency. With `stress`
    (a seed), the same images are also evaluated under a seeded shift (data/stress.py): `result["stress"]`."""
    from se_edge.data.stress import Shift

    cfg = run.config()
    prep = Preprocessing.from_dict(cfg["preprocessing"])
    split = cfg["split"]

    dataset, raw = read_eval_images(data or cfg["dataset"], run_spec=cfg["dataset"], seed=split["seed"],
                               test_fraction=split["test_fraction"])
    images = apply(raw, prep)
    names = run.present()
    models = {n: open_artifact(run, n, threads) for n in names}
    lsb = output_lsb(run, names)
    metrics = evaluate_models(models, images, progress, lsb)
    artifacts = {}
    for name in names:
        a = ARTIFACTS[name]
        artifacts[name] = {"path": str(run.artifact_path(name)), "runtime": a.runtime, "dtype": a.dtype, **metrics[name]}
    result = {"model": cfg["model"], "dataset": dataset, "num_test": len(images), "artifacts": artifacts}
    if stress is not None:
        shifted = apply(raw, prep, stress)
        result["stress"] = {"seed": stress, "shift": Shift().to_dict(), "num_test": len(shifted),
                            "artifacts": evaluate_models(models, shifted, progress, lsb)}
    return result
