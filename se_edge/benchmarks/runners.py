"""`se-edge bench runners --run R`: how much of a runner's p50 is the runner and not the model.

Per file (default the run's int8 .tflite and .pte), single-image, same input, same threads:
- native: the native runner `make native-runner` built (tflite_runner, pte_runner), as a subprocess; its stats JSON;
- runner.py: se_edge/runner.py as a subprocess, as a device with Python runs it (each timed run goes through
  runner.py's own calls: set_input once, then invoke() timed by time.perf_counter around it);
- bare loop: in this process, the runtime's own call and nothing else timed in a loop: LiteRT's
  `Interpreter.invoke()`, ExecuTorch's `Method.execute()`.
The three are timed in interleaved rounds (default 5), so machine drift spreads over all of them; per tool the
median of the rounds' p50 is reported, with the spread of the rounds.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_FILES = ("tflite_int8", "executorch_int8")
TOOLS = ("native", "runner.py", "bare loop")


def _subprocess_p50(argv: list[str], stats: Path, timeout: float = 600) -> float:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        from se_edge.errors import SeEdgeError

        raise SeEdgeError(f"{Path(argv[0]).name} failed ({proc.returncode}): "
                          f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return float(json.loads(stats.read_text())["p50"])


def bare_loop_p50(path: Path, runtime: str, x1: np.ndarray, runs: int, warmup: int, threads: int) -> float:
    """p50 of the runtime's own call alone, in this process."""
    times = []
    if runtime == "litert":  # runner.py's interpreter, input set as runner.py sets it; then invoke() alone
        from se_edge.runner import open_model

        model = open_model(str(path), threads)
        model.set_input(x1)
        call = model.interpreter.invoke
    else:
        import torch
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(str(path)).load_method("forward")
        inputs = [torch.from_numpy(np.ascontiguousarray(x1))]

        def call():
            method.execute(inputs)
    for _ in range(warmup):
        call()
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50))


def runners_bench(run_dir: str, artifacts: tuple[str, ...] = DEFAULT_FILES, rounds: int = 5, runs: int = 200,
                  warmup: int = 20, threads: int = 1, progress: bool = True) -> dict:
    """The three p50s of each file, `rounds` interleaved rounds of `runs` timed runs each."""
    from tqdm.auto import tqdm

    from se_edge import runner
    from se_edge.device.native import default_binary, resolve_binary
    from se_edge.device.remote_bench import eval_images
    from se_edge.errors import SeEdgeError
    from se_edge.run import ARTIFACTS, RUNNABLE, Run

    run = Run(run_dir)
    valid = [a.name for a in RUNNABLE if a.fed == "normalised"]
    unknown = [a for a in artifacts if a not in valid]
    if unknown:
        raise SeEdgeError(f"bench runners times files fed normalised images; not {', '.join(unknown)}; valid: "
                          f"{', '.join(valid)}")
    paths = {a: run.require(a) for a in artifacts}
    binaries = {a: resolve_binary(str(default_binary("tflite_runner" if ARTIFACTS[a].runtime == "litert" else "pte_runner")))
                for a in artifacts}
    _, images = eval_images(run, 1)
    with tempfile.TemporaryDirectory(prefix="se_edge-runners-") as tmp:
        x_path = Path(tmp) / "x.npy"
        np.save(x_path, images.x[:1])
        p50 = {a: {t: [] for t in TOOLS} for a in artifacts}
        common = ["--inputs", str(x_path), "--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads)]
        for _ in tqdm(range(rounds), desc="runners", unit="round", disable=not progress):
            for a in artifacts:
                stats = Path(tmp) / f"{a}.json"
                p50[a]["native"].append(_subprocess_p50([str(binaries[a]), str(paths[a]), *common, "--json", str(stats)], stats))
                p50[a]["runner.py"].append(_subprocess_p50([sys.executable, runner.__file__, str(paths[a]), *common,
                                                            "--json", str(stats)], stats))
                p50[a]["bare loop"].append(bare_loop_p50(paths[a], ARTIFACTS[a].runtime, images.x[:1], runs, warmup, threads))
    files = {}
    for a in artifacts:
        med = {t: statistics.median(v) for t, v in p50[a].items()}
        files[a] = {"p50_ms": med, "rounds_p50_ms": p50[a],
                    "native_vs_runner_py": med["native"] / med["runner.py"],
                    "native_vs_bare_loop": med["native"] / med["bare loop"]}
    return {"run": str(run.path), "settings": {"rounds": rounds, "runs": runs, "warmup": warmup, "threads": threads},
            "files": files}


def markdown(result: dict) -> str:
    from se_edge.report.table import markdown_table

    s = result["settings"]
    lines = [f"# Runner overhead: {result['run']}", "",
             f"Single-image p50 in ms, median of {s['rounds']} interleaved rounds of {s['runs']} timed runs "
             f"({s['warmup']} warm-up), {s['threads']} thread(s); in brackets the rounds' range.", ""]
    rows = []
    for name, f in result["files"].items():
        cells = [f"{f['p50_ms'][t]:.4f} ({min(f['rounds_p50_ms'][t]):.4f}-{max(f['rounds_p50_ms'][t]):.4f})" for t in TOOLS]
        rows.append([name, *cells, f"{f['native_vs_runner_py']:.2f}", f"{f['native_vs_bare_loop']:.2f}"])
    lines += [markdown_table(["file", *TOOLS, "native / runner.py", "native / bare loop"], rows), ""]
    for name, f in result["files"].items():
        below = f["native_vs_runner_py"] < 1
        within = abs(f["native_vs_bare_loop"] - 1) <= 0.10
        lines.append(f"- {name}: the native runner's p50 is {'below' if below else 'not below'} runner.py's, and "
                     f"{'within' if within else 'not within'} 10 % of the bare loop's "
                     f"({100 * (f['native_vs_bare_loop'] - 1):+.1f} %)")
    return "\n".join(lines) + "\n"
