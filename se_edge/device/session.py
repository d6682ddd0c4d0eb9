"""The device side of one device bench: runner.py and the inputs pushed once, what the device can
run probed once (`runner.py --runtimes`), then per file the runners that apply, their outputs pulled
back and compared with the host reference.

Runners follow runner.py's conventions (options, stats JSON, exit code 2 with one `error: ` line
when the file cannot run there), which the native pte_runner shares; benchmark_model has its own.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from se_edge import runner
from se_edge.device import benchmark_model
from se_edge.device.received import LATENCY_KEYS, brief, check_runtimes, read_outputs, read_stats
from se_edge.device.transport import Transport, exit_status, last_line
from se_edge.errors import SeEdgeError
from se_edge.run import ARTIFACTS, Run

RUNNER = Path(runner.__file__)
NO_RUNTIME = {"litert": "no TFLite interpreter (ai-edge-litert, tflite-runtime or tensorflow)",
              "executorch": "no ExecuTorch runtime (executorch)"}


INT8_TOLERANCE_LSB = 1.0  # an int8 file on a device: every output within one LSB of the same file run here
FP32_TOLERANCE = 1e-4  # an fp32 file: every output within this of the same file run here
# an fp16 file: every output within this fraction of the largest output here. A CPU with fp16 arithmetic
# (ARMv8.2 asimdhp) runs the .pte's kernels in fp16, rounding each sum to 11 significant bits, where a host
# without it computes in fp32: the two differ by rounding that grows with each layer (0.0234 on logits up to
# ~20 measured on an emulated Cortex-A76), while a wrong kernel moves outputs by the order of the outputs.
FP16_TOLERANCE = 2.0 ** -6  # 16 fp16 epsilons (2^-10) of the largest output


@dataclass(frozen=True)
class Check:
    """What a file's outputs on the device must match: the same file run on this host (`here`), within one output
    LSB for int8 files (`lsb`, the logits' scale; an app file's probabilities within what one logit LSB can move
    them), within FP32_TOLERANCE for fp32 files, within FP16_TOLERANCE of the largest output for fp16 files
    (`fp16`)."""
    here: np.ndarray
    lsb: float | None = None
    probabilities: bool = False
    fp16: bool = False

    def __call__(self, outputs: np.ndarray) -> dict:
        if outputs.shape != self.here.shape:
            raise SeEdgeError(f"device outputs have shape {outputs.shape}, the same file here {self.here.shape}")
        here = self.here.astype(np.float64)
        diff = np.abs(outputs.astype(np.float64) - here)
        out = {"against": "the same file on this host", "values": int(diff.size),
               "bit_identical": int((outputs == self.here).sum()), "max_abs_diff": float(diff.max())}
        if self.lsb is None and self.fp16:
            bound = FP16_TOLERANCE * float(np.abs(here).max())
            return {**out, "tolerance": f"max abs diff <= {FP16_TOLERANCE:g} x largest output ({bound:.4g})",
                    "within": bool(diff.max() <= bound)}
        if self.lsb is None:
            return {**out, "tolerance": f"max abs diff <= {FP32_TOLERANCE:g}", "within": bool(diff.max() <= FP32_TOLERANCE)}
        out["lsb"] = self.lsb
        if not self.probabilities:
            max_lsb = float(diff.max() / self.lsb)
            return {**out, "max_lsb": max_lsb, "tolerance": f"<= {INT8_TOLERANCE_LSB:g} LSB",
                    "within": max_lsb <= INT8_TOLERANCE_LSB + 1e-3}  # LSB multiples, up to float rounding
        # softmax of int8 logits: logits each within one LSB move every probability by a factor within e^(+-2 LSB)
        bound = here * np.expm1(2 * INT8_TOLERANCE_LSB * self.lsb) + 1e-6
        return {**out, "tolerance": "the change 1 logit LSB can make to the probabilities",
                "within": bool((diff <= bound).all())}


def compare(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """accuracy, agreement_with_reference and max_abs_diff of a device's outputs (evaluate/metrics.py)."""
    from se_edge.evaluate.metrics import against_reference

    if logits.shape != reference.shape:
        raise SeEdgeError(f"device outputs have shape {logits.shape}, the host reference {reference.shape}")
    m = against_reference(logits, reference, labels)
    return {k: m[k] for k in ("accuracy", "agreement_with_reference", "max_abs_diff")}


