"""The Python API: the README's snippet runs as written; `import se_edge` is curated and light."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_snippet() -> str:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's Python section has a python block"
    return blocks[0]


def test_readme_python_snippet_runs_as_written(tmp_path, monkeypatch):
    """The snippet as a user pastes it into a script, run in this interpreter (a fresh one would import the stack and
    trace torchao's pattern graphs again: half a minute of this test on one core)."""
    import contextlib
    import io

    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_python_snippet(), str(README), "exec"), {"__name__": "__main__"})
    stdout = out.getvalue()
    assert re.search(r"rewrite: 3 SE blocks replaced, max output change \S+", stdout), stdout
    agreements = [float(v) for v in re.findall(r"agreement with the PyTorch int8 reference ([0-9.]+)", stdout)]
    assert len(agreements) == 2 and min(agreements) >= 0.98, stdout
    assert (tmp_path / "se_cnn_int8.tflite").stat().st_size > 0 and (tmp_path / "se_cnn_int8.pte").stat().st_size > 0


def test_public_names_resolve_and_import_se_edge_is_light():
    probe = subprocess.run([sys.executable, "-c", "import sys, se_edge; print('torch' in sys.modules, len(se_edge.__all__))"],
                           capture_output=True, text=True)
    assert probe.stdout.split() == ["False", str(len(__import__("se_edge").__all__))], probe.stderr
    import se_edge

    for name in se_edge.__all__:
        assert getattr(se_edge, name) is not None, name
    assert {"to_hardware_aware", "to_int8", "check_parity", "run", "RunConfig", "QatConfig", "SqueezeExcite"} <= set(se_edge.__all__)
    with pytest.raises(AttributeError):
        se_edge.not_a_name


def test_api_errors_are_one_line_value_errors():
    import numpy as np
    import torch

    import se_edge

    model = se_edge.create_model("se_cnn", num_classes=10, in_chans=1)
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\)"):
        se_edge.to_int8(model, np.zeros((4, 32, 32), np.float32))
    with pytest.raises(ValueError, match="QAT needs labels"):
        se_edge.to_int8(model, np.zeros((4, 1, 32, 32), np.float32), qat=se_edge.QatConfig(epochs=1))
    with pytest.raises(ValueError, match="unknown suffix '.onnx'; valid: .tflite, .pte"):
        se_edge.export_float(model, torch.zeros(1, 1, 32, 32), "m.onnx")
