"""The Transport interface: how the host reaches the machine where a model runs.

A transport owns one working directory on the device, made fresh for the session
(`<device dir>/se_edge-<random>`, so that removing it at the end removes nothing of the user's).
`push` copies a host file into it under a plain name, `execute` runs an argument list there
(cwd = the working directory) and returns its exit status and output, `pull` copies a device file
back. Every host command is an argument list
run without a shell and with a timeout, in a process group of its own; a missing tool, a timeout or a
failing transfer raises SeEdgeError with one line naming the command and what went wrong. A command that
outlives its timeout is ended with everything it started (the whole group: a runner's hung child, the
ssh or adb client's); on a remote device, what the device's shell started there is the device's to end.
"""
from __future__ import annotations

import abc
import math
import os
import posixpath
import re
import secrets
import shlex
import signal
import subprocess
from pathlib import Path

from se_edge.errors import SeEdgeError

DEFAULT_TIMEOUT_S = 300.0
MAX_TIMEOUT_S = 86400.0  # one day: longer than any device command takes, and within what the OS's waits take
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def device_name(name: str) -> str:
    """A file name safe on any device shell and in scp's remote syntax: other characters become '_'."""
    name = _UNSAFE.sub("_", Path(name).name)
    return name if name.strip("._") else f"file{name}"


def session_dir(device_dir: str) -> str:
    """A fresh working directory under `device_dir`, which must be absolute and plain so that
    scp's and adb's remote path syntax and every device shell take it literally."""
    if not re.fullmatch(r"/[A-Za-z0-9._/-]*", device_dir) or "/../" in device_dir + "/":
        raise SeEdgeError(f"device directory must be an absolute path of letters, digits and ._-/ only, "
                          f"got {device_dir!r}")
    return posixpath.join(device_dir.rstrip("/") or "/", f"se_edge-{secrets.token_hex(4)}")


def local_operand(path: str | Path) -> str:
    """A host path as scp/adb take it: absolute, so a file named `-o...` is never read as an option and one
    named `host:x` never as a remote path."""
    return os.path.abspath(path)


def exit_status(returncode: int) -> str:
    """'exit 1', or the signal that ended it: 'SIGABRT' (-6 here, 134 through a remote shell)."""
    import signal

    number = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 160 else None
    if number is not None and number in {s.value for s in signal.Signals}:
        return f"exit {returncode}: killed by {signal.Signals(number).name}, the runtime crashed"
    return f"exit {returncode}"


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def check_timeout(timeout: float, what: str = "timeout") -> float:
    """`timeout` as float seconds if it is a number > 0 and at most MAX_TIMEOUT_S; SeEdgeError otherwise."""
    try:
        value = float(timeout)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT_S:  # NaN fails this too
        raise SeEdgeError(f"{what} must be a number of seconds > 0 and at most {MAX_TIMEOUT_S:g} (one day), "
                          f"got {timeout}")
    return value


def run_host_command(argv: list[str], timeout: float, what: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run `argv` on this host (no shell) and return it whatever its exit status.

    It runs in a new session, so in a process group of its own: when it outlives `timeout` seconds (or this
    process is interrupted) the whole group is killed, not only `argv[0]` (a wrapper's hung child, a runner's
    threads' helper, the ssh client's). SeEdgeError if the program does not exist or the call times out."""
    argv = [str(a) for a in argv]
    timeout = check_timeout(timeout)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", cwd=cwd, start_new_session=True)
    except FileNotFoundError:
        raise SeEdgeError(f"{what}: {argv[0]} not found") from None
    except PermissionError:
        raise SeEdgeError(f"{what}: {argv[0]} is not executable") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end_group(proc)
        raise SeEdgeError(f"{what} timed out after {timeout:g} s: {shlex.join(argv)}") from None
    except BaseException:  # Ctrl-C: a new session's group no longer gets the terminal's SIGINT, so end it here
        _end_group(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _end_group(proc: subprocess.Popen) -> None:
    """Kill `proc`'s process group (its id is proc's pid: start_new_session), reap proc, close its pipes.

    The group's id stays proc's until proc is reaped, so the signal cannot reach another group. Its pipes are
    closed unread: a process that left the group (a daemon that made its own session) may still hold them."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.kill()  # where the group was gone already, proc itself (a no-op once it has exited)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def checked(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    """`proc` if it exited 0; otherwise SeEdgeError naming `what`, the exit status and its last error line."""
    if proc.returncode != 0:
        detail = last_line(proc.stderr) or last_line(proc.stdout) or "no output"
        raise SeEdgeError(f"{what} failed (exit {proc.returncode}): {detail}")
    return proc


class Transport(abc.ABC):
    """One device: a working directory there, file transfer both ways, and command execution."""

    kind: str = ""

    def __init__(self, python: str, workdir: str, timeout: float = DEFAULT_TIMEOUT_S):
        self.timeout = check_timeout(timeout)
        self.python = python
        self.workdir = workdir

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """The device as a user names it: 'local', 'adb:SERIAL', 'ssh:user@host'."""

    def path(self, name: str) -> str:
        """Where `name` lives (or will live) in the working directory on the device."""
        return posixpath.join(self.workdir, device_name(name))

    @abc.abstractmethod
    def setup(self) -> None:
        """Check that the device is reachable and create the working directory."""

    @abc.abstractmethod
    def push(self, local: str | Path, name: str | None = None) -> str:
        """Copy a host file into the working directory; returns its path on the device."""

    @abc.abstractmethod
    def pull(self, device_path: str, local: str | Path) -> Path:
        """Copy a device file to `local` on the host."""

    @abc.abstractmethod
    def execute(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run `argv` on the device in the working directory; returns whatever the exit status."""

    @abc.abstractmethod
    def teardown(self) -> None:
        """Remove the working directory from the device."""

    def make_executable(self, device_path: str) -> None:
        checked(self.execute(["chmod", "755", device_path]), f"chmod on {self.label}")

    def __enter__(self) -> Transport:
        self.setup()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r}, python={self.python!r}, workdir={self.workdir!r})"
