"""run.json, typed: the only code that reads or writes it.

    version                                                the record's version (RECORD_VERSION; older runs are
                                                           upgraded when read: `upgrade`)
    model, model_kwargs, model_sha256, weights, rewrite    the float model's origin (models/build.py)
    dataset, dataset_name, num_classes, class_names        the data, as the run split and normalised it
    preprocessing, split                                   (class_names where the source names them)
    device, world_size, float_training                     float training's settings and results
    ptq, qat                                               the quantisation stages' settings and results
    mixed, mixed_tradeoff                                  the layers `export --keep-float` left in float, and
                                                           what that bought and cost (evaluate/tradeoff.py)
    app_io, app_tradeoff                                   the app files' form (export/app_io.py), and what `--input` bought
    ethosu                                                 the Ethos-U file's target and where its ops went (export/ethosu.py)
    forms                                                  per target, the hard-swish form its int8 file holds
                                                           ("written" or "native"; export/int8.py FORMS)
    lineage                                                what each artifact was made from (run/lineage.py)

Every object is a frozen section with typed fields (`run.record.split.seed`); `RunRecord.from_dict` checks a
loaded run.json against them (a key missing or of the wrong type is one line naming it), so a hand-edited or
foreign file fails where it is read, not three stages later. A section keeps the keys it does not name and the
order of those it read, so writing a record back changes nothing it did not set (the lineage hashes these
fields: a round trip must be exact). Records written before a field existed read with its default.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from se_edge.errors import SeEdgeError

# 1: written before records carried a version (the release before this one, and the runs before lineage existed);
# 2: `version` written. Read: any version up to this one; a newer one is refused.
RECORD_VERSION = 2


@dataclass(frozen=True)
class Section:
    """A JSON object of run.json with typed fields. Subclasses declare the fields; `_keys` and `_extra` keep the
    object's key order and the keys this version does not name."""

    _keys: tuple = field(default=(), init=False, repr=False, compare=False)
    _extra: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any, source: str, prefix: str = ""):
        """The section in `data`, read from `source` (a file, for messages) at `prefix` ("split." for run.json's
        split)."""
        if not isinstance(data, dict):
            raise SeEdgeError(f"{source}: {prefix.rstrip('.')!r} should be an object, found {type(data).__name__}")
        known = _fields(cls)
        missing = [prefix + name for name, f in known.items() if _required(f) and name not in data]
        if missing:
            raise SeEdgeError(f"{source} is not a complete se_edge run record: missing {', '.join(missing)}")
        values = {name: _read(data[name], f.type, source, prefix + name) for name, f in known.items() if name in data}
        obj = cls(**values)
        object.__setattr__(obj, "_keys", tuple(data))
        object.__setattr__(obj, "_extra", {k: v for k, v in data.items() if k not in known})
        for name, problem in obj.problems():
            raise SeEdgeError(f"{source}: {prefix + name!r} {problem}")
        return obj

    def problems(self) -> list[tuple[str, str]]:
        """(field, what is wrong and what is valid) for each value of the right type but out of range: a record
        is checked where it is read, before a stage sizes anything by it."""
        return []

    def to_dict(self) -> dict:
        """The JSON object: the keys it was read with, in their order, then the fields set since."""
        known = _fields(type(self))
        keys = list(self._keys) + [n for n, f in known.items() if n not in self._keys and getattr(self, n) != _default(f)]
        return {k: self._extra[k] if k in self._extra else _plain(getattr(self, k)) for k in keys}

    def replace(self, **changes):
        """A copy with `changes` (sections or their JSON objects); the other keys as they were."""
        known = _fields(type(self))
        unknown = set(changes) - set(known)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(sorted(unknown))}")
        typed = {k: _read(v, known[k].type, "the run record", k) for k, v in changes.items()}
        new = dataclasses.replace(self, **typed)
        object.__setattr__(new, "_keys", self._keys + tuple(k for k in changes if k not in self._keys))
        object.__setattr__(new, "_extra", dict(self._extra))
        return new


