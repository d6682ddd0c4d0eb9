"""`se-edge bench --run R --device SPEC`: every exported file of a run, run on a device, checked
against the host's PyTorch reference.

1. inputs: the run's test split, preprocessed as the run was (data.load_eval_set) -> inputs.npy
2. host references: the float model for fp32 files, the converted int8 graph for int8 files
3. on the device: `runner.py --runtimes` (what can run there), then per file
   `runner.py MODEL --inputs inputs.npy --outputs OUT.npy --runs N --warmup W --threads T --json STATS`,
   plus the native pte_runner for .pte files (`native`) and TFLite's benchmark_model for .tflite
   files (`runner_bin`) where given
4. pulled back: outputs compared with the reference (top-1 agreement, max |logit diff|, accuracy).

A file whose runtime the device lacks, or that the runtime there refuses (runner exit 2), is listed
as skipped with the reason; the others still run. Transport failures raise SeEdgeError.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from se_edge.device.session import RUNNER, Check, DeviceSession
from se_edge.device.transport import DEFAULT_TIMEOUT_S, Transport
from se_edge.errors import SeEdgeError
from se_edge.run import ARTIFACTS, RUNNABLE, Run

__all__ = ["RUNNER", "DeviceBenchConfig", "bench_on_device", "device_bench"]


PROFILE_NEEDS_NATIVE = ("--profile on a device needs --native: the native runners record the profiles there "
                        "(pte_runner --etdump, tflite_runner --profile); Python's LiteRT has no profiler")


@dataclass(frozen=True)
class DeviceBenchConfig:
    runs: int = 50
    warmup: int = 10
    threads: int = 1
    images: int | None = None  # parity on the first N test images (None: all)
    artifacts: tuple[str, ...] | None = None  # exported artifact names (None: every file the run has)
    native: str | None = None  # a pte_runner binary for the device, also run on each .pte
    native_tflite: str | None = None  # a tflite_runner binary for the device, also run on each .tflite
    native_libs: tuple[str, ...] = ()  # shared libraries pushed beside the native runners (their RUNPATH has $ORIGIN)
    runner_bin: str | None = None  # TFLite's benchmark_model binary for the device, also run on each .tflite
    progress: bool = False
    profile: bool = False  # the native runners also profile each file op by op (pte_runner --etdump,
    # tflite_runner --profile; `runs` profiled runs), read back here as any device output is

    def __post_init__(self):
        if self.runs < 1 or self.warmup < 0 or self.threads < 1 or (self.images is not None and self.images < 1):
            raise SeEdgeError(f"runs, threads and images must be >= 1 and warmup >= 0, got runs={self.runs}, "
                              f"warmup={self.warmup}, threads={self.threads}, images={self.images}")


def device_bench(run_dir: str, device: str, *, json_path: str | None = None, device_python: str | None = None,
                 device_dir: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, native: str | None = None,
                 runner_bin: str | None = None, artifacts: str | None = None, **config) -> tuple[dict, dict]:
    """`se-edge bench --device`: bench `run_dir` on `device` (a SPEC) and write JSON, Markdown and the
    plot (at `json_path`, default RUN/device-DEVICE.json). `native` is `--native`'s value (native.runners_for):
    "" for this host's builds or the board's runners, a runner's path, or a directory with both and their libraries;
    `artifacts` a comma-separated list. Returns the result and the written paths."""
    from se_edge.device.native import runners_for
    from se_edge.device.report import device_slug, write_device_report
    from se_edge.device.spec import parse_device_spec

    transport = parse_device_spec(device, python=device_python, device_dir=device_dir, timeout=timeout)
    run = Run(run_dir)
    run.check()
    if runner_bin is not None and not Path(runner_bin).is_file():
        raise SeEdgeError(f"--runner-bin {runner_bin}: no such file; give the path of a benchmark_model built for the device")
    runners, libs = runners_for(transport, native)
    config = DeviceBenchConfig(
        **config, artifacts=tuple(n.strip() for n in artifacts.split(",") if n.strip()) if artifacts else None,
        native=str(runners["pte_runner"]) if "pte_runner" in runners else None, runner_bin=runner_bin,
        native_tflite=str(runners["tflite_runner"]) if "tflite_runner" in runners else None,
        native_libs=tuple(map(str, libs)))
    if config.profile and not runners:
        raise SeEdgeError(PROFILE_NEEDS_NATIVE)
    if getattr(transport, "emulated", False) and not runners:
        raise SeEdgeError(f"{transport.label} has no Python: give --native (the board's runners) to run files there")
    result = bench_on_device(run, transport, config)
    return result, write_device_report(result, json_path or run.path / f"device-{device_slug(result['device'])}.json")


def bench_on_device(run: Run, transport: Transport, config: DeviceBenchConfig = DeviceBenchConfig()) -> dict:
    """Run every selected artifact of `run` through `transport`; returns the device bench result
    (report.json's `artifacts` shape, with a status per artifact)."""
    names = selected_artifacts(run, config.artifacts)
    dataset, images = eval_images(run, config.images)
    apps = [n for n in names if ARTIFACTS[n].fed == "pixels"]
    pixels = app_pixels(run, config.images) if apps else None
    with tempfile.TemporaryDirectory(prefix="se_edge-bench-") as tmp, transport:  # reach the device before the slow host part
        session = DeviceSession(transport, Path(tmp), images.x, config, pixels)
        if config.profile:  # the profiles' SE blocks named by the model's SE modules, in the order they run
            from se_edge.device.profile import se_module_names

            session.se_names = se_module_names(run.load_float())
        device = session.probe()
        found = [f"{device[k]['module']} {device[k]['version']}" for k in ("litert", "executorch") if device.get(k)]
        _say(config, f"{transport.label} has {', '.join(found) or 'no runtime'}; host references on {len(images)} images")
        references = host_references(run, images.x, {ARTIFACTS[n].reference for n in names if n not in apps})
        if apps:  # the app files against their float-input twins fed the same pixels, as probabilities
            from se_edge.evaluate.metrics import softmax
            from se_edge.export.app_io import pixels_to_input

            same = host_references(run, pixels_to_input(pixels, run.preprocessing), {ARTIFACTS[n].reference for n in apps})
            references.update({n: softmax(same[ARTIFACTS[n].reference]) for n in apps})
        # each file run here too: what it computes on this host's kernels, which the device's outputs must match
        here = {**host_references(run, images.x, {n for n in names if n not in apps}),
                **(host_references(run, pixels, set(apps)) if apps else {})}
        from se_edge.evaluate.parity import output_lsb

        lsb = output_lsb(run, names, through_apps=True)
        artifacts = {}
        for name in names:
            _say(config, f"{name} on {transport.label}")
            reference = references[name if name in apps else ARTIFACTS[name].reference]
            artifacts[name] = session.run_artifact(run, name, reference, images.y, Check(here[name], lsb.get(name),
                                                                                        name in apps,
                                                                                        ARTIFACTS[name].dtype == "fp16"))
    return {"model": run.record.model, "dataset": dataset, "num_test": len(images), "device": device,
            "settings": {"runs": config.runs, "warmup": config.warmup, "threads": config.threads},
            "artifacts": artifacts}


def selected_artifacts(run: Run, wanted: tuple[str, ...] | None) -> list[str]:
    exported = [a.name for a in RUNNABLE]
    unknown = [n for n in wanted or () if n not in exported]
    if unknown:
        raise SeEdgeError(f"unknown artifact(s) {', '.join(unknown)}; valid: {', '.join(exported)}")
    present = [n for n in exported if (wanted is None or n in wanted) and run.artifact_path(n).is_file()]
    if not present:
        raise SeEdgeError(f"{run.path} holds none of {', '.join(wanted or exported)}; run `se-edge export` first")
    return present


def eval_images(run: Run, limit: int | None = None):
    """The run's own test split, preprocessed exactly as the run was (as parity does)."""
    from se_edge.data import apply

    dataset, raw = run.eval_images()
    images = apply(raw, run.preprocessing)
    if limit is not None:
        images.x, images.y = images.x[:limit], images.y[:limit]
    images.x = np.ascontiguousarray(images.x, dtype=np.float32)
    return dataset, images


def app_pixels(run: Run, limit: int | None = None) -> np.ndarray:
    """The run's test split as the app files take it: uint8 RGB pixels (N, H, W, 3), as parity feeds them."""
    from se_edge.evaluate.parity import eval_pixels

    _, raw = run.eval_images()
    pixels = eval_pixels(raw, run.preprocessing)
    return pixels[:limit] if limit is not None else pixels


def host_references(run: Run, x: np.ndarray, names: set[str]) -> dict[str, np.ndarray]:
    from se_edge.evaluate.models import open_artifact, predict

    return {name: predict(open_artifact(run, name), x) for name in sorted(names)}


def _say(config: DeviceBenchConfig, message: str) -> None:
    if config.progress:
        print(f"[device] {message}", file=sys.stderr, flush=True)
