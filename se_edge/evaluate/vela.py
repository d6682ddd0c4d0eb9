"""What an integer-only NPU makes of an int8 `.tflite`: Arm's Ethos-U compiler, Vela.

`vela_report(path)` compiles the file with `ethos-u-vela` (pip) and reads back the operators
placed on the NPU and those left to the CPU, the estimated inference time and cycles, and (with
per-operator performance) the cycles of each operator, so the cost of the SE blocks can be
attributed: squeeze (MEAN), excitation (its convs), gate and the broadcast MUL that scales the map.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from se_edge.errors import SeEdgeError

DEFAULT_ACCELERATOR = "ethos-u55-128"
SE_MARKER = "SqueezeExcite"  # module path fragment that litert-torch keeps in operator names


def vela_executable() -> str | None:
    beside = Path(sys.executable).with_name("vela")
    return str(beside) if beside.is_file() else shutil.which("vela")


def vela_report(path: str | os.PathLike, accelerator: str = DEFAULT_ACCELERATOR, per_operator: bool = True,
                timeout: float = 600) -> dict:
    """`{"npu_ops", "cpu_ops", "cpu_op_list", "inference_time_ms", "cycles_total", "accelerator",
    "se_cycles": {...}, "op_cycles": {...}}` for an int8 .tflite."""
    exe = vela_executable()
    if exe is None:
        raise SeEdgeError("Arm's Vela compiler is not installed; pip install ethos-u-vela (in the dev/bench extras)")
    path = Path(path)
    if not path.is_file():
        raise SeEdgeError(f"model not found: {path}")
    with tempfile.TemporaryDirectory(prefix="vela-") as out:
        cmd = [exe, "--accelerator-config", accelerator, "--output-dir", out, "--show-cpu-operations"]
        if per_operator:
            cmd.append("--verbose-performance")
        try:
            proc = subprocess.run(cmd + [str(path)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SeEdgeError(f"vela timed out after {timeout:.0f} s on {path}") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SeEdgeError(f"vela failed on {path}: {tail[0]}")
        summary = next(Path(out).glob("*_summary_*.csv"), None)
        if summary is None:
            raise SeEdgeError(f"vela wrote no summary for {path}")
        with open(summary, newline="") as f:
            row = next(csv.DictReader(f))
    return {"accelerator": accelerator, **parse_vela_output(proc.stdout),
            "inference_time_ms": float(row["inference_time"]) * 1e3, "cycles_total": float(row["cycles_total"])}


_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+)")
_CPU_OP = re.compile(r"^\s+CPU: (\S+) = (.*)$")


_SUMMARY = ("cycles", "MACs", "SRAM used", "Flash used", "Inferences per second")


def parse_vela_output(text: str) -> dict:
    """Operator counts, the CPU operator list, per-operator cycles, and the summary lines worth keeping (cycles,
    MACs, memory) from Vela's stdout: the one reader of Vela's output, for the .tflite benchmarks and for the
    Ethos-U .pte (where ExecuTorch's Arm backend runs Vela and its log is the export's)."""
    counts, cpu_ops = {"CPU": 0, "NPU": 0}, []
    op_cycles, se_cycles = defaultdict(float), defaultdict(float)
    header = None
    for line in text.splitlines():
        if m := _COUNT.match(line):
            counts[m[1]] = int(m[2])
        elif m := _CPU_OP.match(line):
            cpu_ops.append(m[1])
        elif line.startswith("Original Operator"):
            header = line
        elif header and line.strip() and not line.startswith("-"):
            fields = line.split()
            if len(fields) < 8 or fields[2] not in ("NPU", "CPU"):
                header = None if not line.startswith(" ") and fields[2:3] not in (["NPU"], ["CPU"]) else header
                continue
            original, cycles, name = fields[0], float(fields[5]), " ".join(fields[15:])
            op_cycles[original] += cycles
            if SE_MARKER in name:
                se_cycles[original] += cycles
    summary = [" ".join(line.split()) for line in text.splitlines() if any(k in line for k in _SUMMARY)][:60]
    return {"npu_ops": counts["NPU"], "cpu_ops": counts["CPU"], "cpu_op_list": cpu_ops,
            "op_cycles": dict(sorted(op_cycles.items())), "se_cycles": dict(sorted(se_cycles.items())),
            "summary": summary}
