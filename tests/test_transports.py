"""Transports, checked command by command with fake `adb`, `ssh` and `scp` executables on PATH.

The fakes record their argv (one JSON list per line) and act as a device whose file system is this
host's: push/pull and scp copy, `adb shell` and `ssh` hand their command string to `sh -c`, as the
device's shell would. So each test checks both the exact command line and that the quoting survives
a real shell. The model paths have a space and a quote in them.
"""
from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from pathlib import Path

import pytest

from se_edge.device import parse_device_spec
from se_edge.device.adb import AdbTransport
from se_edge.device.local import LocalTransport
from se_edge.device.ssh import SshTransport
from se_edge.device.transport import device_name, session_dir
from se_edge.errors import SeEdgeError

FAKE_TOOL = """#!{python}
# A fake {name}: records argv, then acts on this host's file system as the device's.
import json, os, shutil, subprocess, sys, time
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
if os.environ.get("FAKE_EXIT"):
    print(os.environ.get("FAKE_STDERR", "error: device offline"), file=sys.stderr)
    sys.exit(int(os.environ["FAKE_EXIT"]))
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
if name == "adb":
    args = args[2:] if args[:1] == ["-s"] else args
    if args[0] == "get-state":
        print(os.environ.get("FAKE_STATE", "device"))
    elif args[0] in ("push", "pull"):
        shutil.copy(args[1], args[2])
    elif args[0] == "shell":
        sys.exit(subprocess.run(["sh", "-c", args[1]]).returncode)
elif name == "ssh":
    sys.exit(subprocess.run(["sh", "-c", args[args.index("--") + 1]]).returncode)
elif name == "scp":
    # scp's rule: a colon before the first slash makes host:path; anything else is a local path
    src, dst = (a.split(":", 1)[1] if ":" in a.split("/", 1)[0] else a for a in args[-2:])
    shutil.copy(src, dst)
"""


def install_fakes(directory: Path, names=("adb", "ssh", "scp")) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        tool = directory / name
        tool.write_text(FAKE_TOOL.format(python=sys.executable, name=name))
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return directory


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    """Fake adb/ssh/scp first on PATH; returns a function giving the recorded argv lists."""
    bin_dir = install_fakes(tmp_path / "fake bin")
    log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    for var in ("FAKE_SLEEP", "FAKE_EXIT", "FAKE_STATE", "FAKE_STDERR"):
        monkeypatch.delenv(var, raising=False)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    calls.bin = bin_dir
    return calls


@pytest.fixture
def device_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("device"))


@pytest.fixture
def awkward_model(tmp_path) -> Path:
    """A model file whose path has a space and a single quote."""
    path = tmp_path / "my models" / "it's int8.tflite"
    path.parent.mkdir()
    path.write_bytes(b"TFL3 not really a model")
    return path


# ---------------------------------------------------------------- --device SPEC


@pytest.mark.parametrize("spec, kind, label", [
    ("local", "local", "local"), ("adb", "adb", "adb"), ("adb:emulator-5554", "adb", "adb:emulator-5554"),
    ("adb:192.168.1.7:5555", "adb", "adb:192.168.1.7:5555"), ("ssh:pi@raspberrypi", "ssh", "ssh:pi@raspberrypi"),
    ("ssh:board.local:2222", "ssh", "ssh:board.local:2222")])
def test_device_specs(spec, kind, label):
    transport = parse_device_spec(spec)
    assert (transport.kind, transport.label) == (kind, label)


def test_local_spec_with_another_python():
    transport = parse_device_spec(f"local:{sys.executable}")
    assert transport.python == os.path.abspath(sys.executable) and transport.label == f"local:{transport.python}"


@pytest.mark.parametrize("spec", ["", "phone", "usb:1", "adb:", "adb:-s", "ssh:", "ssh:a b", "ssh:-oProxyCommand=x",
                                  "ssh:me@-host", "ssh:host:99999", "ssh:'pi'@board", "ssh:`reboot`@board",
                                  "ssh:$USER@board", "ssh:pi@bo$ard", "ssh:-pi@board", "ssh:pi@host-", "ssh:pi@@board",
                                  "ssh:" + "u" * 40 + "@board"])
