"""The arm64 board's parts that need no board: the output check every device run goes through, what the report does
with a mismatch and with emulated times, the qemu-arm64 device spec, the board's CPU models and cpuinfo, the wheel
unpacking and the `--native PATH` forms. The board itself runs in device_tests/test_arm64_board.py
(`make device-test-arm64`)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from se_edge.device import arm64, native
from se_edge.device.report import markdown, plot, summary
from se_edge.device.session import Check
from se_edge.device.spec import parse_device_spec
from se_edge.errors import SeEdgeError

LSB = 0.0853


def int8_logits(seed: int = 0, n: int = 40) -> np.ndarray:
    q = np.random.default_rng(seed).integers(-128, 128, size=(n, 10))
    return ((q - 3) * np.float32(LSB)).astype(np.float32)


def test_int8_outputs_one_lsb_apart_pass_and_two_fail():
    here = int8_logits()
    same = Check(here, LSB)(here.copy())
    assert same["within"] and same["bit_identical"] == same["values"] == 400 and same["max_lsb"] == 0
    one = here.copy()
    one[3, 4] += np.float32(LSB)
    one[7, 1] -= np.float32(LSB)
    c = Check(here, LSB)(one)
    assert c["within"] and c["bit_identical"] == 398 and c["max_lsb"] == pytest.approx(1.0, abs=1e-3)
    two = here.copy()
    two[0, 0] += np.float32(2 * LSB)
    c = Check(here, LSB)(two)
    assert not c["within"] and c["bit_identical"] == 399 and c["max_lsb"] == pytest.approx(2.0, abs=1e-3)


def test_app_probabilities_are_held_to_what_one_logit_lsb_can_move_them():
    logits = int8_logits(1)
    softmax = lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
    here = softmax(logits.astype(np.float64)).astype(np.float32)
    shifted = logits.copy()
    shifted[:, 0] += np.float32(LSB)  # every image's first logit one LSB up
    assert Check(here, LSB, probabilities=True)(softmax(shifted.astype(np.float64)).astype(np.float32))["within"]
    shifted[:, 0] += np.float32(2 * LSB)  # three LSB
    assert not Check(here, LSB, probabilities=True)(softmax(shifted.astype(np.float64)).astype(np.float32))["within"]


def test_fp32_outputs_within_1e_4():
    here = np.random.default_rng(2).normal(size=(8, 10)).astype(np.float32)
    assert Check(here)(here + np.float32(5e-5))["within"]
    c = Check(here)(here + np.float32(3e-4))
    assert not c["within"] and c["bit_identical"] == 0 and "max_lsb" not in c


def test_fp16_outputs_within_fp16_rounding_of_the_largest_output():
    here = (np.random.default_rng(3).normal(size=(8, 10)) * 10).astype(np.float32)
    bound = 2.0 ** -6 * float(np.abs(here).max())
    # an fp16 CPU rounds each sum to 11 bits where this host computes in fp32: within the bound passes
    rounded = here + np.float32(0.9 * bound) * np.sign(np.random.default_rng(4).normal(size=here.shape)).astype(np.float32)
    c = Check(here, fp16=True)(rounded)
    assert c["within"] and c["max_abs_diff"] == pytest.approx(0.9 * bound, rel=1e-4) and "largest output" in c["tolerance"]
    assert not Check(here)(rounded)["within"]  # an fp32 file is held to 1e-4
    wrong = here.copy()
    wrong[2, 5] += np.float32(2 * bound)  # one output moved twice the rounding budget: a wrong kernel
    c = Check(here, fp16=True)(wrong)
    assert not c["within"] and c["bit_identical"] == 79


def test_a_shape_other_than_the_hosts_is_an_error():
    with pytest.raises(SeEdgeError, match="shape"):
        Check(int8_logits(), LSB)(int8_logits()[:5])


def _entry(status="ok", check=None, **extra):
    return {"path": "m", "runtime": "litert", "dtype": "int8", "reference": "reference_int8", "status": status,
            "accuracy": 0.99, "agreement_with_reference": 1.0, "max_abs_diff": 0.0,
            "latency_ms": {"p50": 4.1, "p90": 4.3, "p99": 4.5, "count": 5, "threads": 1}, "load_ms": 60.0,
            "first_ms": 61.0, **({"check": check} if check else {}), **extra}


def _result(native_entry, emulated=True):
    skipped = {"status": "skipped", "reason": "qemu-arm64:cortex-a76 has no Python", "accuracy": None,
               "agreement_with_reference": None, "max_abs_diff": None, "latency_ms": None}
    device = {"spec": "qemu-arm64:cortex-a76", "kind": "qemu", "python_executable": None, "litert": None,
              "executorch": None, **({"emulated": True, "qemu": "qemu-aarch64 7.2", "cpu_model_qemu": "cortex-a76"}
                                    if emulated else {})}
    return {"model": "se_cnn", "dataset": "digits", "num_test": 40, "device": device,
            "settings": {"runs": 5, "warmup": 1, "threads": 1},
            "artifacts": {"tflite_int8": {"path": "m", "runtime": "litert", "dtype": "int8", "reference": "reference_int8",
                                          **skipped, "native": native_entry}}}


def test_a_wrong_output_is_reported_apart_and_emulated_times_are_never_plotted(tmp_path):
    here = int8_logits()
    wrong = here.copy()
    wrong[0, 0] += np.float32(3 * LSB)
    c = Check(here, LSB)(wrong)
    entry = _entry("mismatch", c, reason="tflite_runner on qemu-arm64:cortex-a76: outputs up to 3.00 LSB from ...",
                   device={"machine": "aarch64", "cpu_model": "ARM Cortex-A76", "cores": 2,
                           "int8_features": ["asimd", "asimddp"], "load_average": [0.5, 0.4, 0.3]})
    result = _result(entry)
    md = markdown(result)
    assert "## Outputs that differ from this host's" in md and "- tflite_int8: tflite_runner on qemu" in md
    assert "| tflite_int8 | native | 399 of 400 | 3.00 LSB | <= 1 LSB | **no** |" in md
    assert "(emulated)" in md and "p50 emulated ms" in md and "**emulated**" in md
    assert "- CPU: ARM Cortex-A76 (aarch64), 2 cores; int8 ISA features: asimd, asimddp" in md
    assert "| tflite_int8 | native | 60.000 | 61.000 | 4.100 |" in md  # load and first inference beside p50
    text = summary(result)
    assert "MISMATCH tflite_int8:" in text and "EMULATED" in text
    assert plot(result, tmp_path / "p.png") is None and not (tmp_path / "p.png").exists()
    # the same numbers from a real device are plotted
    assert plot(_result(_entry("ok", Check(here, LSB)(here)), emulated=False), tmp_path / "q.png") == str(tmp_path / "q.png")


def test_qemu_spec_refuses_a_cpu_model_that_computes_wrong_int8(tmp_path, monkeypatch):
    with pytest.raises(SeEdgeError, match="refused: QEMU 7.2's `max` model") as e:
        arm64.check_cpu("max")
    assert "\n" not in str(e.value) and "cortex-a76" in str(e.value)
    with pytest.raises(SeEdgeError, match="unknown CPU model 'cortex-z9' for qemu-arm64; valid: cortex-a53"):
        arm64.check_cpu("cortex-z9")
    monkeypatch.setenv("SE_EDGE_ARM64_BOARD", str(tmp_path / "no board"))
    with pytest.raises(SeEdgeError, match="no arm64 board at .*: run `make arm64-board` first"):
        parse_device_spec("qemu-arm64")
    with pytest.raises(SeEdgeError, match="--device-python and --device-dir do not apply to qemu-arm64"):
        parse_device_spec("qemu-arm64:cortex-a72", python="python3")


def test_a_board_pins_its_cpu_and_the_spec_may_choose_another(tmp_path, monkeypatch):
    board = tmp_path / "board"
    (board / "sysroot" / "opt" / "se_edge" / "bin").mkdir(parents=True)
    (board / "board.json").write_text(json.dumps({"cpu": "cortex-a76", "runners": {}, "qemu": "/bin/true"}))
    monkeypatch.setenv("SE_EDGE_ARM64_BOARD", str(board))
    monkeypatch.setattr(arm64.shutil, "which", lambda name: "/bin/true")
    assert parse_device_spec("qemu-arm64").label == "qemu-arm64:cortex-a76"
    t = parse_device_spec("qemu-arm64:neoverse-n1")
    assert t.label == "qemu-arm64:neoverse-n1" and t.python is None and t.emulated
    with pytest.raises(SeEdgeError, match="the arm64 board has no pte_runner"):
        native.runners_for(t, "")
    (board / "board.json").write_text("[1, 2]")
    with pytest.raises(SeEdgeError, match="is not a board description"):
        parse_device_spec("qemu-arm64")


def test_cpuinfo_names_the_core_as_the_runners_read_it(tmp_path, monkeypatch):
    from se_edge import runner

    text = arm64.cpuinfo("cortex-a76", 4)
    assert text.count("processor\t:") == 4 and "CPU part\t: 0xd0b" in text and "asimddp" in text
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(tmp_path / "cpuinfo", *a, **k)
                        if path == "/proc/cpuinfo" else real_open(path, *a, **k))
    (tmp_path / "cpuinfo").write_text(text)
    info = runner.device_info()
    assert info["cpu_model"] == "ARM Cortex-A76" and info["int8_features"] == ["asimd", "asimddp"]


def test_python_in_a_sysroot_is_found(tmp_path):
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "libc.so.6").write_bytes(b"")
    assert arm64.pythons_in(tmp_path) == []
    (tmp_path / "usr" / "bin").mkdir()
    (tmp_path / "usr" / "bin" / "python3.11").write_bytes(b"")
    (tmp_path / "usr" / "share").mkdir()
    (tmp_path / "usr" / "share" / "printers.py").write_text("")
    assert arm64.pythons_in(tmp_path) == ["usr/bin/python3.11", "usr/share/printers.py"]


def test_a_wheel_member_outside_the_site_is_refused(tmp_path):
    wheel = tmp_path / "evil-1.0-cp311-cp311-manylinux_2_28_aarch64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("executorch/lib/libexecutorch.so", b"elf")
        z.writestr("executorch/lib/../../../escape.so", b"x")
    with pytest.raises(SeEdgeError, match="unsafe path"):
        arm64._unpack(wheel, tmp_path / "site", ("executorch/lib/",))
    assert not (tmp_path / "escape.so").exists()


def test_native_path_forms(tmp_path):
    local = SimpleNamespace(kind="local", label="local")
    phone = SimpleNamespace(kind="adb", label="adb:phone")
    d = tmp_path / "phone build"
    d.mkdir()
    for name in ("pte_runner", "tflite_runner"):
        (d / name).write_text("#!/bin/sh\n")
        (d / name).chmod(0o755)
    (d / "libLiteRt.so").write_bytes(b"")
    (d / "libexecutorch.so").write_bytes(b"")
    runners, libs = native.runners_for(phone, str(d))
    assert runners == {"pte_runner": d / "pte_runner", "tflite_runner": d / "tflite_runner"}
    assert [p.name for p in libs] == ["libLiteRt.so", "libexecutorch.so"]
    assert native.runners_for(phone, str(d / "tflite_runner")) == ({"tflite_runner": d / "tflite_runner"}, [])
    assert native.runners_for(local, None) == ({}, [])
    with pytest.raises(SeEdgeError, match="--native without a path uses this host's builds"):
        native.runners_for(phone, "")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SeEdgeError, match="holds neither pte_runner nor tflite_runner"):
        native.runners_for(phone, str(empty))
    (d / "pte_runner").chmod(0o644)
    with pytest.raises(SeEdgeError, match="is not executable"):
        native.runners_for(phone, str(d))


def test_cross_build_arguments_keep_the_board_layout():
    args = arm64.cmake_args(Path("/site"), "pte_runner")
    assert "-DCMAKE_SYSTEM_PROCESSOR=aarch64" in args and "-DCMAKE_PREFIX_PATH=/site/executorch" in args
    assert "-DSE_EDGE_RUNPATH=$ORIGIN;$ORIGIN/../lib" in args  # libraries beside the runner or in ../lib, never here
    assert arm64.PINNED_CPU in arm64.CPU_MODELS and not set(arm64.WRONG_UNDER_QEMU) & set(arm64.CPU_MODELS)
