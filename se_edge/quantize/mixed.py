"""Mixed precision: named layers of a prepared PT2E graph left in float, the rest int8.

`keep_float(prepared, names)` rewrites a prepared (QAT) graph in place. A name is a module of the
model (`stages.1.0.0`, or a whole block, `stages.1`); the layer it names is every op of that module
and what follows it up to the next quantisation (a conv's batch norm and activation, which int8
fuses into it). In that layer:

  * weight fake-quant is removed, so the layer computes with its float (QAT-trained) weights;
  * a batch norm after a conv is folded into the conv's float weight and bias (QAT keeps them apart
    to learn; convert_pt2e folds only the convs whose weights it quantises);
  * observers between two of its ops are removed (no int8 inside the float layer);
  * the observers at its output, where int8 layers read it again, are reset and must be observed
    anew (`recalibrate`): the old ranges were the int8 layer's, and the float layer's output differs.

Its input is still the int8 output of the layer before, dequantised. Converted and exported, the float
layer becomes DEQUANTIZE -> float ops -> QUANTIZE in both runtimes (ai-edge-quantizer's and
ExecuTorch's mixed-precision form), which XNNPACK runs in fp32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from se_edge.errors import SeEdgeError

_CONVS = ("aten.conv2d.default", "aten.conv1d.default")
_BATCH_NORMS = ("aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default")


@dataclass
class KeptLayers:
    names: list[str]
    nodes: dict[str, list[str]] = field(default_factory=dict)  # name -> the graph nodes left in float
    removed_observers: list[str] = field(default_factory=list)
    recalibrate: list[str] = field(default_factory=list)  # observer modules to observe again
    folded_batch_norms: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"keep_float": self.names, "nodes": self.nodes, "removed_observers": self.removed_observers,
                "recalibrated_observers": self.recalibrate, "folded_batch_norms": self.folded_batch_norms}


def module_of(node) -> str:
    """The innermost model module an fx node was traced from (`stages.1.0.0`), or "" (nn_module_stack)."""
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _is_observer(node) -> bool:
    return node.op == "call_module" and "activation_post_process" in str(node.target)


def layer_names(prepared) -> list[str]:
    """The modules that compute something in the graph, in graph order (what `keep_float` accepts)."""
    names = {}
    for node in prepared.graph.nodes:
        if node.op == "call_function" and (m := module_of(node)):
            names[m] = None
    return list(names)


def parse_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise SeEdgeError(f"--keep-float takes module names separated by commas (stages.1.0.0,classifier.3), got {text!r}")
    return list(dict.fromkeys(names))


def _layer_nodes(prepared, name: str) -> set:
    """The ops of module `name` (and its submodules), and those after them up to the next observer."""
    inside = {n for n in prepared.graph.nodes if n.op == "call_function"
              and (module_of(n) == name or module_of(n).startswith(name + "."))}
    stack = list(inside)
    while stack:
        for user in stack.pop().users:
            if user.op == "call_function" and user not in inside:
                inside.add(user)
                stack.append(user)
    return inside


def keep_float(prepared: torch.fx.GraphModule, names: list[str]) -> KeptLayers:
    """Leave the layers `names` of `prepared` in float (in place); returns what changed. The observers in
    `.recalibrate` are reset: run `recalibrate` before converting."""
    known = layer_names(prepared)
    kept = KeptLayers(list(names))
    layer: set = set()
    for name in names:
        nodes = _layer_nodes(prepared, name)
        if not nodes:
            shown = ", ".join(known[:8]) + (f", … ({len(known)} in all)" if len(known) > 8 else "")
            raise SeEdgeError(f"no layer named {name!r} in the model; valid: module names such as {shown} "
                              f"(`se-edge debug` ranks them)")
        kept.nodes[name] = sorted(n.name for n in nodes)
        layer |= nodes
    graph = prepared.graph
    for node in list(graph.nodes):
        if not _is_observer(node):
            continue
        src = node.args[0]
        if src in layer and all(u in layer for u in node.users):
            kept.removed_observers.append(node.name)  # between two float ops, or a float op's weight
        elif src in layer:
            kept.recalibrate.append(str(node.target))
            continue
        elif all(u in layer for u in node.users) and not _reads_input(src):
            kept.removed_observers.append(node.name)  # a weight's fake-quant
        else:
            continue
        node.replace_all_uses_with(src)
        graph.erase_node(node)
    kept.recalibrate = list(dict.fromkeys(kept.recalibrate))
    for node in list(graph.nodes):
        if node in layer and str(node.target) in _BATCH_NORMS and _fold_batch_norm(prepared, node):
            stats = node.args[3]  # running_mean: `a.1.running_mean` names the batch norm module
            kept.folded_batch_norms.append(str(stats.target).rpartition(".")[0] or node.name)
    graph.eliminate_dead_code()
    _drop_unused(prepared)
    prepared.recompile()
    for target in kept.recalibrate:
        prepared.get_submodule(target).activation_post_process.reset_min_max_vals()
    return kept


def _drop_unused(prepared) -> None:
    """Delete the observers and weights no node uses any more, so that the state dict has one set of keys
    however the graph is later copied or rewritten (GraphModule copies keep only what the graph uses)."""
    prepared.delete_all_unused_submodules()
    used = {n.target for n in prepared.graph.nodes if n.op in ("get_attr", "call_module")}
    for name in [k for k, _ in prepared.named_parameters()] + [k for k, _ in prepared.named_buffers()]:
        owner, _, leaf = name.rpartition(".")
        if name in used or any(owner == u or owner.startswith(u + ".") for u in used):
            continue  # read by a get_attr, or the state of a module the graph calls
        delattr(prepared.get_submodule(owner) if owner else prepared, leaf)


def _reads_input(node) -> bool:
    """Whether `node`'s value depends on a graph input (an activation), not only on weights."""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if n.op == "placeholder":
            return True
        if n in seen:
            continue
        seen.add(n)
        stack.extend(n.all_input_nodes)
    return False


