#!/usr/bin/env python3
"""Run and time exported models with nothing but a runtime: numpy and a TFLite interpreter or the
ExecuTorch runtime. No se_edge or torch import at module level, so this single file can be copied
to a phone or a board and run there.

    python runner.py model.tflite --inputs x.npy --outputs y.npy --runs 50 --warmup 10 --threads 1 --json stats.json

TFLite loads with whichever interpreter exists (ai_edge_litert, then tflite_runtime, then
tensorflow.lite); `.pte` needs the ExecuTorch runtime (`executorch.runtime`). Int8 I/O is quantised
and dequantised here, so callers always pass and receive float32.

    python runner.py --runtimes      # which runtimes this machine has (JSON), without loading them
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

RUNTIMES = {".tflite": "litert", ".pte": "executorch"}
# (module, distribution) per runtime, in the order they are tried.
TFLITE_INTERPRETERS = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"),
                       ("tensorflow.lite", "tensorflow"))
EXECUTORCH_RUNTIME = ("executorch.runtime", "executorch")


class RunnerError(Exception):
    """The model cannot be loaded or run here: one line, naming the file and what is valid."""


def _tflite_interpreter_class():
    for module, _ in TFLITE_INTERPRETERS:
        try:
            mod = __import__(module, fromlist=["Interpreter"])
            return getattr(mod, "Interpreter"), module.split(".")[0]
        except ImportError:
            continue
    raise RunnerError("no TFLite interpreter here; install ai-edge-litert (or tflite-runtime)")


def _installed(module: str, distribution: str) -> dict | None:
    """`{"module", "version"}` if `module` can be imported here; found without importing it."""
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):  # a parent package that is missing or fails to import
        return None
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"module": module.split(".")[0], "version": version}


# /proc/cpuinfo's names of the ISA features int8 speed depends on (arm64 HWCAPs, x86 flags), as the native runners
# report them
INT8_FEATURES = {"asimd": "asimd", "asimddp": "asimddp", "i8mm": "i8mm", "sve": "sve", "sve2": "sve2", "sme": "sme",
                 "avx2": "avx2", "avx512f": "avx512f", "avx512_vnni": "avx512_vnni", "avx_vnni": "avxvnni"}
# ... and those of fp16 arithmetic (ARMv8.2 FEAT_FP16 on arm64; AVX512-FP16 on x86): where a CPU has none, XNNPACK's
# fp16 kernels convert to fp32 for every op, and an fp16 file's speed says nothing about a phone's
FP16_FEATURES = {"asimdhp": "asimdhp", "avx512_fp16": "avx512_fp16"}
_ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
              "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
              "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xd44": "Cortex-X1",
              "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2", "0xd4d": "Cortex-A715",
              "0xd4e": "Cortex-X3", "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4"}


def device_info() -> dict:
    """The machine as the native runners describe it: CPU model, online cores, int8 (and fp16) ISA features, load
    average."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f.read(1 << 20).splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip() not in fields:
                    fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    model = fields.get("model name")
    if model is None and fields.get("CPU implementer") == "0x41" and fields.get("CPU part") in _ARM_PARTS:
        model = f"ARM {_ARM_PARTS[fields['CPU part']]}"
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"machine": platform.machine(), "cpu_model": model or "unknown", "cores": os.cpu_count(),
            "int8_features": [name for flag, name in INT8_FEATURES.items() if flag in flags],
            "fp16_features": [name for flag, name in FP16_FEATURES.items() if flag in flags], "load_average": load}


def available_runtimes() -> dict:
    """Which runtimes this machine has, per runtime name (None where there is none), and where it runs."""
    litert = next(filter(None, (_installed(m, d) for m, d in TFLITE_INTERPRETERS)), None)
    return {"litert": litert, "executorch": _installed(*EXECUTORCH_RUNTIME), "python": platform.python_version(),
            "numpy": np.__version__, "machine": platform.machine(), "system": platform.system(),
            "device_info": device_info()}


