"""Issue 24's run and command cases: run.json is data (never code, never unchecked), its fields and the options are
ranged, a user's model file that misbehaves is one line before the run starts, signals and a full stdout are
handled. Every refusal is one line, exit 2, and leaves each file of the run byte for byte as it was."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_one_line_error, cli

MARKER_MODEL = '''
import pathlib
pathlib.Path({marker!r}).write_text("this file ran")
import torch.nn as nn


def build(num_classes=10, in_chans=1):
    return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))
'''


def _files(directory: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir() if p.is_file()}


def _edit(run: Path, change) -> dict:
    """Apply `change` to the run's run.json (as a user or an attacker would, by hand); the files as they are now."""
    record = json.loads((run / "run.json").read_text())
    change(record)
    (run / "run.json").write_text(json.dumps(record))
    return _files(run)


@pytest.fixture
def marker_model(tmp_path):
    marker = tmp_path / "MARKER"
    model = tmp_path / "theirs" / "marker_model.py"
    model.parent.mkdir()
    model.write_text(MARKER_MODEL.format(marker=str(marker)))
    return model, marker


# ---- run.json names another model file: no command imports it (issue 24, cause 2; acceptance 2)

RUN_COMMANDS = [("quantize",), ("export",), ("parity",), ("debug",), ("bench", "latency")]  # each with --run R


@pytest.mark.parametrize("sha", ["null", "real"])
def test_a_run_json_naming_another_model_file_runs_no_code_from_it_in_any_command(run_copy, marker_model, sha):
    model, marker = marker_model
    digest = hashlib.sha256(model.read_bytes()).hexdigest()

    def point_at_it(r):
        r["model"], r["model_sha256"] = f"{model}:build", None if sha == "null" else digest
    before = _edit(run_copy, point_at_it)
    for command in RUN_COMMANDS:
        # float.pt's lineage covers `model` and `model_sha256`: the edit is refused before the file is read
        assert_one_line_error(cli(*command, "--run", run_copy), "float.pt was made with other settings")
        assert not marker.exists(), f"{command} ran the model file run.json names"
    assert _files(run_copy) == before


def test_a_model_file_relative_to_the_working_directory_is_refused_as_well(run_copy, marker_model, monkeypatch):
    model, marker = marker_model
    monkeypatch.chdir(model.parent)
    before = _edit(run_copy, lambda r: r.update(model="marker_model.py:build", model_sha256=None))
    assert_one_line_error(cli("parity", "--run", run_copy), "float.pt was made with other settings")
    assert_one_line_error(cli("quantize", "--run", run_copy), "float.pt was made with other settings")
    assert not marker.exists() and _files(run_copy) == before


def test_a_run_without_lineage_names_a_model_file_only_with_trust_model_file(run_copy, marker_model):
    """A record of version 1 (the releases before lineage) has nothing that vouches for its `model`: a model file
    it names is imported only when the user says --trust-model-file, even when its sha256 matches."""
    model, marker = marker_model
    digest = hashlib.sha256(model.read_bytes()).hexdigest()

    def legacy(r):
        del r["version"], r["lineage"]
        r["model"], r["model_sha256"] = f"{model}:build", digest
    before = _edit(run_copy, legacy)
    assert_one_line_error(cli("quantize", "--run", run_copy), "names model file", "has no lineage to vouch",
                          "--trust-model-file")
    assert_one_line_error(cli("export", "--run", run_copy), "names model file", "--trust-model-file")
    assert not marker.exists() and _files(run_copy) == before
    # A hash that does not match is refused even with the user's word: the bytes are not the run's file.
    _edit(run_copy, lambda r: r.update(model_sha256="0" * 64))
    assert_one_line_error(cli("quantize", "--run", run_copy, "--trust-model-file"),
                          "changed since this run was made")
    assert not marker.exists()
    # With it (and the right hash), the file is imported: float.pt is another architecture's, one line.
    _edit(run_copy, lambda r: r.update(model_sha256=digest))
    assert_one_line_error(cli("quantize", "--run", run_copy, "--trust-model-file"), "cannot load",
                          "float.pt into the run's model")
    assert marker.read_text() == "this file ran"


# ---- lineage cannot be switched off by deleting it (cause 3)

