"""What a run directory holds, and how each artifact is opened for evaluation.

    runs/<name>/
      run.json             model, dataset, preprocessing, split and training settings
      float.pt             float weights (state dict; loaded with weights_only=True)
      qat.pt               QAT result (state dict of the prepared PT2E graph)
      ptq.pt               PTQ baseline (state dict of the calibrated PT2E graph)
      float.ckpt qat.ckpt  per-epoch training checkpoints, for --resume
      model_fp32.tflite    model_int8.tflite    model_fp32.pte    model_int8.pte
      model_int8_ptq.tflite  model_int8_ptq.pte
      mixed.pt             the QAT result with the layers of `export --keep-float` in float (quantize/mixed.py)
      model_int8_mixed.tflite  model_int8_mixed.pte
      model_int8_app.tflite  model_int8_app.pte   the QAT result in the apps' form: RGB pixels in, probabilities
                           out (export/app_io.py); `export --input float` for float pixels
      report.json  report.md  accuracy.png  latency.png
"""
from __future__ import annotations

import contextlib
import copy
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from se_edge.errors import SeEdgeError
from se_edge.io import pid_alive, read_json, write_json


@dataclass(frozen=True)
class Artifact:
    name: str
    filename: str
    runtime: str  # pytorch | litert | executorch
    dtype: str  # fp32 | int8
    reference: str  # the artifact whose predictions this one is compared with
    parent: str | None = None  # the artifact it is made from, where that is not its reference
    peer: str | None = None  # the same model in the other runtime: the runtime-vs-runtime yardstick
    fed: str = "normalised"  # normalised: the run's preprocessed float images; pixels: RGB pixels 0..255, as an app
    output: str = "logits"  # logits | probabilities


ARTIFACTS = {a.name: a for a in (
    Artifact("float", "float.pt", "pytorch", "fp32", "float"),
    Artifact("reference_int8", "qat.pt", "pytorch", "int8", "float"),
    Artifact("tflite_fp32", "model_fp32.tflite", "litert", "fp32", "float", peer="executorch_fp32"),
    Artifact("tflite_int8", "model_int8.tflite", "litert", "int8", "reference_int8", peer="executorch_int8"),
    Artifact("executorch_fp32", "model_fp32.pte", "executorch", "fp32", "float", peer="tflite_fp32"),
    Artifact("executorch_int8", "model_int8.pte", "executorch", "int8", "reference_int8", peer="tflite_int8"),
    Artifact("reference_int8_ptq", "ptq.pt", "pytorch", "int8", "float"),
    Artifact("tflite_int8_ptq", "model_int8_ptq.tflite", "litert", "int8", "reference_int8_ptq", peer="executorch_int8_ptq"),
    Artifact("executorch_int8_ptq", "model_int8_ptq.pte", "executorch", "int8", "reference_int8_ptq", peer="tflite_int8_ptq"),
    Artifact("reference_int8_mixed", "mixed.pt", "pytorch", "int8", "float", parent="reference_int8"),
    Artifact("tflite_int8_mixed", "model_int8_mixed.tflite", "litert", "int8", "reference_int8_mixed", peer="executorch_int8_mixed"),
    Artifact("executorch_int8_mixed", "model_int8_mixed.pte", "executorch", "int8", "reference_int8_mixed", peer="tflite_int8_mixed"),
    # The app files are held against their runtime's float-input int8 file fed the same pixels (normalised as the
    # app file does it): both are the QAT graph, so any decision apart is the app form's doing.
    Artifact("tflite_int8_app", "model_int8_app.tflite", "litert", "int8", "tflite_int8", parent="reference_int8",
             peer="executorch_int8_app", fed="pixels", output="probabilities"),
    Artifact("executorch_int8_app", "model_int8_app.pte", "executorch", "int8", "executorch_int8",
             parent="reference_int8", peer="tflite_int8_app", fed="pixels", output="probabilities"),
)}
QUANTISED = {"qat": "reference_int8", "ptq": "reference_int8_ptq", "mixed": "reference_int8_mixed"}
CHECKPOINTS = {"float": "float.ckpt", "qat": "qat.ckpt"}
REQUIRED = ("float", "reference_int8")  # every run has these; the others when their stage ran
EXPORTED = [a for a in ARTIFACTS.values() if a.runtime != "pytorch"]
REPORTS = ("report.json", "report.md", "accuracy.png", "latency.png", "tradeoff.png", "debug.json", "debug.md",
           "debug.png", "app_clients.json")
