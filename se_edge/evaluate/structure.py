"""Graph purity of exported files: what the file holds, and what the runtime that ships delegates.

TFLite: the operator list and the number of *float islands*: connected groups of QUANTIZE /
DEQUANTIZE ops or float-typed compute ops that touch int8 tensors (i.e. float work inside an int8
graph). Conversions at the graph's own input and output are excepted, and a fully float graph has
no islands by definition. Beside it, *delegation* read from LiteRT itself (`tflite_delegation`):
the XNNPACK partitions and the ops left outside them. The two differ: a graph with no float island
still ran 28 int8 ops on LiteRT's slow builtin kernels (RELU_0_TO_1, int8 HARD_SWISH), cut into 29
partitions, six times slower than its fp32 twin.

ExecuTorch: the number of delegate calls (partitions) per backend, and the kernel calls left
outside any delegate (non-delegated ops), from the program's execution plan.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from se_edge.errors import SeEdgeError, one_line

_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


def _read(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SeEdgeError(f"cannot read {path}: {e.strerror or e}") from None


def tflite_graph(path: str | os.PathLike) -> dict:
    """`{"float_islands", "float_ops", "ops": {OP: count}}` for the main subgraph of a .tflite file, and
    its delegation in LiteRT (`tflite_delegation`)."""
    from ai_edge_litert import schema_py_generated as schema

    buf = _read(path)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise SeEdgeError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
    model = schema.Model.GetRootAs(buf, 0)
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    float_types = {schema.TensorType.FLOAT32, schema.TensorType.FLOAT16, schema.TensorType.FLOAT64}
    quant_types = {schema.TensorType.INT8, schema.TensorType.UINT8, schema.TensorType.INT16}
    sg = model.Subgraphs(0)
    graph_inputs = set(sg.InputsAsNumpy().tolist())
    graph_outputs = set(sg.OutputsAsNumpy().tolist())

    def is_constant(t: int) -> bool:
        b = sg.Tensors(t).Buffer()
        if b <= 0 or b >= model.BuffersLength():
            return False
        buffer = model.Buffers(b)
        return buffer.DataLength() > 0 or buffer.Offset() > 0

    ops, float_ops = Counter(), []
    input_dequantized: set[int] = set()  # float tensors that are a graph input dequantized
    activations = []  # per op: (inputs, outputs) that are not constants
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name == "CUSTOM" and code.CustomCode():
            name = f"CUSTOM:{code.CustomCode().decode()}"
        ops[name] += 1
        ins = [t for t in op.InputsAsNumpy().tolist() if t >= 0 and not is_constant(t)]
        outs = [t for t in op.OutputsAsNumpy().tolist() if t >= 0]
        activations.append((ins, outs))
        # The conversions at the file's ends: float or uint8 input to int8 (a uint8 input as DEQUANTIZE ->
        # QUANTIZE, app_io.py), int8 output to float.
        boundary = ((name == "QUANTIZE" and set(ins) <= graph_inputs | input_dequantized)
                    or (name == "DEQUANTIZE" and (set(ins) <= graph_inputs or set(outs) <= graph_outputs)))
        if name == "DEQUANTIZE" and ins and set(ins) <= graph_inputs:
            input_dequantized |= set(outs)
        touches_float = any(sg.Tensors(t).Type() in float_types for t in ins + outs)
        if not boundary and (name in _CONVERSIONS or touches_float):
            float_ops.append(i)

    # Union float ops that share a tensor; keep the groups that border int8 tensors.
    parent = {i: i for i in float_ops}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_tensor: dict[int, list[int]] = {}
    for i in float_ops:
        for t in activations[i][0] + activations[i][1]:
            by_tensor.setdefault(t, []).append(i)
    for members in by_tensor.values():
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    islands = {find(i) for i in float_ops
               if any(sg.Tensors(t).Type() in quant_types for t in activations[i][0] + activations[i][1])}
    return {"float_islands": len(islands), "float_ops": len(float_ops), "ops": dict(sorted(ops.items())),
            **tflite_delegation(path)}


def tflite_delegation(path: str | os.PathLike) -> dict:
    """`{"partitions", "delegates", "non_delegated_ops", "non_delegated": {OP: n}}` as LiteRT runs `path`.

    The interpreter (1 thread, default delegates: XNNPACK) lists the file's ops and then one
    `DELEGATE` node per partition. An op runs outside when none of its outputs is a partition's
    output while one feeds a partition, the graph's output, or another op that runs outside (the
    ops inside a partition only feed each other or the partition's output).
    """
    from ai_edge_litert.interpreter import Interpreter

    from se_edge.quiet import captured_output

    try:
        with captured_output():
            interpreter = Interpreter(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise SeEdgeError(f"LiteRT cannot load {path}: {one_line(e)}") from None
    ops = interpreter._get_ops_details()
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    originals = [o for o in ops if o["op_name"] != "DELEGATE"]
    delegate_out = {int(t) for d in delegates for t in d["outputs"]}
    consumers = {int(t) for d in delegates for t in d["inputs"]} | {d["index"] for d in interpreter.get_output_details()}
    outside: dict[int, str] = {}  # op index -> op name
    changed = True
    while changed:  # walk back from the partitions and the graph output
        changed = False
        for op in originals:
            outs = {int(t) for t in op["outputs"]}
            if op["index"] in outside or outs & delegate_out or not outs & consumers:
                continue
            outside[op["index"]] = op["op_name"]
            consumers |= {int(t) for t in op["inputs"]}
            changed = True
    return {"partitions": len(delegates), "delegates": {"XNNPACK": len(delegates)} if delegates else {},
            "non_delegated_ops": len(outside), "non_delegated": dict(sorted(Counter(outside.values()).items()))}


def pte_graph(path: str | os.PathLike) -> dict:
    """`{"partitions", "delegates": {backend: n}, "non_delegated_ops", "non_delegated": {op: n}}`."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    buf = _read(path)
    if len(buf) < 8 or buf[4:6] != b"ET":
        raise SeEdgeError(f"{path} is not an ExecuTorch program (no ET identifier)")
    try:
        pte = deserialize_pte_binary(buf)
    except Exception as e:  # the deserialiser raises many types on corrupt input
        raise SeEdgeError(f"{path} is a corrupt ExecuTorch program: {one_line(e)}") from None
    program = getattr(pte, "program", pte)
    plan = program.execution_plan[0]
    delegates, kernels = Counter(), Counter()
    for chain in plan.chains:
        for instruction in chain.instructions:
            args = instruction.instr_args
            kind = type(args).__name__
            if kind == "DelegateCall":
                delegates[plan.delegates[args.delegate_index].id] += 1
            elif kind == "KernelCall":
                kernels[plan.operators[args.op_index].name] += 1
    return {
        "partitions": sum(delegates.values()),
        "delegates": dict(delegates),
        "non_delegated_ops": sum(kernels.values()),
        "non_delegated": dict(sorted(kernels.items())),
    }


def graph_summary(path: str | os.PathLike) -> dict:
    suffix = Path(path).suffix
    if suffix == ".tflite":
        return tflite_graph(path)
    if suffix == ".pte":
        return pte_graph(path)
    raise SeEdgeError(f"no graph analysis for {path}; valid: .tflite, .pte")


def artifact_structure(run, name: str) -> dict:
    """graph_summary of artifact `name` of `run`, checked against the lineage first. For a file compiled for an
    accelerator (target other than "cpu"), whose delegate blobs are opaque here, the ops its export placed inside
    the NPU partitions are added from the run's record (`ops_on_npu`, `npu_ops`) beside the CPU ops read from the
    file itself."""
    from se_edge.run import ARTIFACTS

    graph = graph_summary(run.require(name))
    target = ARTIFACTS[name].target
    if target != "cpu":
        made = run.record.ethosu  # what export/ethosu.py recorded (the only accelerator target)
        graph = {**graph, "target": made.target if made else target, "ops_on_npu": made.ops_on_npu if made else None,
                 "npu_ops": (made.npu_ops if made else None) or {}}
    return graph
