"""Write `F.hardswish` / `F.hardsigmoid` calls of an exported graph out in the delegable form.

`to_hardware_aware` swaps `nn.Hardswish` modules for `se_edge.blocks.HardSwish`; a model that calls
`F.hardswish` in its forward has no module to swap, so the quantizer rewrites the exported graph
before annotation: hardswish(x) -> x * (relu6(x + 3) * (1/6)), hardsigmoid(x) -> relu6(x + 3) * (1/6),
the same ops as `blocks/activations.py`, constants as buffers shaped like `x` (1 in every dim).
Exact in float; in int8 the converters then emit ADD (fused RELU6) and MULs, which LiteRT's XNNPACK
delegate takes, where it refuses an int8 HARD_SWISH.
"""
from __future__ import annotations

import torch

_HARDSWISH = ("hardswish", "hardswish_")
_HARDSIGMOID = ("hardsigmoid", "hardsigmoid_")


def _targets(names: tuple[str, ...]) -> set:
    return {getattr(torch.ops.aten, n).default for n in names if hasattr(torch.ops.aten, n)}


def decompose_hard_activations(model: torch.fx.GraphModule) -> int:
    """Rewrite every hardswish/hardsigmoid node of `model` in place; returns how many."""
    aten = torch.ops.aten
    swish, sigmoid = _targets(_HARDSWISH), _targets(_HARDSIGMOID)
    graph, count = model.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in swish | sigmoid:
            continue
        x, val = node.args[0], node.meta.get("val")
        ndim = val.ndim if val is not None else 4

        def const(value: float, at: torch.fx.Node) -> torch.fx.Node:
            name = f"_se_edge_const_{count}_{'three' if value == 3 else 'sixth'}"
            tensor = torch.full((1,) * ndim, float(value))
            model.register_buffer(name, tensor)
            with graph.inserting_before(at):
                attr = graph.create_node("get_attr", name, (), {})
            if val is not None:
                attr.meta["val"] = val.fake_mode.from_tensor(tensor, static_shapes=True) if hasattr(val, "fake_mode") else tensor
            return attr

        three, sixth = const(3.0, node), const(1 / 6, node)
        with graph.inserting_before(node):
            shifted = graph.call_function(aten.add.Tensor, (x, three))
            clamped = graph.call_function(aten.hardtanh.default, (shifted, 0.0, 6.0))
            gate = graph.call_function(aten.mul.Tensor, (clamped, sixth))
            out = graph.call_function(aten.mul.Tensor, (x, gate)) if node.target in swish else gate
        for new in (shifted, clamped, gate, out):
            if val is not None:
                new.meta["val"] = val
            new.meta["stack_trace"] = node.meta.get("stack_trace")
            if "nn_module_stack" in node.meta:
                new.meta["nn_module_stack"] = node.meta["nn_module_stack"]
        node.replace_all_uses_with(out)
        graph.erase_node(node)
        count += 1
    if count:
        graph.lint()
        model.recompile()
    return count
