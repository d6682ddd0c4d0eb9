"""Bring your own model: model specs, strict weights, and a user's file through the whole pipeline."""
import importlib.util
import json
import os
import pickle

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, cli, se_edge
from user_model_source import SOURCE

from se_edge.errors import SeEdgeError
from se_edge.models.sources import ModelSpec
from se_edge.models.weights import load_weights


@pytest.fixture(scope="module")
def user_model(tmp_path_factory):
    """A user's model file outside the repo, trained briefly on digits, saved as a state dict."""
    home = tmp_path_factory.mktemp("user_project")
    path = home / "tiny_se_mobilenet.py"
    path.write_text(SOURCE)
    spec = importlib.util.spec_from_file_location("tiny_se_mobilenet_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from se_edge.data import load_splits

    splits = load_splits("digits", size=32, in_chans=3)
    torch.manual_seed(0)
    model = module.build(num_classes=10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    model.train()
    for step in range(120):
        idx = torch.randint(0, len(x), (64,))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(splits.test.x)).argmax(1).numpy() == splits.test.y).mean())
    weights = home / "tiny_se_mobilenet.pt"
    torch.save(model.state_dict(), weights)
    return path, weights, accuracy


def test_a_users_model_file_goes_through_the_whole_pipeline(user_model, tmp_path):
    path, weights, trained_accuracy = user_model
    assert trained_accuracy > 0.6, "the brief training should have learned the digits"
    out = tmp_path / "run"
    proc = cli("--quiet", "run", "--model", f"{path}:build", "--weights", weights, "--epochs", "0", "--data", "digits",
                   "--qat-epochs", "1", "--calibration-images", "256", "--no-ptq", "--runs", "3", "--warmup", "1",
                   "--out", out)  # the PTQ baseline's path is the zoo's (demo_run); its two exports cost ~30 s here
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["model"] == f"{path.resolve()}:build"
    assert record["model_sha256"] and record["weights"]["sha256"] and record["weights"]["path"] == str(weights.resolve())
    assert record["preprocessing"]["in_chans"] == 3, "the model's 3-channel stem gets the digits as RGB"
    assert record["float_training"]["history"] == [], "--epochs 0 trains nothing"

    report = json.loads((out / "report.json").read_text())
    rewrite = report["rewrite"]
    assert [r["name"] for r in rewrite["replaced"]] == [f"features.{i}.block.2" for i in (1, 2, 3)]
    assert all(r["exact"] and r["source"] == "SqueezeExcitation" for r in rewrite["replaced"])
    assert rewrite["max_abs_deviation"] < 1e-4 and rewrite["native_activations"]["Hardswish"] == 8
    md = (out / "report.md").read_text()
    assert "features.3.block.2" in md and "3 module(s) replaced, 3 exact" in md and str(weights.resolve()) in md

    a = report["artifacts"]
    assert abs(a["float"]["accuracy"] - trained_accuracy) < 1e-9, "the float model is the user's, unchanged"
    assert "tflite_int8_ptq" not in a and set(a) == {"float", "reference_int8", "tflite_fp32", "tflite_int8",
                                                     "executorch_fp32", "executorch_int8", "tflite_fp16",
                                                     "executorch_fp16", "tflite_int8_app", "executorch_int8_app"}
    for name in ("tflite_fp32", "tflite_int8", "executorch_fp32", "executorch_int8", "tflite_fp16"):
        assert (out / os.path.basename(a[name]["path"])).is_file(), name
        graph = a[name]["graph"]
        assert graph["partitions"] == 1 and graph["non_delegated_ops"] == 0, (name, graph)
        if name.startswith("tflite"):
            assert graph["float_islands"] == 0, (name, graph)
    from se_edge.export.fp16 import PTE_CASTS

    pte16 = a["executorch_fp16"]["graph"]  # its hard-swishes too run in fp16 inside the delegate
    assert (pte16["partitions"], pte16["non_delegated"]) == (1, PTE_CASTS), pte16
    for name in ("tflite_int8", "executorch_int8"):
        assert a[name]["agreement_with_reference"] >= 0.98, (name, a[name])
        assert a[name]["latency_ms"]["count"] == 3
    assert a["tflite_int8"]["accuracy"] >= trained_accuracy - 0.05


def test_spec_forms_and_their_errors(tmp_path):
    assert ModelSpec.parse("se_cnn") == ModelSpec("zoo", "se_cnn")
    assert ModelSpec.parse("timm:mobilenetv3_small_100") == ModelSpec("timm", "mobilenetv3_small_100")
    assert ModelSpec.parse("torchvision:mobilenet_v3_small").kind == "torchvision"
    assert ModelSpec.parse(f"{tmp_path}/net.py:build") == ModelSpec("file", "build", str(tmp_path / "net.py"))
    for text, fragment in (("resnet9000", "valid: se_cnn"), ("net.py", "names a file but no factory"),
                           ("net.py:1x", "not a Python function name"), ("timm:", "names no model")):
        with pytest.raises(SeEdgeError, match=fragment):
            ModelSpec.parse(text)
    with pytest.raises(SeEdgeError, match="model file not found"):
        ModelSpec.parse(f"{tmp_path}/missing.py:build").build(num_classes=10, in_chans=1)
    (tmp_path / "net.py").write_text("def other():\n    pass\n\ndef broken(num_classes):\n    raise RuntimeError('no')\n")
    with pytest.raises(SeEdgeError, match="defines no 'build'"):
        ModelSpec.parse(f"{tmp_path}/net.py:build").build(num_classes=10, in_chans=1)
    with pytest.raises(SeEdgeError, match="the factory failed: RuntimeError: no"):
        ModelSpec.parse(f"{tmp_path}/net.py:broken").build(num_classes=10, in_chans=1)


