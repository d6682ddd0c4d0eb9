"""Shared fixtures: one small end-to-end run on scikit-learn's digits, reused by many tests."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")


def se_edge(*args, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run the CLI as a user would: `python -m se_edge.cli ARGS`."""
    return subprocess.run([sys.executable, "-m", "se_edge.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def cli(*args, env=None) -> subprocess.CompletedProcess:
    """The CLI in this process, reported as se_edge() reports a subprocess: for tests that check only an exit code
    and the messages. A fresh interpreter importing the stack costs seconds per call; the real subprocess path keeps
    its own smoke tests (test_cli.py)."""
    import contextlib
    import io

    from se_edge.cli import main

    out, err, saved = io.StringIO(), io.StringIO(), dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["se-edge", *map(str, args)], code, out.getvalue(), err.getvalue())


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2, exactly one non-empty line on stderr, no traceback, naming each fragment."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_idx(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    """Write MNIST-format IDX files: magic 0x00000803 / 0x00000801, big-endian dims, uint8 data."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    images = np.asarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.uint8)
    with opener(directory / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in images.shape) + images.tobytes())
    with opener(directory / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big") + labels.tobytes())


def digits_as_mnist(n: int | None = None, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as 28x28 uint8 MNIST-like images (white digit on black)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images[start:start + n if n else None].astype(np.float32) / 16.0)[:, None]
    x = F.interpolate(x, size=(20, 20), mode="bilinear", antialias=True, align_corners=False)
    x = F.pad(x, (4, 4, 4, 4))  # MNIST centres 20x20 digits in 28x28
    return (x[:, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8), d.target[start:start + n if n else None]


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory) -> Path:
    """An MNIST-style directory (one set) that no run has trained on: digits 1500.. as 28x28."""
    path = tmp_path_factory.mktemp("mnist_like")
    x, y = digits_as_mnist(start=1500)
    write_idx(path, "t10k", x, y)
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, worker_id):
    """A short but real run: float training, QAT, export, parity, latency, report. Built once per test session:
    pytest-xdist's workers share it through a file lock (the first to ask builds it, the others wait and read
    it), so tests copy it before changing anything in it."""
    import json

    from filelock import FileLock

    from se_edge.config import RunConfig
    from se_edge.pipeline import run_all

    if worker_id == "master":  # no xdist
        root = tmp_path_factory.mktemp("runs")
    else:
        root = tmp_path_factory.getbasetemp().parent / "shared-runs"
        root.mkdir(exist_ok=True)
    out, built = root / "digits", root / "digits.built"
    with FileLock(str(root / "digits.lock")):
        if not built.is_file():
            if out.exists():  # left by a worker killed mid-build
                import shutil

                shutil.rmtree(out)
            run_all(RunConfig.from_options(out=str(out), epochs=12, qat_epochs=2, runs=5, warmup=2, progress=False))
            built.write_text("complete\n")
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture
def run_copy(demo_run, tmp_path) -> Path:
    """A copy of the demo run (its checkpoints left out) that a test may change."""
    import shutil

    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    return copy
