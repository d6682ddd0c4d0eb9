"""Points held against each other: SQNR, the drop at each layer, LSB, worst first, each runtime's own
arithmetic summarised."""
from __future__ import annotations

import math

import numpy as np

from se_edge.evaluate.debug.capture import RUNTIMES, own
from se_edge.evaluate.debug.points import Point


def sqnr(reference: np.ndarray, x: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio of `x` against `reference`, in dB (inf when they are equal)."""
    noise = float(np.sum((x.astype(np.float64) - reference) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / noise)



COMPARISONS = (("reference_int8", "float"), ("tflite_int8", "reference_int8"), ("tflite_int8", "float"),
               ("executorch_int8", "reference_int8"), ("executorch_int8", "float"))
_CAP_DB = 120.0  # identical tensors: reported as this many dB, so the numbers stay JSON


def key(source: str, against: str) -> str:
    return f"{source}_vs_{against}"


def summarise(points: list[Point]) -> list[dict]:
    """Per point and comparison (`reference_int8_vs_float`, `tflite_int8_vs_reference_int8`,
    `tflite_int8_vs_float`): SQNR in dB; the *drop*, how much lower it is than at the layer's own inputs (the
    worst of them), i.e. what this layer's rounding lost; and the largest difference in LSB of its scale."""
    rows = []
    for p in points:
        row = {"index": p.index, "layer": p.layer, "op": p.op, "scale": p.scale, "zero_point": p.zero_point,
               "inputs": p.inputs, "sqnr_db": {}, "drop_db": {}, "max_lsb": {}}
        for source, against in COMPARISONS:
            if source in p.values and against in p.values:
                k = key(source, against)
                row["sqnr_db"][k] = min(sqnr(p.values[against], p.values[source]), _CAP_DB)
                row["max_lsb"][k] = float((np.abs(p.values[source] - p.values[against]) / p.scale).max())
        for source in RUNTIMES:  # the runtime's own arithmetic: against the reference fed the runtime's inputs
            if source in p.values and own(source) in p.values:
                lsb = np.abs(p.values[source] - p.values[own(source)]) / p.scale
                row.setdefault("own_max_lsb", {})[source] = round(float(lsb.max()), 3)  # whole LSB, up to float error
                row.setdefault("own_share", {})[source] = float((lsb >= 0.5).mean())
        rows.append(row)
    for row in rows:
        for k in row["sqnr_db"]:
            before = _input_sqnr(rows, row["inputs"], k)
            row["drop_db"][k] = max(0.0, before - row["sqnr_db"][k]) if before is not None else 0.0
    return rows


def _input_sqnr(rows: list[dict], inputs: list[int], k: str) -> float | None:
    """The lowest SQNR among a point's inputs for comparison `k` (through inputs it has no value for)."""
    values, stack, seen = [], list(inputs), set()
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        if k in rows[i]["sqnr_db"]:
            values.append(rows[i]["sqnr_db"][k])
        else:
            stack.extend(rows[i]["inputs"])
    return min(values) if values else None


def worst_first(rows: list[dict], k: str) -> list[dict]:
    """Rows ranked by how much SQNR the layer loses against its inputs in comparison `k`, then by SQNR."""
    return sorted((r for r in rows if k in r["sqnr_db"]), key=lambda r: (-r["drop_db"][k], r["sqnr_db"][k]))


def own_summary(result: dict) -> dict[str, dict]:
    """Per runtime: how many of its layers compute what the reference computes from the same int8 inputs to
    within one LSB, and the worst layer (`own_max_lsb`, `own_share` of the points)."""
    out = {}
    for source in RUNTIMES:
        rows = [r for r in result["points"] if source in r.get("own_max_lsb", {})]
        if not rows:
            continue
        ranked = sorted(rows, key=lambda r: (-r["own_max_lsb"][source], -r["own_share"][source]))
        worst = ranked[0]
        out[source] = {"layers": len(rows), "within_1_lsb": sum(r["own_max_lsb"][source] <= 1.0 for r in rows),
                       "exact": sum(r["own_max_lsb"][source] < 0.5 for r in rows),
                       "worst": {"index": worst["index"], "layer": worst["layer"], "op": worst["op"],
                                 "max_lsb": worst["own_max_lsb"][source], "share": worst["own_share"][source]},
                       "ranked": [r["index"] for r in ranked]}
    return out
