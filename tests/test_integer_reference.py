"""The int8 reference computes what the delegates compute (se_edge/quantize/integer.py).

A small model with each form whose rounding the delegates do otherwise than convert_pt2e's graph: a conv
followed by ReLU6 (one CONV_2D with a fused RELU6 in the files, two roundings in the converted graph), the
hard-swish written out (ADD with a fused RELU6, MULs), an SE block (a mean over H, W, the hw gate, the channel
scale), a residual add and a mean-pooled head. Its inputs take few values, so that sums and means land on
rounding ties. The files are run in their runtimes and held against both references.
"""
import numpy as np
import pytest
import torch

from se_edge.blocks import SqueezeExcite
from se_edge.blocks.activations import HardSwish
from se_edge.quantize.integer import Int8Reference, clamp_bounds, plan


class _Forms(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.act = HardSwish()
        self.conv = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.relu6 = torch.nn.ReLU6()
        self.se = SqueezeExcite(16, gate="hw")
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = self.act(self.stem(x))
        x = x + self.se(self.relu6(self.conv(x)))
        return self.head(x.mean((2, 3), keepdim=True).flatten(1))


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """The model PTQ-quantised on tie-prone images (values in steps of 1/4), its two int8 files, and the outputs
    of both references and both runtimes on those images."""
    from se_edge.export.int8 import to_pte, to_tflite
    from se_edge.quantize import calibrate, prepare_ptq
    from se_edge.quantize.convert import convert
    from se_edge.quantize.qat import set_eval
    from se_edge.runner import open_model, predict

    torch.manual_seed(0)
    model = _Forms().eval()
    x = (torch.randint(-4, 5, (256, 3, 6, 6)) / 4.0).numpy()
    prepared = prepare_ptq(model, torch.from_numpy(x[:1]))
    calibrate(prepared, x)
    set_eval(prepared)
    converted = convert(prepared, "executorch")
    d = tmp_path_factory.mktemp("forms")
    files = {"tflite_int8": to_tflite(prepared, torch.from_numpy(x[:1]), d / "m.tflite"),
             "executorch_int8": to_pte(prepared, torch.from_numpy(x[:1]), d / "m.pte")}
    xnnpack, pt2e = Int8Reference(converted), Int8Reference(converted, "pt2e")
    # the .pte holds the hard-swish in ExecuTorch's form (FORMS: native), so its references are converted so too
    native = convert(prepared, "executorch", hard_swish="native")
    with torch.no_grad():
        out = {"xnnpack": xnnpack(torch.from_numpy(x)).numpy(), "pt2e": pt2e(torch.from_numpy(x)).numpy(),
               "xnnpack_native": Int8Reference(native)(torch.from_numpy(x)).numpy(),
               "pt2e_native": Int8Reference(native, "pt2e")(torch.from_numpy(x)).numpy()}
    out.update({name: predict(open_model(str(p)), x) for name, p in files.items()})
    return xnnpack, out


def _lsb(a, b, scale):
    return np.abs(a - b) / scale


def test_the_reference_finds_the_fused_forms(forms):
    reference, _ = forms
    counts = reference.coverage()
    # stem conv, conv + ReLU6, fc1 + ReLU, fc2 + ReLU6 (one quantisation each, as the files have), head linear
    assert counts["conv"] == 4 and counts["linear"] == 1, counts
    fused = [k.activation for k in reference.plan.kernels.values() if k.op == "conv" and k.activation is not None]
    # nn.ReLU6 traces as hardtanh(0, 6), F.relu6 (the SE gate) as relu6
    assert sorted(str(a.target) for a in fused) == ["aten.hardtanh.default", "aten.relu.default", "aten.relu6.default"]
    assert counts["fused_away"] == 0, counts  # the quantizer put no quantisation between a conv and its ReLU6
    assert counts["mean"] == 2 and counts["add"] == 2 and counts["mul"] >= 4, counts  # hard-swish: add + 2 muls
    assert counts["float"] <= 1, counts  # only the head's flatten, a shape op


def test_a_graph_quantised_before_fused_clamps_has_its_extra_rounding_fused_away():
    """Runs made before quantizer.fuse_clamps observe a conv's output and its ReLU6's apart; the files still
    round once (LiteRT fuses the RELU6, XNNPACK merges the clamp), and so does the reference."""
    from se_edge.quantize import calibrate, prepare_ptq
    from se_edge.quantize.convert import convert

    torch.manual_seed(0)
    x = (torch.randint(-4, 5, (8, 3, 6, 6)) / 4.0).numpy()
    prepared = prepare_ptq(_Forms().eval(), torch.from_numpy(x[:1]), fused_clamps=False)
    calibrate(prepared, x)
    reference = Int8Reference(convert(prepared, "executorch"))
    assert reference.coverage()["fused_away"] == 2  # conv -> q -> dq -> relu6 and fc2 -> q -> dq -> relu6
    assert len(reference.points()) == len([n for n in reference.graph.nodes if "quantize_per_tensor" in str(n.target)
                                           and "dequantize" not in str(n.target)]) - 2


def test_both_runtimes_compute_what_the_reference_computes(forms):
    reference, out = forms
    scale = reference.output_scale()
    for name, own in (("tflite_int8", "xnnpack"), ("executorch_int8", "xnnpack_native")):
        lsb = _lsb(out[name], out[own], scale)
        assert lsb.max() <= 1.0 + 1e-3, (name, lsb.max())
        assert (out[name].argmax(1) == out[own].argmax(1)).all(), name
    # On x86 the .pte and its reference are bit-exact: the same XNNPACK kernels, the same parameters.
    assert _lsb(out["executorch_int8"], out["xnnpack_native"], scale).max() < 1e-3
    # and the .pte's form is another function: held to the written-out reference it parts by more than an LSB
    assert _lsb(out["executorch_int8"], out["xnnpack"], scale).max() > 1.0 + 1e-3


def test_the_convert_pt2e_reference_parts_from_the_runtimes_on_these_ties(forms):
    """The check above has teeth: the graph as convert_pt2e wrote it is more than one LSB away from both files."""
    reference, out = forms
    scale = reference.output_scale()
    for name, own in (("tflite_int8", "pt2e"), ("executorch_int8", "pt2e_native")):
        assert _lsb(out[name], out[own], scale).max() > 1.0 + 1e-3, name


def test_clamp_bounds_are_quantised_as_xnnpack_does():
    graph = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.ReLU6(), torch.nn.ReLU())).graph
    relu6, relu = [n for n in graph.nodes if n.op == "call_module"]
    relu6.target, relu.target = "aten.relu6.default", "aten.relu.default"
    assert clamp_bounds(relu6, 6 / 255, -128) == (-128, 127)
    assert clamp_bounds(relu6, 0.05, 3) == (3, 123)  # 6 / 0.05 + 3
    assert clamp_bounds(relu, 0.1, -10) == (-10, 127)