def _to_layout(x: np.ndarray, shape: tuple) -> np.ndarray:
    """`x` (N, C, H, W), as PyTorch lays images out, in a file's NHWC input layout where it takes that."""
    if x.ndim == 4 and tuple(x.shape[1:]) != tuple(shape[1:]) and (x.shape[2], x.shape[3], x.shape[1]) == tuple(shape[1:]):
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


class TFLiteModel:
    runtime = "litert"

    def __init__(self, path: str, threads: int = 1, keep_all_tensors: bool = False):
        """`keep_all_tensors`: every intermediate tensor stays readable, for per-layer comparisons
        (se_edge/evaluate/debug.py): computed by XNNPACK with one delegate partition per op where the interpreter can
        (each op's output is then a partition's output, in the arena), else by the builtin kernels."""
        import inspect

        interpreter_class, self.interpreter_module = _tflite_interpreter_class()
        options = {}
        self.kernels = "xnnpack"
        if keep_all_tensors:
            options = {"experimental_preserve_all_tensors": True}
            if "experimental_disable_delegate_node_fusion" in inspect.signature(interpreter_class.__init__).parameters:
                options["experimental_disable_delegate_node_fusion"] = True
            else:
                resolver = __import__(interpreter_class.__module__, fromlist=["OpResolverType"]).OpResolverType
                options["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                self.kernels = "builtin"
        try:
            with warnings.catch_warnings():  # keep_all_tensors: LiteRT warns that it is for debugging, which it is
                warnings.simplefilter("ignore", UserWarning)
                self.interpreter = interpreter_class(model_path=str(path), num_threads=threads, **options)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise RunnerError(f"cannot load {path} as a TFLite model: {str(e).splitlines()[0]}") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self.input["shape"])
        self.dtype = "int8" if self.input["dtype"] == np.int8 else "fp32"

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        x = _to_layout(x, self.input_shape)
        if x.dtype == dtype:
            return x  # already in the file's own input type (raw pixels for a uint8 input, say)
        if dtype in (np.int8, np.uint8):
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            # As the delegates quantise (XNNPACK's f32 -> int8 convert): times the float32 reciprocal, ties to even.
            inverse = np.float32(1) / np.float32(scale)
            return np.clip(np.round(x.astype(np.float32) * inverse) + zero, info.min, info.max).astype(dtype)
        return x.astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def set_input(self, x1: np.ndarray) -> None:
        self.interpreter.set_tensor(self.input["index"], self._quantize(x1))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def get_output(self) -> np.ndarray:
        return self._dequantize(self.interpreter.get_tensor(self.output["index"]))

    def __call__(self, x1: np.ndarray) -> np.ndarray:
        self.set_input(x1)
        self.invoke()
        return self.get_output()


class PteModel:
    runtime = "executorch"

    def __init__(self, path: str, threads: int = 1):
        try:
            import torch  # the ExecuTorch Python runtime takes torch tensors
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError:
            raise RunnerError("no ExecuTorch runtime here; install executorch to run .pte files") from None
        self._torch = torch
        if hasattr(portable_lib, "_unsafe_reset_threadpool"):
            portable_lib._unsafe_reset_threadpool(threads)
        try:
            self.program = Runtime.get().load_program(str(path))
            self.method = self.program.load_method("forward")
        except (RuntimeError, ValueError) as e:
            raise RunnerError(f"cannot load {path} as an ExecuTorch program: {str(e).splitlines()[0]}") from None
        meta = self.method.metadata.input_tensor_meta(0)
        self.input_shape = tuple(int(d) for d in meta.sizes())
        self.takes_uint8 = int(meta.dtype()) == 0  # ExecuTorch's ScalarType::Byte
        self.dtype = None  # a .pte takes float input whether or not its kernels are int8
        self._x = None

    def set_input(self, x1: np.ndarray) -> None:
        x1 = _to_layout(x1, self.input_shape)
        if self.takes_uint8 and x1.dtype != np.uint8:
            raise RunnerError(f"this .pte takes uint8 pixels {self.input_shape}; got {x1.dtype} input")
        x1 = np.ascontiguousarray(x1, dtype=np.uint8 if self.takes_uint8 else np.float32)
        self._x = [self._torch.from_numpy(np.ascontiguousarray(x1))]

    def invoke(self) -> None:
        self._y = self.method.execute(self._x)

    def get_output(self) -> np.ndarray:
        return self._y[0].numpy().astype(np.float32)

    def __call__(self, x1: np.ndarray) -> np.ndarray:
        self.set_input(x1)
        self.invoke()
        return self.get_output()


