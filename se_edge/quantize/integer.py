"""The int8 reference as the delegates compute it: the converted PT2E graph run with XNNPACK's integer arithmetic.

`convert_pt2e` gives a graph of float ops between quantize/dequantize pairs: each op runs in float on the
dequantised inputs and its output is rounded once by `quantize_per_tensor` (`round(x * (1/scale))`, ties to
even). The delegates that run se_edge's files (LiteRT's XNNPACK and ExecuTorch's XNNPACK, the same library)
compute otherwise, and on natural images the difference decides near-tied images differently:

  * an op with a fused activation has one quantisation point: a conv followed by its ReLU6 with a
    quantize/dequantize pair between them (the SE gate's `relu6(fc2(s))`) is one CONV_2D in the file, which
    requantises straight to the ReLU6's grid (XNNPACK's merge_clamps; LiteRT's fused activation);
  * convolutions and fully connected layers accumulate in int32 (bias quantised to int32 at scale
    in_scale * weight_scale[c]) and requantise in float32: rne(f32(acc) * f32(in_s * w_s[c] / out_s));
  * the mean over H, W sums int8 values in int32 and converts the sum through float32:
    rne(f32(S * s) + (out_zp - N * in_zp * s)), s = in_s / out_s * (1 / N);
  * an add is fixed point (20-bit multipliers, rounding half up), not float;
  * a mul requantises (a - a_zp)(b - b_zp) in float32; a quantize multiplies by the float32 reciprocal.

`Int8Reference` runs the same converted graph (the one ExecuTorch lowers) with those kernels at every
quantisation point it recognises and the graph's own float arithmetic elsewhere (a layer kept in float, a
shape op). Source of each rule: XNNPACK's scalar kernels and their params-init functions (src/qs8-vadd,
src/qs8-vmul, src/qs8-rsum with the reduce operator's int32 -> qs8 convert, src/qs8-gemm fp32 requantisation,
src/subgraph.c merge_clamps), the same results as its x86 SIMD kernels. `Int8Reference(graph,
arithmetic="pt2e")` is the earlier reference (the graph as convert_pt2e made it), kept for comparison.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

Q = "quantized_decomposed.quantize_per_tensor.default"
DQ = "quantized_decomposed.dequantize_per_tensor.default"
DQ_CHANNEL = "quantized_decomposed.dequantize_per_channel.default"
CONVS = ("aten.conv2d.default", "aten.linear.default")
CLAMPS = ("aten.relu.default", "aten.relu_.default", "aten.relu6.default", "aten.hardtanh.default",
          "aten.hardtanh_.default", "aten.clamp.default")
ARITHMETIC = ("xnnpack", "pt2e")
F32 = torch.float32


def _f32(v: float) -> float:
    """`v` rounded to float32, as a Python float (what a C `float` holds)."""
    return float(torch.tensor(v, dtype=F32))


def _rne(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x)  # ties to even, as XNNPACK's magic-bias rounding and nearbyint


def clamp_range(node) -> tuple[float, float]:
    """The real range an activation node (relu, relu6, hardtanh, clamp) keeps."""
    target = str(node.target)
    if target.startswith("aten.relu6"):
        return 0.0, 6.0
    if target.startswith("aten.relu"):
        return 0.0, math.inf
    args = list(node.args[1:]) + [None, None]
    default = (-1.0, 1.0) if target.startswith("aten.hardtanh") else (-math.inf, math.inf)
    return (default[0] if args[0] is None else float(args[0]), default[1] if args[1] is None else float(args[1]))


def clamp_bounds(node, scale: float, zero_point: int) -> tuple[int, int]:
    """The int8 bounds of activation `node` on the grid (scale, zero_point), as XNNPACK quantises them:
    lrintf(clamp(v / scale + zp, -128, 127)) in float32."""
    low, high = clamp_range(node)

    def q(v: float) -> int:
        if math.isinf(v):
            return -128 if v < 0 else 127
        t = _f32(_f32(_f32(v) / _f32(scale)) + _f32(zero_point))
        return int(round(min(max(t, -128.0), 127.0)))  # round(): ties to even, as lrintf

    return q(low), q(high)


@dataclass
class Kernel:
    """One quantisation point computed in integer arithmetic: `op` over the dequantize nodes `inputs`, with
    the clamp `activation` fused, written at quantize node `out`."""
    op: str  # conv | linear | add | mul | mean | clamp | quantize
    out: object  # the quantize node
    core: object  # the op node (conv2d, add, ...) or the clamp
    inputs: list  # the dequantize nodes (or the placeholder, for quantize)
    activation: object | None = None
    absorbed: list = field(default_factory=list)  # quantize nodes inside the fused op, which the file has not


def _is(node, target) -> bool:
    return getattr(node, "op", None) == "call_function" and str(node.target) in (
        (target,) if isinstance(target, str) else target)


def _only_user(node, user) -> bool:
    return list(node.users) == [user]


def _dequantized(node) -> bool:
    return _is(node, DQ) and getattr(node.args[0], "op", None) in ("call_function", "get_attr", "placeholder")


def _match(q) -> Kernel | None:
    """The integer kernel that computes quantize node `q`, if its source is one XNNPACK fuses."""
    src = q.args[0]
    if getattr(src, "op", None) == "placeholder":
        return Kernel("quantize", q, src, [src])
    activation = None
    if _is(src, CLAMPS):
        activation, src = src, src.args[0]
    absorbed = []
    if activation is not None and _is(src, DQ) and _is(src.args[0], Q) and _only_user(src, activation):
        inner = src.args[0]  # conv -> q -> dq -> relu6 -> q: one CONV_2D with a fused RELU6 in both runtimes
        if _is(inner.args[0], CONVS) and _only_user(inner, src) and _only_user(inner.args[0], inner):
            absorbed, src = [inner], inner.args[0]
    if activation is not None and _is(src, DQ):
        return Kernel("clamp", q, activation, [src], activation)
    if activation is not None and not absorbed and not _only_user(src, activation):
        return None
    if _is(src, CONVS):
        x, w = src.args[0], src.args[1]
        if _dequantized(x) and (_is(w, DQ_CHANNEL) or _is(w, DQ)):
            return Kernel("conv" if "conv" in str(src.target) else "linear", q, src, [x, w], activation, absorbed)
        return None  # float weights: a layer kept in float
    if _is(src, ("aten.add.Tensor", "aten.mul.Tensor")) and len(src.args) == 2 and all(
            _dequantized(a) for a in src.args):
        if activation is not None and str(src.target) == "aten.mul.Tensor":
            return None
        return Kernel("add" if "add" in str(src.target) else "mul", q, src, list(src.args), activation)
    if activation is None and _is(src, "aten.mean.dim") and _dequantized(src.args[0]):
        dims = sorted(d % 4 for d in src.args[1]) if len(src.args) > 1 else []
        keep = src.args[2] if len(src.args) > 2 else src.kwargs.get("keepdim", False)
        if dims == [2, 3] and keep:
            return Kernel("mean", q, src, [src.args[0]])
    return None


def _kernel_reads(k: Kernel) -> list:
    """The values kernel `k` reads: the int8 tensors behind its dequantize inputs (with their scales and zero
    points), and the op's own constants (weights, bias)."""
    reads = []
    for d in k.inputs:
        reads += d.all_input_nodes if d.op == "call_function" else [d]
    reads += [a for a in k.core.all_input_nodes if a.op != "call_function"]
    return list(dict.fromkeys(reads))