def test_a_record_that_writes_lineage_without_one_is_refused(run_copy):
    (run_copy / "model_int8.tflite").rename(run_copy / "swap")  # the int8 and PTQ files swapped,
    (run_copy / "model_int8_ptq.tflite").rename(run_copy / "model_int8.tflite")
    (run_copy / "swap").rename(run_copy / "model_int8_ptq.tflite")
    pte = bytearray((run_copy / "model_int8.pte").read_bytes())  # and weights corrupted in the .pte
    pte[len(pte) // 2: len(pte) // 2 + 64] = bytes(64)
    (run_copy / "model_int8.pte").write_bytes(pte)
    before = _edit(run_copy, lambda r: r.pop("lineage"))
    for command in (("parity",), ("bench", "latency"), ("export",), ("debug",)):
        assert_one_line_error(cli(*command, "--run", run_copy), "has no 'lineage', which every record of version 2",
                              "restore run.json")
    assert _files(run_copy) == before


# ---- run.json's fields are ranged where they are read (cause 6)

@pytest.mark.parametrize("change, fragment", [
    (lambda r: r["preprocessing"].update(size=0), "'preprocessing.size' should be a whole number from 1 to 4096"),
    (lambda r: r["preprocessing"].update(size=10**6), "'preprocessing.size' should be a whole number from 1 to 4096"),
    (lambda r: r["preprocessing"].update(in_chans=0), "'preprocessing.in_chans' should be a whole number from 1"),
    (lambda r: r["preprocessing"].update(mean="abc"), "'preprocessing.mean' should be a number or a list"),
    (lambda r: r["preprocessing"].update(mean=[0.1, 0.2]), "'preprocessing.mean' should be a number or a list of 1"),
    (lambda r: r["preprocessing"].update(std=0), "'preprocessing.std' should be a number or a list of 1 numbers > 0"),
    (lambda r: r.update(num_classes=10**10), "'num_classes' should be a whole number from 1 to 100000"),
    (lambda r: r.update(num_classes=-5), "'num_classes' should be a whole number from 1 to 100000"),
    (lambda r: r.update(split={}), "missing split.seed, split.val_fraction, split.test_fraction"),
    (lambda r: r["split"].update(seed=-1), "'split.seed' should be a whole number from 0 to 4294967295"),
    (lambda r: r["split"].update(test_fraction=1.5), "'split.test_fraction' should be a number between 0 and 1"),
    (lambda r: r.update(float_training={}), "missing float_training.epochs, float_training.batch_size"),
    (lambda r: r["float_training"].update(batch_size=0), "'float_training.batch_size' should be a whole number from 1"),
    (lambda r: r.update(class_names=[str(i) for i in range(9)] + ["nine\nten"]), "'class_names' holds 'nine\\nten'"),
    (lambda r: r["model_kwargs"].update(num_classes=1000), "'model_kwargs.num_classes' is 1000, not the run's"),
])
def test_run_json_fields_out_of_range_are_one_line_naming_the_field(run_copy, change, fragment):
    before = _edit(run_copy, change)
    assert_one_line_error(cli("parity", "--run", run_copy), "run.json", fragment)
    assert_one_line_error(cli("quantize", "--run", run_copy), fragment)
    assert _files(run_copy) == before


# ---- options (cause 6)

@pytest.mark.parametrize("args, fragment", [
    (("--seed", "-1"), "--seed: must be a whole number from 0 to 4294967295, got -1"),
    (("--seed", "4294967296"), "--seed: must be a whole number from 0 to 4294967295, got 4294967296"),
    (("--in-chans", "100000"), "in_chans must be from 1 to 256, got 100000"),
])
def test_seed_and_channels_are_ranged_before_anything_is_made(args, fragment, tmp_path):
    assert_one_line_error(cli("train", "--epochs", "0", "--out", tmp_path / "r", *args), fragment)
    assert not (tmp_path / "r").exists()


def test_weights_with_nan_or_inf_are_refused_at_load(tmp_path):
    import torch

    from se_edge.models.registry import create_model

    state = create_model("se_cnn", num_classes=10, in_chans=1).state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point())
    for bad in (float("nan"), float("inf")):
        state[key] = state[key].clone()
        state[key].view(-1)[0] = bad
        torch.save(state, tmp_path / "w.pt")
        assert_one_line_error(cli("train", "--weights", tmp_path / "w.pt", "--epochs", "0", "--out", tmp_path / "r"),
                              f"refusing weights {tmp_path / 'w.pt'}", key, "NaN or infinite")
        assert not (tmp_path / "r").exists()