class DeviceSession:
    """The device side of one bench: runner.py and inputs pushed once, then one call per file."""

    def __init__(self, transport: Transport, tmp: Path, x: np.ndarray, config, pixels: np.ndarray | None = None):
        """`config`: a remote_bench.DeviceBenchConfig (runs, warmup, threads, native, runner_bin); `pixels`: the
        same images as uint8 RGB pixels, for the app files."""
        self.t, self.tmp, self.config = transport, tmp, config
        np.save(tmp / "inputs.npy", x)
        self.runner = transport.push(RUNNER, "runner.py")
        self.inputs = transport.push(tmp / "inputs.npy", "inputs.npy")
        self.pixels = None
        if pixels is not None:
            np.save(tmp / "pixels.npy", pixels)
            self.pixels = transport.push(tmp / "pixels.npy", "pixels.npy")
        self.runtimes: dict = {}
        self.no_python: str | None = None
        self._binaries: dict[str, str] = {}
        self._libs_pushed = False
        self.se_names: list[str] | None = None  # with config.profile: the model's SE modules, in the order they run

    def probe(self) -> dict:
        """What the device can run: `runner.py --runtimes` there (a missing Python is a reason, not an error)."""
        described = self.t.describe() if hasattr(self.t, "describe") else {}
        if self.t.python is None:  # a board without Python: the native runners only
            self.no_python = f"{self.t.label} has no Python (as a phone or a board image has none): native runners only"
            self.runtimes = {"litert": None, "executorch": None}
            return {"spec": self.t.label, "kind": self.t.kind, "python_executable": None, **self.runtimes,
                    "python_error": self.no_python, **described}
        proc = self.t.execute([self.t.python, self.runner, "--runtimes"])
        text = proc.stdout[proc.stdout.find("{"):proc.stdout.rfind("}") + 1]
        try:
            info = json.loads(text) if proc.returncode == 0 else None
        except (ValueError, RecursionError):
            info = None
        problem = check_runtimes(info) if info is not None else None
        if info is None or problem:  # what it printed is not runner.py's answer: that Python cannot run it
            detail = (f"its --runtimes answer {problem}" if problem else
                      brief(last_line(proc.stderr) or last_line(proc.stdout) or f"exit {proc.returncode}", 300))
            self.no_python = f"{self.t.python} cannot run runner.py on {self.t.label}: {detail}"
            info = {"litert": None, "executorch": None}
        self.runtimes = info
        return {"spec": self.t.label, "kind": self.t.kind, "python_executable": self.t.python, **info,
                **({"python_error": self.no_python} if self.no_python else {}), **described}

    def run_artifact(self, run: Run, name: str, reference: np.ndarray, labels: np.ndarray,
                     check: Check | None = None) -> dict:
        """Every runner that applies on one file; `check`, where given, holds each runner's outputs against the same
        file run on this host (status "mismatch" where they are further apart than it allows)."""
        a = ARTIFACTS[name]
        entry = {"path": str(run.artifact_path(name)), "runtime": a.runtime, "dtype": a.dtype, "reference": a.reference}
        native = {"executorch": (self.config.native, "pte_runner"),
                  "litert": (self.config.native_tflite, "tflite_runner")}[a.runtime]
        native = native if native[0] else None
        bench_tool = bool(self.config.runner_bin) and a.runtime == "litert"
        needed = native or bench_tool or not self._skip_reason(a.runtime)
        model = self.t.push(run.require(name), a.filename) if needed else ""
        inputs = self.pixels if a.fed == "pixels" else self.inputs
        entry.update(self._python_runner(name, model, reference, labels, inputs, check))
        if native:
            entry["native"] = self._native_runner(name, model, reference, labels, inputs, *native, check=check)
        if bench_tool:
            entry["benchmark_model"] = self._benchmark_model(model)
        return entry

    def _skip_reason(self, runtime: str) -> str | None:
        if self.no_python:
            return self.no_python
        if not self.runtimes.get(runtime):
            where = self.t.label if self.t.python in self.t.label else f"{self.t.python} on {self.t.label}"
            return f"{NO_RUNTIME[runtime]} in {where}"
        return None

    def _python_runner(self, name: str, model: str, reference: np.ndarray, labels: np.ndarray, inputs: str,
                       check: Check | None = None) -> dict:
        runtime = ARTIFACTS[name].runtime
        if reason := self._skip_reason(runtime):
            return skipped(reason)
        result = self._run_and_compare([self.t.python, self.runner, model], name, "runner.py", reference, labels,
                                       inputs, check)
        if result["status"] == "ok":
            info = self.runtimes[runtime]
            result["runtime_module"], result["runtime_version"] = info["module"], info["version"]
        return result

    def _native_runner(self, name: str, model: str, reference: np.ndarray, labels: np.ndarray, inputs: str,
                       local: str, program: str, check: Check | None = None) -> dict:
        """`program` (pte_runner or tflite_runner, the local binary `local`) on the device for one file, its
        shared libraries (config.native_libs) pushed beside it first."""
        if not self._libs_pushed:
            for lib in self.config.native_libs:
                self.t.push(lib, Path(lib).name)
            self._libs_pushed = True
        binary = self._binary(local, program)
        tag = f"{name}.native"
        profile = self.t.path(f"{tag}.profile.{'etdp' if program == 'pte_runner' else 'json'}") \
            if self.config.profile else None
        extra = [] if profile is None else \
            [{"pte_runner": "--etdump", "tflite_runner": "--profile"}[program], profile,
             "--profile-runs", str(self.config.runs)]
        result = self._run_and_compare([binary, model], tag, program, reference, labels, inputs, check, extra)
        if profile is not None and result["status"] != "skipped":
            result["profile"] = self._profile(profile, tag, program, result)
        return {"binary": local, **result}

    def _profile(self, remote: str, tag: str, program: str, result: dict) -> dict:
        """The runner's per-op profile pulled back and read as untrusted input (size and every field checked),
        summarised (SE blocks named by `se_names`) beside the file's unprofiled p50 on the device."""
        from se_edge.device.profile import read_etdump, read_litert_profile, summarize_profile, with_latency

        local = self.t.pull(remote, self.tmp / Path(remote).name)
        raw = read_etdump(local) if program == "pte_runner" else read_litert_profile(local)
        return with_latency({tag: summarize_profile(raw, self.se_names)}, {tag: result.get("latency_ms") or {}})[tag]

    def _benchmark_model(self, model: str) -> dict:
        binary = self._binary(self.config.runner_bin, "benchmark_model")
        c = self.config
        proc = self.t.execute(benchmark_model.command(binary, model, c.runs, c.warmup, c.threads))
        if proc.returncode != 0:
            return {"binary": c.runner_bin, **skipped(f"benchmark_model exit {proc.returncode}: "
                                                       f"{last_line(proc.stderr) or last_line(proc.stdout)}")}
        stats = benchmark_model.parse_output(proc.stdout + "\n" + proc.stderr, c.threads)
        return {"binary": c.runner_bin, "status": "ok", "latency_ms": stats,
                **{k: stats[k] for k in ("load_ms", "first_ms") if stats.get(k) is not None}}

    def _binary(self, local: str, name: str) -> str:
        if local not in self._binaries:
            self._binaries[local] = self.t.push(local, name)
            self.t.make_executable(self._binaries[local])
        return self._binaries[local]

    def _run_and_compare(self, command: list[str], tag: str, program: str, reference: np.ndarray,
                         labels: np.ndarray, inputs: str, check: Check | None = None, extra: list[str] = ()) -> dict:
        """Run a runner (runner.py's options and exit codes, `extra` options after them) on the device, pull and
        compare its outputs."""
        c = self.config
        outputs, stats = self.t.path(f"{tag}.outputs.npy"), self.t.path(f"{tag}.stats.json")
        proc = self.t.execute([*command, "--inputs", inputs, "--outputs", outputs, "--runs", str(c.runs),
                               "--warmup", str(c.warmup), "--threads", str(c.threads), "--json", stats, *extra])
        errors = [line[len("error: "):] for line in proc.stderr.splitlines() if line.startswith("error: ")]
        if proc.returncode == 2 and errors:  # the runner's own "cannot run this here", one line
            return skipped(f"{program} on {self.t.label}: {brief(errors[-1], 300)}")
        if proc.returncode != 0:
            raise SeEdgeError(f"{program} failed on {self.t.label} for {tag} ({exit_status(proc.returncode)}): "
                              f"{brief(last_line(proc.stderr) or last_line(proc.stdout) or 'no output', 300)}")
        # what the device wrote is checked as any input file is: the outputs a finite float array of the shape
        # pushed (header first, no data read past it), the stats every key read below, in range
        what = f"{program} on {self.t.label} for {tag}"
        logits = read_outputs(self.t.pull(outputs, self.tmp / f"{tag}.outputs.npy"), reference.shape, what)
        s = read_stats(self.t.pull(stats, self.tmp / f"{tag}.stats.json"), what)
        result = {"status": "ok", **compare(logits, reference, labels),
                  "latency_ms": {**{k: s[k] for k in LATENCY_KEYS}, "threads": s["threads"]},
                  **{k: s.get(k) for k in ("load_ms", "first_ms", "peak_rss_mb", "runtime_version")},
                  **({"device": s["device"]} if isinstance(s.get("device"), dict) else {})}
        if check is not None:
            result["check"] = check(logits)
            if not result["check"]["within"]:
                c = result["check"]
                apart = f"{c['max_lsb']:.2f} LSB" if "max_lsb" in c else f"{c['max_abs_diff']:.3g}"
                result.update(status="mismatch", reason=f"{program} on {self.t.label}: outputs up to {apart} from the "
                                                        f"same file on this host (allowed: {c['tolerance']}); "
                                                        f"{c['bit_identical']} of {c['values']} values bit-identical")
        return result


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason, "accuracy": None, "agreement_with_reference": None,
            "max_abs_diff": None, "latency_ms": None}
