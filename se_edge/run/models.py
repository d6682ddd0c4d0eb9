"""A run's PyTorch models: rebuilt from run.json, loaded from its checked files, and cached per process.

Prepared graphs and int8 references are kept once per process, keyed by the content of the files they are made
from (the file itself, run.json and float.pt, hashed as the lineage hashes them): a graph is traced once however
many `Run` objects, stages or copies of a run directory ask for it, and a rewritten file is a new key. Each `Run`
gets its own copy (a deepcopy takes milliseconds, a re-trace about 20 s), so what one caller does to its model
never reaches another.
"""
from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from pathlib import Path

import numpy as np

from se_edge.errors import SeEdgeError
from se_edge.io import file_sha256
from se_edge.run.layout import ARTIFACTS, MADE_BY, QUANTISED, RECORD

_MODELS: OrderedDict = OrderedDict()
MODEL_CACHE_SIZE = 12


def memoized(run, what: str, path: Path, make):
    """`run`'s model `what` made from `path`: made once per file version, from the process's cache where files of
    the same content made it before."""
    stat = path.stat()
    local = (what, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if local in run._memo:
        return run._memo[local]
    key = (what, *(file_sha256(p) if p.is_file() else None
                   for p in (path, run.path / RECORD, run.path / ARTIFACTS["float"].filename)))
    if key in _MODELS:
        _MODELS.move_to_end(key)
        model = copy.deepcopy(_MODELS[key])
    else:
        model = make()
        _MODELS[key] = copy.deepcopy(model)
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
    run._memo = {k: v for k, v in run._memo.items() if k[0] != what}  # a rewritten file replaces its entry
    run._memo[local] = model
    return model


# Set by the CLI's --trust-model-file (trust_model_files): the user vouches for a model file a run names without
# a recorded sha256. Per process, as the command line that says it.
_TRUST_MODEL_FILES = False


def trust_model_files(trust: bool = True) -> None:
    global _TRUST_MODEL_FILES
    _TRUST_MODEL_FILES = bool(trust)


def create_model(run):
    """The run's float architecture, rebuilt from its recorded model spec (models/build.py). float.pt's lineage is
    checked first where the run has one: its settings hash covers `model` and `model_sha256`, so a run.json edited
    to name another model file is refused before that file is read, let alone imported."""
    from se_edge.models.build import rebuild

    r = run.record
    if r.lineage is not None:
        run.require("float")
    return rebuild(r.model, r.model_kwargs, r.model_sha256, bool(r.rewrite and r.rewrite.enabled),
                   bool(r.rewrite and r.rewrite.silu), vouched=r.lineage is not None,
                   trust_model_file=_TRUST_MODEL_FILES)


def sample_input(run):
    import torch

    prep = run.record.preprocessing
    # Seeded noise in the normalised input range: timing and tracing need a shape, not a digit.
    return torch.randn(1, prep.in_chans, prep.size, prep.size, generator=torch.Generator().manual_seed(0))


def example_input(run, name: str) -> np.ndarray:
    """One input in the form artifact `name` takes: seeded RGB pixels (N, H, W, 3) for an app file (uint8, or
    float for `export --input float`), the seeded normalised noise of sample_input otherwise."""
    if ARTIFACTS[name].fed != "pixels":
        return sample_input(run).numpy()
    from se_edge.export.app_io import AppIO, app_sample

    io = AppIO(input=(run.record.app_io and run.record.app_io.input) or "uint8")
    return app_sample(sample_input(run), io).numpy()


def splits(run):
    """The run's train/val/test splits, read and normalised exactly as training did (data.load_splits)."""
    from se_edge.data import load_splits

    r = run.record
    return load_splits(r.dataset, seed=r.split.seed, val_fraction=r.split.val_fraction,
                       test_fraction=r.split.test_fraction, prep=r.preprocessing.to_data())


def eval_images(run, data: str | None = None):
    """(name, raw ImageSet) of dataset `data`, or of the run's own test split: images in [0, 1], not normalised
    (data.read_eval_images), read with the run's split."""
    from se_edge.data import read_eval_images

    r = run.record
    return read_eval_images(data or r.dataset, run_spec=r.dataset, seed=r.split.seed,
                            test_fraction=r.split.test_fraction, size=r.preprocessing.size)


def load_float(run):
    model = create_model(run)
    path = run.require("float")
    with _state_mismatch(path, "float"):
        model.load_state_dict(_load_state(path))
    return model.eval()


def load_prepared(run, kind: str = "qat"):
    """The prepared PT2E graph of the QAT result (`qat`), of the PTQ baseline (`ptq`), or of the QAT result with
    run.json's `mixed.keep_float` layers in float (`mixed`)."""
    from se_edge.quantize import load_prepared as prepare_from_state

    if kind not in QUANTISED:
        raise SeEdgeError(f"unknown quantised model {kind!r}; valid: {', '.join(QUANTISED)}")
    name = QUANTISED[kind]
    path = run.require(name)

    def load():
        state = _load_state(path)
        if kind == "mixed":
            from se_edge.quantize.mixed import keep_float

            prepared = copy.deepcopy(load_prepared(run, "qat"))
            keep_float(prepared, run.record.mixed.keep_float)
            with _state_mismatch(path, name):
                prepared.load_state_dict(state)
            return prepared
        with _state_mismatch(path, name):
            return prepare_from_state(load_float(run), state, sample_input(run), kind)

    return memoized(run, f"prepared-{kind}", path, load)


def int8_reference(run, kind: str = "qat", arithmetic: str = "xnnpack", hard_swish: str = "written"):
    """The PyTorch int8 reference: the prepared graph converted as ExecuTorch lowers it, run with the delegates'
    integer arithmetic (quantize/integer.py), or as convert_pt2e wrote it (`arithmetic="pt2e"`); its hard-swishes
    in `hard_swish` form (the .pte's is FORMS["executorch"], export/int8.py)."""
    from se_edge.quantize.integer import int8_reference as convert_reference

    key = f"reference-{kind}-{arithmetic}" + ("" if hard_swish == "written" else f"-{hard_swish}")
    return memoized(run, key, run.require(QUANTISED[kind]),
                    lambda: convert_reference(load_prepared(run, kind), arithmetic, hard_swish))


@contextlib.contextmanager
def _state_mismatch(path: Path, name: str):
    """A checkpoint whose tensors are not the run's model's (load_state_dict's RuntimeError) as one line."""
    try:
        yield
    except RuntimeError as e:
        from se_edge.errors import one_line

        raise SeEdgeError(f"cannot load {path} into the run's model ({one_line(e)[:160]}); make it again with "
                          f"`{MADE_BY[name]}`") from None


def _load_state(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, pickle with code, truncated file
        raise SeEdgeError(f"cannot load checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
