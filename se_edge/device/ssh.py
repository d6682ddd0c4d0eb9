"""`ssh:[user@]host[:port]`: a Linux board (Raspberry Pi, Jetson, i.MX ...) over ssh and scp.

Files are copied with scp into a fresh directory se_edge-XXXXXXXX under /tmp (`--device-dir` to
change) under plain names, so remote paths need no quoting in scp's syntax; commands run as one
string that ssh hands to the remote shell, every word quoted with shlex.quote. BatchMode: a key
(or an agent) must be set up, ssh never stops to ask for a password. SE_EDGE_SSH_CONFIG names an
ssh_config file that ssh and scp read instead of ~/.ssh/config (`-F`): a key, a known_hosts file, a
jump host for this board only.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from se_edge.device.transport import DEFAULT_TIMEOUT_S, Transport, checked, local_operand, run_host_command, session_dir
from se_edge.errors import SeEdgeError

DEFAULT_DEVICE_DIR = "/tmp"
CONNECT_TIMEOUT_S = 15


class SshTransport(Transport):
    kind = "ssh"

    def __init__(self, destination: str, port: int | None = None, python: str = "python3",
                 device_dir: str = DEFAULT_DEVICE_DIR, timeout: float = DEFAULT_TIMEOUT_S):
        super().__init__(python, session_dir(device_dir), timeout)
        self.destination = destination
        self.port = port

    @property
    def label(self) -> str:
        return f"ssh:{self.destination}" + (f":{self.port}" if self.port else "")

    def _tool(self, name: str) -> str:
        path = shutil.which(name)
        if path is None:
            raise SeEdgeError(f"{name} not found on PATH; install an OpenSSH client, or use --device local or adb")
        return path

    def _options(self) -> list[str]:
        config = os.environ.get("SE_EDGE_SSH_CONFIG")
        if config and not Path(config).is_file():
            raise SeEdgeError(f"SE_EDGE_SSH_CONFIG names {config}, which is not a file; give an ssh_config file or unset it")
        return [*(["-F", config] if config else []), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]

    def setup(self) -> None:
        checked(self._shell(shlex.join(["mkdir", "-p", self.workdir])), f"creating {self.workdir} on {self.label}")

    def push(self, local: str | Path, name: str | None = None) -> str:
        target = self.path(name or Path(local).name)
        argv = [self._tool("scp"), "-q", *self._options(), *(["-P", str(self.port)] if self.port else []),
                local_operand(local), f"{self.destination}:{target}"]
        checked(run_host_command(argv, self.timeout, f"scp to {self.label}"), f"scp {local} to {self.label}")
        return target

    def pull(self, device_path: str, local: str | Path) -> Path:
        argv = [self._tool("scp"), "-q", *self._options(), *(["-P", str(self.port)] if self.port else []),
                f"{self.destination}:{device_path}", local_operand(local)]
        checked(run_host_command(argv, self.timeout, f"scp from {self.label}"), f"scp {device_path} from {self.label}")
        return Path(local)

    def execute(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        return self._shell(f"cd {shlex.quote(self.workdir)} && {shlex.join(argv)}", timeout)

    def _shell(self, command: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        ssh = [self._tool("ssh"), *self._options(), *(["-p", str(self.port)] if self.port else []),
               self.destination, "--", command]
        proc = run_host_command(ssh, timeout or self.timeout, f"ssh to {self.label}")
        if proc.returncode == 255:  # ssh's own failure (connection, authentication), not the command's
            checked(proc, f"ssh to {self.label}")
        return proc

    def teardown(self) -> None:
        try:
            self._shell(shlex.join(["rm", "-rf", self.workdir]))
        except SeEdgeError:
            pass  # best effort: the board may be gone
