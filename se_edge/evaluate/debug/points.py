"""The points of a debug: each activation quantisation of the int8 reference graph, named by the module that
computes it, and the observer of the prepared graph that set its range."""
from __future__ import annotations

from dataclasses import dataclass, field

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