@dataclass
class Plan:
    kernels: dict  # quantize node name -> Kernel
    absorbed: set  # quantize node names the fused ops leave out
    skipped: set  # node names whose float value no kernel or later op needs


def plan(graph: torch.fx.Graph) -> Plan:
    kernels = {}
    for node in graph.nodes:
        if _is(node, Q) and (k := _match(node)) is not None:
            kernels[node.name] = k
    absorbed = {a.name for k in kernels.values() for a in k.absorbed}
    for name in absorbed:
        kernels.pop(name, None)
    # A node is not computed when nothing computed reads it: a kernel reads the int8 values behind its
    # dequantize inputs (and the weights, bias and scales), never the float op its quantize node replaces.
    read = {a.name for k in kernels.values() for a in _kernel_reads(k)}
    skipped: set = set()
    for node in reversed(list(graph.nodes)):
        if node.op != "call_function" or node.name in kernels or node.name in read or not node.users:
            continue
        if all(u.name in skipped or u.name in kernels for u in node.users):
            skipped.add(node.name)
    return Plan(kernels, absorbed, skipped)


def without_absorbed(converted: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of `converted` without the quantize/dequantize pairs the delegates fuse away (conv -> q -> dq -> relu6
    becomes conv -> relu6 -> q): lowered one op per delegate call (se_edge/evaluate/debug.py), ExecuTorch then fuses the
    activation into the conv as the shipped file's single call does, instead of rounding twice."""
    import copy

    gm = copy.deepcopy(converted)
    for kernel in plan(gm.graph).kernels.values():
        for q in kernel.absorbed:
            for dq in list(q.users):
                dq.replace_all_uses_with(q.args[0])
                gm.graph.erase_node(dq)
            gm.graph.erase_node(q)
    gm.graph.lint()
    gm.recompile()
    return gm


class IntegerInterpreter(torch.fx.Interpreter):
    """Runs a converted PT2E graph with XNNPACK's integer kernels at the quantisation points `plan` found (the
    graph's own ops elsewhere, and everywhere without a plan); `hook` reads or replaces each node's value."""

    def __init__(self, module: torch.fx.GraphModule, plan: Plan | None, hook=None):
        super().__init__(module)
        self.plan = plan
        self.hook = hook  # (node, value) -> value, after each node: to read or replace it (se_edge/evaluate/debug.py)
        if plan is not None:  # values are freed after their last reader: a kernel reads past its float path
            last: dict = {}
            for node in module.graph.nodes:
                kernel = plan.kernels.get(node.name)
                reads = _kernel_reads(kernel) if kernel is not None else node.all_input_nodes
                for value in reads:
                    last[value] = node
            self.user_to_last_uses = {}
            for value, reader in last.items():
                self.user_to_last_uses.setdefault(reader, []).append(value)

    def run_node(self, n):
        kernel = self.plan.kernels.get(n.name) if self.plan is not None else None
        if self.plan is not None and n.name in self.plan.skipped:
            out = None
        elif kernel is None:
            out = super().run_node(n)
        else:
            with self._set_current_node(n):
                out = KERNELS[kernel.op](self, kernel)
        return self.hook(n, out) if self.hook is not None else out

    # ---- what a kernel reads

    def int8(self, dq) -> tuple[torch.Tensor, float, int]:
        """The int8 tensor behind dequantize node `dq`, with its scale and zero point."""
        return self.env[dq.args[0]], float(self._arg(dq.args[1])), int(self._arg(dq.args[2]))

    def _arg(self, a):
        return self.env[a] if isinstance(a, torch.fx.Node) else a


def _out(kernel: Kernel) -> tuple[float, int, int, int]:
    q = kernel.out
    scale, zp, qmin, qmax = (float(q.args[1]), int(q.args[2]), int(q.args[3]), int(q.args[4]))
    if kernel.activation is not None:
        low, high = clamp_bounds(kernel.activation, scale, zp)
        qmin, qmax = max(qmin, low), min(qmax, high)
    return scale, zp, qmin, qmax


def _requantize(acc: torch.Tensor, scale: torch.Tensor | float, zp: int, qmin: int, qmax: int) -> torch.Tensor:
    """XNNPACK's fp32 requantisation: rne(f32(acc) * scale) + zp, clamped (in float32, before rounding)."""
    x = acc.to(F32) * (scale if isinstance(scale, torch.Tensor) else torch.tensor(scale, dtype=F32))
    x = torch.clamp(x, float(qmin - zp), float(qmax - zp))
    return (_rne(x) + zp).to(torch.int8)


def _inverse(scale: float) -> torch.Tensor:
    """f32(1 / scale): an f32 -> qs8 convert multiplies by it (XNNPACK), then requantises as a kernel does."""
    return torch.tensor(1.0, dtype=F32) / torch.tensor(scale, dtype=F32)


def _quantize(it: IntegerInterpreter, k: Kernel) -> torch.Tensor:
    """f32 -> qs8 convert: rne(x * f32(1 / scale)) + zp."""
    scale, zp, qmin, qmax = _out(k)
    return _requantize(it.env[k.core], _inverse(scale), zp, qmin, qmax)


def _conv(it: IntegerInterpreter, k: Kernel) -> torch.Tensor:
    """qs8 x qc8w convolution / fully connected: int32 accumulation, per-channel fp32 requantisation."""
    x_dq, w_dq = k.inputs
    x, x_scale, x_zp = it.int8(x_dq)
    w = it.env[w_dq.args[0]]
    w_scales = it._arg(w_dq.args[1])
    w_scales = (w_scales.to(F32) if isinstance(w_scales, torch.Tensor) else torch.tensor([w_scales], dtype=F32))
    w_zps = it._arg(w_dq.args[2])
    w_zps = w_zps.to(torch.float64) if isinstance(w_zps, torch.Tensor) else torch.tensor([float(w_zps)], dtype=torch.float64)
    channels = w.shape[0]
    shape = (-1,) + (1,) * (w.dim() - 1)
    wf = w.to(torch.float64) - w_zps.reshape(shape)
    xf = x.to(torch.float64) - x_zp  # padding contributes 0, as XNNPACK pads with the zero point
    args = [it._arg(a) for a in k.core.args[2:]]
    bias = args[0] if args else None
    acc = (torch.nn.functional.conv2d(xf, wf, None, *args[1:]) if k.op == "conv"
           else torch.nn.functional.linear(xf, wf))  # float64: exact for int8 sums of this size
    x_scale32 = torch.tensor(x_scale, dtype=F32)
    if bias is not None:
        bias_scale = (x_scale32 * w_scales).to(torch.float64).expand(channels)
        acc = acc + _rne(bias.to(torch.float64) / bias_scale).reshape((1, -1) + (1,) * (acc.dim() - 2))
    scale, zp, qmin, qmax = _out(k)
    requant = (x_scale32 * w_scales.expand(channels)) / torch.tensor(scale, dtype=F32)
    return _requantize(acc, requant.reshape((1, -1) + (1,) * (acc.dim() - 2)), zp, qmin, qmax)


def _add(it: IntegerInterpreter, k: Kernel) -> torch.Tensor:
    """qs8 add: fixed point, 20-bit multipliers, rounding half up (XNNPACK qs8-vadd)."""
    (a, a_s, a_zp), (b, b_s, b_zp) = (it.int8(d) for d in k.inputs)
    scale, zp, qmin, qmax = _out(k)
    a_os, b_os = _f32(_f32(a_s) / _f32(scale)), _f32(_f32(b_s) / _f32(scale))
    exponent = math.frexp(max(abs(a_os), abs(b_os)))[1] - 1  # float exponent bits - 127
    shift = 20 - exponent
    ma = int(round(math.ldexp(abs(a_os), shift))) * (-1 if a_os < 0 else 1)
    mb = int(round(math.ldexp(abs(b_os), shift))) * (-1 if b_os < 0 else 1)
    bias = (1 << (shift - 1)) - ma * a_zp - mb * b_zp
    acc = bias + a.to(torch.int64) * ma + b.to(torch.int64) * mb
    return torch.clamp((acc >> shift) + zp, qmin, qmax).to(torch.int8)


def _mul(it: IntegerInterpreter, k: Kernel) -> torch.Tensor:
    """qs8 mul: (a - a_zp)(b - b_zp) in int32, fp32 requantisation (XNNPACK qs8-vmul, x86)."""
    (a, a_s, a_zp), (b, b_s, b_zp) = (it.int8(d) for d in k.inputs)
    scale, zp, qmin, qmax = _out(k)
    product = (a.to(torch.int32) - a_zp) * (b.to(torch.int32) - b_zp)
    return _requantize(product, _f32(_f32(_f32(a_s) * _f32(b_s)) / _f32(scale)), zp, qmin, qmax)


def _mean(it: IntegerInterpreter, k: Kernel) -> torch.Tensor:
    """qs8 mean over H, W: int32 sum of the raw int8 values, converted through float32 (XNNPACK reduce)."""
    x, x_scale, x_zp = it.int8(k.inputs[0])
    scale, zp, qmin, qmax = _out(k)
    n = x.shape[2] * x.shape[3]
    s = _f32(_f32(_f32(x_scale) / _f32(scale)) * _f32(_f32(1.0) / _f32(n)))
    offset = _f32(_f32(zp) - _f32(_f32(_f32(n) * _f32(x_zp)) * _f32(s)))
    total = x.to(torch.int32).sum(dim=(2, 3), keepdim=True)
    y = (total.to(F32) * torch.tensor(s, dtype=F32)) + torch.tensor(offset, dtype=F32)
    return torch.clamp(_rne(y), qmin, qmax).to(torch.int8)


def _clamp(it: IntegerInterpreter, k: Kernel) -> torch.Tensor:
    """A clamp on its own: int8 min/max where input and output share a grid, else through float (XNNPACK's
    lookup table: dequantise, clamp, requantise)."""
    x, x_scale, x_zp = it.int8(k.inputs[0])
    scale, zp, qmin, qmax = _out(k)
    if _f32(x_scale) == _f32(scale) and x_zp == zp:
        return torch.clamp(x.to(torch.int32), qmin, qmax).to(torch.int8)
    real = (x.to(torch.int32) - x_zp).to(F32) * torch.tensor(x_scale, dtype=F32)
    low, high = clamp_range(k.activation)
    real = torch.clamp(real, None if math.isinf(low) else low, None if math.isinf(high) else high)
    return _requantize(real, _inverse(scale), zp, qmin, qmax)


KERNELS = {"quantize": _quantize, "conv": _conv, "linear": _conv, "add": _add, "mul": _mul, "mean": _mean,
           "clamp": _clamp}


class Int8Reference(torch.nn.Module):
    """A converted PT2E graph (`quantize.convert(prepared, "executorch")`) run as the delegates run it
    (`arithmetic="xnnpack"`, the default) or as convert_pt2e wrote it (`"pt2e"`, the earlier reference)."""

    def __init__(self, converted: torch.fx.GraphModule, arithmetic: str = "xnnpack"):
        super().__init__()
        if arithmetic not in ARITHMETIC:
            raise ValueError(f"unknown arithmetic {arithmetic!r}; valid: {', '.join(ARITHMETIC)}")
        self.converted = converted
        self.arithmetic = arithmetic
        self.plan = plan(converted.graph) if arithmetic == "xnnpack" else None

    def __deepcopy__(self, memo):
        import copy  # the plan holds the graph's nodes: planned anew on the copied graph

        return Int8Reference(copy.deepcopy(self.converted, memo), self.arithmetic)

    def train(self, mode: bool = True):
        self.training = mode  # the converted graph has no train mode (torchao refuses .train()/.eval())
        return self

    @property
    def graph(self) -> torch.fx.Graph:
        return self.converted.graph

    def run(self, x: torch.Tensor, hook=None) -> torch.Tensor:
        """The output for `x`; `hook(node, value) -> value` sees (and may replace) every node's value."""
        with torch.no_grad():
            return IntegerInterpreter(self.converted, self.plan, hook).run(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)

    def points(self) -> list:
        """The quantize nodes that hold a value the delegates have too (not those a fused op leaves out)."""
        absorbed = self.plan.absorbed if self.plan is not None else set()
        return [n for n in self.graph.nodes if _is(n, Q) and n.name not in absorbed]

    def output_scale(self) -> float | None:
        """The scale of the last quantisation before the output: one LSB of the int8 files' logits."""
        points = self.points()
        return float(points[-1].args[1]) if points else None

    def coverage(self) -> dict:
        """How many quantisation points run in XNNPACK's arithmetic, per kernel, and how many in float."""
        if self.plan is None:
            return {}
        counts: dict = {}
        for k in self.plan.kernels.values():
            counts[k.op] = counts.get(k.op, 0) + 1
        counts["float"] = len(self.points()) - len(self.plan.kernels)
        counts["fused_away"] = len(self.plan.absorbed)
        return counts


def int8_reference(prepared: torch.fx.GraphModule, arithmetic: str = "xnnpack",
                   hard_swish: str = "written") -> Int8Reference:
    """The int8 reference of a prepared (QAT or PTQ) PT2E graph: converted as ExecuTorch lowers it (folded weights),
    with its hard-swishes in `hard_swish` form ("written": as the QAT graph and LiteRT's file hold them; "native": as
    the .pte does, quantize/convert.native_hard_swish), run with the delegates' integer arithmetic."""
    from se_edge.quantize.convert import convert

    return Int8Reference(convert(prepared, "executorch", hard_swish), arithmetic)