def open_model(path: str, threads: int = 1):
    """A TFLiteModel or PteModel for `path`, chosen by its suffix."""
    suffix = os.path.splitext(str(path))[1]
    if suffix not in RUNTIMES:
        raise RunnerError(f"cannot run {path}: unknown model type {suffix!r}; valid: .tflite, .pte")
    if not os.path.isfile(path):
        raise RunnerError(f"model not found: {path}")
    check_header(path, suffix)
    return TFLiteModel(path, threads) if suffix == ".tflite" else PteModel(path, threads)


def probe(path: str, timeout: float = 300.0) -> None:
    """Load `path` and run it once in a child process: a runtime that crashes on the file (an abort in
    native code, which no exception can catch) becomes one RunnerError here instead of killing the caller."""
    import signal
    import subprocess

    check_header(path, os.path.splitext(str(path))[1])
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--check", os.path.abspath(path)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunnerError(f"{path}: loading and running it once took over {timeout:g} s; is it the model you meant?") from None
    if proc.returncode == 0:
        return
    errors = [line[len("error: "):] for line in proc.stderr.splitlines() if line.startswith("error: ")]
    if proc.returncode == 2 and errors:
        raise RunnerError(errors[-1])
    how = (f"crashed ({signal.Signals(-proc.returncode).name})" if proc.returncode < 0 and
           -proc.returncode in signal.valid_signals() else f"failed (exit {proc.returncode})")
    runtime = "LiteRT" if str(path).endswith(".tflite") else "ExecuTorch"
    raise RunnerError(f"{path}: the {runtime} runtime {how} loading and running it; the file is damaged or from an "
                      f"incompatible exporter; re-export it")


def check_header(path: str, suffix: str) -> None:
    """Refuse a file whose flatbuffer header is not the runtime's before the runtime sees it: a damaged
    `.pte` makes ExecuTorch abort the process (SIGABRT, no message) instead of raising."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
    identifier = head[4:8]
    if suffix == ".tflite":
        ok = identifier == b"TFL3"
        expected = "the TFLite identifier TFL3 at bytes 4-8"
    else:
        ok = identifier[:2] == b"ET" and identifier[2:].isdigit()
        expected = "the ExecuTorch identifier ET<version> at bytes 4-8"
    root = int.from_bytes(head[:4], "little") if len(head) == 8 else size
    if not ok or root >= size:
        raise RunnerError(f"{path} is not a valid {suffix} file: expected {expected} and a root offset within its "
                          f"{size} bytes; re-export it")


def predict(model, x: np.ndarray) -> np.ndarray:
    """Run each sample of `x` (N, ...) through a batch-1 model; returns (N, ...) float32 outputs."""
    return np.concatenate([model(x[i:i + 1]) for i in range(len(x))])


def summarize(times_ms: list[float]) -> dict:
    """min/mean/std/p50/p90/p99 of timed runs, in milliseconds."""
    t = np.asarray(times_ms, dtype=np.float64)
    return {
        "count": int(t.size),
        "min": float(t.min()),
        "mean": float(t.mean()),
        "std": float(t.std()),
        "p50": float(np.percentile(t, 50)),
        "p90": float(np.percentile(t, 90)),
        "p99": float(np.percentile(t, 99)),
    }


def time_once(model) -> float:
    """Milliseconds for one inference on the input already set."""
    start = time.perf_counter()
    model.invoke()
    return (time.perf_counter() - start) * 1e3


def benchmark(path: str, x1: np.ndarray, warmup: int = 10, runs: int = 50, threads: int = 1) -> dict:
    """Load time, first (cold) run, then `warmup` untimed and `runs` timed single-input runs."""
    start = time.perf_counter()
    model = open_model(path, threads)
    load_ms = (time.perf_counter() - start) * 1e3
    model.set_input(x1)
    first_ms = time_once(model)
    for _ in range(warmup):
        model.invoke()
    stats = summarize([time_once(model) for _ in range(runs)])
    return {"load_ms": load_ms, "first_ms": first_ms, "warmup": warmup, "threads": threads,
            "runtime": model.runtime, "runtime_module": getattr(model, "interpreter_module", None) or model.runtime,
            **stats, "peak_rss_mb": peak_rss_mb()}


def rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident memory now (`VmRSS`) or at its peak (`VmHWM`), in MiB, where /proc has it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory(path: str) -> dict:
    """`{"runtime_rss_mb", "peak_rss_mb"}`: resident memory with the runtime imported and nothing loaded, and
    the peak after loading `path` and running it once. Meant for a fresh process (`--memory`)."""
    if path.endswith(".pte"):
        import executorch.runtime  # noqa: F401  (and torch, which the Python runtime takes tensors from)
    else:
        _tflite_interpreter_class()
    baseline = rss_mb()
    model = open_model(path, 1)
    model(zeros_input(model))
    return {"runtime_rss_mb": baseline, "peak_rss_mb": peak_rss_mb()}


def zeros_input(model) -> np.ndarray:
    """An all-zero input in the model's own input type (uint8 pixels for a file that takes them)."""
    uint8 = getattr(model, "takes_uint8", False) or getattr(model, "input", {}).get("dtype") == np.uint8
    return np.zeros(model.input_shape, np.uint8 if uint8 else np.float32)


