"""run.json's schema, in one place: what each stage records about a run.

    model, model_kwargs, model_sha256, weights, rewrite    the float model's origin (models/build.py)
    dataset, dataset_name, num_classes, class_names, preprocessing, split   the data, as the run split and
                                                           normalised it (class_names where the source names them)
    device, world_size, float_training                     float training's settings and results
    ptq, qat                                               the quantisation stages' settings and results
    mixed, mixed_tradeoff                                  the layers `export --keep-float` left in float, and
                                                           what that bought and cost (se_edge/evaluate/tradeoff.py)
    app_io, app_tradeoff                                   the app files' form (export/app_io.py), and what `--input` bought
    ethosu                                                 the Ethos-U file's target and where its ops went (export/ethosu.py)
    lineage                                                what each artifact was made from (se_edge/run/lineage.py)

`RunRecord.from_dict` checks a loaded run.json against this schema (a key missing or of the wrong
type is one line naming it), so a hand-edited or foreign file fails where it is read, not three
stages later. Records written before a field existed read with its default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from se_edge.errors import SeEdgeError


@dataclass(frozen=True)
class RunRecord:
    model: str
    dataset: str
    num_classes: int
    preprocessing: dict
    split: dict
    float_training: dict
    model_kwargs: dict = field(default_factory=dict)
    model_sha256: str | None = None
    weights: dict | None = None
    rewrite: dict | None = None
    dataset_name: str = ""
    class_names: list | None = None
    device: str = "cpu"
    world_size: int = 1
    ptq: dict | None = None
    qat: dict | None = None
    mixed: dict | None = None
    mixed_tradeoff: dict | None = None
    app_io: dict | None = None
    app_tradeoff: dict | None = None
    ethosu: dict | None = None
    lineage: dict | None = None

    @classmethod
    def from_dict(cls, data, source: str = "run.json") -> "RunRecord":
        if not isinstance(data, dict):
            raise SeEdgeError(f"{source} is not a se_edge run record: expected a JSON object, found {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        missing = [name for name, f in known.items() if _required(f) and name not in data]
        if missing:
            raise SeEdgeError(f"{source} is not a complete se_edge run record: missing {', '.join(missing)}")
        for name, f in known.items():
            if name in data and not _fits(data[name], f.type):
                raise SeEdgeError(f"{source}: {name!r} should be {_describe(f.type)}, found {type(data[name]).__name__}")
        for key in ("in_chans", "size"):
            if not isinstance(data["preprocessing"].get(key), int):
                raise SeEdgeError(f"{source}: preprocessing.{key} should be a whole number")
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "RunRecord":
        return dataclasses.replace(self, **changes)


def _required(f) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


_TYPES = {"str": str, "int": int, "dict": dict, "list": list}


def _fits(value, annotation: str) -> bool:
    options = [a.strip() for a in str(annotation).split("|")]
    if value is None:
        return "None" in options
    return any(isinstance(value, _TYPES[o]) and not (o == "int" and isinstance(value, bool)) for o in options if o in _TYPES)


def _describe(annotation: str) -> str:
    return " or ".join({"str": "a string", "int": "a whole number", "dict": "an object", "list": "a list",
                        "None": "null"}[o.strip()]
                       for o in str(annotation).split("|"))
