"""`se-edge bench --forms`: which way of writing hard-sigmoid and hard-swish every backend takes.

Each candidate is built into the same small network (conv -> activation -> SE -> conv -> head, 32 px,
3 channels so litert-torch's NCHW handling shows), exported to fp32 and int8 `.tflite` and `.pte`,
and read back as the runtimes load them: XNNPACK partitions and ops outside in ai-edge-litert and
ExecuTorch, TFLite float islands and TRANSPOSEs, and operators Vela leaves to the Ethos-U's CPU.
Beside it, the largest difference from the PyTorch function (F.hardsigmoid / F.hardswish) in float.
The first group varies the SE gate (ReLU network), the second the activation (with the `hw` gate).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from se_edge.blocks.gates import constant
from se_edge.report.table import markdown_table


@dataclass(frozen=True)
class Form:
    name: str
    formula: str
    fn: Callable  # (z, consts) -> gate, z already folded; or (x, consts) -> activation
    shift: float = 0.0  # folded into fc2's bias (gates only), as gates._FOLDS
    scale: float = 1.0
    stock_quantizer: bool = False  # quantised by the XNNPACK quantizer alone (no se_edge rewrite)


GATE_FORMS = (
    Form("F.hardsigmoid (stock quantizer)", "F.hardsigmoid(z)", lambda z, c: F.hardsigmoid(z), stock_quantizer=True),
    Form("F.hardsigmoid (se_edge quantizer)", "written out as relu6(z + 3) * (1/6)", lambda z, c: F.hardsigmoid(z)),
    Form("relu6 / 6", "F.relu6(z + 3) / 6", lambda z, c: F.relu6(z + 3) / 6),
    Form("relu6 * scalar, +3 folded", "F.relu6(z') * (1/6)", lambda z, c: F.relu6(z) * (1 / 6), shift=3.0),
    Form("relu6 * 4-D constant, +3 folded (hw)", "F.relu6(z') * c, c = 1/6 of shape (1,1,1,1)",
         lambda z, c: F.relu6(z) * c["sixth"], shift=3.0),
    Form("hardtanh, +3 and /6 folded (hw_clamp)", "F.hardtanh(z'', 0, 1)", lambda z, c: F.hardtanh(z, 0.0, 1.0),
         shift=3.0, scale=1 / 6),
    Form("minimum(relu), +3 and /6 folded", "torch.minimum(F.relu(z''), 1)",
         lambda z, c: torch.minimum(F.relu(z), c["one"]), shift=3.0, scale=1 / 6),
)
ACTIVATION_FORMS = (
    Form("nn.Hardswish (stock quantizer)", "F.hardswish(x)", lambda x, c: F.hardswish(x), stock_quantizer=True),
    Form("nn.Hardswish (se_edge quantizer)", "written out as x * (relu6(x + 3) * c)", lambda x, c: F.hardswish(x)),
    Form("x * relu6(x + 3) / 6", "x * F.relu6(x + 3) / 6", lambda x, c: x * F.relu6(x + 3) / 6),
    Form("scalar constants", "x * (F.relu6(x + 3) * (1/6))", lambda x, c: x * (F.relu6(x + 3) * (1 / 6))),
    Form("4-D constants (blocks.HardSwish)", "x * (F.relu6(x + c3) * c6), c of shape (1,1,1,1)",
         lambda x, c: x * (F.relu6(x + c["three"]) * c["sixth"])),
)


class _Net(nn.Module):
    def __init__(self, act: Form | None, gate: Form | None):
        super().__init__()
        self.act_form, self.gate_form = act, gate
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc1, self.fc2 = nn.Conv2d(16, 8, 1), nn.Conv2d(8, 16, 1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Linear(16, 10)
        for name, value in (("three", 3.0), ("sixth", 1 / 6), ("one", 1.0)):
            self.register_buffer(name, constant(value), persistent=False)

    def consts(self) -> dict:
        return {"three": self.three, "sixth": self.sixth, "one": self.one}

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = self.act_form.fn(x, self.consts()) if self.act_form else F.relu(x)
        z = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        x = x * (self.gate_form.fn(z, self.consts()) if self.gate_form else F.hardsigmoid(z))
        return self.head(self.conv2(x).mean((2, 3), keepdim=True).flatten(1))


def _build(act: Form | None, gate: Form | None) -> tuple[nn.Module, nn.Module]:
    """The candidate network and its reference (F.hardsigmoid gate, F.hardswish or ReLU), same weights."""
    torch.manual_seed(0)
    reference = _Net(Form("", "", lambda x, c: F.hardswish(x)) if act else None, None).eval()
    with torch.no_grad():  # gate inputs across hard-sigmoid's linear and saturated ranges
        reference.fc2.bias.copy_(torch.linspace(-5, 5, 16))
    candidate = _Net(act, gate).eval()
    candidate.load_state_dict(reference.state_dict())
    if gate is not None:
        with torch.no_grad():
            candidate.fc2.weight.mul_(gate.scale)
            candidate.fc2.bias.add_(gate.shift).mul_(gate.scale)
    return candidate, reference


def measure_form(act: Form | None, gate: Form | None, out_dir: Path, stem: str, npu: bool = True) -> dict:
    from se_edge.evaluate.structure import graph_summary
    from se_edge.evaluate.vela import vela_executable, vela_report
    from se_edge.export.int8 import int8_exports

    model, reference = _build(act, gate)
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        float_diff = float((model(x) - reference(x)).abs().max())
    form = act or gate
    paths = int8_exports(model, (1, 3, 32, 32), out_dir, stem, fp32=True,  # both files hold the candidate as it is
                         delegable_activations=not form.stock_quantizer, hard_swish="written")
    graphs = {key: graph_summary(path) for key, path in paths.items()}
    row = {"name": form.name, "formula": form.formula, "max_abs_diff_float": float_diff, "graphs": graphs,
           "transposes_int8": graphs["tflite"]["ops"].get("TRANSPOSE", 0)}
    if npu and vela_executable():
        v = vela_report(paths["tflite"], per_operator=False)
        row["npu"] = {"npu_ops": v["npu_ops"], "cpu_ops": v["cpu_ops"], "cpu_op_list": v.get("cpu_op_list", [])}
    return row


TARGET_MODEL, TARGET_SIZE = "se_mobilenetv3_small", 224
HARD_SWISH_FORMS = {"written": "x * (relu6(x + 3) * c), se_edge's quantizer", "native": "nn.Hardswish as the stock "
                    "XNNPACK quantizer leaves it (one HARD_SWISH op; XNNPACK: DQ -> fp32 hard-swish -> Q)"}


def measure_targets(out_dir: Path, warmup: int = 10, runs: int = 50, progress: bool = True) -> dict:
    """Each hard-swish form in a whole network (TARGET_MODEL at TARGET_SIZE px, int8, 1 thread) on every target:
    LiteRT and ExecuTorch p50 (all four files interleaved in one process) beside their delegation, Vela's estimate
    beside the operators it leaves to the CPU; per target the form that is fastest among those with the fewest ops
    outside, beside the form se_edge's exports give it (export/int8.py FORMS)."""
    from se_edge.evaluate.latency import measure_latency
    from se_edge.evaluate.structure import graph_summary
    from se_edge.evaluate.vela import vela_executable, vela_report
    from se_edge.export.int8 import FORMS, int8_exports
    from se_edge.models import create_model
    from se_edge.quiet import captured_output
    from se_edge.runner import open_model

    shape = (1, 3, TARGET_SIZE, TARGET_SIZE)
    files = {}
    for form in HARD_SWISH_FORMS:
        torch.manual_seed(0)
        net = create_model(TARGET_MODEL, num_classes=1000, in_chans=3, stem="imagenet")
        files[form] = int8_exports(net, shape, out_dir, f"target_{form}", delegable_activations=form == "written",
                                   hard_swish=form)  # not each target's export form: the form measured
    with captured_output():
        opened = {f"{form}/{key}": open_model(str(path), 1) for form, paths in files.items() for key, path in paths.items()}
    x1 = torch.randn(shape, generator=torch.Generator().manual_seed(0)).numpy()
    latency = measure_latency(opened, x1, warmup, runs, 1, progress)
    del opened
    targets: dict[str, dict] = {"litert": {}, "executorch": {}}
    for form, paths in files.items():
        for target, key in (("litert", "tflite"), ("executorch", "pte")):
            g = graph_summary(paths[key])
            targets[target][form] = {"ms": latency[f"{form}/{key}"]["p50"], "outside": g["non_delegated_ops"],
                                     "delegation": g}
        if vela_executable():
            v = vela_report(paths["tflite"], per_operator=False)
            targets.setdefault("ethos-u", {})[form] = {"ms": v["inference_time_ms"], "outside": v["cpu_ops"],
                                                       "npu_ops": v["npu_ops"]}
    for target, forms in targets.items():
        fewest = min(f["outside"] for f in forms.values())
        forms_ok = {name: f for name, f in forms.items() if f["outside"] == fewest}
        targets[target] = {"forms": forms, "fastest": min(forms_ok, key=lambda n: forms_ok[n]["ms"]),
                           "exported": FORMS[target]}
    return {"model": TARGET_MODEL, "size": TARGET_SIZE, "runs": runs, "targets": targets}


