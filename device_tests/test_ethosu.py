"""`se-edge export --target ethos-u55-128` through ExecuTorch's Arm backend and Vela (make ethosu-test).
Skips where .venv-ethosu (make ethosu-venv) is missing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from se_edge.export.ethosu import VENV


def test_the_ethos_u_pte_is_made_and_says_where_its_ops_run(run_dir, tmp_path):
    if not (VENV / "bin" / "python").is_file():
        pytest.skip(f"{VENV} missing (make ethosu-venv)")
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "export", "--run", str(copy), "--target",
                           "ethos-u55-128"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    report = json.loads((copy / "ethosu.json").read_text())
    data = (copy / "model_int8_ethosu.pte").read_bytes()
    assert data[4:6] == b"ET" and report["size_bytes"] == len(data)
    assert report["partitions"] >= 1 and report["ops_on_npu"] > report["ops_on_cpu"], report
    assert report["npu_ops"].get("aten.convolution.default", 0) >= 1 and report["vela_summary"], report
    # The hw SE gates' ReLU6 runs on the NPU (written as the hardtanh the Arm quantizer annotates): the CPU keeps
    # only the input's QUANTIZE and the output's DEQUANTIZE.
    assert report["relu6_as_hardtanh"] >= 1, report
    assert set(report["cpu_ops"]) <= {"quantized_decomposed.quantize_per_tensor.default",
                                      "quantized_decomposed.dequantize_per_tensor.default"}, report["cpu_ops"]
    # An artifact of the run like the others: in its lineage (made from float.pt), and in its report's artifact
    # table with the partitions and CPU ops read from the file and the NPU ops the export placed.
    from se_edge.run import Run

    assert Run(copy).require("ethosu_int8").stat().st_size == len(data)
    if (copy / "report.json").is_file():
        row = json.loads((copy / "report.json").read_text())["artifacts"]["ethosu_int8"]
        assert row["graph"]["partitions"] == report["partitions"] and row["graph"]["delegates"] == {"EthosUBackend": 1}
        assert row["graph"]["npu_ops"] == report["npu_ops"] and row["accuracy"] is None, row
        assert "| ethosu_int8 | executorch | int8 |" in (copy / "report.md").read_text()
