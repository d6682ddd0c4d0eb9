"""Keep the toolchains' noise off the user's terminal.

`captured_output()`: output written to file descriptors 1 and 2 by C++ code (absl, MLIR,
XNNPACK, threadpool logs) is captured; if the block fails, the captured tail is attached to the
error so nothing useful is lost. `quiet_libraries()`: the CLI silences known-harmless Python
warnings and log lines of torch/torchao. SE_EDGE_DEBUG=1 disables both.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator


@contextlib.contextmanager
def captured_output() -> Iterator[None]:
    if os.environ.get("SE_EDGE_DEBUG") == "1":
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    failure: BaseException | None = None
    try:
        with tempfile.TemporaryFile() as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            except BaseException as e:
                failure = e
                raise
            finally:
                _restore(saved)
                if failure is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-4000:]
                    if tail.strip():
                        failure.add_note("converter output (tail):\n" + tail)
    finally:
        for fd in saved:  # the copies of 1 and 2 are ours: close them, or every call leaks two descriptors
            os.close(fd)


def _restore(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)


# Warnings raised from these libraries' own modules are known noise for se_edge's users (deprecations
# inside torch.export, torchao and the converters); anyone else's warnings, the user's included, still show.
# Known-harmless warnings that the libraries raise through the standard library (attributed to copyreg).
KNOWN_MESSAGES = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)
NOISY_MODULES = r"(torch|torchao|executorch|litert_torch|ai_edge_litert|ai_edge_quantizer|tensorflow|google\.protobuf)(\.|$)"


def quiet_libraries() -> None:
    if os.environ.get("SE_EDGE_DEBUG") == "1":
        return
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("torchao", "torch.utils._pytree", "torch._export", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=NOISY_MODULES)
    for message in KNOWN_MESSAGES:
        warnings.filterwarnings("ignore", message=message)