def compare_forms(out_dir: str | os.PathLike = "runs/bench-forms", progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    from se_edge.io import write_json, write_text

    start = time.perf_counter()
    out_dir = Path(out_dir)
    jobs = [("gate", None, g) for g in GATE_FORMS] + [("activation", a, GATE_FORMS[4]) for a in ACTIVATION_FORMS]
    result = {"gates": [], "activations": []}
    for i, (group, act, gate) in enumerate(tqdm(jobs, desc="forms", unit="form", disable=not progress)):
        result[f"{group}s"].append(measure_form(act, gate, out_dir / "files", f"{group}{i}"))
    result["targets"] = measure_targets(out_dir / "files", progress=progress)
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_json(out_dir / "forms.json", result)
    write_text(out_dir / "forms.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    from se_edge.benchmarks.zoo import delegation_cell

    columns = ["float max diff", "LiteRT fp32", "LiteRT int8", "int8 float islands / TRANSPOSEs", ".pte fp32",
               ".pte int8", "Ethos-U55 CPU ops"]
    lines = ["Each cell: XNNPACK partitions / ops outside (by op), as ai-edge-litert and ExecuTorch load the file. "
             "Float max diff: against F.hardsigmoid / F.hardswish on the same weights.", ""]
    for group, title in (("gates", "SE gate (z: fc2's output)"), ("activations", "hard-swish (with the hw gate)")):
        rows = []
        for r in result[group]:
            g, npu = r["graphs"], r.get("npu", {})
            cpu = npu.get("cpu_ops", "—")
            if npu.get("cpu_op_list"):
                cpu = f"{cpu} ({', '.join(sorted(set(npu['cpu_op_list'])))})"
            rows.append([f"{r['name']}: `{r['formula']}`", f"{r['max_abs_diff_float']:.1e}",
                         delegation_cell(g["tflite_fp32"]), delegation_cell(g["tflite"]),
                         f"{g['tflite']['float_islands']} / {r['transposes_int8']}", delegation_cell(g["pte_fp32"]),
                         delegation_cell(g["pte"]), cpu])
        lines += [markdown_table([title, *columns], rows, align="lrllrllr"), ""]
    if result.get("targets"):
        lines += target_lines(result["targets"])
    return "\n".join(lines)


TARGET_NAMES = {"litert": "LiteRT (XNNPACK)", "executorch": "ExecuTorch (XNNPACK)", "ethos-u": "Ethos-U55 (Vela)"}


def target_lines(t: dict) -> list[str]:
    """The per-target table: each hard-swish form's time beside its delegation, the measured choice, the exported."""
    rows = []
    for target, entry in t["targets"].items():
        cells = []
        for form in HARD_SWISH_FORMS:
            f = entry["forms"][form]
            outside = (delegation_text(f["delegation"]) if "delegation" in f
                       else f"{f['npu_ops']} NPU / {f['outside']} CPU ops")
            cells.append(f"{f['ms']:.3f} ms, {outside}")
        rows.append([TARGET_NAMES.get(target, target), *cells, entry["fastest"],
                     entry["exported"] + ("" if entry["exported"] == entry["fastest"] else " (**not the fastest**)")])
    return ["", f"**Hard-swish per target**: {t['model']} at {t['size']} px, int8, 1 thread; CPU: p50 of {t['runs']} "
            "runs, all four files interleaved in one process; Ethos-U: Vela's estimate. Written: "
            f"{HARD_SWISH_FORMS['written']}; native: {HARD_SWISH_FORMS['native']}. Fastest: among the forms with the "
            "fewest ops outside the delegate (or on the NPU's CPU).", "",
            markdown_table(["target", "written out", "native", "fastest", "se_edge exports"], rows, align="lllll"), ""]


def delegation_text(graph: dict) -> str:
    from se_edge.benchmarks.zoo import delegation_cell

    return f"{delegation_cell(graph)} partitions / outside"