@dataclass(frozen=True)
class Preprocessing(Section):
    size: int
    mean: float | list
    std: float | list
    in_chans: int

    def to_data(self):
        """data.Preprocessing, what the data readers and exporters take."""
        from se_edge.data import Preprocessing as DataPreprocessing

        return DataPreprocessing(self.size, self.mean, self.std, self.in_chans)

    def problems(self) -> list[tuple[str, str]]:
        from se_edge.config import MAX_IN_CHANS, MAX_SIZE

        found = _whole("size", self.size, 1, MAX_SIZE) + _whole("in_chans", self.in_chans, 1, MAX_IN_CHANS)
        for name, positive in (("mean", False), ("std", True)):
            values = getattr(self, name)
            values = values if isinstance(values, list) else [values]
            valid = f"a number or a list of {self.in_chans} numbers" + (" > 0" if positive else "")
            if len(values) not in (1, self.in_chans) or not all(_number(v) for v in values):
                found.append((name, f"should be {valid}, found {_shown(getattr(self, name))}"))
            elif positive and not all(v > 0 for v in values):
                found.append((name, f"should be {valid}, found {_shown(getattr(self, name))}"))
        return found


@dataclass(frozen=True)
class Split(Section):
    seed: int
    val_fraction: float
    test_fraction: float
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        from se_edge.config import MAX_SEED

        found = _whole("seed", self.seed, 0, MAX_SEED)
        for name in ("val_fraction", "test_fraction"):
            if not (_number(getattr(self, name)) and 0 < getattr(self, name) < 1):
                found.append((name, f"should be a number between 0 and 1 (exclusive), found {getattr(self, name)!r}"))
        if not found and self.val_fraction + self.test_fraction >= 1:
            found.append(("test_fraction", f"leaves no images to train on (with val_fraction {self.val_fraction})"))
        for name in ("num_train", "num_val", "num_test"):
            if getattr(self, name) is not None:
                found += _whole(name, getattr(self, name), 0, None)
        return found


@dataclass(frozen=True)
class Training(Section):
    """The settings a training loop ran with (config.TrainConfig / QatConfig) and what it took."""
    epochs: int
    batch_size: int
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    augment: bool | None = None
    flip: bool | None = None
    seed: int | None = None
    device: str | None = None
    history: list | None = None
    seconds: float | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = _whole("epochs", self.epochs, 0, None) + _whole("batch_size", self.batch_size, 1, None)
        if self.lr is not None and not (_number(self.lr) and self.lr > 0):
            found.append(("lr", f"should be a finite number > 0, found {self.lr!r}"))
        return found


@dataclass(frozen=True)
class FloatTraining(Training):
    test_accuracy: float | None = None


@dataclass(frozen=True)
class Qat(Training):
    freeze_bn_after: int | None = None
    freeze_observers_after: int | None = None
    distill: float | None = None
    temperature: float | None = None
    calibration_images: int | None = None
    fake_quant_test_accuracy: float | None = None
    world_size: int | None = None


@dataclass(frozen=True)
class Ptq(Section):
    calibration_images: int | None = None
    int8_reference_test_accuracy: float | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Mixed(Section):
    keep_float: list
    nodes: dict | None = None
    removed_observers: list | None = None
    recalibrated_observers: list | None = None
    folded_batch_norms: list | None = None
    calibration_images: int | None = None
    fake_quant_test_accuracy: float | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class AppIO(Section):
    layout: str | None = None
    input: str | None = None
    channels: int | None = None
    pixels: str | None = None
    output: str | None = None  # "probabilities" from the app form on; absent in the earlier form's records
    normalisation: str | None = None


@dataclass(frozen=True)
class Weights(Section):
    path: str
    sha256: str | None = None
    tensors: int | None = None
    head_replaced: list | None = None
    notes: list | None = None


@dataclass(frozen=True)
class Rewrite(Section):
    enabled: bool = False
    silu: bool = False
    replaced: list | None = None
    exact: bool | None = None
    native_activations: dict | None = None
    max_abs_deviation: float | None = None
    deviation_images: int | None = None

    @property
    def exact_count(self) -> int:
        """How many of the replaced modules compute exactly what they replaced."""
        return sum(bool(r.get("exact")) for r in self.replaced or [])


