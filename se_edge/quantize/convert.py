"""Convert a prepared QAT graph to the integer reference each backend lowers from.

`convert_pt2e` runs on a deep copy per backend: ExecuTorch needs folded (int8) weights,
`fold_quantize=True`, or lowering misses out-variants; litert-torch needs `fold_quantize=False`
(it reads the weight quantize ops itself).

Both then quantise each float conv/linear bias to int32 at scale in_scale * weight_scale[c] by rules of
their own: ExecuTorch's XNNPACK backend multiplies by a float32 reciprocal and rounds ties to even,
litert-torch's converter divides in float64 and rounds ties away from zero. The float32 product is off by
up to ~0.06 for the int32 values of a trained MobileNetV3, so one in ten or so biases came out one apart,
and the two files, otherwise the same XNNPACK kernels, parted by up to 5 output LSB (cifar10-3k8
se_mobilenetv3_small). `snap_biases` puts every such bias on its int32 grid first (b = k * scale, k rounded
once, here), where every rule gives the same k: one graph, one arithmetic, in both files and the reference.
"""
from __future__ import annotations

import copy

import torch

BACKENDS = ("executorch", "litert")
_DQ = "quantized_decomposed.dequantize_per_tensor.default"
_DQ_CHANNEL = "quantized_decomposed.dequantize_per_channel.default"
_Q_CHANNEL = "quantized_decomposed.quantize_per_channel.default"
_LAYERS = ("aten.conv2d.default", "aten.linear.default")


HARD_SWISH = ("written", "native")
_Q = "quantized_decomposed.quantize_per_tensor.default"


def convert(prepared: torch.fx.GraphModule, backend: str = "executorch", hard_swish: str = "written") -> torch.fx.GraphModule:
    """An int8 reference graph (quantize/dequantize around int8 kernels) for `backend`; `hard_swish="native"`: each
    written-out hard-swish made one `hardswish` op again (native_hard_swish)."""
    if hard_swish not in HARD_SWISH:
        raise ValueError(f"unknown hard_swish form {hard_swish!r}; valid: {', '.join(HARD_SWISH)}")
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    from se_edge.quantize.qat import set_eval

    from se_edge.quantize.patterns import traced_once

    model = copy.deepcopy(prepared).to("cpu")
    set_eval(model)
    pin_trained_qparams(model)
    with traced_once():  # torchao's ~100 conv/bn pattern graphs, traced once per process
        converted = convert_pt2e(model, fold_quantize=backend == "executorch")
    snap_weights(converted)
    snap_biases(converted)
    if hard_swish == "native":
        native_hard_swish(converted)
    if backend == "executorch":
        padded_max_pool(converted)
    return converted


def _source(node, target: str):
    """`node`'s input if `node` is a call of `target` (by its name), else None."""
    if isinstance(node, torch.fx.Node) and node.op == "call_function" and str(node.target) == target:
        return node.args[0]
    return None


def _through(node, *targets: str):
    """Walk up from `node` through calls of `targets`, in order; the node reached, or None."""
    for target in targets:
        node = _source(node, target)
        if node is None:
            return None
    return node


def _constant(module: torch.fx.GraphModule, dq) -> float | None:
    """The value of a dequantised one-element constant (the written-out form's 3 and 1/6), else None."""
    q = _source(dq, _DQ)
    if not (isinstance(q, torch.fx.Node) and q.op in ("get_attr", "call_function")):
        return None
    if q.op == "call_function":  # fold_quantize=False: quantize(constant) in the graph
        if str(q.target) != _Q or not (isinstance(q.args[0], torch.fx.Node) and q.args[0].op == "get_attr"):
            return None
        value = torch.ops.quantized_decomposed.quantize_per_tensor(_value(module, q.args[0]), *q.args[1:])
    else:
        value = _value(module, q)
    if value.numel() != 1:
        return None
    return float(torch.ops.quantized_decomposed.dequantize_per_tensor(value, *dq.args[1:]).reshape(()))