LOCK = ".se_edge.lock"
# What each stage's output makes stale when it is made again: a new float.pt outdates every quantised
# model, export and report; a new qat.pt/ptq.pt its exports and the report.
DOWNSTREAM = {
    "float": [*(a.name for a in ARTIFACTS.values() if a.name != "float"), "qat.ckpt", *REPORTS,
              "model_int8_ethosu.pte", "ethosu.json"],
    "quantize": [*(a.name for a in EXPORTED), "reference_int8_mixed", *REPORTS],
    "mixed": ["tflite_int8_mixed", "executorch_int8_mixed"],
}


# The PyTorch models loaded from runs, kept once per process and keyed by the content of the files they are made
# from (the file itself, float.pt and run.json): a prepared graph is traced once however many RunDir objects,
# stages or copies of a run directory ask for it, and a rewritten file is a new key. Each RunDir gets its own copy
# (a deepcopy takes milliseconds, a re-trace about 20 s), so what one caller does to its model never reaches another.
_MODELS: OrderedDict = OrderedDict()
MODEL_CACHE_SIZE = 12


class RunDir:
    """A run's directory: paths, its recorded settings, and its PyTorch models."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._memo: dict = {}  # (what, file stamp) -> this RunDir's model: the same object for every stage that asks

    def _memoized(self, what: str, path: Path, make):
        """This RunDir's model `what` made from `path`: made once per file version, from the process's cache where
        files of the same content made it before."""
        stat = path.stat()
        local = (what, stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if local in self._memo:
            return self._memo[local]
        from se_edge.lineage import file_sha256  # computed once per version of a file, and shared with the lineage

        key = (what, *(file_sha256(p) if p.is_file() else None
                       for p in (path, self.path / "run.json", self.path / ARTIFACTS["float"].filename)))
        if key in _MODELS:
            _MODELS.move_to_end(key)
            model = copy.deepcopy(_MODELS[key])
        else:
            model = make()
            _MODELS[key] = copy.deepcopy(model)
            while len(_MODELS) > MODEL_CACHE_SIZE:
                _MODELS.popitem(last=False)
        self._memo = {k: v for k, v in self._memo.items() if k[0] != what}  # a rewritten file replaces its entry
        self._memo[local] = model
        return model

    def reserved(self) -> set[Path]:
        """The run's own files, which no --json or other output may replace."""
        names = [a.filename for a in ARTIFACTS.values()] + list(CHECKPOINTS.values()) + list(REPORTS) + [
            "run.json", LOCK, "model_int8_ethosu.pte", "ethosu.json"]
        return {(self.path / n).resolve() for n in names}

    def check_output(self, path: str | os.PathLike) -> Path:
        """A user-given output path (e.g. --json) that is writable and not one of this run's own files."""
        from se_edge.io import check_output_path, check_writable

        path = check_output_path(path)
        if path.resolve() in self.reserved():
            raise SeEdgeError(f"refusing to write {path}: it is one of the run's own files; give another path")
        return check_writable(path)

    def prepare(self, create: bool = True) -> None:
        """Create the run directory (or check the one there; `create=False`: only that it could be made):
        one line if it cannot hold a run."""
        from se_edge.io import check_directory

        check_directory(self.path, create)

    @contextlib.contextmanager
    def lock(self):
        """Exclusive use of the run directory for this process: a second run into it gets one line. A directory
        made only for the lock is removed again if the run wrote nothing into it (bad input, say)."""
        created = not self.path.exists()
        self.prepare()
        lock = self.path / LOCK
        for attempt in (1, 2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                holder = _lock_holder(lock)
                if attempt == 2 or (holder is not None and pid_alive(holder)):
                    raise SeEdgeError(f"{self.path} is in use by another se-edge process (pid {holder}); wait for it, "
                                      f"or give another --out") from None
                lock.unlink(missing_ok=True)  # left by a killed run
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            yield self
        finally:
            lock.unlink(missing_ok=True)
            if created and not any(self.path.iterdir()):
                self.path.rmdir()

    def clear_downstream(self, made: str) -> list[str]:
        """Remove what a new `made` ("float" or "quantize") output makes stale; returns the file names removed."""
        from se_edge import lineage

        removed = []
        for name in DOWNSTREAM[made]:
            path = self.path / (ARTIFACTS[name].filename if name in ARTIFACTS else name)
            if path.is_file():
                path.unlink()
                removed.append(path.name)
        self._memo.clear()
        if removed and (self.path / "run.json").is_file():
            self.save_config(lineage.without(self.config(), removed))
        return removed

    def checkpoint_path(self, stage: str) -> Path:
        """The per-epoch training checkpoint of `stage` ("float" or "qat"), for --resume."""
        if stage not in CHECKPOINTS:
            raise SeEdgeError(f"unknown checkpoint {stage!r}; valid: {', '.join(CHECKPOINTS)}")
        return self.path / CHECKPOINTS[stage]

    def artifact_path(self, name: str) -> Path:
        return self.path / ARTIFACTS[name].filename

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def config(self) -> dict:
        if not self.path.is_dir():
            raise SeEdgeError(f"run directory not found: {self.path} (create one with `se-edge run` or `se-edge train`)")
        from se_edge.record import RunRecord

        data = read_json(self.path / "run.json", "run config")
        RunRecord.from_dict(data, str(self.path / "run.json"))  # the schema, checked where it is read
        return data

    def record(self):
        """run.json as a typed, checked RunRecord (se_edge/record.py owns its schema)."""
        from se_edge.record import RunRecord

        return RunRecord.from_dict(read_json(self.path / "run.json", "run config"), str(self.path / "run.json"))

    def save_config(self, config: dict) -> None:
        from se_edge.record import RunRecord

        RunRecord.from_dict(config, "the run record")  # never write what could not be read back
        write_json(self.path / "run.json", config)

    def made(self, name: str, **fields) -> dict:
        """Record that artifact `name` was just written (its hash, its parent's, the settings it was made with)
        together with the run.json `fields` that describe it, in one write; returns the new run.json."""
        from se_edge import lineage

        a = ARTIFACTS[name]
        source = a.parent or a.reference
        parent = ARTIFACTS[source].filename if source != name else None
        config = {**self.config(), **fields}
        if "lineage" in config:  # a run made before lineage existed stays without one: a partial record would refuse its files
            config["lineage"] = {**config["lineage"], a.filename: lineage.entry(self.path, a.filename, parent, config)}
        self.save_config(config)
        return config

    def require(self, name: str) -> Path:
        """The path of artifact `name`, checked: present, and what the run's lineage says it is (not stale,
        not changed, not copied in). One line naming the file and the command that makes it otherwise."""
        from se_edge import lineage

        path = self.artifact_path(name)
        if not path.is_file():
            raise SeEdgeError(f"{path} is missing; run the stage that makes it first ({_MADE_BY[name]})")
        lineage.verify(self.path, path.name, self.config(), _MADE_BY[name])
        return path

    # ---- PyTorch models

    def create_model(self):
        """The run's float architecture, rebuilt from its recorded model spec (models/build.py)."""
        from se_edge.models.build import rebuild

        return rebuild(self.config())

    def sample_input(self):
        import torch

        prep = self.config()["preprocessing"]
        # Seeded noise in the normalised input range: timing and tracing need a shape, not a digit.
        return torch.randn(1, prep["in_chans"], prep["size"], prep["size"], generator=torch.Generator().manual_seed(0))

    def example_input(self, name: str) -> np.ndarray:
        """One input in the form artifact `name` takes: seeded RGB pixels (N, H, W, 3) for an app file (uint8, or
        float for `export --input float`), the seeded normalised noise of sample_input otherwise."""
        if ARTIFACTS[name].fed != "pixels":
            return self.sample_input().numpy()
        from se_edge.export.app_io import app_sample, AppIO

        io = AppIO(input=(self.config().get("app_io") or {}).get("input", "uint8"))
        return app_sample(self.sample_input(), io).numpy()

    def splits(self):
        """The run's train/val/test splits, read and normalised exactly as training did (data.load_splits)."""
        from se_edge.data import Preprocessing, load_splits

        cfg = self.config()
        s = cfg["split"]
        return load_splits(cfg["dataset"], seed=s["seed"], val_fraction=s["val_fraction"],
                           test_fraction=s["test_fraction"], prep=Preprocessing.from_dict(cfg["preprocessing"]))

    def load_float(self):
        model = self.create_model()
        path = self.require("float")
        with _state_mismatch(path, "float"):
            model.load_state_dict(_load_state(path))
        return model.eval()

    def load_prepared(self, kind: str = "qat"):
        """The prepared PT2E graph of the QAT result (`qat`), of the PTQ baseline (`ptq`), or of the QAT result
        with run.json's `mixed.keep_float` layers in float (`mixed`)."""
        from se_edge.quantize import load_prepared

        if kind not in QUANTISED:
            raise SeEdgeError(f"unknown quantised model {kind!r}; valid: {', '.join(QUANTISED)}")
        name = QUANTISED[kind]
        path = self.require(name)

        def load():
            state = _load_state(path)
            if kind == "mixed":

                from se_edge.quantize.mixed import keep_float

                prepared = copy.deepcopy(self.load_prepared("qat"))
                keep_float(prepared, self.config()["mixed"]["keep_float"])
                with _state_mismatch(path, name):
                    prepared.load_state_dict(state)
                return prepared
            with _state_mismatch(path, name):
                return load_prepared(self.load_float(), state, self.sample_input(), kind)

        return self._memoized(f"prepared-{kind}", path, load)

    def int8_reference(self, kind: str = "qat", arithmetic: str = "xnnpack"):
        """The PyTorch int8 reference: the prepared graph converted as ExecuTorch lowers it, run with the
        delegates' integer arithmetic (quantize/integer.py), or as convert_pt2e wrote it (`arithmetic="pt2e"`)."""
        from se_edge.quantize.integer import int8_reference

        return self._memoized(f"reference-{kind}-{arithmetic}", self.require(QUANTISED[kind]),
                              lambda: int8_reference(self.load_prepared(kind), arithmetic))

    def present(self) -> list[str]:
        """The artifacts this run has (the required ones always: missing ones raise when opened)."""
        return [n for n in ARTIFACTS if n in REQUIRED or self.artifact_path(n).is_file()]


_MADE_BY = ({"float": "se-edge train", "reference_int8": "se-edge quantize", "reference_int8_ptq": "se-edge quantize --ptq",
             "reference_int8_mixed": "se-edge export --keep-float NAME[,NAME]"}
            | {a.name: "se-edge export" for a in EXPORTED})


def _lock_holder(lock: Path) -> int | None:
    try:
        text = lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def _state_mismatch(path: Path, name: str):
    """A checkpoint whose tensors are not the run's model's (load_state_dict's RuntimeError) as one line."""
    try:
        yield
    except RuntimeError as e:
        from se_edge.errors import one_line

        raise SeEdgeError(f"cannot load {path} into the run's model ({one_line(e)[:160]}); make it again with "
                          f"`{_MADE_BY[name]}`") from None


def _load_state(path: Path) -> dict:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt zip, pickle with code, truncated file
        raise SeEdgeError(f"cannot load checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


class TorchModel:
    """A PyTorch module with the runner's interface (set_input / invoke / get_output / predict)."""

    def __init__(self, module, runtime: str = "pytorch", set_eval=None):
        import torch

        self._torch = torch
        self.module = module
        self.runtime = runtime
        (set_eval or (lambda m: m.eval()))(module)

    def set_input(self, x1: np.ndarray) -> None:
        self._x = self._torch.from_numpy(np.ascontiguousarray(x1, dtype=np.float32))

    def invoke(self) -> None:
        with self._torch.no_grad():
            self._y = self.module(self._x)

    def get_output(self) -> np.ndarray:
        return self._y.numpy().astype(np.float32)

    def __call__(self, x1: np.ndarray) -> np.ndarray:
        self.set_input(x1)
        self.invoke()
        return self.get_output()

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        with self._torch.no_grad():
            return np.concatenate([self.module(self._torch.from_numpy(x[i:i + batch_size])).numpy()
                                   for i in range(0, len(x), batch_size)]).astype(np.float32)


def open_artifact(run: RunDir, name: str, threads: int = 1):
    """An object with set_input/invoke/get_output/__call__ for artifact `name` of `run`."""
    from se_edge import runner

    if name == "float":
        return TorchModel(run.load_float())
    kinds = {v: k for k, v in QUANTISED.items()}
    if name in kinds:
        return TorchModel(run.int8_reference(kinds[name]), set_eval=lambda m: None)
    from se_edge.quiet import captured_output

    path = run.require(name)
    if ARTIFACTS[name].fed == "pixels" and (run.config().get("app_io") or {}).get("output") != "probabilities":
        raise SeEdgeError(f"{path} is the earlier app form (normalised uint8 input, int8 logits), which the apps' "
                          f"classifiers refuse; `se-edge export --run {run.path}` writes the app files again")
    try:
        if "lineage" not in run.config():  # nothing vouches for the file: a runtime crash on it must not kill us
            runner.probe(str(path))
        with captured_output():  # runtimes log delegate and threadpool set-up on stderr
            return runner.open_model(str(path), threads)
    except runner.RunnerError as e:
        raise SeEdgeError(str(e)) from None
