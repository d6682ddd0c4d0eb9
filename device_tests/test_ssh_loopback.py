"""A real ssh device on loopback: OpenSSH's sshd on 127.0.0.1 and a free port with throwaway keys, and
`se-edge bench latency --device ssh:USER@127.0.0.1:PORT` end to end, the device's Python being the
numpy<2 + tflite-runtime venv of `make old-runtime-venv` (a board with an older runtime, no torch).

    make device-test-ssh [RUN=runs/demo]

Skips with the reason where sshd, ssh-keygen or that venv is missing or sshd does not start. Nothing
outside a temporary directory is touched: the keys, known_hosts and both configs live there, and the
client reads its config through SE_EDGE_SSH_CONFIG (ssh -F), not ~/.ssh.
"""
from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
OLD_PYTHON = Path(".venv-tflite-old/bin/python")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """(destination, port, client config path) of a running loopback sshd; stopped afterwards."""
    binary = next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), shutil.which("sshd"))
    keygen = shutil.which("ssh-keygen")
    if binary is None or keygen is None or shutil.which("ssh") is None or shutil.which("scp") is None:
        pytest.skip("OpenSSH server or client not installed (make device-test-ssh installs Debian's openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    user = getpass.getuser()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
        f"AllowUsers {user}", "Subsystem sftp internal-sftp", "LogLevel ERROR", ""]))  # scp speaks sftp now
    host_key = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (d / "ssh_config").write_text("\n".join([
        "Host 127.0.0.1", f"  Port {port}", f"  User {user}", f"  IdentityFile {d / 'client_key'}",
        "  IdentitiesOnly yes", f"  UserKnownHostsFile {d / 'known_hosts'}", "  StrictHostKeyChecking yes", ""]))
    os.makedirs("/run/sshd", exist_ok=True)  # Debian's sshd wants its privilege-separation directory
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE, text=True)
    try:
        if not _wait_for(port, proc):
            proc.kill()
            pytest.skip(f"sshd did not start on 127.0.0.1:{port}: {(proc.communicate()[1] or '').strip()[-300:]}")
        yield f"{user}@127.0.0.1", port, d / "ssh_config"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bench_runs_the_tflite_files_over_real_ssh_with_the_old_runtime(sshd, run_dir, tmp_path):
    if not OLD_PYTHON.is_file():
        pytest.skip(f"{OLD_PYTHON} missing (make old-runtime-venv)")
    destination, port, config = sshd
    env = {**os.environ, "SE_EDGE_SSH_CONFIG": str(config)}
    ping = subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", destination, "--", "echo", "ok"],
                          capture_output=True, text=True, timeout=30)
    assert ping.stdout.strip() == "ok", ping.stderr
    out = tmp_path / "bench.json"  # the venv's python by its own path: resolve() would give the base interpreter
    proc = subprocess.run([sys.executable, "-m", "se_edge.cli", "bench", "latency", "--run", str(run_dir),
                           "--device", f"ssh:{destination}:{port}", "--device-python", str(OLD_PYTHON.absolute()),
                           "--runs", "20", "--json", str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    result = json.loads(out.read_text())
    ran = {n: a for n, a in result["artifacts"].items() if a.get("latency_ms")}
    tflites = [n for n in ran if n.startswith("tflite")]
    assert len(tflites) >= 3, (list(ran), result)  # fp32, int8, PTQ int8 at least
    for name in tflites:
        a = ran[name]
        assert a["agreement_with_reference"] >= 0.99, (name, a)
        assert a["status"] == "ok" and a["latency_ms"]["p50"] > 0
    skipped = {n: a.get("reason") for n, a in result["artifacts"].items() if n.startswith("executorch")}
    assert skipped and all(result["artifacts"][n]["status"] == "skipped" and r for n, r in skipped.items()), skipped