def _imports(library: str) -> bool:
    try:
        __import__(library)
        return True
    except Exception:  # PyPI's torchvision may fail to load its C ops against the CPU build of torch
        return False


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_library_specs_build_and_rewrite(library):
    if not _imports(library):
        pytest.skip(f"{library} does not import here (on this project's machines PyPI's torchvision cannot load "
                    "its C ops against the CPU build of torch, and timm imports torchvision)")
    name = {"timm": "mobilenetv3_small_100", "torchvision": "mobilenet_v3_small"}[library]
    model = ModelSpec.parse(f"{library}:{name}").build(num_classes=10, in_chans=3).eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    from se_edge.blocks import to_hardware_aware

    _, report = to_hardware_aware(model, torch.randn(2, 3, 64, 64))
    assert len(report.replaced) == 9 and report.exact and report.max_abs_deviation < 1e-4


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_missing_library_is_one_line(library, monkeypatch, tmp_path, capsys):
    import sys

    from se_edge.cli import main

    monkeypatch.setitem(sys.modules, library, None)  # as if not installed: `import` raises ImportError
    assert main(["--quiet", "train", "--model", f"{library}:some_net", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"needs the {library} package, which is not installed here" in err and \
        f"pip install {library}" in err, err
    broken = tmp_path / "site"
    broken.mkdir()
    (broken / f"{library}.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.delitem(sys.modules, library)
    monkeypatch.syspath_prepend(str(broken))
    with pytest.raises(SeEdgeError, match="installed but fails to import .RuntimeError: operator torchvision::nms"):
        ModelSpec.parse(f"{library}:some_net").build(num_classes=10, in_chans=3)


def test_pickle_that_would_run_code_runs_nothing(user_model, tmp_path):
    path, _, _ = user_model
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"features.0.0.weight": Payload()}, evil)
    proc = se_edge("train", "--model", f"{path}:build", "--weights", evil, "--epochs", "0", "--out", tmp_path / "r")
    assert_one_line_error(proc, "refusing weights", "would import posix.system", "never runs code")
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"w": Payload()}))
    with pytest.raises(SeEdgeError, match="refusing weights"):
        load_weights(torch.nn.Linear(2, 2), plain)
    assert not marker.exists(), "the payload ran"


def test_key_mismatch_names_the_keys(user_model, tmp_path):
    path, weights, _ = user_model
    state = torch.load(weights, weights_only=True)
    state["features.9.weight"] = torch.zeros(1)
    del state["features.1.block.2.fc1.bias"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    proc = se_edge("train", "--model", f"{path}:build", "--weights", bad, "--epochs", "0", "--out", tmp_path / "r")
    assert_one_line_error(proc, "do not fit the model", "missing features.1.block.2.fc1.bias",
                          "unexpected features.9.weight")


def test_resized_head_is_replaced_and_reported(user_model, tmp_path):
    path, weights, _ = user_model
    model = ModelSpec.parse(f"{path}:build").build(num_classes=3, in_chans=3)
    loaded = load_weights(model, weights)
    assert loaded.head_replaced == ["classifier.2.bias", "classifier.2.weight"]
    assert "10 outputs, the dataset 3 classes" in loaded.notes[0]
    state = torch.load(weights, weights_only=True)
    assert torch.equal(model.state_dict()["features.0.0.weight"], state["features.0.0.weight"])
    from safetensors.torch import save_file

    st = tmp_path / "w.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(st))  # as saved from DDP
    assert load_weights(ModelSpec.parse(f"{path}:build").build(num_classes=10, in_chans=3), st).head_replaced == []
    with pytest.raises(SeEdgeError, match="unknown suffix '.ckpt'"):
        load_weights(model, tmp_path / "w.ckpt")


def test_a_run_refuses_an_edited_model_file(user_model, tmp_path):
    from se_edge.models.build import rebuild

    path, _, _ = user_model
    copy = tmp_path / "net.py"
    copy.write_text(path.read_text())
    spec = ModelSpec.parse(f"{copy}:build")
    recorded = (str(spec), {"num_classes": 10, "in_chans": 3}, spec.source_sha256(), True, False)
    rebuilt = rebuild(*recorded)
    assert type(rebuilt.features[1].block[2]).__name__ == "SqueezeExcite", "rebuilt as rewritten"
    copy.write_text(path.read_text() + "\n# edited\n")
    with pytest.raises(SeEdgeError, match="changed since this run was made"):
        rebuild(*recorded)
    assert np.isfinite(rebuilt(torch.zeros(1, 3, 32, 32)).detach().numpy()).all()


def test_no_rewrite_keeps_the_users_blocks_and_silu_is_opt_in(user_model):
    from se_edge.config import ModelConfig
    from se_edge.models.build import build_float

    path, weights, _ = user_model
    example = torch.randn(4, 3, 32, 32)
    kept, record = build_float(ModelConfig(spec=f"{path}:build", weights=str(weights), rewrite=False), 10, 3, 32, example)
    assert record["rewrite"] == {"enabled": False, "silu": False}
    assert type(kept.features[1].block[2]).__name__ == "SqueezeExcitation"
    rewritten, record = build_float(ModelConfig(spec=f"{path}:build", weights=str(weights)), 10, 3, 32, example)
    assert type(rewritten.features[1].block[2]).__name__ == "SqueezeExcite" and record["rewrite"]["exact"]
    with torch.no_grad():
        assert torch.allclose(kept(example), rewritten(example), atol=1e-4), "same weights, same function"
    assert record["weights"]["sha256"] and record["model_sha256"]
    with pytest.raises(SeEdgeError, match="drop --no-rewrite"):
        ModelConfig(spec=f"{path}:build", rewrite=False, rewrite_silu=True)
