import pytest
import torch
import torch.nn.functional as F

from se_edge.blocks import GATES, SqueezeExcite, make_divisible


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
    # the +3 and the /6 live in fc2's parameters, not in the graph
    torch.testing.assert_close(hw.fc2.bias, (hs.fc2.bias + 3) / 6)
    torch.testing.assert_close(hw.fc2.weight, hs.fc2.weight / 6)


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


@pytest.mark.parametrize("gate", GATES)
def test_gate_output_range_and_shape(gate):
    se = SqueezeExcite(8, gate=gate)
    x = torch.rand(2, 8, 3, 3)
    y = se(x)
    assert y.shape == x.shape
    assert (y >= 0).all() and (y <= x + 1e-6).all(), "a gate in [0, 1] can only shrink non-negative inputs"


def test_unknown_gate_names_valid_ones():
    with pytest.raises(ValueError, match="valid: hw, hard_sigmoid, sigmoid"):
        SqueezeExcite(8, gate="swish")


def test_make_divisible():
    assert make_divisible(32 * 0.25) == 8
    assert make_divisible(37, 8) == 40
    assert make_divisible(3, 8) == 8
    assert make_divisible(100 * 0.25, 8) == 24  # 24 >= 0.9 * 25
