import pytest
import torch
import torch.nn.functional as F

from se_edge.blocks import GATES, HardSigmoid, HardSwish, SqueezeExcite, make_divisible


def reference_hard_sigmoid_se(se: SqueezeExcite, x: torch.Tensor) -> torch.Tensor:
    """The textbook hard-sigmoid SE, written out with F.hardsigmoid."""
    s = x.mean((2, 3), keepdim=True)
    return x * F.hardsigmoid(se.fc2(F.relu(se.fc1(s))))


def test_hw_gate_equals_hardsigmoid_se_in_float():
    torch.manual_seed(0)
    hs = SqueezeExcite(32, gate="hard_sigmoid").eval()
    with torch.no_grad():  # spread fc2's output over hard-sigmoid's linear and saturated ranges
        hs.fc2.bias.copy_(torch.linspace(-6, 6, 32))
    hw = hs.with_gate("hw")
    x = torch.randn(4, 32, 7, 7)
    with torch.no_grad():
        expected = reference_hard_sigmoid_se(hs, x)
        z = hs.fc2(F.relu(hs.fc1(x.mean((2, 3), keepdim=True))))
        assert (z < -3).any() and (z > 3).any() and ((z > -3) & (z < 3)).any(), "test must cover all three regimes"
        torch.testing.assert_close(hs(x), expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(hw(x), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(hs.with_gate("hw_clamp")(x), expected, atol=1e-5, rtol=0)
    # hw: the +3 lives in fc2's bias, the /6 is the gate's MUL; hw_clamp: both live in fc2
    torch.testing.assert_close(hw.fc2.bias, hs.fc2.bias + 3)
    torch.testing.assert_close(hw.fc2.weight, hs.fc2.weight)
    clamp = hs.with_gate("hw_clamp")
    torch.testing.assert_close(clamp.fc2.bias, (hs.fc2.bias + 3) / 6)
    torch.testing.assert_close(clamp.fc2.weight, hs.fc2.weight / 6)


def test_hw_gate_default_init_matches_hard_sigmoid_init():
    torch.manual_seed(1)
    hw = SqueezeExcite(16, gate="hw")
    torch.manual_seed(1)
    hs = SqueezeExcite(16, gate="hard_sigmoid")
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(hw(x), hs(x), atol=1e-6, rtol=0)


def test_round_trip_between_gates_keeps_function():
    torch.manual_seed(2)
    se = SqueezeExcite(24, gate="hw")
    x = torch.randn(3, 24, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(se.with_gate("hard_sigmoid").with_gate("hw")(x), se(x))
        torch.testing.assert_close(se.with_gate("hw_clamp").with_gate("hw")(x), se(x))


def test_hard_activations_equal_pytorch_functions():
    """The delegable forms compute F.hardswish / F.hardsigmoid in float, over the linear and both
    saturated ranges, on 4-D (constants as buffers) and 2-D (scalars) inputs."""
    x4 = torch.linspace(-8, 8, 2 * 3 * 5 * 7).reshape(2, 3, 5, 7)
    for x in (x4, x4.reshape(6, 35)):
        assert (x < -3).any() and (x > 3).any() and ((x > -3) & (x < 3)).any()
        torch.testing.assert_close(HardSwish()(x), F.hardswish(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(HardSigmoid()(x), F.hardsigmoid(x), atol=1e-5, rtol=0)
    assert HardSwish().state_dict() == {}, "constants are not checkpoint keys"


def test_graph_decomposition_equals_hardswish_and_hardsigmoid():
    """The quantizer's rewrite of F.hardswish / F.hardsigmoid calls in an exported graph."""
    from se_edge.quantize.decompose import decompose_hard_activations

    class Calls(torch.nn.Module):
        def forward(self, x):
            return F.hardswish(x) + F.hardsigmoid(x).flatten(1).sum(1, keepdim=True).unsqueeze(-1).unsqueeze(-1)

    x = torch.linspace(-8, 8, 2 * 4 * 3 * 3).reshape(2, 4, 3, 3)
    gm = torch.export.export(Calls(), (x,)).module()
    assert decompose_hard_activations(gm) == 2
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert not any("hardswish" in t or "hardsigmoid" in t for t in targets), targets
    consts = [b for name, b in gm.named_buffers() if name.startswith("_se_edge_const_")]
    assert len(consts) == 4 and all(c.shape == (1, 1, 1, 1) for c in consts)
    torch.testing.assert_close(gm(x), Calls()(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("gate", GATES)
def test_gate_output_range_and_shape(gate):
    se = SqueezeExcite(8, gate=gate)
    x = torch.rand(2, 8, 3, 3)
    y = se(x)
    assert y.shape == x.shape
    assert (y >= 0).all() and (y <= x + 1e-6).all(), "a gate in [0, 1] can only shrink non-negative inputs"


def test_unknown_gate_names_valid_ones():
    with pytest.raises(ValueError, match="valid: hw, hw_clamp, hard_sigmoid, sigmoid"):
        SqueezeExcite(8, gate="swish")


def test_make_divisible():
    assert make_divisible(32 * 0.25) == 8
    assert make_divisible(37, 8) == 40
    assert make_divisible(3, 8) == 8
    assert make_divisible(100 * 0.25, 8) == 24  # 24 >= 0.9 * 25


def test_models_take_an_attention_layer_from_the_block_factory():
    """timm's `attn_layer`: any zoo model takes a name from ATTN_LAYERS, a class or a factory, so a new SE variant
    is one entry in the factory; without it, the SE of `se=` exactly as before (same modules, same state dict)."""
    from functools import partial

    from se_edge.blocks import ATTN_LAYERS, SqueezeExcite
    from se_edge.blocks.eca import EcaModule
    from se_edge.models import create_model

    for name in ("se_cnn", "se_resnet18", "se_mobilenetv3_small"):
        default = create_model(name, num_classes=10, in_chans=3, stem="small")
        assert [type(m) for m in default.modules() if isinstance(m, SqueezeExcite)], name
        same = create_model(name, num_classes=10, in_chans=3, stem="small", attn_layer=None)
        assert same.state_dict().keys() == default.state_dict().keys()
        eca = create_model(name, num_classes=10, in_chans=3, stem="small", attn_layer="eca_hw")
        kinds = {type(m) for m in eca.modules()}
        assert EcaModule in kinds and SqueezeExcite not in kinds, (name, kinds)
        assert eca(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    ATTN_LAYERS["se_test_max"] = partial(SqueezeExcite, gate="hw", squeeze="max")  # the one line a variant takes
    try:
        model = create_model("se_cnn", num_classes=10, in_chans=1, attn_layer="se_test_max")
        assert {m.squeeze for m in model.modules() if isinstance(m, SqueezeExcite)} == {"max"}
    finally:
        del ATTN_LAYERS["se_test_max"]
