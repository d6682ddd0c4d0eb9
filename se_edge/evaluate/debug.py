"""Where int8 parts from float: per-layer SQNR along the depth, for the int8 reference and both runtimes.

A *point* is one activation quantisation of the int8 reference graph (a `quantize_per_tensor` node):
the output of a layer as int8 carries it. Each point is named by the model's module that computes it
(`stages.0.2.fc1`, with the op: conv2d, relu, mean, mul, ...), and its value is taken from

    float           the prepared PT2E graph with every fake-quant off (the float model's arithmetic),
                    at the input of the point's observer;
    reference_int8  the int8 reference (the converted graph in the delegates' integer arithmetic,
                    quantize/integer.py), the quantize node's int8 output, dequantized;
    tflite_int8     the .tflite run by LiteRT's XNNPACK delegate, one partition per op, with every tensor
                    kept (`experimental_preserve_all_tensors`): the int8 tensor with the point's scale,
                    zero point and shape (NHWC), dequantized;
    executorch_int8 the int8 reference lowered with one XNNPACK call per op, run by the ExecuTorch
                    runtime with ETDump (capture_executorch).

SQNR (dB) = 10 log10(|float|^2 / |x - float|^2) for the reference, and against the reference for the
file. Rounding error accumulates with depth, so the layer to blame is the one whose SQNR *drops* most
from the point before it: the table ranks by that drop, worst first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from se_edge.quantize.mixed import module_of

ACTIVATIONS = {"aten.relu.default", "aten.relu_.default", "aten.relu6.default", "aten.hardtanh.default",
               "aten.hardswish.default", "aten.hardsigmoid.default", "aten.clamp.default"}


@dataclass
class Point:
    index: int  # graph order
    layer: str  # the module that computes it (a conv's name for conv + relu)
    op: str  # the op whose output is quantised
    scale: float
    zero_point: int
    shape: tuple
    quantize_node: str
    observer: str | None = None
    inputs: list = field(default_factory=list)  # indices of the points whose int8 values this one is computed from
    values: dict = field(default_factory=dict)  # source -> float32 array (N, ...)


def sqnr(reference: np.ndarray, x: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio of `x` against `reference`, in dB (inf when they are equal)."""
    noise = float(np.sum((x.astype(np.float64) - reference) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / noise)


def _op_name(node) -> str:
    """aten.conv2d.default -> conv2d."""
    parts = str(node.target).split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _producer(node):
    """The layer behind an activation: conv2d -> relu is named by the conv."""
    source = node
    while str(getattr(source, "target", "")) in ACTIVATIONS and source.args and hasattr(source.args[0], "meta"):
        if str(getattr(source.args[0], "target", "")) in ACTIVATIONS or "dequantize" in str(source.args[0].target):
            break
        source = source.args[0]
    return source


def reference_points(reference) -> list[Point]:
    """Every activation quantisation of the converted int8 reference, in graph order."""
    points = []
    for node in reference.points():
        src = node.args[0]
        if not hasattr(src, "meta"):
            continue
        if src.op == "placeholder":
            layer, op = "input", "input"
        else:
            producer = _producer(src)  # conv2d -> relu: the conv names the layer, "conv2d+relu" the op
            layer = module_of(producer) or module_of(src) or src.name
            op = "+".join(_op_name(n) for n in dict.fromkeys((producer, src)))
        val = src.meta.get("val")
        shape = tuple(val.shape) if val is not None else ()
        points.append(Point(len(points), layer, op, float(node.args[1]), int(node.args[2]), shape[1:], node.name))
    index = {p.quantize_node: p.index for p in points}
    by_name = {n.name: n for n in reference.graph.nodes}
    for p in points:
        p.inputs = sorted(_upstream(by_name[p.quantize_node].args[0], index))
    return points


def _upstream(node, index: dict[str, int]) -> set[int]:
    """The points (quantize nodes) whose values reach `node` through float ops only."""
    found, stack, seen = set(), [node], set()
    while stack:
        n = stack.pop()
        if not hasattr(n, "op") or n.name in seen:
            continue
        seen.add(n.name)
        if n.name in index:
            found.add(index[n.name])
            continue
        stack.extend(a for a in n.all_input_nodes)
    return found


def _observed(prepared) -> list[tuple[str, str, str]]:
    """(observer node, observed op, module) for each activation observer call of the prepared graph, in order.
    One observer module can be called at several nodes (shared ranges: a mean shares its input's)."""
    out = []
    for node in prepared.graph.nodes:
        if node.op == "call_module" and "activation_post_process" in str(node.target):
            src = node.args[0]
            if getattr(src, "op", None) == "get_attr":
                continue  # a weight's observer
            out.append((node.name, "placeholder" if src.op == "placeholder" else str(src.target), module_of(src)))
    return out


def match_observers(points: list[Point], reference, prepared) -> None:
    """Give each point the prepared graph's observer call on the same op in the same module (in graph order)."""
    by_name = {n.name: n for n in reference.graph.nodes}
    observed = _observed(prepared)
    start = 0
    for p in points:
        src = by_name[p.quantize_node].args[0]
        key = ("placeholder" if src.op == "placeholder" else str(src.target), module_of(src))
        folded = key[0] in ("aten.conv2d.default", "aten.linear.default")  # QAT observes its batch norm's output
        for i in range(start, len(observed)):
            if observed[i][1:] == key or (folded and observed[i][1] == "aten.batch_norm.default"):
                p.observer, start = observed[i][0], i + 1
                break


def capture_float(prepared, points: list[Point], x) -> None:
    """Each point's float value: what its observer call receives with every fake-quant off."""
    import torch
    from torchao.quantization.pt2e.fake_quantize import disable_fake_quant, enable_fake_quant

    wanted = {p.observer: p for p in points if p.observer}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            if n.name in wanted:
                value = self.env[n.args[0]]
                wanted[n.name].values["float"] = value.detach().to(torch.float32).numpy().copy()
            return super().run_node(n)

    prepared.apply(disable_fake_quant)
    try:
        with torch.no_grad():
            Recorder(prepared).run(x)
    finally:
        prepared.apply(enable_fake_quant)


def capture_reference(reference, points: list[Point], x) -> None:
    """Each point's int8 reference value: its quantize node's output, dequantized."""
    import torch

    wanted = {p.quantize_node: p for p in points}

    def record(n, out):
        if n.name in wanted:
            p = wanted[n.name]
            p.values["reference_int8"] = ((out.to(torch.float32) - p.zero_point) * p.scale).numpy().copy()
        return out

    reference.run(x, record)


def capture_tflite(path: str, points: list[Point], x: np.ndarray) -> dict[int, int]:
    """Each point's value in the .tflite file, run by LiteRT's XNNPACK delegate with one partition per op and every
    tensor kept (the builtin kernels where the interpreter cannot split the delegate so); returns
    {point index: tensor index} for the points matched by scale, zero point and shape."""
    from se_edge.runner import TFLiteModel

    model = TFLiteModel(path, keep_all_tensors=True)
    interp = model.interpreter
    ops = interp._get_ops_details()
    order = [t for op in ops for t in op["outputs"]]
    producer = {t: op["op_name"] for op in ops for t in op["outputs"]}
    details = {d["index"]: d for d in interp.get_tensor_details()}
    matched: dict[int, int] = {}
    nchw: set[int] = set()  # matched tensors in PyTorch's layout (a TRANSPOSE's output, say), not TFLite's NHWC
    # Later points first: a fused activation (ADD+RELU6, CONV_2D+RELU) leaves one tensor for two points of the
    # same scale and shape, and it holds the later one's value.
    for p in reversed(points):
        nhwc = (p.shape[1], p.shape[2], p.shape[0]) if len(p.shape) == 3 else p.shape
        for t in reversed(order):
            d = details.get(t)
            if d is None or d["dtype"] != np.int8 or t in matched.values():
                continue
            scale, zp = d["quantization"]
            if zp == p.zero_point and scale > 0 and abs(scale - p.scale) <= 1e-6 * p.scale + 1e-12 and \
                    tuple(d["shape"][1:]) in (tuple(nhwc), tuple(p.shape)):
                matched[p.index] = t
                if len(p.shape) == 3 and tuple(d["shape"][1:]) == tuple(p.shape) and (
                        tuple(nhwc) != tuple(p.shape) or producer.get(t) == "TRANSPOSE"):
                    nchw.add(t)
                break
    values: dict[int, list] = {i: [] for i in matched}
    for i in range(len(x)):
        model.set_input(x[i:i + 1])
        model.invoke()
        for pi, t in matched.items():
            values[pi].append(interp.get_tensor(t).copy())
    for p in points:
        if p.index in matched:
            scale, zp = details[matched[p.index]]["quantization"]
            v = (np.concatenate(values[p.index]).astype(np.float32) - zp) * scale
            nhwc_layout = v.ndim == 4 and matched[p.index] not in nchw
            p.values["tflite_int8"] = v.transpose(0, 3, 1, 2) if nhwc_layout else v
    return matched


MATCH_MEAN_LSB = 2.0  # a delegate output is a point's only if it is this close to it on average (first image)


def _mean_lsb(q: np.ndarray, p: Point) -> float:
    """Mean distance, in `p`'s LSB, of int8 values `q` (read with p's scale and zero point) from p's reference."""
    value = (q.astype(np.float32) - p.zero_point) * p.scale
    return float(np.abs(value - p.values["reference_int8"][:1]).mean() / p.scale)


def capture_executorch(reference, points: list[Point], x: np.ndarray, workdir, progress: bool = False) -> dict[int, int]:
    """Each point's value in ExecuTorch: the int8 reference lowered to XNNPACK with one delegate call per op
    (`XnnpackPartitioner(per_op_mode=True)`, the same kernels the shipped .pte fuses into one call), run by
    the ExecuTorch runtime with ETDump and a debug buffer, one fresh run per image; the Inspector gives
    each delegate call's input and output. An int8 output is matched to the next point of its shape in
    graph order (of the next three such, the one nearest the reference), and only where it is within
    MATCH_MEAN_LSB of it on average: shapes repeat (an SE block's 1x1 outputs), and a wrong pairing would
    report a runtime fault that is not there. Returns {point index: call index}."""
    import os

    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools import Inspector
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib

    from se_edge.quiet import captured_output

    etrecord, etdump, buffer = (os.path.join(str(workdir), n) for n in ("etrecord.bin", "etdump.etdp", "debug.bin"))
    with captured_output():
        sample = torch.from_numpy(x[:1])
        from se_edge.quantize.integer import without_absorbed

        edge = to_edge_transform_and_lower(torch.export.export(without_absorbed(reference.converted), (sample,)),
                                           partitioner=[XnnpackPartitioner(per_op_mode=True)], generate_etrecord=True)
        program = edge.to_executorch()
        program.get_etrecord().save(etrecord)

    def calls(image: np.ndarray) -> list:
        with captured_output():
            module = portable_lib._load_for_executorch_from_buffer(program.buffer, enable_etdump=True,
                                                                   debug_buffer_size=256 << 20)
            module.forward([torch.from_numpy(image)])
            module.write_etdump_result_to_file(etdump, buffer)
            inspector = Inspector(etdump_path=etdump, etrecord=etrecord, debug_buffer_path=buffer)
        return [e.debug_data[-1].detach().clone() for b in inspector.event_blocks for e in b.events
                if e.name == "DELEGATE_CALL" and e.debug_data]

    first = calls(x[:1])
    matched: dict[int, int] = {}
    pos = 0
    for c, out in enumerate(first):
        if out.dtype != torch.int8:
            continue
        shape = tuple(out.shape[1:])
        candidates = [p for p in points[pos:] if tuple(p.shape) == shape and p.index not in matched
                      and "reference_int8" in p.values][:3]
        if not candidates:
            continue
        distance, best = min((_mean_lsb(out.numpy(), p), p.index) for p in candidates)
        if distance > MATCH_MEAN_LSB:
            continue  # no point of this shape nearby holds this output: left unmatched, never compared wrongly
        best = points[best]
        matched[best.index] = c
        pos = best.index + 1
    from tqdm.auto import tqdm

    values: dict[int, list] = {i: [] for i in matched}
    for i in tqdm(range(len(x)), desc="executorch per layer", unit="image", disable=not progress):
        outs = first if i == 0 else calls(x[i:i + 1])
        for pi, c in matched.items():
            values[pi].append(outs[c].numpy().astype(np.float32))
    for p in points:
        if p.index in matched:
            p.values["executorch_int8"] = (np.concatenate(values[p.index]) - p.zero_point) * p.scale
    return matched


RUNTIMES = ("tflite_int8", "executorch_int8")


def capture_own(reference, points: list[Point], x, source: str) -> int:
    """Each point's int8 reference value computed from `source`'s own values at the points before it, kept as
    values[own(source)]: the reference graph run with every point `source` has replaced by its value there
    (teacher forcing). A runtime's difference from that is its own arithmetic in the layer, given the same
    int8 inputs, not what the layers before handed it. `x`: the images `source`'s values come from. Returns
    how many points were replaced."""
    import torch

    points_by_node = {p.quantize_node: p for p in points}
    forced = {name for name, p in points_by_node.items() if source in p.values}

    def force(n, out):
        p = points_by_node.get(n.name)
        if p is None:
            return out
        p.values[own(source)] = ((out.to(torch.float32) - p.zero_point) * p.scale).numpy().copy()
        if n.name in forced:
            q = np.round(p.values[source] / p.scale + p.zero_point).reshape(tuple(out.shape))
            out = torch.from_numpy(q).to(out.dtype)
        return out

    reference.run(x, force)
    return len(forced)


def own(source: str) -> str:
    """The values key of the reference computed on `source`'s inputs (capture_own)."""
    return f"reference_int8_on_{source}"


COMPARISONS = (("reference_int8", "float"), ("tflite_int8", "reference_int8"), ("tflite_int8", "float"),
               ("executorch_int8", "reference_int8"), ("executorch_int8", "float"))
_CAP_DB = 120.0  # identical tensors: reported as this many dB, so the numbers stay JSON


def key(source: str, against: str) -> str:
    return f"{source}_vs_{against}"


def summarise(points: list[Point]) -> list[dict]:
    """Per point and comparison (`reference_int8_vs_float`, `tflite_int8_vs_reference_int8`,
    `tflite_int8_vs_float`): SQNR in dB; the *drop*, how much lower it is than at the layer's own inputs (the
    worst of them), i.e. what this layer's rounding lost; and the largest difference in LSB of its scale."""
    rows = []
    for p in points:
        row = {"index": p.index, "layer": p.layer, "op": p.op, "scale": p.scale, "zero_point": p.zero_point,
               "inputs": p.inputs, "sqnr_db": {}, "drop_db": {}, "max_lsb": {}}
        for source, against in COMPARISONS:
            if source in p.values and against in p.values:
                k = key(source, against)
                row["sqnr_db"][k] = min(sqnr(p.values[against], p.values[source]), _CAP_DB)
                row["max_lsb"][k] = float((np.abs(p.values[source] - p.values[against]) / p.scale).max())
        for source in RUNTIMES:  # the runtime's own arithmetic: against the reference fed the runtime's inputs
            if source in p.values and own(source) in p.values:
                lsb = np.abs(p.values[source] - p.values[own(source)]) / p.scale
                row.setdefault("own_max_lsb", {})[source] = round(float(lsb.max()), 3)  # whole LSB, up to float error
                row.setdefault("own_share", {})[source] = float((lsb >= 0.5).mean())
        rows.append(row)
    for row in rows:
        for k in row["sqnr_db"]:
            before = _input_sqnr(rows, row["inputs"], k)
            row["drop_db"][k] = max(0.0, before - row["sqnr_db"][k]) if before is not None else 0.0
    return rows


def _input_sqnr(rows: list[dict], inputs: list[int], k: str) -> float | None:
    """The lowest SQNR among a point's inputs for comparison `k` (through inputs it has no value for)."""
    values, stack, seen = [], list(inputs), set()
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        if k in rows[i]["sqnr_db"]:
            values.append(rows[i]["sqnr_db"][k])
        else:
            stack.extend(rows[i]["inputs"])
    return min(values) if values else None


def worst_first(rows: list[dict], k: str) -> list[dict]:
    """Rows ranked by how much SQNR the layer loses against its inputs in comparison `k`, then by SQNR."""
    return sorted((r for r in rows if k in r["sqnr_db"]), key=lambda r: (-r["drop_db"][k], r["sqnr_db"][k]))


def sensitivity(run, prepared, rows: list[dict], layers: int = 3, progress: bool = False) -> list[dict]:
    """For the `layers` worst layers of the int8 reference (against float), the test accuracy of the int8
    reference with that one layer in float (quantize/mixed.py, as `export --keep-float` makes it), on the
    run's test split; beside the all-int8 and the float accuracy."""
    import torch

    from se_edge.quantize.convert import convert
    from se_edge.quantize.integer import Int8Reference
    from se_edge.quantize.mixed import mixed_precision
    from se_edge.train import accuracy, predict

    worst = {}  # layer -> its worst point against float
    for r in worst_first(rows, key("reference_int8", "float")):
        if r["layer"] != "input":
            worst.setdefault(r["layer"], r)
    chosen = list(worst)[:layers]
    if not chosen:
        return []
    splits = run.splits()
    images = int((run.record.qat and run.record.qat.calibration_images) or 512)

    def test_accuracy(model) -> float:
        return accuracy(predict(model, splits.test.x, set_eval=lambda m: None), splits.test.y)

    from tqdm.auto import tqdm

    int8 = test_accuracy(run.int8_reference("qat"))
    out = []
    for layer in tqdm(chosen, desc="sensitivity", unit="layer", disable=not progress):
        mixed, _ = mixed_precision(prepared, [layer], splits.train.x, max_images=images)
        with torch.no_grad():
            acc = test_accuracy(Int8Reference(convert(mixed, "executorch")))
        out.append({"layer": layer, "index": worst[layer]["index"], "accuracy": acc, "int8_accuracy": int8,
                    "gain": acc - int8})
    return out


def run_debug(run, data: str | None = None, images: int = 64, stress: int | None = None, layers: int = 3,
              executorch: bool = True, progress: bool = True) -> dict:
    """Per-layer SQNR of `run`'s int8 reference (vs float) and int8 .tflite (vs the reference and vs float) on
    the first `images` test images (or of dataset `data`), shifted with seed `stress` if given (as
    `parity --stress`); with `layers` > 0, the sensitivity of that many worst layers (`sensitivity`).
    Returns debug.json's shape."""
    import torch

    from se_edge.data import load_eval_set

    r = run.record
    dataset, evalset = load_eval_set(data or r.dataset, run.preprocessing, run_spec=r.dataset, seed=r.split.seed,
                                     test_fraction=r.split.test_fraction, stress=stress)
    x = evalset.x[:images]
    prepared, reference = run.load_prepared("qat"), run.int8_reference("qat")
    points = reference_points(reference)
    match_observers(points, reference, prepared)
    capture_float(prepared, points, torch.from_numpy(x))
    capture_reference(reference, points, torch.from_numpy(x))
    files = {}
    tflite = run.artifact_path("tflite_int8")
    if tflite.is_file():
        run.require("tflite_int8")
        files["tflite_int8"] = str(tflite)
        capture_tflite(str(tflite), points, x)
    if executorch:
        import tempfile

        with tempfile.TemporaryDirectory() as workdir:
            capture_executorch(reference, points, x, workdir, progress)
        files["executorch_int8"] = "per-op XNNPACK lowering of the int8 reference (the shipped .pte's graph and kernels)"
    for source in files:
        capture_own(reference, points, torch.from_numpy(x), source)
    rows = summarise(points)
    ranked = {k: [r["index"] for r in worst_first(rows, k)] for k in (key(*c) for c in COMPARISONS)
              if any(k in r["sqnr_db"] for r in rows)}
    float_acc = r.float_training.test_accuracy
    return {"model": r.model, "dataset": dataset, "images": len(x), "stress": stress, "files": files, "points": rows,
            "worst_first": ranked, "sensitivity": sensitivity(run, prepared, rows, layers, progress) if layers else [],
            "float_test_accuracy": float_acc,
            "sources": {"float": "prepared PT2E graph, fake-quant off", "reference_int8": "converted PT2E graph in XNNPACK's integer arithmetic",
                        "tflite_int8": "LiteRT, XNNPACK one partition per op, all tensors kept",
                        "executorch_int8": "ExecuTorch runtime, XNNPACK one delegate call per op, ETDump"}}


def own_summary(result: dict) -> dict[str, dict]:
    """Per runtime: how many of its layers compute what the reference computes from the same int8 inputs to
    within one LSB, and the worst layer (`own_max_lsb`, `own_share` of the points)."""
    out = {}
    for source in RUNTIMES:
        rows = [r for r in result["points"] if source in r.get("own_max_lsb", {})]
        if not rows:
            continue
        ranked = sorted(rows, key=lambda r: (-r["own_max_lsb"][source], -r["own_share"][source]))
        worst = ranked[0]
        out[source] = {"layers": len(rows), "within_1_lsb": sum(r["own_max_lsb"][source] <= 1.0 for r in rows),
                       "exact": sum(r["own_max_lsb"][source] < 0.5 for r in rows),
                       "worst": {"index": worst["index"], "layer": worst["layer"], "op": worst["op"],
                                 "max_lsb": worst["own_max_lsb"][source], "share": worst["own_share"][source]},
                       "ranked": [r["index"] for r in ranked]}
    return out