def test_a_graph_without_quantisation_points_runs_in_float():
    gm = torch.export.export(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1)), (torch.randn(1, 1, 4, 4),)).module()
    p = plan(gm.graph)
    assert p.kernels == {} and p.absorbed == set()


def test_qat_files_use_the_trained_grid_and_load_with_a_dead_channel(tmp_path):
    """convert quantises with the scales QAT trained with (the fake-quants' buffers); a channel whose weights
    are all zero has 127 as its buffer zero point, which the file must not get: XNNPACK refuses it."""
    from se_edge.export.int8 import to_tflite
    from se_edge.quantize import prepare_qat
    from se_edge.quantize.convert import convert
    from se_edge.quantize.qat import set_eval
    from se_edge.runner import open_model, predict

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 1))
    with torch.no_grad():
        model[0].weight[1].zero_()
    prepared = prepare_qat(model, torch.randn(2, 3, 8, 8))
    for _ in range(3):
        prepared(torch.randn(8, 3, 8, 8))  # observers follow the batches; then the ranges move on without them
    from torchao.quantization.pt2e import disable_observer

    prepared.apply(disable_observer)
    set_eval(prepared)
    fake_quants = [m for m in prepared.modules() if hasattr(m, "zero_point") and m.zero_point.numel() == 4]
    assert any(int(m.zero_point[1]) == 127 for m in fake_quants)  # the buffer a dead channel gets
    converted = convert(prepared)
    zero_points = [getattr(converted, n.args[2].target) for n in converted.graph.nodes
                   if "dequantize_per_channel" in str(n.target)]
    assert len(zero_points) == 2 and all(int(z.abs().max()) == 0 for z in zero_points), zero_points
    x = torch.randn(4, 3, 8, 8)
    path = to_tflite(prepared, x[:1], tmp_path / "dead.tflite")
    reference = Int8Reference(converted)
    lsb = _lsb(predict(open_model(str(path)), x.numpy()), reference(x).numpy(), reference.output_scale())
    assert lsb.max() <= 1.0 + 1e-3


