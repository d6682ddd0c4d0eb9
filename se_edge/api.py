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
from se_edge.errors import SeEdgeError, one_line


class Int8Model:
    """A quantised PT2E graph (PTQ-calibrated or QAT-trained), ready to export to both runtimes."""

    def __init__(self, prepared: torch.fx.GraphModule, sample: torch.Tensor, kind: str, history: list | None = None):
        _module("Int8Model", "prepared", prepared, "Int8Model(prepared, sample, kind)")
        if not isinstance(sample, torch.Tensor) or sample.ndim != 4 or 0 in sample.shape:
            raise _fail("Int8Model", f"sample must be a (1, C, H, W) tensor; got {_describe(sample)}")
        if kind not in ("ptq", "qat"):
            raise _fail("Int8Model", f"kind must be 'ptq' or 'qat'; got {_describe(kind)}")
        self.prepared, self.sample, self.kind, self.history = prepared, sample, kind, history or []
        self._reference = None

    def export_tflite(self, path: str | os.PathLike) -> Path:
        from se_edge.export.int8 import to_tflite

        return to_tflite(self.prepared, self.sample, _output_path("Int8Model.export_tflite", path, (".tflite",)))

    def export_pte(self, path: str | os.PathLike) -> Path:
        from se_edge.export.int8 import to_pte

        return to_pte(self.prepared, self.sample, _output_path("Int8Model.export_pte", path, (".pte",)))

    def export(self, path: str | os.PathLike) -> Path:
        """By suffix: `.tflite` (LiteRT) or `.pte` (ExecuTorch)."""
        path = _output_path("Int8Model.export", path, (".tflite", ".pte"))
        return self.export_tflite(path) if path.suffix == ".tflite" else self.export_pte(path)

    def reference(self) -> nn.Module:
        """The PyTorch int8 reference (the graph converted as ExecuTorch lowers it, run with the delegates'
        integer arithmetic: quantize/integer.py), for parity."""
        if self._reference is None:
            from se_edge.quantize.integer import int8_reference

            self._reference = int8_reference(self.prepared)
        return self._reference

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The int8 reference's logits for images `x` (N, C, H, W) of the size it was quantised for."""
        x = _images("Int8Model.__call__", x, name="x", like=tuple(self.sample.shape[1:]), like_what=_QUANTISED_FOR)
        with torch.no_grad():
            return self.reference()(torch.from_numpy(x))


# Argument checks: every public function checks its arguments at its entry, before any work, and refuses a bad
# one with a one-line SeEdgeError (a ValueError) naming the function, the argument, what it got and what is valid.

_QUANTISED_FOR = "the (C, H, W) the Int8Model was quantised for"


def _fail(fn: str, message: str) -> SeEdgeError:
    return SeEdgeError(f"{fn}: {message}")


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeio' else 'a'} {word}"


def _describe(value) -> str:
    """What `value` is, for a message: an array's or tensor's dtype and shape, a short value's repr, else its type."""
    if isinstance(value, torch.Tensor):
        return f"{_a(str(value.dtype).removeprefix('torch.'))} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"{_a(str(value.dtype))} array of shape {value.shape}"
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        kind = type(value).__name__
        return f"a {kind} of {len(value)} item{'' if len(value) == 1 else 's'}" if value else f"an empty {kind}"
    if isinstance(value, (str, bytes, bool, int, float, os.PathLike, np.generic)):
        text = repr(value) if not isinstance(value, os.PathLike) else repr(os.fspath(value))
        return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _shape(item) -> tuple | None:
    """An item's shape (a list item of images or labels), None where numpy reads it as no one array."""
    if isinstance(item, (torch.Tensor, np.ndarray)):
        return tuple(item.shape)
    try:
        return np.shape(item)
    except (ValueError, TypeError):
        return None


def _plain(item):
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu()
        return (item.float() if item.is_floating_point() else item).numpy()
    return item


