"""What keeping layers in float buys and costs: accuracy on the test split, the ops each file runs outside
its delegate, and p50 latency, for the int8 files against their mixed-precision twins.

Everything is measured on the run's files in their runtimes (parity.py, graph.py, bench.py), which is
what `se-edge export --keep-float` prints and stores in run.json's `mixed.tradeoff`.
"""
from __future__ import annotations

PAIRS = (("reference_int8", "reference_int8_mixed"), ("tflite_int8", "tflite_int8_mixed"),
         ("executorch_int8", "executorch_int8_mixed"))


def measure(run, threads: int = 1, runs: int = 30, warmup: int = 5, progress: bool = True) -> dict:
    """`{"accuracy": {artifact: acc}, "agreement_with_float": {...}, "non_delegated": {file: {op: n}},
    "latency_p50_ms": {file: ms}}` for float, the int8 artifacts and their mixed twins."""
    from se_edge.artifacts import open_artifact
    from se_edge.bench import measure_latency
    from se_edge.graph import graph_summary
    from se_edge.parity import evaluate_models
    from se_edge.pipeline import _splits_for

    names = ["float"] + [n for pair in PAIRS for n in pair if run.artifact_path(n).is_file()]
    models = {n: open_artifact(run, n, threads) for n in names}
    metrics = evaluate_models(models, _splits_for(run).test, progress)
    files = [n for n in names if not n.startswith(("float", "reference"))]
    graphs = {n: graph_summary(run.artifact_path(n)) for n in files}
    latency = measure_latency({n: models[n] for n in files}, run.sample_input().numpy(), warmup, runs, threads,
                              progress)
    return {"accuracy": {n: metrics[n]["accuracy"] for n in names},
            "agreement_with_float": {n: metrics[n].get("agreement_with_float") for n in names if n != "float"},
            "non_delegated": {n: graphs[n]["non_delegated"] for n in files},
            "partitions": {n: graphs[n]["partitions"] for n in files},
            "latency_p50_ms": {n: latency[n]["p50"] for n in files}, "threads": threads, "runs": runs}


def lines(result: dict) -> list[str]:
    """The trade-off as text: one line per int8 artifact and its mixed twin."""
    acc, out = result["accuracy"], [f"float test accuracy {result['accuracy']['float']:.4f}"]
    for int8, mixed in PAIRS:
        if mixed not in acc:
            continue
        text = f"{mixed}: accuracy {acc[mixed]:.4f}" + (f" (int8 {acc[int8]:.4f})" if int8 in acc else "")
        if mixed in result["latency_p50_ms"]:
            b = result["latency_p50_ms"][mixed]
            a = result["latency_p50_ms"].get(int8)
            outside = result["non_delegated"][mixed]
            text += (f", p50 {b:.3f} ms" + (f" (int8 {a:.3f} ms, {100 * (b - a) / a:+.0f}%)" if a else "") +
                     f", {result['partitions'][mixed]} delegate partition(s), ops outside the delegate: "
                     f"{', '.join(f'{op} x{n}' for op, n in outside.items()) or 'none'}")
        out.append(text)
    return out