@dataclass(frozen=True)
class EthosU(Section):
    target: str
    size_bytes: int | None = None
    calibration_images: int | None = None
    relu6_as_hardtanh: int | None = None
    partitions: int | None = None
    ops_on_npu: int | None = None
    npu_ops: dict | None = None
    ops_on_cpu: int | None = None
    cpu_ops: dict | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class RunRecord(Section):
    model: str
    dataset: str
    num_classes: int
    preprocessing: Preprocessing
    split: Split
    float_training: FloatTraining
    version: int = 1
    model_kwargs: dict = field(default_factory=dict)
    model_sha256: str | None = None
    weights: Weights | None = None
    rewrite: Rewrite | None = None
    dataset_name: str = ""
    class_names: list | None = None
    device: str = "cpu"
    world_size: int = 1
    ptq: Ptq | None = None
    qat: Qat | None = None
    mixed: Mixed | None = None
    mixed_tradeoff: dict | None = None
    app_io: AppIO | None = None
    app_tradeoff: dict | None = None
    ethosu: EthosU | None = None
    forms: dict | None = None
    lineage: dict | None = None

    @classmethod
    def from_dict(cls, data: Any, source: str = "run.json") -> "RunRecord":
        if not isinstance(data, dict):
            raise SeEdgeError(f"{source} is not a se_edge run record: expected a JSON object, found {type(data).__name__}")
        return super().from_dict(upgrade(data, source), source)

    def problems(self) -> list[tuple[str, str]]:
        from se_edge.data.types import MAX_CLASSES

        found = _whole("num_classes", self.num_classes, 1, MAX_CLASSES)
        if self.class_names is not None and not found:
            if len(self.class_names) != self.num_classes or not all(isinstance(n, str) for n in self.class_names):
                found.append(("class_names", f"should be a list of {self.num_classes} strings (num_classes), found "
                                             f"{len(self.class_names)} values"))
            elif bad := next((n for n in self.class_names if not n.isprintable()), None):
                found.append(("class_names", f"holds {bad!r}: a class name is one line of printable text (it becomes a "
                                             "line of the labels file packed into each .tflite)"))
        for name in ("num_classes", "in_chans"):
            value = self.model_kwargs.get(name)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                found.append((f"model_kwargs.{name}", f"should be a whole number from 1, found {value!r}"))
        if not found and self.model_kwargs.get("num_classes", self.num_classes) != self.num_classes:
            found.append(("model_kwargs.num_classes", f"is {self.model_kwargs['num_classes']}, not the run's "
                                                      f"num_classes {self.num_classes}"))
        return found

    @property
    def class_labels(self) -> list[str]:
        """The class names the source gave, or the class indices as text."""
        return list(self.class_names) if self.class_names else [str(i) for i in range(self.num_classes)]


def upgrade(data: dict, source: str = "run.json") -> dict:
    """A run.json of any earlier version in this version's shape. Version 1 (no `version` key) reads as it is:
    every field this version added has a default. The only place that knows how records have changed."""
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SeEdgeError(f"{source}: 'version' should be a whole number from 1, found {version!r}")
    if version > RECORD_VERSION:
        raise SeEdgeError(f"{source} was written by a newer se_edge (record version {version}; this one reads up to "
                          f"{RECORD_VERSION}); upgrade se_edge")
    if version >= 2 and "lineage" not in data:
        # Every version-2 record carries one (Run.start writes it empty): without it nothing would check the files.
        raise SeEdgeError(f"{source} has no 'lineage', which every record of version {version} holds: it was edited, "
                          "and the run's files cannot be checked against what made them; restore run.json, or make "
                          "the run again")
    return data


def new_record(**values) -> RunRecord:
    """The record a new run starts with (train_stage), at this version, checked."""
    return RunRecord.from_dict({"version": RECORD_VERSION, **values}, "the run record")


def _fields(cls) -> dict:
    return {f.name: f for f in fields(cls) if f.init}


def _required(f) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING


def _plain(value):
    return value.to_dict() if isinstance(value, Section) else value


_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "dict": dict, "list": list}
_WORDS = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false", "dict": "an object",
          "list": "a list", "None": "null"}


def _read(value, annotation: str, source: str, name: str):
    """`value` of field `name` checked against its annotation ("int | None", "Split", ...); a section's object as
    that section."""
    if isinstance(value, Section):
        return value
    options = [a.strip() for a in str(annotation).split("|")]
    if value is None:
        if "None" in options:
            return None
        raise SeEdgeError(f"{source}: {name!r} should be {_describe(options)}, found NoneType")
    for option in options:
        section = getattr(sys.modules[__name__], option, None)
        if isinstance(section, type) and issubclass(section, Section):
            if isinstance(value, dict):
                return section.from_dict(value, source, f"{name}.")
        elif option in _TYPES and isinstance(value, _TYPES[option]) and not (
                option in ("int", "float") and isinstance(value, bool)):
            return value
    raise SeEdgeError(f"{source}: {name!r} should be {_describe(options)}, found {type(value).__name__}")




def _number(value) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(name: str, value, low: int, high: int | None) -> list[tuple[str, str]]:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    span = f"from {low} to {high}" if high is not None else f"from {low}"
    return [] if ok else [(name, f"should be a whole number {span}, found {_shown(value)}")]


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(options: list[str]) -> str:
    return " or ".join("an object" if o not in _WORDS else _WORDS[o] for o in options)
