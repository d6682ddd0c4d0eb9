"""What a device sends back is untrusted input, checked as any file is: a runner's outputs .npy and stats JSON, its
`--runtimes` answer, benchmark_model's output; a device command that hangs is ended with everything it started;
`--timeout` is a number of seconds in range. Each refusal is one line naming the device, the file and what was
found against what was expected.

The devices are fakes of the device's Python (`local:/path/to/fakepython`, a shell script): `--runtimes` goes to
the real Python, a runner call writes the bad file se_edge then pulls back, so no runtime runs a model and most
cases take a fraction of a second. Two go through the whole `se-edge bench latency` on a copy of the demo run, in a
subprocess (the host references load the runtimes in-process first).
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, cli, se_edge
from se_edge.device import parse_device_spec
from se_edge.device.adb import AdbTransport
from se_edge.device.benchmark_model import parse_output
from se_edge.device.local import LocalTransport
from se_edge.device.remote_bench import DeviceBenchConfig
from se_edge.device.session import DeviceSession
from se_edge.device.ssh import SshTransport
from se_edge.errors import SeEdgeError

from test_transports import fakes  # noqa: F401  (the fake adb/ssh/scp fixture)

N, C = 4, 10  # images pushed and classes: the outputs a runner must send back are (N, C) floats
EXPECTED = f"expected a .npy of finite floats (float32) of shape ({N}, {C})"
STATS_EXPECTED = ("expected a JSON object with p50, p90, p99, mean, min, std (ms: numbers >= 0, p90 and p99 may be "
                  "null), count and threads (whole numbers >= 1), as runner.py writes")
GOOD_STATS = {"load_ms": 1.5, "first_ms": 0.4, "warmup": 0, "threads": 1, "runtime": "litert", "count": 2,
              "min": 0.1, "mean": 0.2, "std": 0.05, "p50": 0.2, "p90": 0.28, "p99": 0.3, "peak_rss_mb": 48.0}


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


GOOD_OUTPUTS = npy(np.zeros((N, C), np.float32))
GOOD_STATS_JSON = json.dumps(GOOD_STATS).encode()


def fake_python(directory: Path, outputs: bytes | None = GOOD_OUTPUTS, stats: bytes | None = GOOD_STATS_JSON,
                link_outputs: str | None = None) -> Path:
    """A device Python: `runner.py --runtimes` answered by the real one; a runner call writes `outputs` to its
    --outputs and `stats` (default GOOD_STATS) to its --json (nothing where None; a link to `link_outputs` for the
    outputs where given) and exits 0, as a runner that claims success."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh", f'case "$*" in *--runtimes*) exec {shlex.quote(sys.executable)} "$@";; esac',
             'while [ $# -gt 0 ]; do case "$1" in --outputs) out=$2;; --json) js=$2;; esac; shift; done']
    if link_outputs is not None:
        lines.append(f'ln -s {shlex.quote(link_outputs)} "$out"')
    elif outputs is not None:
        (directory / "outputs.bin").write_bytes(outputs)
        lines.append(f'cp {shlex.quote(str(directory / "outputs.bin"))} "$out"')
    if stats is not None:
        (directory / "stats.bin").write_bytes(stats)
        lines.append(f'cp {shlex.quote(str(directory / "stats.bin"))} "$js"')
    python = directory / "python"
    python.write_text("\n".join(lines) + "\n")
    python.chmod(0o755)
    return python


def run_runner(tmp_path: Path, **fake) -> tuple[dict, str]:
    """One runner call on a fake device through DeviceSession (push, run, pull, check, compare); returns the
    result and the device's label."""
    python = fake_python(tmp_path / "device python", **fake)
    host = tmp_path / "host"
    host.mkdir()
    with LocalTransport(str(python), timeout=60) as t:
        session = DeviceSession(t, host, np.zeros((N, 1, 8, 8), np.float32), DeviceBenchConfig(runs=2, warmup=0))
        result = session._run_and_compare([t.python, session.runner, t.path("model_int8.tflite")], "tflite_int8",
                                          "runner.py", np.zeros((N, C), np.float32), np.zeros(N, np.int64),
                                          session.inputs)
        return result, t.label


