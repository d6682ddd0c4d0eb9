"""device_tests: load a run's exported files in their runtimes and check outputs and latency.

    pytest device_tests --run-dir runs/demo      (or: make device-test RUN=runs/demo)

Unlike tests/, this suite needs a finished run; without one every test skips with the reason.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from se_edge.artifacts import EXPORTED


def pytest_addoption(parser):
    parser.addoption("--run-dir", default="runs/demo", help="run directory whose artifacts to test (default runs/demo)")
    parser.addoption("--latency-runs", type=int, default=50, help="timed runs per artifact (default 50)")


def pytest_generate_tests(metafunc):
    if "artifact" in metafunc.fixturenames:
        metafunc.parametrize("artifact", [a.name for a in EXPORTED])


@pytest.fixture(scope="session")
def run_dir(request) -> Path:
    path = Path(request.config.getoption("--run-dir"))
    if not (path / "run.json").is_file():
        pytest.skip(f"no finished run at {path} (make demo, or pass --run-dir)")
    return path


@pytest.fixture(scope="session")
def eval_images(run_dir):
    """The run's own test split, preprocessed as the run was (first 200 images)."""
    from se_edge.artifacts import RunDir
    from se_edge.data import Preprocessing, load_eval_set

    cfg = RunDir(run_dir).config()
    _, images = load_eval_set(cfg["dataset"], Preprocessing.from_dict(cfg["preprocessing"]), run_spec=cfg["dataset"],
                              seed=cfg["split"]["seed"], test_fraction=cfg["split"]["test_fraction"])
    images.x, images.y = images.x[:200], images.y[:200]
    return images
