"""One interface for every model an evaluator runs: set_input / invoke / get_output / __call__ / predict.

The runtimes' files open through runner.py (the same code a device runs); the PyTorch models (float, the int8
references) through `TorchModel`. `open_artifact(run, name)` gives any artifact of a run in that form.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from se_edge.errors import SeEdgeError
from se_edge.run import ARTIFACTS, QUANTISED, Run


class Model(Protocol):
    runtime: str

    def set_input(self, x1: np.ndarray) -> None: ...

    def invoke(self) -> None: ...

    def get_output(self) -> np.ndarray: ...

    def __call__(self, x1: np.ndarray) -> np.ndarray: ...


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


def predict(model: Model, x: np.ndarray) -> np.ndarray:
    """`model`'s outputs for every image of `x`: batched where the model batches, one by one through the runner."""
    if isinstance(model, TorchModel):
        return model.predict(x)
    from se_edge.runner import predict as runner_predict

    return runner_predict(model, x)


def check_artifacts(run: Run, names: list[str]) -> None:
    """Every file of `names` checked before any is loaded: present and what the run's lineage says it is, or, in a
    run made before lineage, a runtime file's header. The first that fails is one line in a second, not after the
    others have loaded (an int8 reference takes seconds to convert)."""
    from se_edge import runner

    for name in names:
        path = run.require(name)
        if ARTIFACTS[name].runtime != "pytorch" and not run.vouched:
            try:
                runner.check_header(str(path), path.suffix)
            except runner.RunnerError as e:
                raise SeEdgeError(str(e)) from None


def open_artifacts(run: Run, names: list[str], threads: int = 1) -> dict[str, Model]:
    """{name: Model} for each artifact of `names`, all checked (check_artifacts) before the first is opened."""
    check_artifacts(run, names)
    return {n: open_artifact(run, n, threads) for n in names}


def open_artifact(run: Run, name: str, threads: int = 1) -> Model:
    """Artifact `name` of `run` as a `Model`."""
    from se_edge import runner

    if name == "float":
        return TorchModel(run.load_float())
    kinds = {v: k for k, v in QUANTISED.items()}
    if name in kinds:
        return TorchModel(run.int8_reference(kinds[name]), set_eval=lambda m: None)
    from se_edge.quiet import captured_output

    path = run.require(name)
    if ARTIFACTS[name].fed == "pixels" and not (run.record.app_io and run.record.app_io.output == "probabilities"):
        raise SeEdgeError(f"{path} is the earlier app form (normalised uint8 input, int8 logits), which the apps' "
                          f"classifiers refuse; `se-edge export --run {run.path}` writes the app files again")
    try:
        if not run.vouched:  # nothing vouches for the file: a runtime crash on it must not kill us
            runner.probe(str(path))
        with captured_output():  # runtimes log delegate and threadpool set-up on stderr
            return runner.open_model(str(path), threads)
    except runner.RunnerError as e:
        raise SeEdgeError(str(e)) from None