def native_hard_swish(converted: torch.fx.GraphModule) -> int:
    """Make each written-out hard-swish, x * (relu6(x + 3) * (1/6)) with each step quantised (se_edge's quantizer
    writes nn.Hardswish so, quantize/decompose.py; blocks.HardSwish is so), one `aten.hardswish` again, between
    the dequantised x and the quantize of the product: ExecuTorch's XNNPACK runs it as one op (int8 in, fp32
    hard-swish, int8 out) where the written-out form is an add and two int8 multiplies (0.37 of 2.0 ms in
    SE-MobileNetV3-small at 224 px, against 0.07 for the native op). The output keeps the grid QAT trained; the
    intermediate roundings go. Returns how many."""
    count = 0
    graph = converted.graph
    for mul in list(graph.nodes):
        if mul.op != "call_function" or str(mul.target) != "aten.mul.Tensor" or len(mul.args) != 2:
            continue
        x_dq, gate_dq = mul.args
        scaled = _through(gate_dq, _DQ, _Q)  # mul(relu6(...), sixth)
        if not (isinstance(scaled, torch.fx.Node) and str(scaled.target) == "aten.mul.Tensor"):
            continue
        clamp_dq, sixth = scaled.args
        clamp = _through(clamp_dq, _DQ, _Q)
        if not (isinstance(clamp, torch.fx.Node) and (str(clamp.target) == "aten.relu6.default" or (
                str(clamp.target) == "aten.hardtanh.default" and tuple(clamp.args[1:]) == (0.0, 6.0)))):
            continue
        add = _through(clamp.args[0], _DQ, _Q)
        if not (isinstance(add, torch.fx.Node) and str(add.target) == "aten.add.Tensor"):
            continue
        inner_x, three = add.args
        x_q, inner_q = _source(x_dq, _DQ), _source(inner_x, _DQ)
        if x_q is None or x_q is not inner_q or x_dq.args[1:] != inner_x.args[1:]:
            continue
        c3, c6 = _constant(converted, three), _constant(converted, sixth)
        if c3 is None or c6 is None or abs(c3 - 3.0) > 1e-6 or abs(c6 - 1 / 6) > 1e-3:
            continue
        _replace(mul, torch.ops.aten.hardswish.default, (x_dq,))
        count += 1
    return _recompiled(converted, count)


def _replace(node: torch.fx.Node, target, args: tuple) -> None:
    """Put a call of `target` on `args` where `node` is (its metadata, its users); the dead nodes stay for
    _recompiled."""
    with node.graph.inserting_before(node):
        new = node.graph.call_function(target, args)
    new.meta = dict(node.meta)
    node.replace_all_uses_with(new)


def _recompiled(converted: torch.fx.GraphModule, count: int) -> int:
    """`count`, after dropping what `count` rewrites left dead and recompiling `converted`, where there were any."""
    if count:
        converted.graph.eliminate_dead_code()
        converted.graph.lint()
        converted.recompile()
    return count


def padded_max_pool(converted: torch.fx.GraphModule) -> int:
    """Make each zero pad -> unpadded max pool over int8 values that are all >= 0 (SE-ResNet's stem after its ReLU,
    models/resnet.py ZeroPadMaxPool) one max pool with that padding, for ExecuTorch: its XNNPACK partitioner takes
    a constant pad in fp32 only, so in an int8 graph the pad ran as dequantize -> fp32 pad -> quantize inside the
    delegate (0.48 ms of SE-ResNet-18's 11.5 at 224 px, against LiteRT's int8 pad, 0.13), where XNNPACK's max pool
    pads by itself in int8. Exact: the pad's input grid starts at 0 (its zero point is its lowest value, as after
    a ReLU), so zero padding is the lowest value, as the max pool's own padding is, and every window holds a real
    value (pad <= kernel // 2). LiteRT keeps the written form: its converter makes a padded max pool PADV2 (-inf),
    which LiteRT's XNNPACK refuses. Returns how many."""
    count = 0
    for pool in list(converted.graph.nodes):
        if pool.op != "call_function" or str(pool.target) != "aten.max_pool2d.default" or pool.kwargs:
            continue
        defaults = [None, None, [], 0, 1, False]  # max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        kernel, stride, padding, dilation, ceil = (list(pool.args) + defaults[len(pool.args):])[1:6]
        kernel = [kernel, kernel] if isinstance(kernel, int) else list(kernel)
        pad_dq = pool.args[0]
        pad = _through(pad_dq, _DQ, _Q)
        amount = _zero_pad(pad)
        if amount is None or ceil or padding not in (0, [0, 0], (0, 0)) or dilation not in (1, [1, 1], (1, 1)):
            continue
        x_dq = pad.args[0]
        if not (_source(x_dq, _DQ) is not None and 0 < amount <= min(kernel) // 2 and len(pad.users) == 1
                and x_dq.args[1:] == pad_dq.args[1:] and x_dq.args[2] == x_dq.args[3]):  # same grid, zero point = min
            continue
        _replace(pool, torch.ops.aten.max_pool2d.default, (x_dq, kernel, stride or kernel, [amount, amount]))
        count += 1
    return _recompiled(converted, count)