def _array(fn: str, value, expected: str) -> tuple[np.ndarray, str]:
    """`value` (an array, a tensor, or a list or tuple of equal-shaped ones) as a numpy array, and what it was."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        try:
            return np.asarray(_plain(value)), _describe(value)
        except (TypeError, RuntimeError) as e:
            raise _fail(fn, f"{expected}; got {_describe(value)}, which numpy cannot read ({one_line(e)})") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(fn, f"{expected}; got {_describe(value)}")
    kind = type(value).__name__
    noun = "arrays" if all(isinstance(v, (torch.Tensor, np.ndarray)) for v in value) else "items"
    shapes = [_shape(v) for v in value]
    if None in shapes:
        i = shapes.index(None)
        raise _fail(fn, f"{expected}; got a {kind} whose item {i} is itself ragged (its parts differ in shape)")
    distinct = list(dict.fromkeys(shapes))
    if len(distinct) > 1:
        raise _fail(fn, f"{expected}; got a {kind} of {len(value)} {noun} of different shapes {distinct[0]} and "
                        f"{distinct[1]}")
    try:
        x = np.asarray([_plain(v) for v in value])
    except (ValueError, TypeError, RuntimeError) as e:
        raise _fail(fn, f"{expected}; got a {kind} numpy cannot read as one array ({one_line(e)})") from None
    return x, f"a {kind} of {len(value)} {noun}, as one {x.dtype} array of shape {x.shape}"


def _images(fn: str, images, name: str = "images", channels: int | None = None, like: tuple | None = None,
            like_what: str = "", pixels: bool = False) -> np.ndarray:
    """`images` as a contiguous float32 (N, C, H, W) array (uint8 kept as it is with `pixels`), checked: N >= 1,
    `channels` channels (the model's first convolution's), (C, H, W) == `like`, finite values."""
    floats = "floats (or uint8 pixels, for an app file)" if pixels else "floats"
    expected = f"{name} must be (N, C, H, W) {floats}, an array or tensor"
    x, what = _array(fn, images, expected)
    if x.dtype.kind != "f" and not (pixels and x.dtype == np.uint8):
        why = (" (pixels? normalise them to floats as the model was trained)" if x.dtype.kind in "iu" else "")
        raise _fail(fn, f"{expected}; got {what}{why}")
    if x.ndim != 4:
        hint = " (add the channel axis: x[:, None] for one channel)" if x.ndim == 3 else ""
        raise _fail(fn, f"{expected}; got {what}{hint}")
    if 0 in x.shape:
        raise _fail(fn, f"{expected}, with at least one image; got {what}")
    if channels is not None and x.shape[1] != channels:
        hint = (" (channels last? PyTorch takes (N, C, H, W): x.permute(0, 3, 1, 2))"
                if x.shape[3] == channels else "")
        verb = "have" if name.endswith("s") else "has"
        raise _fail(fn, f"{name} {verb} {x.shape[1]} channels ({what}) but the model's first convolution takes "
                        f"{channels}: give (N, {channels}, H, W){hint}")
    if like is not None and tuple(x.shape[1:]) != tuple(like):
        raise _fail(fn, f"{name} must be (N, {', '.join(map(str, like))}), {like_what}; got {what}")
    if x.dtype != np.uint8:
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused just below
            x = x.astype(np.float32, copy=False)
    x = np.ascontiguousarray(x)
    bad = ~np.isfinite(x) if x.dtype.kind == "f" else None
    if bad is not None and bad.any():
        first = int(np.argwhere(bad.reshape(len(x), -1).any(1))[0, 0])
        count = int(bad.sum())
        raise _fail(fn, f"{name} must be finite; {count} value{'' if count == 1 else 's'} of {what} "
                        f"{'is' if count == 1 else 'are'} NaN or infinite "
                        f"(in float32), the first in image {first}")
    return x


def _labels(fn: str, labels, n: int, name: str = "labels") -> np.ndarray:
    """`labels` as int64 class indices (>= 0), one per image of `n`."""
    expected = f"{name} must be 1-D integer class indices, one per image ({n})"
    y, what = _array(fn, labels, expected)
    if y.dtype.kind not in "iu":
        raise _fail(fn, f"{expected}; got {what}")
    if y.ndim != 1:
        hint = " (one-hot? give the indices: labels.argmax(1))" if y.ndim == 2 else ""
        raise _fail(fn, f"{expected}; got {what}{hint}")
    if len(y) != n:
        raise _fail(fn, f"{expected}; got {len(y)} {name} for {n} images")
    if len(y) and y.min() < 0:
        raise _fail(fn, f"{name} must be class indices >= 0; got {int(y.min())} ({name}[{int(y.argmin())}])")
    return y.astype(np.int64)


def _module(fn: str, name: str, value, usage: str) -> nn.Module:
    if isinstance(value, nn.Module):
        return value
    if isinstance(value, Int8Model):
        hint = " (an Int8Model is quantised already: export it with .export_tflite(path) or .export_pte(path))"
    elif isinstance(value, (torch.Tensor, np.ndarray, list, tuple)):
        hint = f" (the arguments are {usage})"
    else:
        hint = ""
    raise _fail(fn, f"{name} must be a torch.nn.Module; got {_describe(value)}{hint}")


def _count(fn: str, name: str, value, minimum: int, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise _fail(fn, f"{name} must be an int >= {minimum}{' or None' if optional else ''}; got {_describe(value)}")
    return int(value)


def _output_path(fn: str, path, suffixes: tuple[str, ...]) -> Path:
    """`path` checked before the export's work: a str or PathLike with one of `suffixes`, writable."""
    from se_edge.io import check_directory, check_output_path

    valid = ", ".join(suffixes)
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise _fail(fn, f"path must be a str or os.PathLike ending in {valid}; got {_describe(path)}")
    path = Path(path)
    if path.suffix not in suffixes:
        if len(suffixes) == 1:
            raise _fail(fn, f"path must end in {valid}; got {str(path)!r}")
        raise _fail(fn, f"cannot export to {path}: unknown suffix {path.suffix or '(none)'!r}; valid: {valid}")
    try:
        check_output_path(path)
        check_directory(path.parent, create=False)
    except SeEdgeError as e:
        raise _fail(fn, str(e)) from None
    return path