@pytest.mark.parametrize("act", ["blocks.HardSwish", "nn.Hardswish"])
def test_native_hard_swish_makes_each_written_out_hard_swish_one_op_and_leaves_the_se_gate(act):
    """convert(..., hard_swish="native") (ExecuTorch's form): the stem's written-out hard-swish (blocks.HardSwish,
    x * (relu6(x + 3) * (1/6)), each step quantised), becomes one aten.hardswish between x's dequantize and the
    product's quantize, as does nn.Hardswish, which se_edge's quantizer writes out with hardtanh(0, 6);
    the SE gate (relu6(fc2) * c, its +3 folded into fc2) and the conv's ReLU6 stay as they are; the output keeps
    the trained grid and moves by at most the intermediate roundings that go."""
    from se_edge.quantize import calibrate, prepare_ptq
    from se_edge.quantize.convert import convert, native_hard_swish

    torch.manual_seed(0)
    x = (torch.randint(-4, 5, (64, 3, 6, 6)) / 4.0)
    model = _Forms().eval()
    if act == "nn.Hardswish":
        model.act = torch.nn.Hardswish()
    prepared = prepare_ptq(model, x[:1])
    calibrate(prepared, x.numpy())
    written, native = convert(prepared, "executorch"), convert(prepared, "executorch", hard_swish="native")

    def count(graph, target):
        return sum(1 for n in graph.graph.nodes if n.op == "call_function" and str(n.target) == target)

    assert count(written, "aten.hardswish.default") == 0 and count(native, "aten.hardswish.default") == 1
    swish_clamp = "aten.relu6.default" if act == "blocks.HardSwish" else "aten.hardtanh.default"  # F.relu6 / decompose.py
    assert count(written, swish_clamp) - count(native, swish_clamp) == 1
    assert count(native, "aten.hardtanh.default") == 1  # the conv's ReLU6 stays
    assert count(native, "aten.relu6.default") == 1  # the SE gate's stays
    assert count(written, "aten.mul.Tensor") - count(native, "aten.mul.Tensor") == 2
    assert count(written, "aten.add.Tensor") - count(native, "aten.add.Tensor") == 1
    assert native_hard_swish(native) == 0, "nothing left to re-form"
    out_scale = next(n for n in reversed(list(native.graph.nodes)) if "dequantize_per_tensor" in str(n.target)).args[1]
    with torch.no_grad():
        a, b = written(x).numpy(), native(x).numpy()
    lsb = np.abs(a - b) / out_scale
    assert np.allclose(lsb, np.round(lsb), atol=1e-3), "both on the output's int8 grid"
    assert 0 < lsb.max() <= 4 and (a.argmax(1) == b.argmax(1)).mean() >= 0.95, (lsb.max(), (a.argmax(1) == b.argmax(1)).mean())
