"""Parity: every artifact run in its own runtime on the same images, compared with its reference.

fp32 artifacts are compared with the PyTorch float model; int8 artifacts with the PyTorch int8
reference (the PT2E-converted graph run in the delegates' integer arithmetic, quantize/integer.py), with
float, and with the same model in the other runtime: three yardsticks, each with its largest difference in
LSB and float's margin where decisions part.

The app files (RGB pixels in, probabilities out: export/app_io.py) are fed what an app feeds them: the
dataset's images at the model's size as uint8 RGB pixels (`pixels`). Everything they are held against is fed
the same pixels, normalised as the app file does it: float, and the float-input int8 file of their runtime
(their reference). Logits they are compared with are turned into probabilities first.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from se_edge.data import ImageSet, Preprocessing, apply
from se_edge.evaluate.metrics import accuracy, against_reference, agreement, margins, softmax, yardstick
from se_edge.evaluate.models import open_artifacts, predict
from se_edge.run import ARTIFACTS, QUANTISED, Run


def compare(outputs: dict[str, np.ndarray], y: np.ndarray, lsb: dict[str, float] | None = None,
            own_references: dict[str, np.ndarray] | None = None) -> dict[str, dict]:
    """Per artifact: accuracy, and three yardsticks (`yardsticks`): agreement with **float** (how many of
    float's decisions it changes: the user's question), with its **reference** (the int8 reference for an int8
    file: is the runtime computing what it should), and with the same model in the other **runtime**. Each
    gives the share of images deciding alike, how many apart, the largest logit difference (in LSB of the
    file's output scale where `lsb` has one) and, where decisions part, float's top-1 margin there beside its
    median over all images: apart decisions at near ties are rounding, not a fault. The flat keys
    (agreement_with_reference, max_abs_diff, agreement_with_float, reference_margin_*) stay as before.
    `own_references`: for a file whose hard-swish form is not its reference's (export/int8.py FORMS), the outputs
    of its reference in the file's form, which it is held to instead."""
    lsb = lsb or {}
    own_references = own_references or {}
    metrics = {}
    float_margins = margins(outputs["float"]) if "float" in outputs and outputs["float"].shape[1] > 1 else None
    for name, logits in outputs.items():
        a = ARTIFACTS[name]
        ref_name = a.reference
        ref = _as_output_of(name, ref_name, own_references[name] if name in own_references else outputs.get(ref_name))
        m = {"accuracy": accuracy(logits, y), "reference": ref_name,
             **against_reference(logits, ref)}
        if "float" in outputs and name != "float":
            m["agreement_with_float"] = agreement(logits, outputs["float"])
        against = {"float": "float" if name != "float" else None,
                   "reference": ref_name if ref_name not in (name, "float") else None, "runtime": a.peer}
        m["yardsticks"] = {k: yardstick(logits, ref if k == "reference" else _as_output_of(name, other, outputs[other]),
                                        other, lsb.get(name), float_margins)
                           for k, other in against.items() if other is not None and other in outputs}
        if name in own_references:
            from se_edge.export.int8 import FORMS  # export/int8.py imports torch: not at this module's top

            m["reference_hard_swish"] = FORMS[a.runtime]
        metrics[name] = m
    return metrics


def _as_output_of(name: str, other: str, values: np.ndarray | None) -> np.ndarray | None:
    """`other`'s outputs as artifact `name` gives them: softmax of logits where `name` outputs probabilities."""
    if values is None or ARTIFACTS[name].output != "probabilities" or ARTIFACTS[other].output == "probabilities":
        return values
    return softmax(values)


def output_lsb(run: Run, names, through_apps: bool = False) -> dict[str, float]:
    """One LSB of each int8 artifact's logits: the output scale of the int8 reference it is made from (with
    `through_apps`, an app file's too: the scale of the logits its softmax reads)."""
    kinds = {v: k for k, v in QUANTISED.items()}
    scales = {}
    for name in names:
        a = ARTIFACTS[name]
        source = name if name in kinds else a.reference
        if through_apps and a.fed == "pixels":
            source = ARTIFACTS[source].reference
        if a.dtype == "int8" and source in kinds:
            scales[name] = run.int8_reference(kinds[source]).output_scale()
    return scales


FED = {"normalised": "the run's normalised float images",
       "pixels": "the images at the model's size as uint8 RGB pixels 0..255, as an app feeds them"}


def evaluate_models(models: dict, images: ImageSet, progress: bool = True, lsb: dict | None = None,
                    pixels: np.ndarray | None = None, prep: Preprocessing | None = None,
                    outputs: dict | None = None, own_references: dict | None = None) -> dict[str, dict]:
    """Every model on `images`; the app files (fed pixels) on `pixels`, held against float and their reference
    fed the same pixels (`prep` normalises them as the app file does). `outputs`, where given, receives each
    model's outputs on its own input. `own_references`: {artifact: its reference in the file's own hard-swish form}
    (own_references below), run on the same images."""
    apps = [n for n in models if ARTIFACTS[n].fed == "pixels"]
    outputs = {} if outputs is None else outputs
    for name, model in tqdm([(n, m) for n, m in models.items() if n not in apps], desc="parity", unit="artifact",
                            disable=not progress):
        outputs[name] = predict(model, images.x)
    own = {name: predict(model, images.x) for name, model in (own_references or {}).items()}
    metrics = compare(outputs, images.y, lsb, own)
    if apps:
        if pixels is None or prep is None:
            raise ValueError("the app files are fed pixels: give `pixels` and `prep`")
        from se_edge.export.app_io import pixels_to_input

        x = pixels_to_input(pixels, prep)
        beside = {"float"} | {ARTIFACTS[n].reference for n in apps}
        same = {n: predict(models[n], x) for n in models if n in beside}
        same.update({n: predict(models[n], _fed(models[n], pixels)) for n in apps})
        metrics.update({n: m for n, m in compare(same, images.y).items() if n in apps})
        outputs.update({n: same[n] for n in apps})
    for name in metrics:
        metrics[name]["fed"] = FED[ARTIFACTS[name].fed]
    return metrics


def _fed(model, pixels: np.ndarray) -> np.ndarray:
    """`pixels` in the app file's input type (float32 for `export --input float`)."""
    takes_uint8 = getattr(model, "takes_uint8", None)  # a PteModel; a TFLiteModel says it by its input's type
    if takes_uint8 is None:
        takes_uint8 = model.input["dtype"] == np.uint8
    return pixels if takes_uint8 else pixels.astype(np.float32)


def eval_pixels(raw: ImageSet, prep: Preprocessing, stress: int | None = None) -> np.ndarray:
    """The images of `raw` (in [0, 1]) at the model's size as uint8 RGB pixels (N, H, W, 3), as an app has them:
    resized with their own channels (a grey model's app file turns RGB into grey itself), shifted first under
    `stress` as data.apply does."""
    from se_edge.data import resize
    from se_edge.export.app_io import to_pixels

    channels = raw.x.shape[1]
    x = resize(raw.x, prep.size, channels if channels in (1, 3) else prep.in_chans)
    if stress is not None:
        from se_edge.data.stress import shift_images

        x = shift_images(x, stress)
    return to_pixels(x)


def own_references(run: Run, names) -> dict:
    """{artifact: int8 reference model} for each int8 file among `names` whose hard-swish form (FORMS) is not the
    one its reference artifact holds ("written", as the QAT graph): the same prepared graph converted with the
    file's form. None for a graph with no hard-swish, where the forms are the same graph."""
    from se_edge.evaluate.models import TorchModel
    from se_edge.export.int8 import FORMS

    kinds = {v: k for k, v in QUANTISED.items()}
    out = {}
    for name in names:
        a = ARTIFACTS[name]
        form = FORMS.get(a.runtime, "written")
        if a.dtype != "int8" or a.reference not in kinds or form == "written":
            continue
        reference = run.int8_reference(kinds[a.reference], hard_swish=form)
        if any("hardswish" in str(n.target) for n in reference.converted.graph.nodes):
            out[name] = TorchModel(reference, set_eval=lambda m: None)
    return out


def run_parity(run: Run, data: str | None = None, threads: int = 1, progress: bool = True,
               stress: int | None = None) -> dict:
    """Evaluate every artifact of `run` on dataset `data` (default: the run's own test split),
    preprocessed exactly as the run was. Returns report.json's shape, without latency. With `stress`
    (a seed), the same images are also evaluated under a seeded shift (data/stress.py): `result["stress"]`."""
    from se_edge.data.stress import Shift

    prep = run.preprocessing
    dataset, raw = run.eval_images(data)
    images = apply(raw, prep)
    names = run.present()
    models = open_artifacts(run, names, threads)
    lsb = output_lsb(run, names)
    apps = any(ARTIFACTS[n].fed == "pixels" for n in names)
    own = own_references(run, names)
    metrics = evaluate_models(models, images, progress, lsb, eval_pixels(raw, prep) if apps else None, prep,
                              own_references=own)
    artifacts = {}
    for name in names:
        a = ARTIFACTS[name]
        artifacts[name] = {"path": str(run.artifact_path(name)), "runtime": a.runtime, "dtype": a.dtype, **metrics[name]}
    result = {"model": run.record.model, "dataset": dataset, "num_test": len(images), "artifacts": artifacts}
    if stress is not None:
        shifted = apply(raw, prep, stress)
        result["stress"] = {"seed": stress, "shift": Shift().to_dict(), "num_test": len(shifted),
                            "artifacts": evaluate_models(models, shifted, progress, lsb,
                                                         eval_pixels(raw, prep, stress) if apps else None, prep,
                                                         own_references=own)}
    return result
