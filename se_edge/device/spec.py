"""--device SPEC -> a Transport.

    local                      this host, this Python (sys.executable)
    local:/path/to/python      this host, another Python (e.g. a venv with only tflite-runtime)
    adb | adb:SERIAL           an Android device (`adb devices` lists serials; ip:port works too)
    ssh:[user@]host[:port]     a Linux board over ssh/scp
    qemu-arm64[:CPU]           the arm64 board `make arm64-board` built (no Python: native runners only), under
                               QEMU user mode on this host; CPU a QEMU model (default the board's pinned one)
"""
from __future__ import annotations

import re

from se_edge.device.transport import DEFAULT_TIMEOUT_S, Transport
from se_edge.errors import SeEdgeError

DEVICE_SPECS = ("local", "local:/path/to/python", "adb", "adb:SERIAL", "ssh:[user@]host[:port]", "qemu-arm64[:CPU]")
# ssh:[user@]host[:port], strictly: a POSIX user name and a host name (or IPv4 address) as DNS spells them, so
# nothing that reaches ssh's argv can be an option, a quote, `$` or a backtick, even though it is one argv word.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_SSH = re.compile(rf"(?P<dest>(?:[A-Za-z_][A-Za-z0-9._-]{{0,31}}@)?{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>\d{{1,5}}))?")
_ADB_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")  # emulator-5554, R58M123ABC, 192.168.1.7:5555


def parse_device_spec(spec: str, *, python: str | None = None, device_dir: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S) -> Transport:
    """The Transport for `spec`. `python` is the interpreter on an adb/ssh device (default python3);
    `device_dir` the directory there under which a fresh working directory is made."""
    kind, _, rest = (spec or "").partition(":")
    if kind == "local":
        from se_edge.device.local import LocalTransport

        if device_dir is not None:
            raise SeEdgeError("--device-dir applies to adb and ssh devices; a local run works in a temp directory")
        if python is not None and rest:
            raise SeEdgeError("give the local Python once: --device local:PATH or --device-python, not both")
        return LocalTransport(rest or python, timeout=timeout)
    if kind == "qemu-arm64":
        from se_edge.device.qemu import QemuTransport

        if python is not None or device_dir is not None:
            raise SeEdgeError("--device-python and --device-dir do not apply to qemu-arm64: the board has no Python "
                              "and works in a temp directory")
        return QemuTransport(rest or None, timeout=timeout)
    remote = {"python": python or "python3", "timeout": timeout, **({"device_dir": device_dir} if device_dir else {})}
    if kind == "adb" and (spec == "adb" or _ADB_SERIAL.fullmatch(rest)):
        from se_edge.device.adb import AdbTransport

        return AdbTransport(rest or None, **remote)
    if kind == "ssh" and (m := _SSH.fullmatch(rest)):
        from se_edge.device.ssh import SshTransport

        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise SeEdgeError(f"bad ssh port in device {spec!r}: {port}; valid: 1-65535")
        return SshTransport(m["dest"], port, **remote)
    if kind == "ssh" and "@" in rest:
        raise SeEdgeError(f"bad ssh destination in device {spec!r}: the user must be letters, digits, '.', '_' or '-' "
                          f"(starting with a letter or '_') and the host a host name or IPv4 address; valid: "
                          f"{', '.join(DEVICE_SPECS)}")
    raise SeEdgeError(f"unknown device {spec!r}; valid: {', '.join(DEVICE_SPECS)}")
