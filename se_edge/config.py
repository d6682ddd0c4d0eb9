"""Every setting of a run, as frozen dataclasses that validate themselves; each default is written here once.

    RunConfig
      model:   ModelConfig    which network (a model SPEC), its weights, SE options, the rewrite
      data:    DataConfig     dataset, input size and channels, split
      train:   TrainConfig    float training (epochs=0: keep the given weights as they are)
      qat:     QatConfig      PTQ calibration and the QAT fine-tune
      latency: LatencyConfig  timing of the exported files

`RunConfig.from_options(**flat)` builds one from flat keyword options (the CLI's flags, the Python
API's arguments); options left as None keep these defaults, so no caller restates them. Settings
that both trainings share (batch size, device, seed) are given once and reach both.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields

from se_edge.errors import SeEdgeError

DEVICES = ("auto", "cpu", "cuda")
MAX_SIZE = 4096  # input pixels per side: beyond it a dataset's resize alone needs terabytes
MAX_IN_CHANS = 256  # input channels: greyscale, RGB, RGBA and multispectral stacks fit; 100000 is a typo
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds alike take 0 .. 2**32 - 1


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SeEdgeError(message)


def _check_fraction(name: str, value: float, inclusive: bool = False) -> None:
    ok = 0 <= value <= 1 if inclusive else 0 < value < 1
    _check(ok, f"{name} must be {'from 0 to 1' if inclusive else 'between 0 and 1 (exclusive)'}, got {value}")


def _check_seed(seed: int) -> None:
    _check(isinstance(seed, int) and 0 <= seed <= MAX_SEED, f"seed must be a whole number from 0 to {MAX_SEED}, got {seed}")


@dataclass(frozen=True)
class ModelConfig:
    spec: str = "se_cnn"  # a zoo name, timm:NAME, torchvision:NAME or path/to/file.py:FACTORY
    weights: str | None = None  # a state dict (.pt/.pth/.safetensors) loaded strictly before anything else
    se: str | None = None  # zoo models: SE gate ("none": no SE); None keeps the model's default
    se_squeeze: str | None = None  # zoo models: SE squeeze form; None keeps the model's default
    stem: str | None = None  # zoo models: "small" (28-32 px) or "imagenet"; None: by input size
    rewrite: bool = True  # pass the float model through to_hardware_aware
    rewrite_silu: bool = False  # also replace nn.SiLU with nn.Hardswish (not exact; reported)

    def __post_init__(self):
        from se_edge.blocks.gates import GATES
        from se_edge.blocks.squeeze import SQUEEZES
        from se_edge.models.sources import ModelSpec

        spec = ModelSpec.parse(self.spec)
        object.__setattr__(self, "spec", str(spec))
        _check(self.se is None or self.se in (*GATES, "none"), f"unknown SE gate {self.se!r}; valid: {', '.join(GATES)}, none")
        _check(self.se_squeeze is None or self.se_squeeze in SQUEEZES,
               f"unknown SE squeeze {self.se_squeeze!r}; valid: {', '.join(SQUEEZES)}")
        _check(self.stem in (None, "small", "imagenet"), f"unknown stem {self.stem!r}; valid: small, imagenet")
        zoo_only = [k for k in ("se", "se_squeeze", "stem") if getattr(self, k) is not None]
        _check(spec.kind == "zoo" or not zoo_only, f"{', '.join('--' + k.replace('_', '-') for k in zoo_only)} "
                                                   f"shape zoo models only; {spec} is built by its own factory")
        _check(self.rewrite or not self.rewrite_silu, "the SiLU rewrite is part of the rewrite; drop --no-rewrite")


@dataclass(frozen=True)
class DataConfig:
    data: str = "digits"  # 'digits', or a directory (IDX, CIFAR-10, ImageFolder) or an .npz
    size: int = 32
    in_chans: int | None = None  # None: the model's, else the dataset's own (1 greyscale, 3 RGB)
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2

    def __post_init__(self):
        _check(bool(str(self.data)), "empty dataset; give 'digits' or a path")
        _check(0 < self.size <= MAX_SIZE, f"size must be from 1 to {MAX_SIZE} pixels, got {self.size}")
        _check(self.in_chans is None or 0 < self.in_chans <= MAX_IN_CHANS,
               f"in_chans must be from 1 to {MAX_IN_CHANS}, got {self.in_chans}")
        _check_seed(self.seed)
        _check_fraction("val_fraction", self.val_fraction)
        _check_fraction("test_fraction", self.test_fraction)
        _check(self.val_fraction + self.test_fraction < 1, "val_fraction + test_fraction must leave images to train on")


@dataclass(frozen=True)
class TrainConfig:
    """Float training (AdamW, warm-up + cosine, light augmentation)."""
    epochs: int = 30  # 0: no float training (a pretrained model is kept as it is)
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    augment: bool = True
    flip: bool = False  # random horizontal flips too (photos; never digits): set from the data
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self):
        _check(isinstance(self.epochs, int) and self.epochs >= 0, f"epochs must be a whole number, 0 or more, got {self.epochs}")
        _check(self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size}")
        _check(math.isfinite(self.lr) and self.lr > 0, f"learning rate must be a finite number > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be 0 or more, got {self.weight_decay}")
        _check(self.warmup_epochs >= 0, f"warmup_epochs must be 0 or more, got {self.warmup_epochs}")
        _check(self.device in DEVICES, f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        _check_seed(self.seed)


@dataclass(frozen=True)
class QatConfig(TrainConfig):
    """The QAT recipe: fine-tune a trained float model so that it keeps its decisions under int8.

    - Ranges first: the fake-quant observers are calibrated on `calibration_images` training images
      in inference form (as PTQ's are), so QAT starts from the PTQ model, not from one batch's ranges.
    - Schedule: batch-norm statistics freeze after `freeze_bn_after` epochs (from then on the graph
      trains in inference form, dropout off), quantisation ranges after `freeze_observers_after`.
      The defaults (0, 0) fine-tune the weights on the calibrated grid with the float model's own
      statistics: for a converged float model and a few epochs on a small dataset, they held int8
      closest to float in our measurements (README, "QAT recipe"). torchvision's ImageNet recipe
      freezes later (2 and 3 here): pass those for long QAT on large data.
    - Loss: distilled from the float model (`distill`: weight of the KL term against the labels'
      cross-entropy; 0 trains on the labels alone). Labels alone let the fine-tune drift to another,
      not better, solution; the float model's outputs keep its decisions.
    - A small learning rate (`lr`), cosine-decayed, no weight decay.
    """

    epochs: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_epochs: float = 0.0
    freeze_bn_after: int | None = 0
    freeze_observers_after: int | None = 0
    distill: float = 1.0
    temperature: float = 1.0
    calibration_images: int = 1024

    def __post_init__(self):
        super().__post_init__()
        _check(self.epochs >= 1, f"QAT needs 1 epoch or more, got {self.epochs}")
        for name in ("freeze_bn_after", "freeze_observers_after"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"{name} must be 0 or more (or None: never), got {value}")
        _check_fraction("distill", self.distill, inclusive=True)
        _check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        _check(self.calibration_images >= 0, f"calibration_images must be 0 or more, got {self.calibration_images}")


@dataclass(frozen=True)
class LatencyConfig:
    warmup: int = 10  # untimed runs per file
    runs: int = 50  # timed single-image runs per file
    threads: int = 1

    def __post_init__(self):
        _check(self.warmup >= 0, f"warmup must be 0 or more runs, got {self.warmup}")
        _check(self.runs > 0, f"runs must be > 0, got {self.runs}")
        _check(self.threads > 0, f"threads must be > 0, got {self.threads}")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    qat: QatConfig = field(default_factory=QatConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    out: str | None = None  # default: runs/<model>-<dataset name>
    ptq: bool = True  # also make the PTQ baseline, so the report shows float vs PTQ vs QAT
    resume: bool = False  # continue float training and QAT from their per-epoch checkpoints
    progress: bool = True

    def __post_init__(self):
        _check(not (self.ptq and self.qat.calibration_images == 0),
               "calibration images 0 (--calibration-images 0) leaves the PTQ baseline nothing to calibrate on; give 1 or "
               "more, or skip the baseline (--no-ptq, ptq=False)")

    @classmethod
    def from_options(cls, **options) -> "RunConfig":
        """From flat options (`model`, `epochs`, `qat_epochs`, `batch_size`, `warmup`, ...); None keeps a default.
        Unknown names are an error that lists the valid ones."""
        options = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(options) - set(OPTIONS))
        _check(not unknown, f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; valid: "
                            f"{', '.join(sorted(OPTIONS))}")
        sections: dict[str, dict] = {name: {} for name in ("model", "data", "train", "qat", "latency", "run")}
        for key, value in options.items():
            for section, name in OPTIONS[key]:
                sections[section][name] = value
        return cls(model=ModelConfig(**sections["model"]), data=DataConfig(**sections["data"]),
                   train=TrainConfig(**sections["train"]), qat=QatConfig(**sections["qat"]),
                   latency=LatencyConfig(**sections["latency"]), **sections["run"])

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)


def _options() -> dict[str, tuple[tuple[str, str], ...]]:
    """flat option -> the (section, field) pairs it sets."""
    table: dict[str, list[tuple[str, str]]] = {}
    for section, cls in (("model", ModelConfig), ("data", DataConfig), ("latency", LatencyConfig)):
        for f in fields(cls):
            table.setdefault("model" if f.name == "spec" else f.name, []).append((section, f.name))
    for f in fields(TrainConfig):
        if f.name not in ("flip", "progress"):
            table.setdefault(f.name, []).append(("train", f.name))
    for f in fields(QatConfig):
        if f.name in ("flip", "progress"):
            continue
        if f.name in ("batch_size", "device", "seed"):  # shared with float training: given once, reaches both
            table[f.name].append(("qat", f.name))
        elif f.name in {g.name for g in fields(TrainConfig)}:
            table.setdefault(f"qat_{f.name}", []).append(("qat", f.name))
        else:
            table.setdefault(f.name, []).append(("qat", f.name))
    table["progress"] = [("train", "progress"), ("qat", "progress"), ("run", "progress")]
    for name in ("out", "ptq", "resume"):
        table[name] = [("run", name)]
    return {k: tuple(v) for k, v in table.items()}


OPTIONS = _options()
