"""device_tests: load a run's exported files in their runtimes and check outputs and latency,
here and on the device where the model runs.

    pytest device_tests --run-dir runs/demo --se-device SPEC   (or: make device-test RUN=runs/demo DEVICE=SPEC)

SPEC is local (default), local:/path/to/python, adb[:SERIAL] or ssh:[user@]host[:port]. Unlike
tests/, this suite needs a finished run; without one every test skips with the reason, as do the
adb/ssh tests when no such device is given and the native-runner tests when it is not built.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from se_edge.run import RUNNABLE


def pytest_addoption(parser):
    parser.addoption("--run-dir", default="runs/demo", help="run directory whose artifacts to test (default runs/demo)")
    parser.addoption("--latency-runs", type=int, default=50, help="timed runs per artifact (default 50)")
    parser.addoption("--se-device", default="local",
                     help="device SPEC: local, local:/path/to/python, adb[:SERIAL], ssh:[user@]host[:port] (default local)")
    parser.addoption("--device-python", default=None, help="Python on an adb/ssh device (default python3)")
    parser.addoption("--device-dir", default=None, help="directory on an adb/ssh device for the files")
    parser.addoption("--native-runner", default=None,
                     help="pte_runner for the device (default: build/pte_runner/pte_runner on a local device, if built)")
    parser.addoption("--runner-bin", default=None, help="TFLite benchmark_model binary for the device")


def pytest_generate_tests(metafunc):
    if "artifact" in metafunc.fixturenames:
        metafunc.parametrize("artifact", [a.name for a in RUNNABLE])


@pytest.fixture(scope="session")
def run_dir(request) -> Path:
    path = Path(request.config.getoption("--run-dir"))
    if not (path / "run.json").is_file():
        pytest.skip(f"no finished run at {path} (make demo, or pass --run-dir)")
    return path


def pytest_sessionstart(session):
    """Every exported file of the run is checked before a test loads one: a damaged or stale file (which
    ExecuTorch would answer with an abort of the whole session) stops the suite with one line, exit 2."""
    from se_edge.errors import SeEdgeError
    from se_edge.run import Run
    from se_edge.runner import RunnerError, check_header

    path = Path(session.config.getoption("--run-dir"))
    if not (path / "run.json").is_file():
        return  # the tests skip with the reason
    run = Run(path)
    try:
        for a in RUNNABLE:
            if run.artifact_path(a.name).is_file():
                check_header(str(run.require(a.name)), run.artifact_path(a.name).suffix)
    except (SeEdgeError, RunnerError) as e:
        pytest.exit(f"device_tests: error: {e}", returncode=2)


@pytest.fixture(scope="session")
def eval_images(run_dir):
    """The run's own test split, preprocessed as the run was (first 200 images)."""
    from se_edge.data import apply
    from se_edge.run import Run

    run = Run(run_dir)
    images = apply(run.eval_images()[1], run.preprocessing)
    images.x, images.y = images.x[:200], images.y[:200]
    return images


@pytest.fixture(scope="session")
def make_transport(request):
    """A function giving a fresh Transport for --se-device (with --device-python and --device-dir)."""
    from se_edge.device import parse_device_spec

    config = request.config
    return lambda: parse_device_spec(config.getoption("--se-device"), python=config.getoption("--device-python"),
                                     device_dir=config.getoption("--device-dir"))


@pytest.fixture(scope="session")
def device_spec(request) -> str:
    return request.config.getoption("--se-device")


@pytest.fixture(scope="session")
def native_runner(request, device_spec) -> str | None:
    """The pte_runner to run on the device, or None (tests that need it skip)."""
    from se_edge.device.native import default_binary

    given = request.config.getoption("--native-runner")
    if given:
        return given
    return str(default_binary()) if device_spec.split(":")[0] == "local" and default_binary().is_file() else None


@pytest.fixture(scope="session")
def device_bench(request, run_dir, native_runner, make_transport) -> dict:
    """Every exported file of the run, benched on --se-device once for the whole session."""
    from se_edge.device.remote_bench import DeviceBenchConfig, bench_on_device
    from se_edge.run import Run

    config = DeviceBenchConfig(runs=request.config.getoption("--latency-runs"), warmup=5, threads=1, images=200,
                               native=native_runner, runner_bin=request.config.getoption("--runner-bin"))
    return bench_on_device(Run(run_dir), make_transport(), config)
