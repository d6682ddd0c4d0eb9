"""`qemu-arm64[:CPU]`: the arm64 board that `make arm64-board` built, run on this host under QEMU user mode.

The board is a Debian bookworm arm64 sysroot with no Python: only the native runners run there, each command as
`qemu-aarch64-static -L SYSROOT -cpu CPU PROGRAM ...` in a fresh working directory on this host. The runners are
installed on the board (/opt/se_edge/bin), so `push` of a file that already lives in the sysroot hands back its
path there instead of copying it. CPU defaults to the model the board pins; a model that QEMU computes wrong int8
results on is refused, and every output is checked against the host reference in any case.

Latency here is QEMU's: it proves outputs on ARM kernels, not a device's speed (150-900x slower).
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from se_edge.device import arm64
from se_edge.device.local import LocalTransport
from se_edge.device.transport import DEFAULT_TIMEOUT_S, Transport, run_host_command
from se_edge.errors import SeEdgeError

EMULATED = "emulated"


class QemuTransport(LocalTransport):
    """A working directory on this host, as `local` has, with every program run under QEMU in the board's sysroot."""

    kind = "qemu"
    emulated = True  # its latency is the emulator's, never a device's

    def __init__(self, cpu: str | None = None, board: str | os.PathLike | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S):
        self.board_dir = Path(board) if board else Path(os.environ.get("SE_EDGE_ARM64_BOARD") or arm64.BOARD_DIR)
        self.board = arm64.load_board(self.board_dir)
        self.cpu = arm64.check_cpu(cpu or self.board["cpu"])
        self.sysroot = Path(self.board["sysroot"]).resolve()
        if not self.sysroot.is_dir():
            raise SeEdgeError(f"the arm64 board's sysroot {self.sysroot} is missing: run `make arm64-board` again")
        self.qemu = shutil.which(arm64.QEMU) or self.board.get("qemu") or ""
        if not self.qemu or not os.access(self.qemu, os.X_OK):
            raise SeEdgeError(f"{arm64.QEMU} not found: install Debian's qemu-user-static (`make arm64-board` does)")
        Transport.__init__(self, python=None, workdir="", timeout=timeout)

    @property
    def label(self) -> str:
        return f"qemu-arm64:{self.cpu}"

    def installed(self, runner: str) -> Path:
        """The host path of `runner` as the board has it installed (in its sysroot)."""
        path = self.sysroot / arm64.GUEST_PREFIX.lstrip("/") / "bin" / runner
        if not path.is_file():
            raise SeEdgeError(f"the arm64 board has no {runner} at {path}: run `make arm64-board` again")
        return path

    def push(self, local: str | Path, name: str | None = None) -> str:
        source = Path(local).resolve()
        if source.is_relative_to(self.sysroot):  # already on the board: its path there
            return "/" + source.relative_to(self.sysroot).as_posix()
        return super().push(local, name)

    def execute(self, argv: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        """`argv` on the board. QEMU opens the program itself on this host, so a program of the board's is named by
        its path in the sysroot; what the program then opens (its libraries, /proc/cpuinfo) QEMU looks up in the
        sysroot first (-L)."""
        program = argv[0]
        if program.startswith("/") and (self.sysroot / program.lstrip("/")).is_file():
            program = str(self.sysroot / program.lstrip("/"))
        command = [self.qemu, "-L", str(self.sysroot), "-cpu", self.cpu, program, *argv[1:]]
        return run_host_command(command, timeout or self.timeout, f"running {Path(argv[0]).name} on {self.label}",
                                cwd=self.workdir or None)

    def make_executable(self, device_path: str) -> None:
        host = self.sysroot / device_path.lstrip("/") if not device_path.startswith(self.workdir) else Path(device_path)
        if not host.is_file():
            raise SeEdgeError(f"{device_path} is not on the board")
        host.chmod(host.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def describe(self) -> dict:
        """What the device report says about the board itself."""
        return {"emulated": True, "latency": EMULATED, "qemu": self.board.get("qemu_version", ""), "cpu_model_qemu": self.cpu,
                "sysroot": str(self.sysroot), "python_in_sysroot": arm64.pythons_in(self.sysroot),
                "debian": self.board.get("debian", []), "board_runtimes": self.board.get("runtimes", {})}
