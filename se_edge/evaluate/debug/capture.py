"""Each point's values, captured from each source: the float graph, the int8 reference, LiteRT (every tensor
kept) and the ExecuTorch runtime (one XNNPACK call per op, ETDump); and each runtime's own arithmetic, with the
reference fed the runtime's int8 inputs (teacher forcing)."""
from __future__ import annotations

import numpy as np

from se_edge.evaluate.debug.points import Point

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
