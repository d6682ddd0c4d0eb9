"""Parity: every artifact run in its own runtime on the same images, compared with its reference.

fp32 artifacts are compared with the PyTorch float model; int8 artifacts with the PyTorch int8
reference (the PT2E-converted graph), whose own agreement with float is reported too.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from se_edge.artifacts import ARTIFACTS, RunDir, open_artifact
from se_edge.data import ImageSet, Preprocessing, apply, read_eval_images


def predict(model, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict"):
        return model.predict(x)
    from se_edge.runner import predict as runner_predict

    return runner_predict(model, x)


def compare(outputs: dict[str, np.ndarray], y: np.ndarray) -> dict[str, dict]:
    """Accuracy, top-1 agreement with the reference and with the float model, and max |logit difference|
    from the reference, per artifact. An int8 file's reference is the int8 reference; agreement with float
    says how many decisions int8 changes."""
    metrics = {}
    float_top1 = outputs["float"].argmax(1) if "float" in outputs else None
    for name, logits in outputs.items():
        ref_name = ARTIFACTS[name].reference
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
        if float_top1 is not None and name != "float":
            m["agreement_with_float"] = float((logits.argmax(1) == float_top1).mean())
        metrics[name] = m
    return metrics


def _margins(logits: np.ndarray) -> np.ndarray:
    """Per image, how far the top logit is above the second: how close the decision is."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def evaluate_models(models: dict, images: ImageSet, progress: bool = True) -> dict[str, dict]:
    outputs = {}
    for name, model in tqdm(models.items(), desc="parity", unit="artifact", disable=not progress):
        outputs[name] = predict(model, images.x)
    return compare(outputs, images.y)


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
    metrics = evaluate_models(models, images, progress)
    artifacts = {}
    for name in names:
        a = ARTIFACTS[name]
        artifacts[name] = {"path": str(run.artifact_path(name)), "runtime": a.runtime, "dtype": a.dtype, **metrics[name]}
    result = {"model": cfg["model"], "dataset": dataset, "num_test": len(images), "artifacts": artifacts}
    if stress is not None:
        shifted = apply(raw, prep, stress)
        result["stress"] = {"seed": stress, "shift": Shift().to_dict(), "num_test": len(shifted),
                            "artifacts": evaluate_models(models, shifted, progress)}
    return result
