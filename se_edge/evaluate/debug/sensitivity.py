"""One layer at a time in float: which layer, kept out of int8, wins the most accuracy back."""
from __future__ import annotations

from se_edge.evaluate.debug.compare import key, worst_first


def sensitivity(run, prepared, rows: list[dict], layers: int = 3, progress: bool = False) -> list[dict]:
    """For the `layers` worst layers of the int8 reference (against float), the test accuracy of the int8
    reference with that one layer in float (quantize/mixed.py, as `export --keep-float` makes it), on the
    run's test split; beside the all-int8 and the float accuracy."""
    import torch

    from se_edge.quantize.convert import convert
    from se_edge.quantize.integer import Int8Reference
    from se_edge.quantize.mixed import mixed_precision
    from se_edge.train import accuracy, predict

    worst = {}  # layer -> its worst point against float
    for r in worst_first(rows, key("reference_int8", "float")):
        if r["layer"] != "input":
            worst.setdefault(r["layer"], r)
    chosen = list(worst)[:layers]
    if not chosen:
        return []
    splits = run.splits()
    images = int((run.record.qat and run.record.qat.calibration_images) or 512)

    def test_accuracy(model) -> float:
        return accuracy(predict(model, splits.test.x, set_eval=lambda m: None), splits.test.y)

    from tqdm.auto import tqdm

    int8 = test_accuracy(run.int8_reference("qat"))
    out = []
    for layer in tqdm(chosen, desc="sensitivity", unit="layer", disable=not progress):
        mixed, _ = mixed_precision(prepared, [layer], splits.train.x, max_images=images)
        with torch.no_grad():
            acc = test_accuracy(Int8Reference(convert(mixed, "executorch")))
        out.append({"layer": layer, "index": worst[layer]["index"], "accuracy": acc, "int8_accuracy": int8,
                    "gain": acc - int8})
    return out