# ---- a user's model file that misbehaves (cause 8)

USER_MODELS = {
    "exit_at_import": ("import sys\nsys.exit(3)\n", "exited with code 3 while being imported"),
    "argv_at_import": ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--width', type=int, "
                       "required=True)\np.parse_args()\n", "exited with code 2 while being imported (it printed: "),
    "two_inputs": ("class M(nn.Module):\n    def __init__(s, n, c):\n        super().__init__(); s.c = nn.Conv2d(c, n, 3)\n"
                   "    def forward(s, x, mask):\n        return s.c(x).mean((2, 3))\n",
                   "model(images) failed on a (2, 1, 32, 32) batch: TypeError"),
    "tuple_output": ("class M(nn.Module):\n    def __init__(s, n, c):\n        super().__init__(); s.c = nn.Conv2d(c, n, 3)\n"
                     "    def forward(s, x):\n        y = s.c(x).mean((2, 3))\n        return y, y\n",
                     "forward returned a tuple, not a tensor"),
    "ignores_num_classes": ("class M(nn.Module):\n    def __init__(s, n, c):\n        super().__init__(); "
                            "s.c = nn.Conv2d(c, 1000, 3)\n    def forward(s, x):\n        return s.c(x).mean((2, 3))\n",
                            "forward returned shape (2, 1000) for a batch of 2; expected (2, 10)"),
}


@pytest.mark.parametrize("name", sorted(USER_MODELS))
def test_a_model_file_that_misbehaves_is_one_line_before_the_run_starts(name, tmp_path):
    body, fragment = USER_MODELS[name]
    source = tmp_path / f"{name}.py"
    source.write_text("import torch.nn as nn\n" + body + "\n\ndef build(num_classes=10, in_chans=1):\n"
                      "    return M(num_classes, in_chans)\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert_one_line_error(cli("train", "--model", f"{source}:build", "--epochs", "0", "--out", out), fragment)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"], "a refused model leaves no run.json behind"
    assert sys.argv[0] != str(source), "the file's argv was se-edge's to restore"


def test_a_model_file_that_reads_its_own_options_sees_no_se_edge_options(tmp_path):
    source = tmp_path / "net.py"
    source.write_text("import argparse\nimport torch.nn as nn\np = argparse.ArgumentParser()\n"
                      "p.add_argument('--width', type=int, default=4)\nWIDTH = p.parse_args().width\n\n"
                      "def build(num_classes=10, in_chans=1):\n    return nn.Sequential(nn.Conv2d(in_chans, WIDTH, 3), "
                      "nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, num_classes))\n")
    proc = cli("--quiet", "train", "--model", f"{source}:build", "--epochs", "0", "--out", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["model_sha256"] == \
        hashlib.sha256(source.read_bytes()).hexdigest()


# ---- signals and streams (cause 9)

def test_sigterm_during_training_releases_the_lock_as_ctrl_c_does(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "se_edge.cli", "--quiet", "train", "--epochs", "50", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (out / "run.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (out / ".se_edge.lock").is_file() and proc.poll() is None, "training should be under way"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr[-2000:]
    assert [line for line in stderr.splitlines() if line.strip()] == ["se-edge train: terminated (SIGTERM)"]
    assert not (out / ".se_edge.lock").exists()
    assert_one_line_error(cli("train", "--out", out, "--epochs", "0", "--seed", "-1"), "--seed")  # not "in use"


def test_a_full_stdout_is_one_line(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "models"], stdout=full, stderr=subprocess.PIPE,
                              text=True)
    assert_one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, "", proc.stderr),
                          "se-edge models: error: cannot write the output to stdout: No space left on device")
    # A reader that stops early (`se-edge models | head -1`) is no error: no line, as with any Unix tool.
    pipe = subprocess.run(f"{sys.executable} -m se_edge.cli models | head -c 1", shell=True, capture_output=True,
                          text=True)
    assert pipe.stderr == "" and len(pipe.stdout) == 1