def refused(tmp_path: Path, **fake) -> str:
    with pytest.raises(SeEdgeError) as e:
        run_runner(tmp_path, **fake)
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


# ---------------------------------------------------------------- case 1: the outputs .npy


def _object_array() -> bytes:
    return npy(np.array([[None] * C] * N, dtype=object), allow_pickle=True)


BAD_OUTPUTS = {
    "garbage bytes": (b"garbage, not an array\n" * 4, "are not a .npy file (they begin b'garbag')"),
    "a pickle": (pickle.dumps(np.zeros((N, C), np.float32)), "are not a .npy file (they begin b'\\x80"),
    "empty": (b"", "are not a .npy file (they begin b'')"),
    "an object array": (_object_array(), "have dtype object, not a float dtype"),
    "ints": (npy(np.zeros((N, C), np.int64)), "have dtype int64, not a float dtype"),
    "a structured array": (npy(np.zeros(N, [("logits", "<f4", (C,))])), "have dtype [('logits', '<f4', (10,))]"),
    "complex": (npy(np.zeros((N, C), np.complex64)), "have dtype complex64, not a float dtype"),
    "the wrong shape": (npy(np.zeros((N, C + 1), np.float32)), f"have shape ({N}, {C + 1})"),
    "one image's outputs": (npy(np.zeros(C, np.float32)), f"have shape ({C},)"),
    "a NaN": (npy(np.where(np.eye(N, C, dtype=bool), np.nan, 0).astype(np.float32)),
              f"hold {N} non-finite value(s) (NaN or inf)"),
    "an inf": (npy(np.full((N, C), np.inf, np.float64)), f"hold {N * C} non-finite value(s) (NaN or inf)"),
    "a truncated file": (GOOD_OUTPUTS[:-8], f"are {len(GOOD_OUTPUTS) - 8} bytes where their header declares "
                                            f"{len(GOOD_OUTPUTS)} (float32 of shape ({N}, {C}))"),
    "data past the array": (GOOD_OUTPUTS + b"\0" * 64, f"are {len(GOOD_OUTPUTS) + 64} bytes where their header "
                                                       f"declares {len(GOOD_OUTPUTS)}"),
    "a header declaring a huge array": (npy_header((10 ** 12, C)) + b"\0" * 64, f"have shape ({10 ** 12}, {C})"),
    "a huge file": (GOOD_OUTPUTS + b"\0" * (1 << 20), f"are {len(GOOD_OUTPUTS) + (1 << 20)} bytes, more than any "
                                                      f"float .npy of that shape"),
    "a header that does not parse": (b"\x93NUMPY\x01\x00" + (40).to_bytes(2, "little") + b"{'descr': <f4, oops"
                                     + b" " * 21, "have an unreadable .npy header (EOF in multi-line statement)"),
    "a header without a shape": (npy_header((N, C)).replace(b"'shape'", b"'shapes'"),
                                 "have an unreadable .npy header (Header does not contain the correct keys: "
                                 "['descr', 'fortran_order', 'shapes'])"),
    "a future .npy version": (b"\x93NUMPY\x09\x00" + GOOD_OUTPUTS[8:], "are a .npy of version 9.0, which se_edge "
                                                                       "does not read (1.0 or 2.0)"),
}


@pytest.mark.parametrize("case", BAD_OUTPUTS)
def test_bad_outputs_from_a_device_are_one_line(tmp_path, case):
    outputs, found = BAD_OUTPUTS[case]
    message = refused(tmp_path, outputs=outputs)
    python = tmp_path / "device python" / "python"
    assert message.startswith(f"runner.py on local:{python} for tflite_int8: its outputs {found}"), message
    assert message.endswith(f"; {EXPECTED}"), message


def test_outputs_that_are_no_regular_file_are_refused_before_reading(tmp_path):
    message = refused(tmp_path, link_outputs="/dev/zero")
    assert message.startswith("cannot copy ") and message.endswith("tflite_int8.outputs.npy from the device: "
                                                                   "not a regular file"), message


