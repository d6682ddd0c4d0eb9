"""Graph purity of exports, counted from the files and from the runtimes that load them: the hw gate
stays int8 and inside the XNNPACK delegate of LiteRT and ExecuTorch, and the toolchains' known
behaviour for the other forms is pinned so a change in them is noticed."""
import pytest
import torch

from se_edge.evaluate.structure import pte_graph, tflite_delegation, tflite_graph
from se_edge.evaluate.vela import vela_executable, vela_report
from se_edge.export import export_pte, export_tflite
from se_edge.models import create_model
from se_edge.quantize import convert, prepare_qat
from se_edge.quantize.qat import set_eval


@pytest.fixture(scope="module")
def int8_exports(tmp_path_factory):
    """int8 .tflite and .pte (and, for the hw gates, the fp32 .tflite) of a small SE CNN per gate
    (QAT-prepared, ranges from random data; no .pte for hw_clamp, whose tests read only its .tflite files).
    `hard_sigmoid_stock`: F.hardsigmoid quantised as the
    XNNPACK quantizer alone does, without se_edge's rewrite of hard activations."""
    out = {}
    for name in ("hw", "hw_clamp", "hard_sigmoid", "hard_sigmoid_stock", "sigmoid"):
        gate = name.removesuffix("_stock")
        torch.manual_seed(0)
        model = create_model("se_cnn", num_classes=10, in_chans=1, widths=(16, 32), se=gate)
        prepared = prepare_qat(model, torch.randn(2, 1, 32, 32), delegable_activations=name == gate)
        with torch.no_grad():
            prepared(torch.randn(16, 1, 32, 32))  # observers see data
        set_eval(prepared)
        d = tmp_path_factory.mktemp(name)
        sample = torch.randn(1, 1, 32, 32)
        out[name] = (export_tflite(convert(prepared, "litert"), sample, d / "m.tflite", quantized=True),
                     export_pte(convert(prepared, "executorch"), sample, d / "m.pte") if name != "hw_clamp" else None,
                     export_tflite(model.eval(), sample, d / "m_fp32.tflite", quantized=False)
                     if gate.startswith("hw") else None)
    return out


def test_hw_gate_tflite_is_all_int8(int8_exports):
    g = tflite_graph(int8_exports["hw"][0])
    assert g["float_islands"] == 0 and g["float_ops"] == 0, g
    assert "DEQUANTIZE" not in g["ops"] and "QUANTIZE" not in g["ops"], g["ops"]
    # the SE squeeze is a MEAN, the gate's scale a MUL; no LOGISTIC or HARD_SWISH anywhere
    assert g["ops"]["MEAN"] == 3 and g["ops"]["MUL"] >= 2, g["ops"]
    assert g["ops"]["CONV_2D"] >= 4


def test_hw_gate_runs_inside_litert_xnnpack_in_fp32_and_int8(int8_exports):
    """One XNNPACK partition, nothing outside, as ai-edge-litert loads the files."""
    for path in (int8_exports["hw"][0], int8_exports["hw"][2]):
        assert tflite_delegation(path) == {"partitions": 1, "delegates": {"XNNPACK": 1}, "non_delegated_ops": 0,
                                           "non_delegated": {}}, path.name
    assert tflite_graph(int8_exports["hw"][0])["non_delegated_ops"] == 0  # the same, in the graph summary


def test_litert_xnnpack_refuses_relu_0_to_1(int8_exports):
    """Negative: hardtanh(z, 0, 1) (the hw_clamp gate) becomes RELU_0_TO_1, int8 and float-island free,
    yet LiteRT's XNNPACK delegate takes it in neither fp32 nor int8: one op outside per SE block."""
    int8, _, fp32 = int8_exports["hw_clamp"]
    g = tflite_graph(int8)
    assert g["float_islands"] == 0 and g["ops"]["RELU_0_TO_1"] == 2, g
    for path in (int8, fp32):
        d = tflite_delegation(path)
        assert d["non_delegated"] == {"RELU_0_TO_1": 2} and d["partitions"] == 3, (path.name, d)


