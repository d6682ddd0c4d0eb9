"""The native runners: latency and outputs without Python, for both formats.

native/pte_runner (.pte), as executor_runner: built with CMake against the executorch wheel:
`find_package(executorch)` from the wheel's share/cmake, its headers (include/) and shared libraries (lib/:
libexecutorch.so, the optimized and quantized kernels, the XNNPACK delegate, kept with --no-as-needed so
their static registrars run).

native/tflite_runner (.tflite): LiteRT's CompiledModel C API in the ai-edge-litert wheel's libLiteRt.so (the
CPU accelerator, XNNPACK), with the entry points declared in litert_c_api.h since the wheel has no headers.

    python -m se_edge.device.native build [--runner pte_runner|tflite_runner] [--build-dir DIR]  (make native-runner)
    python -m se_edge.device.native path [--runner ...]                          where a binary is

Where cmake or a C++ compiler is missing, `build` says so and exits 0 (nothing to build here);
`toolchain_problem()` gives that reason to tests, which skip with it.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from se_edge.device.transport import last_line, run_host_command
from se_edge.errors import SeEdgeError

REPO = Path(__file__).resolve().parents[2]
RUNNERS = ("pte_runner", "tflite_runner")
BUILD_TIMEOUT_S = 600


def default_binary(runner: str = "pte_runner") -> Path:
    return REPO / "build" / runner / runner


def litert_package_dir() -> Path | None:
    """The installed ai-edge-litert wheel's directory, if it ships libLiteRt.so (found without importing it)."""
    spec = importlib.util.find_spec("ai_edge_litert")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    return root if (root / "libLiteRt.so").is_file() else None


def executorch_package_dir() -> Path | None:
    """The installed executorch wheel's directory, if it ships a CMake package (found without importing it)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    return root if (root / "share" / "cmake" / "executorch-config.cmake").is_file() else None


def _compiler() -> str | None:
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    return next((found for c in candidates if (found := shutil.which(c))), None)


def toolchain_problem(runner: str = "pte_runner") -> str | None:
    """Why `runner` cannot be built here (None when it can)."""
    source = REPO / "native" / runner
    if shutil.which("cmake") is None:
        return f"cmake not found on PATH (needed to build native/{runner})"
    if _compiler() is None:
        return "no C++ compiler found (c++, g++, clang++ or $CXX)"
    if not (source / "CMakeLists.txt").is_file():
        return f"native runner sources not found at {source} (a source checkout of se_edge has them)"
    if runner == "pte_runner" and executorch_package_dir() is None:
        return "the installed executorch has no CMake package (share/cmake/executorch-config.cmake)"
    if runner == "tflite_runner" and litert_package_dir() is None:
        return "the installed ai-edge-litert has no libLiteRt.so"
    return None


def build(build_dir: str | os.PathLike | None = None, runner: str = "pte_runner") -> Path:
    """Configure and build `runner` (pte_runner or tflite_runner) into `build_dir` (default build/RUNNER);
    returns the binary. SeEdgeError if it cannot."""
    if runner not in RUNNERS:
        raise SeEdgeError(f"unknown native runner {runner!r}; valid: {', '.join(RUNNERS)}")
    if problem := toolchain_problem(runner):
        raise SeEdgeError(f"cannot build the native runner: {problem}")
    build_dir = Path(build_dir) if build_dir else default_binary(runner).parent
    package = (f"-DCMAKE_PREFIX_PATH={executorch_package_dir()}" if runner == "pte_runner"
               else f"-DLITERT_DIR={litert_package_dir()}")
    configure = ["cmake", "-S", str(REPO / "native" / runner), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 package, f"-DCMAKE_CXX_COMPILER={_compiler()}"]
    for argv, what in ((configure, "cmake configure"), (["cmake", "--build", str(build_dir), "-j", "2"], "cmake build")):
        proc = run_host_command(argv, BUILD_TIMEOUT_S, f"native runner {what}")
        if proc.returncode != 0:
            errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
            raise SeEdgeError(f"native runner {what} failed: {errors[0].strip() if errors else last_line(proc.stderr)}")
    binary = build_dir / runner
    if not binary.is_file():
        raise SeEdgeError(f"native runner build finished but {binary} is missing")
    return binary


def resolve_binary(native: str | None) -> Path:
    """The pte_runner to use: `native` if a path, else the default build (SeEdgeError if not built)."""
    path = Path(native) if native else default_binary()
    if not path.is_file():
        hint = "give the path of a built pte_runner" if native else "run `make native-runner` (needs cmake and a C++ compiler)"
        raise SeEdgeError(f"native runner not found at {path}; {hint}")
    if not os.access(path, os.X_OK):
        raise SeEdgeError(f"native runner {path} is not executable")
    return path


def native_binary_for(transport, native: str | None) -> Path:
    """The pte_runner for `transport`: `native` if given; else this host's build, which links the
    wheel's libraries by absolute path and so runs on a local device only."""
    if native is None and transport.kind != "local":
        raise SeEdgeError(f"--native without a path uses this host's build, which runs on --device local only; "
                          f"give --native PATH to a pte_runner built for {transport.label}")
    return resolve_binary(native)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_edge.device.native",
                                description="build or locate the native runners (native/pte_runner, native/tflite_runner)")
    p.add_argument("action", choices=("build", "path"))
    p.add_argument("--runner", choices=RUNNERS, help="one runner (default: both)")
    p.add_argument("--build-dir", help="where to build it (one runner only; default build/RUNNER)")
    args = p.parse_args(argv)
    if args.build_dir and not args.runner:
        args.runner = "pte_runner"  # as before there were two
    runners = [args.runner] if args.runner else list(RUNNERS)
    if args.action == "path":
        for runner in runners:
            print(Path(args.build_dir) / runner if args.build_dir else default_binary(runner))
        return 0
    for runner in runners:
        if problem := toolchain_problem(runner):
            print(f"native-runner: skipped {runner}: {problem}")
            continue
        try:
            print(f"native runner built: {build(args.build_dir, runner)}")
        except SeEdgeError as e:
            print(f"native-runner: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
