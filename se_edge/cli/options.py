"""Argument types and the option groups several commands share.

Every option defaults to None (unset): the library's configs (se_edge/config.py) hold each default
once, and the commands pass on only what the user set. Help texts quote those defaults.
"""
from __future__ import annotations

import argparse
import math

from se_edge.config import DEVICES, DataConfig, LatencyConfig, QatConfig, TrainConfig


class Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem (`--help` shows the usage), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
        return value
    return parse


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (0 or more), got {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def seed(text: str) -> int:
    from se_edge.config import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, got {text}")
    return value


def between_0_and_1(inclusive: bool):
    span = "from 0 to 1" if inclusive else "between 0 and 1 (exclusive)"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {text}") from None
        if not (0 <= value <= 1 if inclusive else 0 < value < 1):
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value
    return parse


def model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="SPEC",
                   help="a zoo model (`se-edge models`; default se_cnn), timm:NAME, torchvision:NAME, or "
                        "path/to/file.py:FACTORY (your own code; called with num_classes/in_chans when it takes them)")
    p.add_argument("--weights", metavar="FILE", help="a state dict (.pt/.pth read with weights_only, or .safetensors) "
                                                     "loaded strictly into the model; a classifier head of another size "
                                                     "is replaced and the report says so")
    p.add_argument("--no-rewrite", dest="rewrite", action="store_false", default=None,
                   help="keep the model's own SE blocks (default: rewrite them to the hardware-aware hw form)")
    p.add_argument("--rewrite-silu", action="store_true", default=None,
                   help="also replace nn.SiLU with nn.Hardswish (not exact: the report gives the deviation; QAT recovers it)")
    p.add_argument("--se", choices=("hw", "hw_clamp", "hard_sigmoid", "sigmoid", "none"),
                   help="zoo models: SE gate, or none (default: the model's, hw); an explicit gate is kept as chosen")
    p.add_argument("--se-squeeze", choices=("avg", "max", "avgmax", "avg_s2", "avgpool"),
                   help="zoo models: SE squeeze (default: the model's, avg)")
    p.add_argument("--stem", choices=("small", "imagenet"), help="zoo models: stem (default: small up to 64 px, else imagenet)")


def trust_option(p: argparse.ArgumentParser) -> None:
    """For commands on an existing run: a run.json that names a model file without its sha256 is refused unless
    the user says the file is theirs (run/models.py)."""
    p.add_argument("--trust-model-file", action="store_true", default=None,
                   help="import the model file the run's run.json names even though it records no sha256 for it "
                        "(a hand-written run.json); without it such a run is refused, since the file is code")


def data_options(p: argparse.ArgumentParser) -> None:
    d = DataConfig()
    p.add_argument("--data", help="dataset: 'digits', or a directory in MNIST IDX, CIFAR-10 batches or ImageFolder form, "
                                  f"or an .npz with x and y (default {d.data})")
    p.add_argument("--out", help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--size", type=positive(int), help=f"input size in pixels (default {d.size})")
    p.add_argument("--in-chans", type=positive(int), help="input channels (default: the model's first convolution's, "
                                                          "else the dataset's, 1 or 3)")
    p.add_argument("--seed", type=seed, help=f"seed for splits, init and training (default {d.seed})")


def train_options(p: argparse.ArgumentParser) -> None:
    t = TrainConfig()
    p.add_argument("--epochs", type=non_negative, help=f"float training epochs (default {t.epochs}; 0: keep the "
                                                       "model as given, e.g. pretrained --weights)")
    p.add_argument("--batch-size", type=positive(int), help=f"batch size of float training and QAT (default {t.batch_size})")
    p.add_argument("--lr", type=positive(float), help=f"float training peak learning rate (default {t.lr:g})")
    p.add_argument("--device", choices=DEVICES, help="training device (default auto: cuda if available)")


def qat_options(p: argparse.ArgumentParser) -> None:
    q = QatConfig()
    p.add_argument("--qat-epochs", type=positive(int), help=f"QAT fine-tuning epochs (default {q.epochs})")
    p.add_argument("--qat-lr", type=positive(float), help=f"QAT peak learning rate (default {q.lr:g})")
    p.add_argument("--distill", type=between_0_and_1(inclusive=True),
                   help="weight of distillation from the float model in the QAT loss, against the labels' "
                        f"cross-entropy (default {q.distill:g}: float's outputs only; 0: labels only)")
    p.add_argument("--calibration-images", type=non_negative, metavar="K",
                   help="training images that calibrate the PTQ baseline's ranges and QAT's starting ranges "
                        f"(default {q.calibration_images}; 0: QAT starts from its first batches' ranges)")
    p.add_argument("--freeze-bn-after", type=non_negative, metavar="M",
                   help=f"QAT epochs before batch-norm statistics freeze (default {q.freeze_bn_after}: the float "
                        "model's, throughout)")
    p.add_argument("--freeze-observers-after", type=non_negative, metavar="N",
                   help=f"QAT epochs before quantisation ranges freeze (default {q.freeze_observers_after}: the "
                        "calibrated ranges, throughout)")
    p.add_argument("--no-ptq", dest="ptq", action="store_false", default=None, help="skip the PTQ baseline")


def latency_options(p: argparse.ArgumentParser) -> None:
    lat = LatencyConfig()
    p.add_argument("--warmup", type=non_negative, help=f"untimed runs per file (default {lat.warmup})")
    p.add_argument("--runs", type=positive(int), help=f"timed single-image runs per file (default {lat.runs})")
    p.add_argument("--threads", type=positive(int), help=f"CPU threads for every runtime (default {lat.threads})")


def user_set(args: argparse.Namespace, *names: str) -> dict:
    """The options among `names` the user gave (argparse leaves the others None)."""
    values = vars(args)
    return {k: values[k] for k in names if values.get(k) is not None}
