"""The QAT recipe: distillation from the float model, and the freeze schedule."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from se_edge.data import ImageSet
from se_edge.models import create_model
from se_edge.quantize import QatConfig, prepare_qat, qat_finetune
from se_edge.quantize.qat import distillation_loss

from conftest import assert_one_line_error, cli, se_edge


class _Fixed(torch.nn.Module):
    """A 'teacher' whose logits are given."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_distillation_loss_is_kl_to_the_teacher_mixed_with_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen)
    labels = torch.randint(0, 10, (8,), generator=gen)
    images = torch.zeros(8, 1, 4, 4)
    assert distillation_loss(_Fixed(teacher))(teacher, labels, images).item() == pytest.approx(0.0, abs=1e-6)
    kl = (F.softmax(teacher, 1) * (F.log_softmax(teacher, 1) - F.log_softmax(student, 1))).sum(1).mean()
    assert distillation_loss(_Fixed(teacher))(student, labels, images).item() == pytest.approx(kl.item(), rel=1e-5)
    mixed = distillation_loss(_Fixed(teacher), weight=0.25)(student, labels, images)
    assert mixed.item() == pytest.approx(0.25 * kl.item() + 0.75 * F.cross_entropy(student, labels).item(), rel=1e-5)
    t = 4.0
    kl_t = (F.softmax(teacher / t, 1) * (F.log_softmax(teacher / t, 1) - F.log_softmax(student / t, 1))).sum(1).mean()
    soft = distillation_loss(_Fixed(teacher), temperature=t)(student, labels, images)
    assert soft.item() == pytest.approx(t * t * kl_t.item(), rel=1e-5)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 1, 16, 16)).astype(np.float32)
    y = (x[:, 0, :8].mean((1, 2)) > 0).astype(np.int64)
    model = create_model("se_cnn", num_classes=2, in_chans=1, widths=(8, 16), stem_width=8)
    return model, ImageSet(x[:64], y[:64]), ImageSet(x[64:], y[64:])


def _observers(prepared):
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    return [m for m in prepared.modules() if isinstance(m, FakeQuantizeBase)]


def _bn_stats(prepared):
    return {k: v.clone() for k, v in prepared.state_dict().items() if k.endswith(("running_mean", "running_var"))}


def _finetune(monkeypatch, model, train, val, **options):
    from se_edge.quantize import qat

    teacher = copy.deepcopy(model)
    prepared = prepare_qat(copy.deepcopy(model), torch.from_numpy(train.x[:2]))
    cfg = QatConfig(epochs=2, batch_size=32, augment=False, progress=False, device="cpu", **options)
    seen = {}

    def snapshot(epoch):  # state at the start of each epoch, taken after the schedule's own hook
        seen[epoch] = (_bn_stats(prepared), [int(o.observer_enabled[0]) for o in _observers(prepared)])

    original = qat.fit

    def fit(*args, on_epoch_start=None, **kwargs):
        def hook(epoch):
            on_epoch_start(epoch)
            snapshot(epoch)
        return original(*args, on_epoch_start=hook, **kwargs)

    monkeypatch.setattr(qat, "fit", fit)
    qat_finetune(prepared, train, val, cfg, teacher=teacher)
    return prepared, seen


def test_schedule_freezes_observers_then_batch_norm(tiny, monkeypatch):
    model, train, val = tiny
    prepared, seen = _finetune(monkeypatch, model, train, val, freeze_bn_after=1, freeze_observers_after=1)
    assert set(seen[0][1]) == {1} and set(seen[1][1]) == {0}  # observers on in epoch 0, off from epoch 1
    end = _bn_stats(prepared)
    assert end and any(not torch.equal(seen[0][0][k], seen[1][0][k]) for k in end)  # epoch 0 updated them
    assert all(torch.equal(seen[1][0][k], end[k]) for k in end)  # frozen through epoch 1


def test_default_recipe_trains_weights_on_the_calibrated_grid(tiny, monkeypatch):
    model, train, val = tiny
    float_stats = [v for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))]
    prepared, seen = _finetune(monkeypatch, model, train, val)
    assert set(seen[0][1]) == {0}  # ranges calibrated before training, then fixed
    scales = [o.scale.clone() for o in _observers(prepared)]
    assert all(s.numel() and torch.all(s > 0) and not torch.all(s == 1) for s in scales)  # calibrated, not initial
    end = sorted(v.sum().item() for v in _bn_stats(prepared).values())
    assert end == pytest.approx(sorted(v.sum().item() for v in float_stats))  # the float model's statistics
    before = sorted(v.sum().item() for k, v in model.state_dict().items() if k.endswith("weight") and v.dim() == 4)
    after = sorted(v.sum().item() for k, v in prepared.state_dict().items() if k.endswith("weight") and v.dim() == 4)
    assert len(before) == len(after) and before != pytest.approx(after)  # the weights did train


def test_without_a_schedule_nothing_freezes(tiny, monkeypatch):
    model, train, val = tiny
    prepared, seen = _finetune(monkeypatch, model, train, val, freeze_bn_after=None, freeze_observers_after=None, distill=0.0)
    assert set(seen[1][1]) == {1} and set(int(o.observer_enabled[0]) for o in _observers(prepared)) == {1}
    end = _bn_stats(prepared)
    assert any(not torch.equal(seen[1][0][k], end[k]) for k in end)


def test_distillation_needs_the_float_model(tiny):
    model, train, val = tiny
    prepared = prepare_qat(copy.deepcopy(model), torch.from_numpy(train.x[:2]))
    with pytest.raises(ValueError, match="teacher"):
        qat_finetune(prepared, train, val, QatConfig(epochs=1, progress=False, device="cpu"))


@pytest.mark.parametrize("value", ["-0.1", "1.5", "much"])
def test_distill_weight_is_checked(value):
    assert_one_line_error(cli("run", "--distill", value), "--distill")


def test_calibration_images_zero_needs_no_ptq():
    assert_one_line_error(cli("run", "--calibration-images", "0"), "--calibration-images 0", "--no-ptq")
    assert_one_line_error(cli("run", "--freeze-bn-after", "-1"), "--freeze-bn-after")


def test_torchaos_pattern_graphs_are_traced_once_and_give_the_same_int8_graph():
    """quantize/patterns.py: convert_pt2e's ~100 conv/bn pattern graphs come from a per-process cache; the graph
    it converts to, and what that graph computes, are the same as with every pattern traced anew."""
    import contextlib

    from se_edge.quantize import patterns
    from se_edge.quantize.convert import convert

    torch.manual_seed(0)
    model = create_model("se_cnn", num_classes=10, in_chans=1, widths=(8, 16), stem_width=8).eval()
    prepared = prepare_qat(model, torch.randn(2, 1, 16, 16))
    with torch.no_grad():
        prepared(torch.randn(8, 1, 16, 16))
    cached = convert(prepared)
    before = dict(patterns.stats)
    again = convert(prepared)
    assert patterns.stats["reused"] - before["reused"] >= 50 and patterns.stats["traced"] == before["traced"]
    saved = patterns.traced_once
    patterns.traced_once = contextlib.nullcontext  # every pattern traced by torchao itself
    try:
        fresh = convert(prepared)
    finally:
        patterns.traced_once = saved
    x = torch.randn(4, 1, 16, 16)
    assert str(cached.graph) == str(fresh.graph) == str(again.graph)
    assert torch.equal(cached(x), fresh(x)) and torch.equal(again(x), fresh(x))
    from torchao.quantization.pt2e import qat_utils

    assert not hasattr(qat_utils._get_aten_graph_module_for_pattern, "_se_edge_original"), "restored after use"
