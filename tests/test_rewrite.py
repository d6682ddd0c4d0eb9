"""to_hardware_aware: existing SE modules become the integer-only block with the same weights."""
import pytest
import torch
import torch.nn as nn

from se_edge.blocks import SqueezeExcite, create_attn, to_hardware_aware


class SELayer(nn.Module):
    """The classic SENet form (as in the widely copied `SELayer`)."""

    def __init__(self, channel, reduction=16, gate=nn.Sigmoid):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channel, channel // reduction, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(channel // reduction, channel, bias=False), gate())

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation's structure."""

    def __init__(self, input_channels, squeeze_channels, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, x):
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))

    def forward(self, x):
        return self._scale(x) * x


class Net(nn.Module):
    def __init__(self, se):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.se = se
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        return self.head(self.se(torch.relu(self.conv(x))).mean((2, 3)))


def _spread(linear):
    with torch.no_grad():  # push the gate's input over hard-sigmoid's linear and saturated ranges
        linear.weight.mul_(30)


def test_torchvision_hardsigmoid_se_converts_exactly():
    torch.manual_seed(0)
    net = Net(SqueezeExcitation(32, 8, scale_activation=nn.Hardsigmoid)).eval()
    _spread(net.se.fc2)
    x = torch.randn(4, 3, 16, 16)
    new, report = to_hardware_aware(net, example=x)
    assert isinstance(new.se, SqueezeExcite) and new.se.gate == "hw" and new.se.excitation == "conv"
    assert report.replaced == [{"name": "se", "source": "SqueezeExcitation", "to": "SqueezeExcite(hw)",
                                "gate_from": "hard_sigmoid", "exact": True}]
    assert report.max_abs_deviation < 1e-5
    with torch.no_grad():
        torch.testing.assert_close(new(x), net(x), atol=1e-5, rtol=0)
    assert isinstance(net.se, SqueezeExcitation), "the original model is left alone unless inplace=True"


def test_classic_selayer_converts_and_reports_sigmoid_deviation():
    torch.manual_seed(0)
    net = Net(SELayer(32, reduction=4)).eval()
    x = torch.randn(4, 3, 16, 16)
    new, report = to_hardware_aware(net, example=x)
    assert isinstance(new.se, SqueezeExcite) and new.se.excitation == "linear" and new.se.gate == "hw"
    assert new.se.fc1.bias is None and new.se.fc2.bias is not None, "hw gate's fc2 bias carries +3"
    assert report.replaced[0]["source"] == "SELayer" and not report.exact
    with torch.no_grad():
        dev = (new(x) - net(x)).abs().max().item()
    assert report.max_abs_deviation == pytest.approx(dev)
    assert 0 < dev < 0.5, "hard-sigmoid approximates sigmoid: close, not equal"


def test_classic_selayer_with_hardsigmoid_is_exact():
    torch.manual_seed(1)
    net = Net(SELayer(32, reduction=4, gate=nn.Hardsigmoid)).eval()
    _spread(net.se.fc[2])
    x = torch.randn(3, 3, 8, 8)
    new, report = to_hardware_aware(net, example=x)
    assert report.exact and report.max_abs_deviation < 1e-5


def test_nested_and_own_blocks():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 16, 1), SqueezeExcite(16, gate="hard_sigmoid"),
                          nn.Sequential(SqueezeExcitation(16, 8)), SqueezeExcite(16, gate="hw"))
    new, report = to_hardware_aware(model, example=torch.randn(2, 3, 8, 8))
    assert [r["name"] for r in report.replaced] == ["1", "2.0"]
    assert all(m.gate == "hw" for m in new.modules() if isinstance(m, SqueezeExcite))


@pytest.mark.parametrize("name", ["se", "se_hs", "se_hw", "se_max_hw", "se_avgmax_hw", "se_s2_hw", "eca", "eca_hw",
                                  "cbam", "cbam_hw"])
def test_create_attn(name):
    block = create_attn(name, 64)
    x = torch.rand(2, 64, 7, 7)
    assert block(x).shape == x.shape


def test_create_attn_unknown_and_none():
    assert create_attn(None, 8) is None
    with pytest.raises(ValueError, match="unknown attention block 'se_swish'; valid: se, se_hs"):
        create_attn("se_swish", 8)


def test_hw_eca_and_cbam_match_hard_sigmoid_forms():
    torch.manual_seed(3)
    from se_edge.blocks import CbamModule, EcaModule
    from se_edge.blocks.gates import regate

    x = torch.randn(2, 32, 6, 6)
    eca = EcaModule(32, gate="hw")
    eca_hs = EcaModule(32, gate="hard_sigmoid")
    eca_hs.conv.bias = nn.Parameter(torch.zeros(1))
    eca_hs.conv.load_state_dict(eca.conv.state_dict())
    regate(eca_hs.conv, "hw", "hard_sigmoid")
    with torch.no_grad():
        torch.testing.assert_close(eca(x), eca_hs(x), atol=1e-6, rtol=0)
    cbam = CbamModule(32, gate="hw")
    cbam_hs = CbamModule(32, gate="hard_sigmoid")
    cbam_hs.load_state_dict(cbam.state_dict())
    regate(cbam_hs.channel.fc2, "hw", "hard_sigmoid", paths=2)
    regate(cbam_hs.spatial.conv, "hw", "hard_sigmoid")
    with torch.no_grad():
        torch.testing.assert_close(cbam(x), cbam_hs(x), atol=1e-5, rtol=0)


def test_silu_is_rewritten_only_when_asked_and_hardswish_is_counted():
    """EfficientNet's SiLU -> nn.Hardswish (opt-in, not exact: the deviation is reported); hard-swish
    stays native in float (the quantizer writes it out for int8) and is counted."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.SiLU(), nn.Conv2d(8, 8, 1), nn.Hardswish(), nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 3, 9, 9)
    kept, report = to_hardware_aware(model, x)
    assert report.replaced == [] and isinstance(kept[1], nn.SiLU)
    assert report.native_activations == {"Hardswish": 1}
    new, report = to_hardware_aware(model, x, silu=True)
    assert report.replaced == [{"name": "1", "source": "SiLU", "to": "Hardswish", "exact": False}]
    assert isinstance(new[1], nn.Hardswish) and isinstance(model[1], nn.SiLU), "the original is untouched"
    assert 0 < report.max_abs_deviation < 1.0 and not report.exact
