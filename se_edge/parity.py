"""Parity: every artifact run in its own runtime on the same images, compared with its reference.

fp32 artifacts are compared with the PyTorch float model; int8 artifacts with the PyTorch int8
reference (the PT2E-converted graph), whose own agreement with float is reported too.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from se_edge.artifacts import ARTIFACTS, RunDir, open_artifact
from se_edge.data import ImageSet, Preprocessing, load_eval_set


def predict(model, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict"):
        return model.predict(x)
    from se_edge.runner import predict as runner_predict

    return runner_predict(model, x)


def compare(outputs: dict[str, np.ndarray], y: np.ndarray) -> dict[str, dict]:
    """Accuracy, top-1 agreement with the reference, and max |logit difference| per artifact."""
    metrics = {}
    for name, logits in outputs.items():
        ref_name = ARTIFACTS[name].reference
        ref = outputs.get(ref_name)
        m = {"accuracy": float((logits.argmax(1) == y).mean()), "reference": ref_name}
        if ref is not None:
            m["agreement_with_reference"] = float((logits.argmax(1) == ref.argmax(1)).mean())
            m["max_abs_diff"] = float(np.abs(logits - ref).max())
        metrics[name] = m
    return metrics


def evaluate_models(models: dict, images: ImageSet, progress: bool = True) -> dict[str, dict]:
    outputs = {}
    for name, model in tqdm(models.items(), desc="parity", unit="artifact", disable=not progress):
        outputs[name] = predict(model, images.x)
    return compare(outputs, images.y)


def run_parity(run: RunDir, data: str | None = None, threads: int = 1, progress: bool = True) -> dict:
    """Evaluate every artifact of `run` on dataset `data` (default: the run's own test split),
    preprocessed exactly as the run was. Returns report.json's shape, without latency."""
    cfg = run.config()
    prep = Preprocessing.from_dict(cfg["preprocessing"])
    split = cfg["split"]
    dataset, images = load_eval_set(data or cfg["dataset"], prep, run_spec=cfg["dataset"], seed=split["seed"],
                                    test_fraction=split["test_fraction"])
    names = run.present()
    models = {n: open_artifact(run, n, threads) for n in names}
    metrics = evaluate_models(models, images, progress)
    artifacts = {}
    for name in names:
        a = ARTIFACTS[name]
        artifacts[name] = {"path": str(run.artifact_path(name)), "runtime": a.runtime, "dtype": a.dtype, **metrics[name]}
    return {"model": cfg["model"], "dataset": dataset, "num_test": len(images), "artifacts": artifacts}