def _runs(fn: str, model: nn.Module, sample: torch.Tensor) -> torch.Tensor:
    """`model`'s output on `sample` (eval mode, no grad): a model that fails on the images fails here, in one line,
    instead of inside torch.export's trace."""
    try:
        with torch.no_grad():
            return model(sample)
    except Exception as e:  # noqa: BLE001  (any failure of the user's forward is reported as what it is)
        raise _fail(fn, f"the model fails on one image of shape {tuple(sample.shape)}: {type(e).__name__}: "
                        f"{one_line(e)}") from None


def _channels(model: nn.Module) -> int | None:
    from se_edge.models.sources import input_channels

    return input_channels(model)


def _flag(fn: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(fn, f"{name} must be True or False; got {_describe(value)}")
    return bool(value)


def to_hardware_aware(model: nn.Module, example=None, inplace: bool = False, silu: bool = False):
    """se_edge.blocks.to_hardware_aware with its arguments checked first: every recognised SE module replaced by the
    `hw` SqueezeExcite carrying the same weights; with `example` ((N, C, H, W) floats), the report holds the max
    output change. Returns (model, RewriteReport)."""
    from se_edge.blocks import to_hardware_aware as rewrite

    fn = "to_hardware_aware"
    _module(fn, "model", model, "to_hardware_aware(model, example)")
    if example is not None:
        example = torch.from_numpy(_images(fn, example, name="example", channels=_channels(model)))
    return rewrite(model, example, inplace=_flag(fn, "inplace", inplace), silu=_flag(fn, "silu", silu))


def to_int8(model: nn.Module, images, labels=None, *, qat: QatConfig | None = None, val_images=None, val_labels=None,
             calibration_images: int | None = None, delegable_activations: bool = True) -> Int8Model:
    """int8 `model` (left unchanged). Without `qat`: PTQ, ranges calibrated on up to `calibration_images`
    of `images` (default QatConfig's). With `qat`: QAT on (`images`, `labels`), distilled from `model` when
    `qat.distill` > 0, validated on (`val_images`, `val_labels`) or on the training images.

    `images`: (N, C, H, W) floats, normalised as the model takes them (array, tensor, or a list of (C, H, W));
    `labels`: N integer class indices."""
    import copy

    fn = "to_int8"
    _module(fn, "model", model, "to_int8(model, images, labels, qat=...)")
    x = _images(fn, images, channels=_channels(model))
    if qat is not None and not isinstance(qat, QatConfig):
        raise _fail(fn, f"qat must be a se_edge.QatConfig or None; got {_describe(qat)}")
    if qat is not None and labels is None:
        raise _fail(fn, "QAT needs labels for its images: to_int8(model, images, labels, qat=...)")
    y = None if labels is None else _labels(fn, labels, len(x))
    if (val_images is None) != (val_labels is None):
        raise _fail(fn, "val_images and val_labels go together; got "
                        + ("val_images without val_labels" if val_labels is None else "val_labels without val_images"))
    vx = None if val_images is None else _images(fn, val_images, name="val_images", like=tuple(x.shape[1:]),
                                                 like_what="the (C, H, W) of images")
    vy = None if val_labels is None else _labels(fn, val_labels, len(vx), name="val_labels")
    calibration_images = _count(fn, "calibration_images", calibration_images, 1, optional=True)
    delegable_activations = _flag(fn, "delegable_activations", delegable_activations)
    sample = torch.from_numpy(x[:1].copy())
    float_model = copy.deepcopy(model).eval()
    out = _runs(fn, float_model, sample)
    for name, given in (("labels", y), ("val_labels", vy)):
        if given is not None and isinstance(out, torch.Tensor) and out.ndim == 2 and given.max() >= out.shape[1]:
            raise _fail(fn, f"{name} must be class indices below the model's {out.shape[1]} outputs; got "
                            f"{int(given.max())} ({name}[{int(given.argmax())}])")

    from se_edge.data import ImageSet
    from se_edge.quantize import calibrate, prepare_ptq, prepare_qat, qat_finetune
    from se_edge.quantize.qat import set_eval

    if qat is None:
        prepared = prepare_ptq(float_model, sample, delegable_activations)
        calibrate(prepared, x, max_images=calibration_images or QatConfig.calibration_images)
        set_eval(prepared)
        return Int8Model(prepared, sample, "ptq")
    train = ImageSet(x, y)
    val = train if vx is None else ImageSet(vx, vy)
    prepared = prepare_qat(float_model, sample, delegable_activations)
    teacher = copy.deepcopy(model).eval() if qat.distill > 0 else None
    history = qat_finetune(prepared, train, val, qat, teacher=teacher)
    prepared.to("cpu")
    set_eval(prepared)
    return Int8Model(prepared, sample, "qat", history)


def export_float(model: nn.Module, sample: torch.Tensor, path: str | os.PathLike) -> Path:
    """The fp32 `.tflite` or `.pte` of `model`, by suffix; `sample`: (1, C, H, W) floats, the input it takes."""
    from se_edge.export import export_pte, export_tflite

    fn = "export_float"
    _module(fn, "model", model, "export_float(model, sample, path)")
    x = _images(fn, sample, name="sample", channels=_channels(model))
    path = _output_path(fn, path, (".tflite", ".pte"))
    sample = torch.from_numpy(x)
    model = model.eval()
    _runs(fn, model, sample)
    if path.suffix == ".tflite":
        return export_tflite(model, sample, path, quantized=False)
    return export_pte(model, sample, path)


def check_parity(files: dict[str, str | os.PathLike], images, labels=None, reference=None,
                 threads: int = 1) -> dict[str, dict]:
    """Run each exported file in its runtime on `images`; per file: accuracy (with `labels`), and with
    `reference` (a float module or an Int8Model) top-1 agreement and max |logit difference| against it.

    `images`: (N, C, H, W) floats as the files take them (uint8 pixels for an app file, without `reference`);
    `labels`: N integer class indices."""
    from collections.abc import Mapping

    from se_edge.evaluate.metrics import against_reference
    from se_edge.quiet import captured_output
    from se_edge.runner import RunnerError, open_model, predict

    fn = "check_parity"
    if not isinstance(files, Mapping) or not files:
        raise _fail(fn, f"files must be a non-empty dict of name -> .tflite or .pte path, e.g. "
                        f"{{'tflite': 'm.tflite'}}; got {_describe(files)}")
    for name, path in files.items():
        if not isinstance(path, (str, os.PathLike)) or Path(path).suffix not in (".tflite", ".pte"):
            raise _fail(fn, f"files[{name!r}] must be a .tflite or .pte path; got {_describe(path)}")
        if not Path(path).is_file():
            raise _fail(fn, f"files[{name!r}]: model not found: {path}")
    if reference is not None and not isinstance(reference, (Int8Model, nn.Module)):
        raise _fail(fn, f"reference must be a float torch.nn.Module, an Int8Model or None; got {_describe(reference)}")
    if isinstance(reference, Int8Model):
        x = _images(fn, images, like=tuple(reference.sample.shape[1:]), like_what=_QUANTISED_FOR)
    else:
        x = _images(fn, images, channels=None if reference is None else _channels(reference), pixels=reference is None)
    y = None if labels is None else _labels(fn, labels, len(x))
    threads = _count(fn, "threads", threads, 1)

    opened = {}
    for name, path in files.items():
        try:
            with captured_output():
                opened[name] = open_model(str(path), threads)
        except RunnerError as e:
            raise _fail(fn, f"files[{name!r}]: {one_line(e)}") from None
        takes = tuple(opened[name].input_shape)
        nhwc = (x.shape[2], x.shape[3], x.shape[1])
        if len(takes) != 4 or takes[0] != 1 or takes[1:] not in (tuple(x.shape[1:]), nhwc):
            raise _fail(fn, f"files[{name!r}] ({path}) takes one image of shape {takes} at a time; images are "
                            f"{x.shape}")
    ref = None
    if reference is not None:
        module = reference.reference() if isinstance(reference, Int8Model) else reference.eval()
        with torch.no_grad():
            ref = torch.cat([module(torch.from_numpy(x[i:i + 256])) for i in range(0, len(x), 256)]).numpy()
    out = {}
    for name, model in opened.items():
        try:
            logits = predict(model, x)
        except RunnerError as e:
            raise _fail(fn, f"files[{name!r}]: {one_line(e)}") from None
        m = against_reference(logits, ref, y)
        out[name] = {"path": str(files[name]), "runtime": model.runtime,
                     **{k: m[k] for k in ("accuracy", "agreement_with_reference", "max_abs_diff") if k in m}}
    return out


def run(**options) -> dict:
    """`se-edge run` from Python: the same options as the CLI's flags (`model`, `weights`, `data`, `epochs`,
    `qat_epochs`, `out`, ...; see `se_edge.config.OPTIONS`); returns the report (report.json's content)."""
    from se_edge.config import RunConfig
    from se_edge.pipeline import run_all

    return run_all(RunConfig.from_options(**options))