def test_bad_device_specs_name_what_is_valid(spec):
    with pytest.raises(SeEdgeError) as e:
        parse_device_spec(spec)
    message = str(e.value)
    if "@" in spec.partition(":")[2] and "99999" not in spec:
        assert "bad ssh destination" in message and "the user must be letters" in message, message
    assert "\n" not in message and (("valid: local, local:/path/to/python, adb, adb:SERIAL, ssh:[user@]host[:port]"
                                     in message) or "valid: 1-65535" in message), message


def test_local_python_must_exist(tmp_path):
    with pytest.raises(SeEdgeError, match="local Python not found"):
        parse_device_spec(f"local:{tmp_path / 'nope' / 'python'}")


@pytest.mark.parametrize("bad", ["relative/dir", "/tmp/with space", "/tmp/it's", "/tmp/../etc", "/tmp/$(reboot)"])
def test_device_dir_must_be_plain_and_absolute(bad):
    with pytest.raises(SeEdgeError, match="device directory must be an absolute path"):
        parse_device_spec("ssh:board", device_dir=bad)


def test_device_names_are_plain():
    assert device_name("it's int8.tflite") == "it_s_int8.tflite"
    assert device_name("/some dir/model_int8.pte") == "model_int8.pte"
    assert device_name("..") == "file.."
    assert session_dir("/data/local/tmp").startswith("/data/local/tmp/se_edge-")


# ---------------------------------------------------------------- adb


def test_adb_exact_commands(fakes, device_dir, awkward_model, tmp_path):
    adb = str(fakes.bin / "adb")
    t = AdbTransport("emulator-5554", python=sys.executable, device_dir=device_dir, timeout=30)
    work = t.workdir
    assert work.startswith(device_dir + "/se_edge-")
    t.setup()
    remote = t.push(awkward_model, awkward_model.name)
    proc = t.execute([sys.executable, "-c", "import sys; print(sys.argv[1:])", str(awkward_model), "a'b c"])
    t.pull(remote, tmp_path / "back.tflite")
    t.teardown()
    assert remote == f"{work}/it_s_int8.tflite"
    script = "import sys; print(sys.argv[1:])"
    assert fakes() == [
        [adb, "-s", "emulator-5554", "get-state"],
        [adb, "-s", "emulator-5554", "shell", f"mkdir -p {work}"],
        [adb, "-s", "emulator-5554", "push", str(awkward_model), remote],
        [adb, "-s", "emulator-5554", "shell",
         f"cd {work} && {shlex.quote(sys.executable)} -c {shlex.quote(script)} {shlex.quote(str(awkward_model))} 'a'\"'\"'b c'"],
        [adb, "-s", "emulator-5554", "pull", remote, str(tmp_path / "back.tflite")],
        [adb, "-s", "emulator-5554", "shell", f"rm -rf {work}"],
    ]
    assert proc.returncode == 0 and proc.stdout.strip() == repr([str(awkward_model), "a'b c"]), "quoting did not survive sh"
    assert (tmp_path / "back.tflite").read_bytes() == awkward_model.read_bytes()
    assert not Path(work).exists(), "teardown removes the session directory"


def test_adb_without_serial_and_exit_status(fakes, device_dir):
    t = AdbTransport(None, device_dir=device_dir)
    t.setup()
    assert t.execute(["sh", "-c", "exit 3"]).returncode == 3
    assert fakes()[0] == [str(fakes.bin / "adb"), "get-state"]


def test_adb_missing_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SeEdgeError, match=r"adb not found on PATH; install Android platform-tools"):
        AdbTransport("x").setup()


