"""Graph purity of int8 exports, counted from the files: the hw gate stays int8 and delegated,
and the toolchains' known behaviour for the other gates is pinned so a change in them is noticed."""
import pytest
import torch

from se_edge.export import export_pte, export_tflite
from se_edge.graph import pte_graph, tflite_graph
from se_edge.npu import vela_executable, vela_report
from se_edge.models import create_model
from se_edge.quantize import convert, prepare_qat
from se_edge.quantize.qat import set_eval


@pytest.fixture(scope="module")
def int8_exports(tmp_path_factory):
    """int8 .tflite and .pte of a small SE CNN per gate (QAT-prepared, ranges from random data)."""
    out = {}
    for gate in ("hw", "hard_sigmoid", "sigmoid"):
        torch.manual_seed(0)
        model = create_model("se_cnn", num_classes=10, in_chans=1, widths=(16, 32), se=gate)
        prepared = prepare_qat(model, torch.randn(2, 1, 32, 32))
        with torch.no_grad():
            prepared(torch.randn(16, 1, 32, 32))  # observers see data
        set_eval(prepared)
        d = tmp_path_factory.mktemp(gate)
        sample = torch.randn(1, 1, 32, 32)
        out[gate] = (export_tflite(convert(prepared, "litert"), sample, d / "m.tflite", quantized=True),
                     export_pte(convert(prepared, "executorch"), sample, d / "m.pte"))
    return out


def test_hw_gate_tflite_is_all_int8(int8_exports):
    g = tflite_graph(int8_exports["hw"][0])
    assert g["float_islands"] == 0 and g["float_ops"] == 0, g
    assert "DEQUANTIZE" not in g["ops"] and "QUANTIZE" not in g["ops"], g["ops"]
    # the SE squeeze is a MEAN, the gate's scale a MUL; no LOGISTIC or HARD_SWISH anywhere
    assert g["ops"]["MEAN"] == 3 and g["ops"]["MUL"] >= 2, g["ops"]
    assert g["ops"]["CONV_2D"] >= 4


def test_hw_gate_pte_is_one_xnnpack_partition(int8_exports):
    g = pte_graph(int8_exports["hw"][1])
    assert g == {"partitions": 1, "delegates": {"XnnpackBackend": 1}, "non_delegated_ops": 0, "non_delegated": {}}


def test_hard_sigmoid_gate_leaves_float_islands_in_tflite(int8_exports):
    """F.hardsigmoid lowers to DEQUANTIZE -> ADD -> MUL -> QUANTIZE per SE block."""
    g = tflite_graph(int8_exports["hard_sigmoid"][0])
    assert g["float_islands"] == 2, g
    assert g["ops"]["DEQUANTIZE"] == 2 and g["ops"]["QUANTIZE"] == 2, g["ops"]


def test_hard_sigmoid_gate_leaves_ops_outside_xnnpack(int8_exports):
    g = pte_graph(int8_exports["hard_sigmoid"][1])
    assert g["non_delegated_ops"] > 0, g


def test_sigmoid_gate_is_int8_logistic(int8_exports):
    """The quantizer does not annotate sigmoid, yet both converters keep it int8 (LOGISTIC)."""
    g = tflite_graph(int8_exports["sigmoid"][0])
    assert g["float_islands"] == 0 and g["ops"].get("LOGISTIC") == 2, g
    assert pte_graph(int8_exports["sigmoid"][1])["non_delegated_ops"] == 0


@pytest.mark.skipif(vela_executable() is None, reason="ethos-u-vela is not installed")
def test_npu_keeps_the_hw_gate_and_hands_hard_sigmoid_to_the_cpu(int8_exports):
    """Arm's Ethos-U compiler: the hw gate stays on the NPU; each F.hardsigmoid SE block's float
    island (DEQUANTIZE, ADD, MUL, QUANTIZE) goes back to the CPU."""
    hw = vela_report(int8_exports["hw"][0])
    hs = vela_report(int8_exports["hard_sigmoid"][0])
    assert hw["cpu_ops"] == 0, hw["cpu_op_list"]
    assert hs["cpu_ops"] >= 2 * 4, hs["cpu_op_list"]
