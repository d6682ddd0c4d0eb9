"""Mixed precision (quantize/mixed.py) on a small model where the answer is known."""
import copy

import pytest
import torch
import torch.nn as nn

from se_edge.errors import SeEdgeError
from se_edge.quantize import prepare_qat
from se_edge.quantize.convert import convert
from se_edge.quantize.mixed import keep_float, mixed_precision, parse_names
from se_edge.quantize.qat import set_eval


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.b(self.a(x)).mean((2, 3)))


def _prepared():
    torch.manual_seed(0)
    model = Tiny()
    for bn in (model.a[1], model.b[1]):  # batch norms with statistics far from identity, so a wrong fold shows
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.randn(16, 1, 8, 8)
    prepared = prepare_qat(model, x)  # traces the model in training form
    model.eval()
    set_eval(prepared)
    with torch.no_grad():
        prepared(x)
    return model, prepared, x


def _float_weight_convs(graph_module) -> list[str]:
    """The convs of a converted graph whose weight is not dequantised from int8."""
    return [n.name for n in graph_module.graph.nodes if str(n.target) == "aten.conv2d.default"
            and "dequantize" not in str(getattr(n.args[1], "target", ""))]


def test_keep_float_leaves_the_named_layer_in_float_with_its_batch_norm_folded():
    from torchao.quantization.pt2e.fake_quantize import disable_fake_quant

    model, prepared, x = _prepared()
    mixed, kept = mixed_precision(prepared, ["a.0"], x.numpy())
    assert kept.folded_batch_norms == ["a.1"] and len(kept.recalibrate) == 1 and len(kept.removed_observers) == 1
    assert any(n.startswith("relu") for n in kept.nodes["a.0"]), kept.nodes  # the conv's activation belongs to it
    # Folding is exact: with every fake-quant off, the mixed graph computes the float model.
    plain = copy.deepcopy(mixed)
    plain.apply(disable_fake_quant)
    with torch.no_grad():
        assert torch.allclose(plain(x), model(x), atol=1e-5)
    # Converted, the kept conv reads a float weight; the other conv still an int8 one.
    reference = convert(mixed, "executorch")
    assert len(_float_weight_convs(reference)) == 1
    assert len(_float_weight_convs(convert(prepared, "executorch"))) == 0
    # The kept layer's output range was observed anew: it covers what the float layer produces.
    fq = mixed.get_submodule(kept.recalibrate[0])
    with torch.no_grad():
        top = model.a(x).max().item()
    assert float(fq.activation_post_process.max_val) == pytest.approx(top, rel=0.2)


def test_a_mixed_graph_reloads_from_its_state_dict():
    _, prepared, x = _prepared()
    mixed, _ = mixed_precision(prepared, ["b"], x.numpy())
    again = copy.deepcopy(prepared)
    keep_float(again, ["b"])
    again.load_state_dict(mixed.state_dict())  # the same keys: no missing or unexpected tensors
    with torch.no_grad():
        assert torch.equal(again(x), mixed(x))


def test_keep_float_names_are_checked():
    _, prepared, _ = _prepared()
    with pytest.raises(SeEdgeError, match=r"no layer named .c. in the model; valid: module names such as a\.1, a\.0, a\.2, b\.1"):
        keep_float(copy.deepcopy(prepared), ["c"])
    assert parse_names("a.0, b") == ["a.0", "b"]
    for bad in ("", "a.0,", ",b"):
        with pytest.raises(SeEdgeError, match="module names separated by commas"):
            parse_names(bad)