def test_adb_no_device(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_EXIT", "1")
    monkeypatch.setenv("FAKE_STDERR", "error: device 'emulator-5554' not found")
    with pytest.raises(SeEdgeError) as e:
        AdbTransport("emulator-5554").setup()
    assert str(e.value) == ("no usable Android device at adb:emulator-5554: error: device 'emulator-5554' not found; "
                            "check `adb devices`")


def test_adb_failing_push_names_the_file(fakes, device_dir, awkward_model, monkeypatch):
    t = AdbTransport("s1", device_dir=device_dir)
    t.setup()
    monkeypatch.setenv("FAKE_EXIT", "1")
    with pytest.raises(SeEdgeError) as e:
        t.push(awkward_model)
    assert str(e.value) == f"adb push {awkward_model} failed (exit 1): error: device offline"


def test_adb_timeout(fakes, device_dir, monkeypatch):
    t = AdbTransport("s1", device_dir=device_dir, timeout=0.5)
    monkeypatch.setenv("FAKE_SLEEP", "5")
    with pytest.raises(SeEdgeError, match=r"adb get-state \(adb:s1\) timed out after 0.5 s: .*adb'? -s s1 get-state"):
        t.setup()


# ---------------------------------------------------------------- ssh


def test_ssh_exact_commands(fakes, device_dir, awkward_model, tmp_path):
    ssh, scp = str(fakes.bin / "ssh"), str(fakes.bin / "scp")
    t = SshTransport("pi@board", 2222, python="python3", device_dir=device_dir, timeout=30)
    work = t.workdir
    opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
    t.setup()
    remote = t.push(awkward_model, awkward_model.name)
    proc = t.execute([sys.executable, "-c", "import os, sys; print(os.getcwd(), sys.argv[1:])", "x y'z"])
    t.pull(remote, tmp_path / "back.tflite")
    t.teardown()
    script = "import os, sys; print(os.getcwd(), sys.argv[1:])"
    assert fakes() == [
        [ssh, *opts, "-p", "2222", "pi@board", "--", f"mkdir -p {work}"],
        [scp, "-q", *opts, "-P", "2222", str(awkward_model), f"pi@board:{work}/it_s_int8.tflite"],
        [ssh, *opts, "-p", "2222", "pi@board", "--",
         f"cd {work} && {shlex.quote(sys.executable)} -c {shlex.quote(script)} 'x y'\"'\"'z'"],
        [scp, "-q", *opts, "-P", "2222", f"pi@board:{remote}", str(tmp_path / "back.tflite")],
        [ssh, *opts, "-p", "2222", "pi@board", "--", f"rm -rf {work}"],
    ]
    assert proc.stdout.strip() == f"{work} {['x y' + chr(39) + 'z']!r}"
    assert (tmp_path / "back.tflite").read_bytes() == awkward_model.read_bytes()


def test_local_paths_reach_scp_and_adb_absolute_never_as_options(fakes, device_dir, tmp_path, monkeypatch):
    """A run directory or file named `-o...` (or `host:x`) stays a path: scp and adb get it absolute."""
    monkeypatch.chdir(tmp_path)
    Path("-oProxyCommand=touch pwned").write_bytes(b"model")
    Path("board:x.tflite").write_bytes(b"model")
    ssh_t = SshTransport("pi@board", None, device_dir=device_dir, timeout=30)
    ssh_t.setup()
    ssh_t.push("-oProxyCommand=touch pwned", "a.tflite")
    ssh_t.push("board:x.tflite", "b.tflite")
    ssh_t.pull(ssh_t.path("a.tflite"), "-oback")
    adb_t = AdbTransport("s1", device_dir=device_dir, timeout=30)
    adb_t.setup()
    adb_t.push("-oProxyCommand=touch pwned", "a.tflite")
    copies = [argv for argv in fakes() if Path(argv[0]).name in ("scp", "adb") and ("push" in argv or "-q" in argv)]
    local = [a for argv in copies for a in argv if "ProxyCommand" in a or a.endswith(("board:x.tflite", "-oback"))]
    assert local == [str(tmp_path / "-oProxyCommand=touch pwned"), str(tmp_path / "board:x.tflite"),
                     str(tmp_path / "-oback"), str(tmp_path / "-oProxyCommand=touch pwned")]
    assert not Path("pwned").exists() and Path("-oback").read_bytes() == b"model"


def test_ssh_without_port(fakes, device_dir):
    t = SshTransport("board", device_dir=device_dir)
    t.setup()
    assert fakes()[0][:6] == [str(fakes.bin / "ssh"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "board"]


def test_ssh_reads_the_config_file_se_edge_ssh_config_names(fakes, device_dir, monkeypatch, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text("Host board\n  Port 2222\n")
    monkeypatch.setenv("SE_EDGE_SSH_CONFIG", str(config))
    t = SshTransport("board", device_dir=device_dir)
    t.setup()
    t.push(__file__, "x.py")
    ssh, scp = fakes()[:2]
    assert ssh[1:3] == ["-F", str(config)] and scp[2:4] == ["-F", str(config)], (ssh, scp)
    monkeypatch.setenv("SE_EDGE_SSH_CONFIG", str(tmp_path / "missing"))
    with pytest.raises(SeEdgeError, match="SE_EDGE_SSH_CONFIG names .*missing, which is not a file"):
        SshTransport("board", device_dir=device_dir).setup()


def test_ssh_connection_failure_is_an_error_but_a_command_status_is_not(fakes, device_dir, monkeypatch):
    t = SshTransport("board", device_dir=device_dir)
    t.setup()
    assert t.execute(["sh", "-c", "exit 7"]).returncode == 7
    monkeypatch.setenv("FAKE_EXIT", "255")
    monkeypatch.setenv("FAKE_STDERR", "ssh: connect to host board port 22: Connection refused")
    with pytest.raises(SeEdgeError) as e:
        t.execute(["true"])
    assert str(e.value) == "ssh to ssh:board failed (exit 255): ssh: connect to host board port 22: Connection refused"


def test_ssh_missing_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SeEdgeError, match="ssh not found on PATH; install an OpenSSH client"):
        SshTransport("board").setup()


def test_ssh_timeout(fakes, device_dir, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "5")
    with pytest.raises(SeEdgeError, match=r"timed out after 0.5 s"):
        SshTransport("board", device_dir=device_dir, timeout=0.5).setup()


# ---------------------------------------------------------------- local


def test_local_with_a_python_whose_path_has_a_space_and_a_quote(tmp_path, awkward_model):
    python_dir = tmp_path / "py env" / "it's"
    python_dir.mkdir(parents=True)
    python = python_dir / "python"
    python.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    python.chmod(0o755)
    t = parse_device_spec(f"local:{python}", timeout=60)
    with t:
        remote = t.push(awkward_model)
        proc = t.execute([t.python, "-c", "import os, sys; print(os.getcwd()); print(sys.argv[1])", remote])
        work = t.workdir
    assert t.python == str(python)
    assert proc.returncode == 0 and proc.stdout.split("\n")[:2] == [work, remote]
    assert remote == os.path.join(work, "it_s_int8.tflite") and not Path(work).exists()


def test_local_timeout():
    t = LocalTransport(timeout=0.5)
    with t, pytest.raises(SeEdgeError, match="timed out after 0.5 s"):
        t.execute([sys.executable, "-c", "import time; time.sleep(5)"])


def test_local_missing_program_is_one_line():
    t = LocalTransport()
    with t, pytest.raises(SeEdgeError, match="no-such-program-here not found"):
        t.execute(["no-such-program-here"])


def test_exit_status_names_the_signal_that_ended_a_runner():
    from se_edge.device.transport import exit_status

    assert exit_status(1) == "exit 1"
    assert exit_status(-6) == "exit -6: killed by SIGABRT, the runtime crashed"
    assert exit_status(134) == "exit 134: killed by SIGABRT, the runtime crashed"  # 128 + 6, through a remote shell
