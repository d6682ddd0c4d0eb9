"""`adb` and `adb:SERIAL`: an Android device (phone, dev board) over Android Debug Bridge.

Files go to a fresh directory se_edge-XXXXXXXX under /data/local/tmp (where adb shell may execute
binaries; `--device-dir` to change), with plain names, and that directory is removed at the end;
commands run through `adb shell`, which hands its one command string to the device's sh, so every
word of it is quoted with shlex.quote. Modern adb (Android 7+) returns the device command's exit
status. Python on the device (Termux, say) is `--device-python` (default python3); without one,
TFLite's own benchmark_model (`--runner-bin`) or a cross-built pte_runner (`--native PATH`)
still measure latency there.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from se_edge.device.transport import DEFAULT_TIMEOUT_S, Transport, checked, local_operand, last_line, run_host_command, session_dir
from se_edge.errors import SeEdgeError

DEFAULT_DEVICE_DIR = "/data/local/tmp"


class AdbTransport(Transport):
    kind = "adb"

    def __init__(self, serial: str | None = None, python: str = "python3", device_dir: str = DEFAULT_DEVICE_DIR,
                 timeout: float = DEFAULT_TIMEOUT_S):
        super().__init__(python, session_dir(device_dir), timeout)
        self.serial = serial

    @property
    def label(self) -> str:
        return f"adb:{self.serial}" if self.serial else "adb"

    def _adb(self) -> list[str]:
        adb = shutil.which("adb")
        if adb is None:
            raise SeEdgeError("adb not found on PATH; install Android platform-tools, or use --device local or ssh:HOST")
        return [adb, *(["-s", self.serial] if self.serial else [])]

    def _call(self, args: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        return run_host_command([*self._adb(), *args], timeout or self.timeout, what)

    def setup(self) -> None:
        state = self._call(["get-state"], f"adb get-state ({self.label})")
        if state.returncode != 0 or state.stdout.strip() != "device":
            detail = last_line(state.stderr) or last_line(state.stdout) or f"exit {state.returncode}"
            raise SeEdgeError(f"no usable Android device at {self.label}: {detail}; check `adb devices`")
        checked(self._call(["shell", shlex.join(["mkdir", "-p", self.workdir])], f"adb shell on {self.label}"),
                f"creating {self.workdir} on {self.label}")

    def push(self, local: str | Path, name: str | None = None) -> str:
        target = self.path(name or Path(local).name)
        checked(self._call(["push", local_operand(local), target], f"adb push to {self.label}"), f"adb push {local}")
        return target

    def pull(self, device_path: str, local: str | Path) -> Path:
        checked(self._call(["pull", device_path, local_operand(local)], f"adb pull from {self.label}"), f"adb pull {device_path}")
        return Path(local)

    def execute(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        command = f"cd {shlex.quote(self.workdir)} && {shlex.join(argv)}"
        return self._call(["shell", command], f"adb shell on {self.label}", timeout)

    def teardown(self) -> None:
        try:
            self._call(["shell", shlex.join(["rm", "-rf", self.workdir])], f"adb shell on {self.label}")
        except SeEdgeError:
            pass  # best effort: the device may be gone

