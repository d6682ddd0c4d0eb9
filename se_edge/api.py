"""The Python API for a module in hand (the CLI's `run` works on run directories; this on objects).

    model, report = to_hardware_aware(my_model, example)          # same weights, delegable SE blocks
    int8 = to_int8(model, images)                                 # PTQ: ranges calibrated on images
    int8 = to_int8(model, images, labels, qat=QatConfig(epochs=2))    # QAT fine-tune (distilled from model)
    int8.export_tflite("m.tflite"); int8.export_pte("m.pte")      # one quantised graph, two runtimes
    export_float(model, sample, "m_fp32.tflite")
    check_parity({"tflite": "m.tflite", "pte": "m.pte"}, images, labels, reference=int8)

As litert-torch's `convert(module, sample_args) -> obj.export(path)`: quantisation returns an object
that knows its sample input and exports itself. Every file is written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from se_edge.config import QatConfig
from se_edge.errors import SeEdgeError


class Int8Model:
    """A quantised PT2E graph (PTQ-calibrated or QAT-trained), ready to export to both runtimes."""

    def __init__(self, prepared: torch.fx.GraphModule, sample: torch.Tensor, kind: str, history: list | None = None):
        self.prepared, self.sample, self.kind, self.history = prepared, sample, kind, history or []
        self._reference = None

    def export_tflite(self, path: str | os.PathLike) -> Path:
        from se_edge.export.int8 import to_tflite

        return to_tflite(self.prepared, self.sample, path)

    def export_pte(self, path: str | os.PathLike) -> Path:
        from se_edge.export.int8 import to_pte

        return to_pte(self.prepared, self.sample, path)

    def export(self, path: str | os.PathLike) -> Path:
        """By suffix: `.tflite` (LiteRT) or `.pte` (ExecuTorch)."""
        suffix = Path(path).suffix
        if suffix not in (".tflite", ".pte"):
            raise SeEdgeError(f"cannot export to {path}: unknown suffix {suffix or '(none)'!r}; valid: .tflite, .pte")
        return self.export_tflite(path) if suffix == ".tflite" else self.export_pte(path)

    def reference(self) -> nn.Module:
        """The PyTorch int8 reference (the graph converted as ExecuTorch lowers it, run with the delegates'
        integer arithmetic: quantize/integer.py), for parity."""
        if self._reference is None:
            from se_edge.quantize.integer import int8_reference

            self._reference = int8_reference(self.prepared)
        return self._reference

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.reference()(x)


def _images(x) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x.ndim != 4:
        raise SeEdgeError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}")
    return x


def to_int8(model: nn.Module, images, labels=None, *, qat: QatConfig | None = None, val_images=None, val_labels=None,
             calibration_images: int | None = None, delegable_activations: bool = True) -> Int8Model:
    """int8 `model` (left unchanged). Without `qat`: PTQ, ranges calibrated on up to `calibration_images`
    of `images` (default QatConfig's). With `qat`: QAT on (`images`, `labels`), distilled from `model` when
    `qat.distill` > 0, validated on (`val_images`, `val_labels`) or on the training images."""
    import copy

    from se_edge.data import ImageSet
    from se_edge.quantize import calibrate, prepare_ptq, prepare_qat, qat_finetune
    from se_edge.quantize.qat import set_eval

    x = _images(images)
    sample = x[:1].clone()
    float_model = copy.deepcopy(model).eval()
    if qat is None:
        prepared = prepare_ptq(float_model, sample, delegable_activations)
        calibrate(prepared, x.numpy(), max_images=calibration_images or QatConfig.calibration_images)
        set_eval(prepared)
        return Int8Model(prepared, sample, "ptq")
    if labels is None:
        raise SeEdgeError("QAT needs labels for its images: to_int8(model, images, labels, qat=...)")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != len(x):
        raise SeEdgeError(f"{len(x)} images but {len(y)} labels")
    train = ImageSet(x.numpy(), y)
    val = train if val_images is None else ImageSet(_images(val_images).numpy(), np.asarray(val_labels, dtype=np.int64))
    prepared = prepare_qat(float_model, sample, delegable_activations)
    teacher = copy.deepcopy(model).eval() if qat.distill > 0 else None
    history = qat_finetune(prepared, train, val, qat, teacher=teacher)
    prepared.to("cpu")
    set_eval(prepared)
    return Int8Model(prepared, sample, "qat", history)


def export_float(model: nn.Module, sample: torch.Tensor, path: str | os.PathLike) -> Path:
    """The fp32 `.tflite` or `.pte` of `model`, by suffix."""
    from se_edge.export import export_pte, export_tflite

    suffix = Path(path).suffix
    if suffix not in (".tflite", ".pte"):
        raise SeEdgeError(f"cannot export to {path}: unknown suffix {suffix or '(none)'!r}; valid: .tflite, .pte")
    model = model.eval()
    return export_tflite(model, sample, path, quantized=False) if suffix == ".tflite" else export_pte(model, sample, path)


def check_parity(files: dict[str, str | os.PathLike], images, labels=None, reference=None,
                 threads: int = 1) -> dict[str, dict]:
    """Run each exported file in its runtime on `images`; per file: accuracy (with `labels`), and with
    `reference` (a float module or an Int8Model) top-1 agreement and max |logit difference| against it."""
    from se_edge.evaluate.metrics import against_reference
    from se_edge.quiet import captured_output
    from se_edge.runner import RunnerError, open_model, predict

    x = _images(images).numpy()
    ref = None
    if reference is not None:
        module = reference.reference() if isinstance(reference, Int8Model) else reference.eval()
        with torch.no_grad():
            ref = torch.cat([module(torch.from_numpy(x[i:i + 256])) for i in range(0, len(x), 256)]).numpy()
    out = {}
    for name, path in files.items():
        try:
            with captured_output():
                opened = open_model(str(path), threads)
        except RunnerError as e:
            raise SeEdgeError(str(e)) from None
        logits = predict(opened, x)
        m = against_reference(logits, ref, labels)
        out[name] = {"path": str(path), "runtime": opened.runtime,
                     **{k: m[k] for k in ("accuracy", "agreement_with_reference", "max_abs_diff") if k in m}}
    return out


def run(**options) -> dict:
    """`se-edge run` from Python: the same options as the CLI's flags (`model`, `weights`, `data`, `epochs`,
    `qat_epochs`, `out`, ...; see `se_edge.config.OPTIONS`); returns the report (report.json's content)."""
    from se_edge.config import RunConfig
    from se_edge.pipeline import run_all

    return run_all(RunConfig.from_options(**options))
