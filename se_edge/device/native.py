"""The native runners: latency and outputs without Python, for both formats.

native/pte_runner (.pte), as executor_runner: built with CMake against the executorch wheel:
`find_package(executorch)` from the wheel's share/cmake, its headers (include/) and shared libraries (lib/:
libexecutorch.so, the optimized and quantized kernels, the XNNPACK delegate, kept with --no-as-needed so
their static registrars run).

native/tflite_runner (.tflite): LiteRT's CompiledModel C API in the ai-edge-litert wheel's libLiteRt.so (the
CPU accelerator, XNNPACK), with the entry points declared in litert_c_api.h since the wheel has no headers.

    python -m se_edge.device.native build [--runner pte_runner|tflite_runner] [--build-dir DIR]  (make native-runner)
    python -m se_edge.device.native build --arch arm64     cross-built for aarch64 against the aarch64 wheels of the
                                                           same versions (build/arm64/RUNNER; make native-runner ARCH=arm64)
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
ARCHES = ("host", "arm64")
BUILD_TIMEOUT_S = 600


def default_binary(runner: str = "pte_runner", arch: str = "host") -> Path:
    return REPO / "build" / (runner if arch == "host" else f"{arch}/{runner}") / runner


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


def build(build_dir: str | os.PathLike | None = None, runner: str = "pte_runner", arch: str = "host") -> Path:
    """Configure and build `runner` (pte_runner or tflite_runner) into `build_dir` (default build/RUNNER, or
    build/ARCH/RUNNER); for arch "arm64", cross-built against the aarch64 wheels (se_edge.device.arm64).
    Returns the binary. SeEdgeError if it cannot."""
    if runner not in RUNNERS:
        raise SeEdgeError(f"unknown native runner {runner!r}; valid: {', '.join(RUNNERS)}")
    if arch not in ARCHES:
        raise SeEdgeError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHES)}")
    build_dir = Path(build_dir) if build_dir else default_binary(runner, arch).parent
    if arch == "arm64":
        from se_edge.device import arm64

        if problem := arm64.cross_problem():
            raise SeEdgeError(f"cannot cross-build the native runner: {problem}")
        args = arm64.cmake_args(arm64.fetch_wheels(), runner)
    else:
        if problem := toolchain_problem(runner):
            raise SeEdgeError(f"cannot build the native runner: {problem}")
        args = [f"-DCMAKE_PREFIX_PATH={executorch_package_dir()}" if runner == "pte_runner"
                else f"-DLITERT_DIR={litert_package_dir()}", f"-DCMAKE_CXX_COMPILER={_compiler()}"]
    versions = _runtime_versions()
    configure = ["cmake", "-S", str(REPO / "native" / runner), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 *args, f"-DSE_EDGE_RUNTIME_VERSION={versions['executorch' if runner == 'pte_runner' else 'ai-edge-litert']}"]
    for argv, what in ((configure, "cmake configure"), (["cmake", "--build", str(build_dir), "-j", "2"], "cmake build")):
        proc = run_host_command(argv, BUILD_TIMEOUT_S, f"native runner {what}")
        if proc.returncode != 0:
            errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
            raise SeEdgeError(f"native runner {what} failed: {errors[0].strip() if errors else last_line(proc.stderr)}")
    binary = build_dir / runner
    if not binary.is_file():
        raise SeEdgeError(f"native runner build finished but {binary} is missing")
    return binary


def _runtime_versions() -> dict[str, str]:
    """The runtime versions a runner is built against (this environment's; the arm64 wheels match them), which the
    runner reports in its stats JSON."""
    import importlib.metadata

    out = {}
    for dist in ("executorch", "ai-edge-litert"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def resolve_binary(native: str | None) -> Path:
    """The pte_runner to use: `native` if a path, else the default build (SeEdgeError if not built)."""
    path = Path(native) if native else default_binary()
    if not path.is_file():
        hint = "give the path of a built pte_runner" if native else "run `make native-runner` (needs cmake and a C++ compiler)"
        raise SeEdgeError(f"native runner not found at {path}; {hint}")
    return _executable(path)


def _executable(path: Path) -> Path:
    if not os.access(path, os.X_OK):
        raise SeEdgeError(f"native runner {path} is not executable")
    return path


def runner_of(path: Path) -> str:
    """Which runner a binary is, by its name (tflite_runner*, else pte_runner as `--native` always meant)."""
    return "tflite_runner" if path.name.startswith("tflite_runner") else "pte_runner"


def runners_for(transport, native: str | None) -> tuple[dict[str, Path], list[Path]]:
    """The native runners for `transport` from `--native [PATH]`, and the shared libraries to push beside them.

    - no PATH: on local, this host's builds (make native-runner); on qemu-arm64, the runners the board has installed;
      elsewhere a PATH is needed, since this host's builds link the wheels by absolute path;
    - PATH a binary: pte_runner, or tflite_runner where its name says so;
    - PATH a directory: its pte_runner and tflite_runner and the shared libraries (*.so) beside them, all pushed (the
      runners' RUNPATH has $ORIGIN), as `make native-runner ARCH=arm64` stages build/arm64/bundle or a phone's build.
    """
    if native is None:
        return {}, []
    if native == "":
        if transport.kind == "qemu":
            return {r: transport.installed(r) for r in RUNNERS}, []
        if transport.kind != "local":
            raise SeEdgeError(f"--native without a path uses this host's builds, which run on --device local only; "
                              f"give --native PATH: a directory with pte_runner and tflite_runner built for "
                              f"{transport.label} (and their libraries), or one of them")
        found = {r: default_binary(r) for r in RUNNERS if default_binary(r).is_file()}
        if "pte_runner" not in found:
            resolve_binary(None)  # says how to build it
        return {r: _executable(p) for r, p in found.items()}, []
    path = Path(native)
    if path.is_dir():
        found = {r: path / r for r in RUNNERS if (path / r).is_file()}
        if not found:
            raise SeEdgeError(f"--native {path}: the directory holds neither pte_runner nor tflite_runner; give a "
                              f"directory with either, or the path of one")
        return {r: _executable(p) for r, p in found.items()}, sorted(path.glob("*.so*"))
    return {runner_of(path): resolve_binary(native)}, []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_edge.device.native",
                                description="build or locate the native runners (native/pte_runner, native/tflite_runner)")
    p.add_argument("action", choices=("build", "path"))
    p.add_argument("--runner", choices=RUNNERS, help="one runner (default: both)")
    p.add_argument("--build-dir", help="where to build it (one runner only; default build/RUNNER)")
    p.add_argument("--arch", choices=ARCHES, default="host",
                   help="host, or arm64: cross-built with aarch64-linux-gnu-g++ against the aarch64 wheels")
    args = p.parse_args(argv)
    if args.build_dir and not args.runner:
        args.runner = "pte_runner"  # as before there were two
    runners = [args.runner] if args.runner else list(RUNNERS)
    if args.action == "path":
        for runner in runners:
            print(Path(args.build_dir) / runner if args.build_dir else default_binary(runner, args.arch))
        return 0
    for runner in runners:
        if args.arch == "host" and (problem := toolchain_problem(runner)):
            print(f"native-runner: skipped {runner}: {problem}")
            continue
        try:
            print(f"native runner built: {build(args.build_dir, runner, args.arch)}")
        except SeEdgeError as e:
            print(f"native-runner: error: {e}", file=sys.stderr)
            return 2
    if args.arch == "arm64" and not args.build_dir and len(runners) == len(RUNNERS):
        from se_edge.device.arm64 import stage_bundle

        try:
            print(f"both runners and their libraries, for --native DIR on an arm64 device: {stage_bundle()}")
        except SeEdgeError as e:
            print(f"native-runner: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
