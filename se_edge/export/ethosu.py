"""A .pte for a Cortex-M with an Ethos-U NPU, through ExecuTorch's Arm backend, from the run's float model.

    float.pt -> torch.export -> EthosUQuantizer (PTQ, calibrated on training images; Ethos-U is
    integer-only, and the Arm quantizer's scheme is the NPU's, not XNNPACK's) -> convert
    -> EthosUPartitioner + Vela -> model_int8_ethosu.pte, ethosu.json

ethosu.json says where the ops went: the delegate partitions (Vela-compiled command streams for the
NPU), the ops inside them, and the ops left to the Cortex-M CPU, by name. The file is an artifact of the run like
the others (run/layout.py: `ethosu_int8`, target ethos-u), in its lineage and its report.

ExecuTorch 1.5.1's Arm backend needs `tosa-tools` and `ethos-u-vela==5.1.0` (executorch[ethos-u]),
while the benchmarks use Vela 5.2.0 on .tflite files; so this runs in its own environment,
.venv-ethosu (`make ethosu-venv`: a venv that sees the main one's packages and overrides those
three). `se-edge export --target ethos-u55-128` runs `python -m se_edge.cli.ethosu_child` there.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

TARGETS = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512",
           "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024", "ethos-u85-2048")
VENV = Path(__file__).resolve().parents[2] / ".venv-ethosu"  # beside .venv; SE_EDGE_ETHOSU_VENV overrides


def available() -> str | None:
    """None where this Python can run the Arm backend, else why not."""
    try:
        import tosa_serializer  # noqa: F401
    except ImportError:
        return "ExecuTorch's Arm backend needs tosa-tools, which this environment lacks"
    from importlib.metadata import version

    if version("ethos-u-vela") != "5.1.0":
        return f"ExecuTorch 1.5.1's Arm backend needs ethos-u-vela 5.1.0, this environment has {version('ethos-u-vela')}"
    return None


def export(model, calibration, target: str, path: str | os.PathLike) -> dict:
    """Write `model` (float, eval) to `path` as a .pte for `target`, quantised by the Arm quantizer with ranges from
    `calibration` (N, C, H, W float images); returns what ethosu.json records."""
    import torch
    from executorch.backends.arm.ethosu import EthosUCompileSpec, EthosUPartitioner
    from executorch.backends.arm.quantizer import EthosUQuantizer, get_symmetric_quantization_config
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from se_edge.io import write_bytes

    start = time.perf_counter()
    x = torch.from_numpy(calibration[:1])
    spec = EthosUCompileSpec(target)
    quantizer = EthosUQuantizer(spec)
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    exported = torch.export.export(model.eval(), (x,))
    graph = exported.module(check_guards=False)  # executorch#16248
    relu6 = _relu6_as_hardtanh(graph)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calibration), 32):
            prepared(torch.from_numpy(calibration[i:i + 32]))
    quantized = convert_pt2e(prepared)
    edge = to_edge_transform_and_lower(torch.export.export(quantized, (x,)), partitioner=[EthosUPartitioner(spec)],
                                       compile_config=EdgeCompileConfig(_check_ir_validity=False))  # Vela prints here
    graph = edge.exported_program().graph_module
    inside = {name: [_op(n.target) for n in mod.original_module.graph.nodes if n.op == "call_function"]
              for name, mod in graph.named_children() if hasattr(mod, "original_module")}
    outside = [_op(n.target) for n in graph.graph.nodes if n.op == "call_function"
               and "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target)]
    program = edge.to_executorch()
    path = write_bytes(path, program.buffer)
    return {"target": target, "file": str(path), "size_bytes": path.stat().st_size,
            "calibration_images": len(calibration), "relu6_as_hardtanh": relu6, "partitions": len(inside),
            "ops_on_npu": sum(len(v) for v in inside.values()),
            "npu_ops": dict(sorted(Counter(op for ops in inside.values() for op in ops).items())),
            "ops_on_cpu": len(outside), "cpu_ops": dict(sorted(Counter(outside).items())),
            "seconds": round(time.perf_counter() - start, 1)}


def _relu6_as_hardtanh(graph) -> int:
    """Write aten.relu6 as the aten.hardtanh(x, 0, 6) it is; returns how many. The Arm quantizer annotates
    hardtanh (and fuses it into the conv before it) but has no rule for relu6, which torch.export keeps:
    it stays unmarked, to_edge decomposes it into a hardtanh anyway, and the partitioner leaves that on the
    CPU ("Node was not marked as quantized in the Arm backend"), one per hw SE gate and per ReLU6."""
    import torch

    count = 0
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target in (torch.ops.aten.relu6.default, torch.ops.aten.relu6_.default):
            node.target = torch.ops.aten.hardtanh.default
            node.args = (node.args[0], 0.0, 6.0)
            count += 1
    graph.recompile()
    return count


def _op(target) -> str:
    """aten::hardtanh, not the edge op's repr with its schema."""
    return getattr(target, "__name__", None) or str(target)


def run_in_env(run_path: str, target: str) -> tuple[dict, str]:
    """The export in .venv-ethosu (which `make ethosu-venv` makes), run as `python -m se_edge.cli.ethosu_child`;
    returns its report and its output (Vela's log, which evaluate/vela.py reads)."""
    from se_edge.errors import SeEdgeError

    venv = Path(os.environ.get("SE_EDGE_ETHOSU_VENV") or VENV)
    python = venv / "bin" / "python"
    if not python.is_file():
        raise SeEdgeError(f"--target {target} needs ExecuTorch's Arm backend with ethos-u-vela 5.1.0, kept in "
                          f"{venv}/ (this environment has Vela 5.2.0 for the benchmarks); make it with `make ethosu-venv`")
    proc = subprocess.run([str(python.absolute()), "-m", "se_edge.cli.ethosu_child", "--run", run_path, "--target",
                           target], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise SeEdgeError(f"the Arm backend failed for {target}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout
