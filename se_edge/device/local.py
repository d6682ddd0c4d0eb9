"""`local` and `local:/path/to/python`: the device is this host, in a subprocess.

With another Python (a venv holding only numpy and an old tflite-runtime, say) this stands in for
a board with an older runtime: the model runs in that interpreter, with nothing of the host's
environment but the files pushed to a fresh temporary working directory.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from se_edge.device.transport import DEFAULT_TIMEOUT_S, Transport, run_host_command
from se_edge.errors import SeEdgeError


class LocalTransport(Transport):
    kind = "local"

    def __init__(self, python: str | None = None, timeout: float = DEFAULT_TIMEOUT_S):
        super().__init__(_resolve_python(python), workdir="", timeout=timeout)
        self._custom_python = python is not None

    @property
    def label(self) -> str:
        return f"local:{self.python}" if self._custom_python else "local"

    def setup(self) -> None:
        if not self.workdir:
            self.workdir = tempfile.mkdtemp(prefix="se_edge-device-")

    def push(self, local: str | Path, name: str | None = None) -> str:
        target = self.path(name or Path(local).name)
        try:
            shutil.copy2(local, target)  # keeps the executable bit of a pushed binary
        except OSError as e:
            raise SeEdgeError(f"cannot copy {local} to {target}: {e.strerror or e}") from None
        return target

    def pull(self, device_path: str, local: str | Path) -> Path:
        try:
            if not stat.S_ISREG(os.stat(device_path).st_mode):  # /dev/zero or a FIFO (a link to one) never ends
                raise SeEdgeError(f"cannot copy {device_path} from the device: not a regular file")
            shutil.copyfile(device_path, local)
        except OSError as e:
            raise SeEdgeError(f"cannot copy {device_path} from the device: {e.strerror or e}") from None
        return Path(local)

    def execute(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        return run_host_command(argv, timeout or self.timeout, f"running {Path(argv[0]).name} on {self.label}",
                                cwd=self.workdir or None)

    def teardown(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""


def _resolve_python(python: str | None) -> str:
    if python is None:
        return sys.executable
    found = shutil.which(python) if os.sep not in python else python
    if not found or not os.path.isfile(found):
        raise SeEdgeError(f"local Python not found: {python!r}; use --device local, or local:/path/to/python")
    if not os.access(found, os.X_OK):
        raise SeEdgeError(f"local Python {python!r} is not executable; use --device local:/path/to/python")
    return os.path.abspath(found)