def measure_memory(path: str, timeout: float = 300.0) -> dict:
    """`memory(path)` in a fresh child process (this one's memory would count torch and everything else)."""
    import subprocess

    check_header(path, os.path.splitext(str(path))[1])
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory", os.path.abspath(path)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        errors = [line[len("error: "):] for line in proc.stderr.splitlines() if line.startswith("error: ")]
        raise RunnerError(errors[-1] if errors else f"{path}: measuring memory failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float | None:
    # Linux/Android: VmHWM is this program's own high-water mark. getrusage's ru_maxrss also counts
    # the parent's RSS at fork (Linux keeps it across exec), so a runner started from a big process
    # (se-edge with torch loaded) would report that process's memory instead of its own.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run and time a .tflite or .pte model (no torch needed for .tflite).")
    p.add_argument("model", nargs="?", help="path to a .tflite or .pte file")
    p.add_argument("--inputs", help=".npy of inputs (N, ...) float32; default: zeros of the model's input shape")
    p.add_argument("--outputs", help="write the model's outputs for --inputs to this .npy")
    p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs (default 10)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--json", help="write statistics to this file (default: stdout)")
    p.add_argument("--runtimes", action="store_true", help="print the runtimes this machine has (JSON) and exit")
    p.add_argument("--check", action="store_true", help="only load the model and run it once on zeros (exit 0: it works)")
    p.add_argument("--memory", action="store_true",
                   help="print resident memory (MiB, JSON) with the runtime alone and at the peak of load + one run")
    args = p.parse_args(argv)
    if args.runtimes:
        print(json.dumps(available_runtimes(), indent=2))
        return 0
    if args.model is None:
        p.error("the model is required (or --runtimes)")
    try:
        if args.memory:
            print(json.dumps(memory(args.model)))
            return 0
        model = open_model(args.model, args.threads)
        if args.check:
            model(zeros_input(model))
            return 0
        x = np.load(args.inputs, allow_pickle=False) if args.inputs else zeros_input(model)
        x = x if x.dtype == np.uint8 else x.astype(np.float32)  # uint8: an app file's pixels, kept as they are
        if args.outputs:
            np.save(args.outputs, predict(model, x))
        stats = benchmark(args.model, x[:1], args.warmup, args.runs, args.threads)
    except (RunnerError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats.update(model=os.path.basename(args.model), machine=platform.machine(), python=platform.python_version())
    text = json.dumps(stats, indent=2)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.json)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