def test_no_outputs_at_all_is_one_line(tmp_path):
    message = refused(tmp_path, outputs=None)
    assert "tflite_int8.outputs.npy from the device: No such file or directory" in message, message


def test_float16_and_float64_outputs_are_read(tmp_path):
    for i, dtype in enumerate((np.float16, np.float64)):
        result, _ = run_runner(tmp_path / str(i), outputs=npy(np.zeros((N, C), dtype)))
        assert result["status"] == "ok" and result["max_abs_diff"] == 0.0


# ---------------------------------------------------------------- case 2: the stats JSON


def _stats(**change) -> bytes:
    stats = {**GOOD_STATS, **change}
    return json.dumps({k: v for k, v in stats.items() if v is not ...}).encode()


BAD_STATS = {
    "no p90": (_stats(p90=...), "has no p90"),
    "no count": (_stats(count=...), "has no count"),
    "no threads": (_stats(threads=...), "has no threads"),
    "p90 a string": (_stats(p90="fast"), 'has p90 = "fast" (a string), not a number'),
    "p50 a boolean": (_stats(p50=True), "has p50 = true (a boolean), not a number"),
    "p50 null": (_stats(p50=None), "has p50 = null (null), not a number"),
    "p90 a list": (_stats(p90=[1]), "has p90 = [1] (a list), not a number"),
    "negative mean": (_stats(mean=-1.5), "has mean = -1.5"),
    "NaN p99": (_stats(p99=float("nan")), "has p99 = NaN"),
    "infinite min": (_stats(min=float("inf")), "has min = Infinity"),
    "an integer past float's range": (b'{"p50": 1' + b"0" * 400 + b"}", "has p50 = 1000000000"),
    "count 0": (_stats(count=0), "has count = 0, not a whole number >= 1"),
    "count 2.5": (_stats(count=2.5), "has count = 2.5, not a whole number >= 1"),
    "threads a string": (_stats(threads="1"), 'has threads = "1", not a whole number >= 1'),
    "load_ms negative": (_stats(load_ms=-3), "has load_ms = -3"),
    "runtime_version a number": (_stats(runtime_version=2.1), "has runtime_version = 2.1, not a line of text"),
    "a list": (b"[1, 2, 3]", "is a list, not an object"),
    "a number": (b"42", "is a number, not an object"),
    "invalid JSON": (b'{"p50": 0.2,', "is not valid JSON (Expecting property name enclosed in double quotes"),
    "not UTF-8": (b'{"p50": "\xff"}', "is not valid JSON ('utf-8' codec can't decode byte 0xff"),
    "empty": (b"", "is not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    "nested too deep": (b"[" * 200_000, "is not valid JSON ("),
    "huge": (b" " * (2 << 20) + json.dumps(GOOD_STATS).encode(),
             f"is {(2 << 20) + len(json.dumps(GOOD_STATS))} bytes, more than the 1048576 a runner writes"),
}


@pytest.mark.parametrize("case", BAD_STATS)
def test_bad_stats_from_a_device_are_one_line(tmp_path, case):
    stats, found = BAD_STATS[case]
    message = refused(tmp_path, stats=stats)
    python = tmp_path / "device python" / "python"
    assert message.startswith(f"runner.py on local:{python} for tflite_int8: its stats JSON {found}"), message
    assert STATS_EXPECTED in message, message


def test_no_stats_at_all_is_one_line(tmp_path):
    assert "tflite_int8.stats.json from the device: No such file or directory" in refused(tmp_path, stats=None)


@pytest.mark.parametrize("device, found", [
    ({"load_average": ["high", 1, 1]}, 'has load_average = ["high", 1, 1]; expected a list of up to 3 numbers'),
    ({"cores": "eight"}, 'has cores = "eight"; expected a whole number >= 1 or null'),
    ({"int8_features": "asimddp"}, 'has int8_features = "asimddp"; expected a list of feature names or null'),
    ({"cpu_model": "A" * 1000}, "has cpu_model = \"AAAA")])
def test_bad_device_facts_in_the_stats_are_one_line(tmp_path, device, found):
    message = refused(tmp_path, stats=_stats(device=device))
    assert message.startswith(f"runner.py on local:{tmp_path / 'device python' / 'python'} for tflite_int8: its stats "
                              f"JSON's device {found}"), message


def test_p90_and_p99_may_be_null_and_the_facts_are_cut_to_what_reports_read(tmp_path):
    """A runner that does not compute p90/p99 says null, as benchmark_model's parsed output does."""
    device = {"machine": "aarch64", "cores": 4, "int8_features": ["asimddp"], "load_average": [0.5, 0.4, 0.3],
              "cpu_model": "ARM Cortex-A76", "secret": {"nested": [1, 2]}}
    result, _ = run_runner(tmp_path, stats=_stats(p90=None, p99=None, runtime_version="2.18.0", device=device))
    assert result["status"] == "ok" and result["latency_ms"]["p90"] is None and result["latency_ms"]["p50"] == 0.2
    assert result["runtime_version"] == "2.18.0" and result["device"] == {k: v for k, v in device.items()
                                                                           if k != "secret"}


def test_benchmark_model_statistics_may_lack_p50_p90_p99_but_not_be_malformed():
    s = parse_output("INFO: count=3 first=10 curr=9 min=8 max=12 avg=9.5 std=1\n")
    assert s["p50"] is None and s["p90"] is None and s["p99"] is None and s["mean"] == 0.0095
    for text, fragment in [("count=5 min=1.2.3 avg=4", "benchmark_model printed 1.2.3 where a time or count >= 0"),
                           ("count=5 min=-3 avg=4", "benchmark_model printed -3 where a time or count >= 0"),
                           ("count=abc avg=4", "no whole count >= 1 and avg (or curr): count=abc avg=4"),
                           ("count=0 avg=4", "no whole count >= 1"), ("count=5 min=1", "no whole count >= 1 and avg"),
                           ("count=5 avg=1\nInference timings in us: Init: 1.2.3, First inference: 5",
                            "benchmark_model printed 1.2.3")]:
        with pytest.raises(SeEdgeError) as e:
            parse_output(text)
        assert fragment in str(e.value) and "\n" not in str(e.value), (text, str(e.value))


@pytest.mark.parametrize("answer, found", [
    ('{"litert": [1], "executorch": null}', "its --runtimes answer has litert = [1], not null or "),
    ('{"litert": {"module": 5, "version": null}}', 'its --runtimes answer has litert = {"module": 5'),
    ('{"litert": null, "device_info": {"cores": -1}}', "its --runtimes answer has device_info, which has cores = -1"),
    ('{"litert": null, "device_info": "x86"}', 'its --runtimes answer has device_info = "x86", not an object')])
def test_a_runtimes_answer_that_is_not_runner_py_s_is_a_reason_to_skip(tmp_path, answer, found):
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho {shlex.quote(answer)}\n")
    python.chmod(0o755)
    with LocalTransport(str(python), timeout=30) as t:
        session = DeviceSession(t, tmp_path, np.zeros((N, 1, 8, 8), np.float32), DeviceBenchConfig(runs=2, warmup=0))
        probe = session.probe()
    assert probe["python_error"].startswith(f"{python} cannot run runner.py on local:{python}: {found}")
    assert "\n" not in probe["python_error"]
    assert session.runtimes == {"litert": None, "executorch": None}


# ---------------------------------------------------------------- cases 1 and 2 through `se-edge bench latency`


def _hashes(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fake, found", [
    ({"outputs": pickle.dumps([[0.0] * 10] * 8)}, "its outputs are not a .npy file (they begin b'\\x80"),
    ({"outputs": npy(np.zeros((8, 10), np.float32)), "stats": _stats(p90=...)}, "its stats JSON has no p90; "
                                                                                 + STATS_EXPECTED)])
def test_cli_bench_latency_refuses_a_device_s_bad_files_in_one_line(run_copy, tmp_path, fake, found):
    python = fake_python(tmp_path / "board python", **fake)
    before = _hashes(run_copy)
    proc = se_edge("--quiet", "bench", "latency", "--run", run_copy, "--device", f"local:{python}", "--artifacts",
                   "tflite_fp32", "--images", 8, "--runs", 2, "--warmup", 0, timeout=600)
    assert_one_line_error(proc, f"se-edge bench latency: error: runner.py on local:{python} for tflite_fp32: {found}")
    assert _hashes(run_copy) == before, "the run's files are byte-identical and nothing was added"


# ---------------------------------------------------------------- case 3: a hung device command's whole group


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaped yet counts as ended)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _pid(path: Path) -> int:
    deadline = time.monotonic() + 10
    while not path.is_file() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return int(path.read_text())


@pytest.mark.parametrize("kind", ["local", "adb", "ssh"])
def test_a_timeout_kills_the_device_command_s_whole_process_group(kind, fakes, tmp_path):  # noqa: F811
    """A command whose child hangs: the timeout ends the child too (on adb and ssh, the host-side client's children:
    the fakes run the device's shell as a child of the client, as a real client's ProxyCommand would be)."""
    pid_file = tmp_path / "child.pid"
    device_dir = tmp_path / "device"
    device_dir.mkdir()
    transport = {"local": lambda: LocalTransport(timeout=2),
                 "adb": lambda: AdbTransport("s1", device_dir=str(device_dir), timeout=2),
                 "ssh": lambda: SshTransport("pi@board", device_dir=str(device_dir), timeout=2)}[kind]()
    hang = f"sleep 1000 & echo $! > {shlex.quote(str(pid_file))}; wait"
    start = time.monotonic()
    with transport, pytest.raises(SeEdgeError, match=r"timed out after 2 s: "):
        transport.execute(["sh", "-c", hang])
    assert time.monotonic() - start < 30
    assert _gone(_pid(pid_file)), "the hung child outlived the timeout"


def test_cli_bench_latency_timeout_ends_the_device_wrapper_s_children(run_copy, tmp_path):
    """`--device local:WRAPPER`: the wrapper starts a child that holds its output open (as a daemon a board's
    wrapper starts might), then runs the real Python; --timeout 2 ends the command and the child with it. The
    command that hangs is the first one on the device, the runtimes probe, before any host reference loads."""
    pid_file = tmp_path / "child.pid"
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f"#!/bin/sh\nsleep 1000 &\necho $! > {shlex.quote(str(pid_file))}\n"
                       f"exec {shlex.quote(sys.executable)} \"$@\"\n")
    wrapper.chmod(0o755)
    before = _hashes(run_copy)
    proc = se_edge("--quiet", "bench", "latency", "--run", run_copy, "--device", f"local:{wrapper}",
                   "--timeout", 2, timeout=300)
    assert_one_line_error(proc, f"se-edge bench latency: error: running wrapper.sh on local:{wrapper} timed out "
                                f"after 2 s: {wrapper} ", "runner.py --runtimes")
    assert _gone(_pid(pid_file)), "the wrapper's child outlived the timeout"
    assert _hashes(run_copy) == before


# ---------------------------------------------------------------- case 4: --timeout in range


@pytest.mark.parametrize("value", ["1e10", "inf", "nan", "0", "-1", "86400.5", "soon"])
def test_cli_timeout_out_of_range_is_one_line(tmp_path, value):
    proc = cli("bench", "latency", "--run", tmp_path, "--device", "local", "--timeout", value)
    assert_one_line_error(proc, "se-edge bench latency: error: argument --timeout: must be a number of seconds > 0 "
                                f"and at most 86400 (one day), got {value}")


@pytest.mark.parametrize("timeout", [1e10, float("inf"), float("nan"), 0, -1])
def test_transports_take_a_timeout_in_range_only(timeout):
    for spec in ("local", "ssh:board", "adb"):
        with pytest.raises(SeEdgeError, match=r"timeout must be a number of seconds > 0 and at most 86400"):
            parse_device_spec(spec, timeout=timeout)
    assert parse_device_spec("local", timeout=86400).timeout == 86400.0

