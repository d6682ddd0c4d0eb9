"""The one place se_edge turns outputs into parity figures: accuracy, top-1 agreement, the largest difference
(in LSB of an int8 output scale where one is given), and the top-1 margins that tell a near tie from a fault.
Parity, the device bench, the Python API's check_parity and the trade-off all take their figures from here."""
from __future__ import annotations

import numpy as np


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose top-1 is the label."""
    return float((outputs.argmax(1) == np.asarray(labels)).mean())


def agreement(outputs: np.ndarray, other: np.ndarray) -> float:
    """Share of images on which the two decide alike (top-1)."""
    return float((outputs.argmax(1) == other.argmax(1)).mean())


def margins(outputs: np.ndarray) -> np.ndarray:
    """Per image, how far the top output is above the second: how close the decision is."""
    top2 = np.sort(outputs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def against_reference(outputs: np.ndarray, reference: np.ndarray | None, labels: np.ndarray | None = None) -> dict:
    """accuracy (with `labels`), agreement_with_reference and max_abs_diff (with a `reference` of the same shape),
    and where decisions part, the reference's top-1 margin there (the largest) beside its median over all images."""
    m = {} if labels is None else {"accuracy": accuracy(outputs, labels)}
    if reference is not None:
        if outputs.shape != reference.shape:
            raise ValueError(f"outputs of shape {outputs.shape} against a reference of shape {reference.shape}")
        apart = outputs.argmax(1) != reference.argmax(1)
        m["agreement_with_reference"] = float((~apart).mean())
        m["max_abs_diff"] = float(np.abs(outputs - reference).max())
        if apart.any() and reference.shape[1] > 1:
            ref_margins = margins(reference)
            m["reference_margin_where_apart"] = float(ref_margins[apart].max())
            m["reference_margin_median"] = float(np.median(ref_margins))
    return m


def yardstick(outputs: np.ndarray, other: np.ndarray, name: str, lsb: float | None = None,
              float_margins: np.ndarray | None = None) -> dict:
    """`outputs` held against `other` (artifact `name`): agreement, decisions apart, max difference (and in LSB of
    scale `lsb`), float's top-1 margin where they part (the largest) and its median over all images."""
    apart = outputs.argmax(1) != other.argmax(1)
    diff = float(np.abs(outputs - other).max())
    out = {"against": name, "agreement": float((~apart).mean()), "apart": int(apart.sum()), "max_abs_diff": diff,
           "max_lsb": None if not lsb else round(diff / lsb, 3)}
    if float_margins is not None:
        out["float_margin_median"] = float(np.median(float_margins))
        out["float_margin_where_apart"] = float(float_margins[apart].max()) if apart.any() else None
    return out