def _attr(module, target: str):
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _fold_batch_norm(prepared, bn) -> bool:  # noqa: C901 (one pattern, matched step by step)
    """Replace QAT's conv(x, w * s) / s [+ b] -> batch_norm with one conv of folded float weights."""
    x = bn.args[0]
    bias = None
    if str(getattr(x, "target", "")) == "aten.add.Tensor":  # + conv bias (reshaped)
        bias, x = x.args[1], x.args[0]
    if str(getattr(x, "target", "")) == "aten.div.Tensor":
        x = x.args[0]
    if str(getattr(x, "target", "")) not in _CONVS:
        return False
    conv = x
    weight = conv.args[1]
    if str(getattr(weight, "target", "")) == "aten.mul.Tensor":  # w * scale_factor.reshape(...)
        weight = weight.args[0]
    if getattr(weight, "op", None) != "get_attr":
        return False
    if bias is not None and str(getattr(bias, "target", "")) in ("aten.reshape.default", "aten.view.default"):
        bias = bias.args[0]
    if bias is None and len(conv.args) > 2 and getattr(conv.args[2], "op", None) == "get_attr":
        bias = conv.args[2]
    args = list(bn.args) + [None] * 9
    gamma, beta, mean, var = (_attr(prepared, a.target) if a is not None else None for a in args[1:5])
    eps = args[7] if isinstance(args[7], float) else 1e-5
    if mean is None or var is None:
        return False
    with torch.no_grad():
        w = _attr(prepared, weight.target).detach()
        b = _attr(prepared, bias.target).detach() if bias is not None else torch.zeros_like(mean)
        inv = (gamma if gamma is not None else torch.ones_like(var)) / torch.sqrt(var + eps)
        folded_w = w * inv.reshape(-1, *([1] * (w.dim() - 1)))
        folded_b = (b - mean) * inv + (beta if beta is not None else 0)
    base = weight.target.replace(".", "_")
    prepared.register_buffer(f"{base}_float_folded", folded_w.contiguous())
    prepared.register_buffer(f"{base}_float_folded_bias", folded_b.contiguous())
    graph = prepared.graph
    with graph.inserting_before(conv):
        w_node = graph.get_attr(f"{base}_float_folded")
        b_node = graph.get_attr(f"{base}_float_folded_bias")
    with graph.inserting_after(bn):
        new_args = (conv.args[0], w_node, b_node, *conv.args[3:])
        folded = graph.call_function(conv.target, new_args, dict(conv.kwargs))
    folded.meta = dict(conv.meta)
    bn.replace_all_uses_with(folded)
    return True


@torch.no_grad()
def recalibrate(prepared: torch.fx.GraphModule, targets: list[str], x, batch_size: int = 64,
                max_images: int = 512) -> None:
    """Observe the `targets` observers anew on up to `max_images` of `x` (numpy NCHW), every other range
    fixed and every fake-quant on: each range sees what the int8 model before it produces."""
    from torchao.quantization.pt2e import disable_observer, enable_observer

    from se_edge.quantize.qat import set_eval

    set_eval(prepared)
    prepared.apply(disable_observer)
    for target in targets:
        prepared.get_submodule(target).apply(enable_observer)
    try:
        for i in range(0, min(len(x), max_images), batch_size):
            prepared(torch.from_numpy(x[i:i + batch_size]))
    finally:
        prepared.apply(disable_observer)


def mixed_precision(prepared: torch.fx.GraphModule, names: list[str], x, max_images: int = 512):
    """A copy of `prepared` with `names` in float, its boundary ranges observed on `x`; returns (copy, KeptLayers)."""
    import copy

    mixed = copy.deepcopy(prepared)
    kept = keep_float(mixed, names)
    recalibrate(mixed, kept.recalibrate, x, max_images=max_images)
    return mixed, kept
