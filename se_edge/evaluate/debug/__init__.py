"""Where int8 parts from float: per-layer SQNR along the depth, for the int8 reference and both runtimes.

A *point* is one activation quantisation of the int8 reference graph (a `quantize_per_tensor` node):
the output of a layer as int8 carries it. Each point is named by the model's module that computes it
(`stages.0.2.fc1`, with the op: conv2d, relu, mean, mul, ...), and its value is taken from

    float           the prepared PT2E graph with every fake-quant off (the float model's arithmetic),
                    at the input of the point's observer;
    reference_int8  the int8 reference (the converted graph in the delegates' integer arithmetic,
                    quantize/integer.py), the quantize node's int8 output, dequantized;
    tflite_int8     the .tflite run by LiteRT's XNNPACK delegate, one partition per op, with every tensor
                    kept (`experimental_preserve_all_tensors`): the int8 tensor with the point's scale,
                    zero point and shape (NHWC), dequantized;
    executorch_int8 the int8 reference lowered with one XNNPACK call per op, run by the ExecuTorch
                    runtime with ETDump (capture_executorch).

SQNR (dB) = 10 log10(|float|^2 / |x - float|^2) for the reference, and against the reference for the
file. Rounding error accumulates with depth, so the layer to blame is the one whose SQNR *drops* most
from the point before it: the table ranks by that drop, worst first.
"""
from __future__ import annotations

from se_edge.evaluate.debug.capture import (MATCH_MEAN_LSB, RUNTIMES, capture_executorch, capture_float, capture_own,
                                            capture_reference, capture_tflite, own)
from se_edge.evaluate.debug.compare import COMPARISONS, key, own_summary, sqnr, summarise, worst_first
from se_edge.evaluate.debug.points import ACTIVATIONS, Point, match_observers, reference_points
from se_edge.evaluate.debug.sensitivity import sensitivity


def run_debug(run, data: str | None = None, images: int = 64, stress: int | None = None, layers: int = 3,
              executorch: bool = True, progress: bool = True) -> dict:
    """Per-layer SQNR of `run`'s int8 reference (vs float) and int8 .tflite (vs the reference and vs float) on
    the first `images` test images (or of dataset `data`), shifted with seed `stress` if given (as
    `parity --stress`); with `layers` > 0, the sensitivity of that many worst layers (`sensitivity`).
    Returns debug.json's shape."""
    import torch

    from se_edge.data import load_eval_set

    r = run.record
    dataset, evalset = load_eval_set(data or r.dataset, run.preprocessing, run_spec=r.dataset, seed=r.split.seed,
                                     test_fraction=r.split.test_fraction, stress=stress)
    x = evalset.x[:images]
    prepared, reference = run.load_prepared("qat"), run.int8_reference("qat")
    points = reference_points(reference)
    match_observers(points, reference, prepared)
    capture_float(prepared, points, torch.from_numpy(x))
    capture_reference(reference, points, torch.from_numpy(x))
    files = {}
    tflite = run.artifact_path("tflite_int8")
    if tflite.is_file():
        run.require("tflite_int8")
        files["tflite_int8"] = str(tflite)
        capture_tflite(str(tflite), points, x)
    if executorch:
        import tempfile

        with tempfile.TemporaryDirectory() as workdir:
            capture_executorch(reference, points, x, workdir, progress)
        files["executorch_int8"] = "per-op XNNPACK lowering of the int8 reference (the shipped .pte's graph and kernels)"
    for source in files:
        capture_own(reference, points, torch.from_numpy(x), source)
    rows = summarise(points)
    ranked = {k: [r["index"] for r in worst_first(rows, k)] for k in (key(*c) for c in COMPARISONS)
              if any(k in r["sqnr_db"] for r in rows)}
    float_acc = r.float_training.test_accuracy
    return {"model": r.model, "dataset": dataset, "images": len(x), "stress": stress, "files": files, "points": rows,
            "worst_first": ranked, "sensitivity": sensitivity(run, prepared, rows, layers, progress) if layers else [],
            "float_test_accuracy": float_acc,
            "sources": {"float": "prepared PT2E graph, fake-quant off", "reference_int8": "converted PT2E graph in XNNPACK's integer arithmetic",
                        "tflite_int8": "LiteRT, XNNPACK one partition per op, all tensors kept",
                        "executorch_int8": "ExecuTorch runtime, XNNPACK one delegate call per op, ETDump"}}


__all__ = ["ACTIVATIONS", "COMPARISONS", "MATCH_MEAN_LSB", "RUNTIMES", "Point", "capture_executorch", "capture_float",
           "capture_own", "capture_reference", "capture_tflite", "key", "match_observers", "own", "own_summary",
           "reference_points", "run_debug", "sensitivity", "sqnr", "summarise", "worst_first"]
