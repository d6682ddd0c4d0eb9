"""Each exported file, in its own runtime: loads, produces sane outputs, agrees with the host's
PyTorch reference, and has a measured latency."""
from __future__ import annotations

import numpy as np
import pytest

from se_edge import runner
from se_edge.evaluate.models import open_artifact
from se_edge.run import ARTIFACTS, Run


@pytest.fixture(scope="session")
def references(run_dir, eval_images):
    """The host reference named, computed once (only those the run's files need: not every run has a PTQ one)."""
    run, cache = Run(run_dir), {}

    def reference(name: str):
        if name not in cache:
            cache[name] = open_artifact(run, name).predict(eval_images.x)
        return cache[name]

    return reference


def _path(run_dir, artifact):
    path = Run(run_dir).artifact_path(artifact)
    if not path.is_file():
        pytest.skip(f"{path.name} was not exported in this run")
    return path


def test_outputs_are_finite_with_the_right_shape(run_dir, artifact, eval_images):
    model = runner.open_model(str(_path(run_dir, artifact)))
    y = model(eval_images.x[:1])
    num_classes = Run(run_dir).record.num_classes
    assert y.shape == (1, num_classes) and np.isfinite(y).all()


def test_agrees_with_host_reference(run_dir, artifact, eval_images, references):
    model = runner.open_model(str(_path(run_dir, artifact)))
    logits = runner.predict(model, eval_images.x)
    ref = references(ARTIFACTS[artifact].reference)
    agreement = float((logits.argmax(1) == ref.argmax(1)).mean())
    assert agreement >= 0.99, f"{artifact}: top-1 agreement {agreement:.4f} with {ARTIFACTS[artifact].reference}"
    if ARTIFACTS[artifact].dtype == "fp32":
        np.testing.assert_allclose(logits, ref, atol=1e-3, rtol=1e-3)


def test_latency_is_measured(run_dir, artifact, eval_images, request):
    runs = request.config.getoption("--latency-runs")
    stats = runner.benchmark(str(_path(run_dir, artifact)), eval_images.x[:1], warmup=5, runs=runs, threads=1)
    print(f"{artifact}: p50 {stats['p50']:.3f} ms, p90 {stats['p90']:.3f} ms, load {stats['load_ms']:.1f} ms")
    assert stats["count"] == runs
    assert 0 < stats["min"] <= stats["p50"] <= stats["p90"] <= stats["p99"]
