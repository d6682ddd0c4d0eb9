"""TFLite's own `benchmark_model` binary: the command line se_edge gives it, and its output parsed.

benchmark_model prints its statistics in microseconds, e.g.

    INFO: Initialized session in 119.515ms.
    INFO: count=9 first=87112 curr=51629 min=51629 max=87112 avg=58147.4 std=11478 p5=51629 median=51962 p95=87112
    INFO: count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=49620 median=51891 p95=68628
    INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 63743.2
    INFO: Peak memory footprint (MB): init=3.2 overall=8.5

The first `count=` line is the warm-up, the last the timed runs; older builds print no p5/median/p95
(and `count=N curr=X(all same)` when every run took the same time). Parsed into se_edge's latency
keys in milliseconds: p50 is benchmark_model's median; p90/p99 it does not compute (None), p5/p95 it does.
"""
from __future__ import annotations

import math
import re

from se_edge.device.received import brief, check_latency
from se_edge.errors import SeEdgeError

_PAIR = re.compile(r"([a-z0-9_]+)=(-?[0-9.]+(?:e[-+]?\d+)?)")
_TIMINGS = re.compile(r"Inference timings in us: Init: ([0-9.e+-]+), First inference: ([0-9.e+-]+)")
_INIT_US = re.compile(r"Init: ([0-9.e+-]+)")  # older builds: 'Average inference timings in us: Warmup: W, Init: I, ...'
_INIT = re.compile(r"Initialized session in ([0-9.]+) ?ms")
_PEAK = re.compile(r"Peak memory footprint \(MB\): init=([0-9.]+) overall=([0-9.]+)")
_MEMORY_DELTA = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=([0-9.]+) overall=([0-9.]+)")


def command(binary: str, model: str, runs: int, warmup: int, threads: int) -> list[str]:
    """Exactly `runs` timed and `warmup` warm-up runs (min_secs=0 lifts its default 1 s minimum)."""
    return [binary, f"--graph={model}", f"--num_threads={threads}", f"--num_runs={runs}", f"--warmup_runs={warmup}",
            "--min_secs=0", "--warmup_min_secs=0"]


def parse_output(text: str, threads: int | None = None) -> dict:
    """se_edge latency keys (ms) from benchmark_model's output; SeEdgeError if it holds no statistics."""
    stat_lines = [line[line.index("count="):] for line in text.splitlines() if "count=" in line
                  and not line.lstrip().startswith(("Memory", "Timings"))]
    if not stat_lines:
        tail = " | ".join(line.strip() for line in text.splitlines()[-3:] if line.strip())
        raise SeEdgeError(f"no statistics in benchmark_model's output (expected a 'count=...' line); it ended: {tail or 'empty'}")
    line = stat_lines[-1]
    us = {k: _number(v, line) for k, v in _PAIR.findall(line)}
    if "avg" not in us and "curr" in us:  # 'count=N curr=X(all same)'
        us.update(min=us["curr"], max=us["curr"], avg=us["curr"], std=0.0, median=us["curr"])
    if "avg" not in us or "count" not in us or us["count"] != int(us["count"]) or us["count"] < 1:
        raise SeEdgeError(f"benchmark_model's statistics line has no whole count >= 1 and avg (or curr): {brief(line)}")
    ms = lambda key: us[key] / 1e3 if key in us else None  # noqa: E731
    out = {"count": int(us["count"]), "min": ms("min"), "max": ms("max"), "mean": ms("avg"), "std": ms("std"),
           "p5": ms("p5"), "p50": ms("median"), "p90": None, "p95": ms("p95"), "p99": None,
           "first_ms": ms("first"), "threads": threads, "source": "benchmark_model"}
    if m := _TIMINGS.search(text):
        out["load_ms"], out["first_ms"] = _number(m[1], m[0]) / 1e3, _number(m[2], m[0]) / 1e3
    elif m := _INIT_US.search(text):
        out["load_ms"] = _number(m[1], m[0]) / 1e3
    elif m := _INIT.search(text):
        out["load_ms"] = _number(m[1], m[0])
    if m := (_PEAK.search(text) or _MEMORY_DELTA.search(text)):
        out["peak_memory_mb"] = _number(m[2], m[0])
    # printed by a binary on the device: every number the reports read checked as runner.py's stats are
    return check_latency(out, f"benchmark_model's output ({brief(line)})", optional=("p50", "p90", "p99"))


def _number(text: str, line: str) -> float:
    """A number benchmark_model printed, finite and >= 0; SeEdgeError naming the line otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SeEdgeError(f"benchmark_model printed {brief(text, 40)} where a time or count >= 0 belongs: {brief(line)}")
    return value