def test_litert_xnnpack_refuses_int8_hard_swish(tmp_path):
    """Negative: a native int8 HARD_SWISH (quantised without se_edge's rewrite) runs outside LiteRT's
    XNNPACK delegate; the fp32 HARD_SWISH and the written-out int8 form run inside."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Hardswish(),
                                torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.Hardswish(), torch.nn.Conv2d(8, 4, 1))
    sample = torch.randn(1, 1, 16, 16)
    files = {}
    for delegable in (False, True):
        prepared = prepare_qat(model, torch.randn(2, 1, 16, 16), delegable_activations=delegable)
        with torch.no_grad():
            prepared(torch.randn(8, 1, 16, 16))
        set_eval(prepared)
        files[delegable] = export_tflite(convert(prepared, "litert"), sample, tmp_path / f"hs_{delegable}.tflite", quantized=True)
    native = tflite_graph(files[False])
    assert native["ops"]["HARD_SWISH"] == 2 and native["non_delegated"] == {"HARD_SWISH": 2}, native
    written_out = tflite_graph(files[True])
    assert "HARD_SWISH" not in written_out["ops"] and written_out["ops"]["MUL"] >= 4, written_out["ops"]
    assert written_out["partitions"] == 1 and written_out["non_delegated_ops"] == 0, written_out
    fp32 = tflite_delegation(export_tflite(model.eval(), sample, tmp_path / "hs_fp32.tflite", quantized=False))
    assert fp32["partitions"] == 1 and fp32["non_delegated_ops"] == 0, fp32


def test_hw_gate_pte_is_one_xnnpack_partition(int8_exports):
    g = pte_graph(int8_exports["hw"][1])
    assert g == {"partitions": 1, "delegates": {"XnnpackBackend": 1}, "non_delegated_ops": 0, "non_delegated": {}}


def test_stock_hard_sigmoid_gate_leaves_float_islands_in_tflite(int8_exports):
    """Without se_edge's rewrite, F.hardsigmoid lowers to DEQUANTIZE -> ADD -> MUL -> QUANTIZE per SE block."""
    g = tflite_graph(int8_exports["hard_sigmoid_stock"][0])
    assert g["float_islands"] == 2, g
    assert g["ops"]["DEQUANTIZE"] == 2 and g["ops"]["QUANTIZE"] == 2, g["ops"]


def test_stock_hard_sigmoid_gate_leaves_ops_outside_xnnpack(int8_exports):
    g = pte_graph(int8_exports["hard_sigmoid_stock"][1])
    assert g["non_delegated_ops"] > 0, g


def test_rewritten_hard_sigmoid_gate_is_int8_and_delegated(int8_exports):
    """se_edge's quantizer writes F.hardsigmoid out (ADD, RELU6, MUL): no island, one partition each."""
    tfl, pte = tflite_graph(int8_exports["hard_sigmoid"][0]), pte_graph(int8_exports["hard_sigmoid"][1])
    assert tfl["float_islands"] == 0 and tfl["partitions"] == 1 and tfl["non_delegated_ops"] == 0, tfl
    assert pte["partitions"] == 1 and pte["non_delegated_ops"] == 0, pte


def test_sigmoid_gate_is_int8_logistic(int8_exports):
    """The quantizer does not annotate sigmoid, yet both converters keep it int8 (LOGISTIC)."""
    g = tflite_graph(int8_exports["sigmoid"][0])
    assert g["float_islands"] == 0 and g["ops"].get("LOGISTIC") == 2, g
    assert pte_graph(int8_exports["sigmoid"][1])["non_delegated_ops"] == 0


@pytest.mark.skipif(vela_executable() is None, reason="ethos-u-vela is not installed")
def test_npu_keeps_the_hw_gate_and_hands_hard_sigmoid_to_the_cpu(int8_exports):
    """Arm's Ethos-U compiler: the hw gates stay on the NPU; each F.hardsigmoid SE block's float
    island (DEQUANTIZE, ADD, MUL, QUANTIZE) goes back to the CPU."""
    hw = vela_report(int8_exports["hw"][0])
    assert vela_report(int8_exports["hw_clamp"][0])["cpu_ops"] == 0
    hs = vela_report(int8_exports["hard_sigmoid_stock"][0])
    assert hw["cpu_ops"] == 0, hw["cpu_op_list"]
    assert hs["cpu_ops"] >= 2 * 4, hs["cpu_op_list"]
