"""What a variant of the int8 files buys and costs against them: accuracy and decisions on the test split,
the ops each file runs outside its delegate, and p50 latency.

Variants: the mixed-precision files (`export --keep-float`, quantize/mixed.py) and the app files
(export/app_io.py; fed the same images as RGB pixels, as parity feeds them). Everything is measured on the run's files in their
runtimes (parity.py, structure.py, latency.py); the export stage stores it in run.json (`mixed_tradeoff`,
`app_tradeoff`: PAIRS) and `se-edge export` prints it.
"""
from __future__ import annotations


MIXED = (("reference_int8", "reference_int8_mixed"), ("tflite_int8", "tflite_int8_mixed"),
         ("executorch_int8", "executorch_int8_mixed"))
APP = (("tflite_int8", "tflite_int8_app"), ("executorch_int8", "executorch_int8_app"))
PAIRS = {"mixed_tradeoff": MIXED, "app_tradeoff": APP}  # run.json's field -> the files it holds against each other


def measure(run, pairs=MIXED, threads: int = 1, runs: int = 30, warmup: int = 5, progress: bool = True) -> dict:
    """`{"accuracy": {artifact: acc}, "agreement_with_float": {...}, "agreement_with_twin": {variant: share of
    test images where it decides as its int8 twin}, "non_delegated": {file: {op: n}}, "partitions",
    "latency_p50_ms": {file: ms}}` for float, the int8 artifacts in `pairs` and their variants."""
    from se_edge.data import apply
    from se_edge.evaluate.latency import measure_latency
    from se_edge.evaluate.metrics import agreement
    from se_edge.evaluate.models import open_artifacts
    from se_edge.evaluate.parity import eval_pixels, evaluate_models
    from se_edge.evaluate.structure import graph_summary
    from se_edge.run import ARTIFACTS

    names = ["float"] + [n for pair in pairs for n in pair if run.artifact_path(n).is_file()]
    names = list(dict.fromkeys(names))
    models = open_artifacts(run, names, threads)
    prep = run.preprocessing
    _, raw = run.eval_images()
    test = apply(raw, prep)
    apps = any(ARTIFACTS[n].fed == "pixels" for n in names)
    pixels = eval_pixels(raw, prep) if apps else None
    outputs = {}
    metrics = evaluate_models(models, test, progress, pixels=pixels, prep=prep, outputs=outputs)
    twins = {b: agreement(outputs[a], outputs[b]) for a, b in pairs if a in outputs and b in outputs}
    files = [n for n in names if not n.startswith(("float", "reference"))]
    graphs = {n: graph_summary(run.artifact_path(n)) for n in files}
    latency = measure_latency({n: models[n] for n in files}, {n: run.example_input(n) for n in files}, warmup, runs,
                              threads, progress)
    return {"accuracy": {n: metrics[n]["accuracy"] for n in names},
            "agreement_with_float": {n: metrics[n].get("agreement_with_float") for n in names if n != "float"},
            "agreement_with_twin": twins, "num_test": int(len(test.y)),
            "non_delegated": {n: graphs[n]["non_delegated"] for n in files},
            "partitions": {n: graphs[n]["partitions"] for n in files},
            "latency_p50_ms": {n: latency[n]["p50"] for n in files}, "threads": threads, "runs": runs}


def lines(result: dict, pairs=MIXED) -> list[str]:
    """The trade-off as text: one line per variant against its int8 twin."""
    acc, out = result["accuracy"], [f"float test accuracy {result['accuracy']['float']:.4f}"]
    for int8, variant in pairs:
        if variant not in acc:
            continue
        text = f"{variant}: accuracy {acc[variant]:.4f}" + (f" (int8 {acc[int8]:.4f})" if int8 in acc else "")
        if variant in result.get("agreement_with_twin", {}):
            share = result["agreement_with_twin"][variant]
            n = result.get("num_test", 0)
            text += f", same decision as {int8} on {share:.4f} ({round((1 - share) * n)} of {n} apart)"
        if variant in result["latency_p50_ms"]:
            b = result["latency_p50_ms"][variant]
            a = result["latency_p50_ms"].get(int8)
            outside = result["non_delegated"][variant]
            text += (f", p50 {b:.3f} ms" + (f" (int8 {a:.3f} ms, {100 * (b - a) / a:+.0f}%)" if a else "") +
                     f", {result['partitions'][variant]} delegate partition(s), ops outside the delegate: "
                     f"{', '.join(f'{op} x{n}' for op, n in outside.items()) or 'none'}")
        out.append(text)
    return out