def _zero_pad(node) -> int | None:
    """The amount of `node`'s padding if it pads all four sides of H and W alike with zeros (aten.pad in constant
    mode or aten.constant_pad_nd), else None."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_function":
        return None
    if str(node.target) == "aten.pad.default":
        mode, value = (list(node.args) + ["constant", None])[2:4]
    elif str(node.target) == "aten.constant_pad_nd.default":
        mode, value = "constant", (list(node.args) + [0])[2]
    else:
        return None
    amounts = list(node.args[1])
    if mode != "constant" or value not in (None, 0, 0.0) or len(amounts) != 4 or len(set(amounts)) != 1:
        return None
    return amounts[0]


def pin_trained_qparams(model: torch.nn.Module) -> int:
    """Make convert_pt2e quantise with the scales and zero points QAT trained with (in place; returns how many).

    convert_pt2e asks each fake-quant for `calculate_qparams()`, which recomputes them from its observer's
    running min/max; a fused moving-average fake-quant whose observer stopped (QAT freezes ranges) had used
    its `scale`/`zero_point` buffers, and the two part: on the cifar10-3k8 se_mobilenetv3_small QAT, 54 of 246
    fake-quants (weights among them, up to 1% apart), so the int8 files rounded weights on another grid than
    the one QAT trained for, and the QAT graph and its own int8 model decided otherwise on 2.2% of training
    images. The buffers are what training saw: they are what the files get."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    symmetric = (torch.per_channel_symmetric, torch.per_tensor_symmetric)
    count = 0
    for module in model.modules():
        if not (isinstance(module, FakeQuantizeBase) and hasattr(module, "scale") and hasattr(module, "zero_point")
                and bool(getattr(module, "fake_quant_enabled", torch.ones(1))[0])):
            continue
        observed_scale, observed_zero_point = module.calculate_qparams()
        scale, zero_point = module.scale.detach().clone(), module.zero_point.detach().clone()
        if scale.shape != observed_scale.shape or zero_point.shape != observed_zero_point.shape:
            continue  # never ran (default buffers): the observer's are the only ones
        if getattr(module, "qscheme", None) in symmetric:
            # A symmetric grid's zero point is 0; a channel the fused fake-quant saw as all zeros got 127 in the
            # buffer (a no-op on zeros in training), which XNNPACK refuses in a file.
            zero_point = observed_zero_point.detach().clone()
        module.calculate_qparams = lambda s=scale, z=zero_point: (s, z)
        count += 1
    return count


def _value(module: torch.fx.GraphModule, arg):
    if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
        return module.get_buffer(arg.target) if arg.target in dict(module.named_buffers()) else \
            module.get_parameter(arg.target)
    return arg


def snap_weights(converted: torch.fx.GraphModule) -> int:
    """Where the graph still quantises a float weight (`fold_quantize=False`, for litert-torch, whose converter
    rounds w / scale in float64 with ties away from zero), make the weight its own int8 value times the scale,
    as ExecuTorch's folded weights are (torch's rounding, ties to even): both files then hold the same int8
    weights. Returns how many weights."""
    count = 0
    for node in converted.graph.nodes:
        if node.op != "call_function" or str(node.target) != _Q_CHANNEL:
            continue
        w = node.args[0]
        if not (isinstance(w, torch.fx.Node) and w.op == "get_attr"):
            continue
        weight = _value(converted, w)
        args = [_value(converted, a) for a in node.args[1:]]
        with torch.no_grad():
            q = torch.ops.quantized_decomposed.quantize_per_channel(weight.detach(), *args)
            dq = torch.ops.quantized_decomposed.dequantize_per_channel(q, *args, out_dtype=weight.dtype)
            weight.copy_(dq)
        count += 1
    return count


def snap_biases(converted: torch.fx.GraphModule) -> int:
    """Put the float bias of every quantised conv/linear of `converted` on its int32 grid (in place): b becomes
    k * f32(in_scale * weight_scale[c]), k = round(b / that scale); returns how many biases. What int8 computes is
    unchanged up to that one rounding, which every converter then does alike."""
    count = 0
    for node in converted.graph.nodes:
        if node.op != "call_function" or str(node.target) not in _LAYERS or len(node.args) < 3:
            continue
        x, w, b = node.args[:3]
        if not (isinstance(b, torch.fx.Node) and b.op == "get_attr" and len(b.users) == 1):
            continue
        if str(getattr(x, "target", "")) != _DQ or str(getattr(w, "target", "")) not in (_DQ, _DQ_CHANNEL):
            continue
        in_scale = torch.tensor(float(_value(converted, x.args[1])), dtype=torch.float32)
        w_scale = _value(converted, w.args[1])
        w_scale = torch.as_tensor(w_scale, dtype=torch.float32).reshape(-1)
        bias = _value(converted, b)
        scale = (in_scale * w_scale).expand(bias.shape[0]).to(torch.float64)
        with torch.no_grad():
            k = torch.round(bias.detach().to(torch.float64) / scale)
            bias.copy_((k * scale).to(bias.dtype))
        count += 1
    return count
