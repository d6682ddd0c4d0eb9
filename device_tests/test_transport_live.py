"""The adb and ssh transports against a real device: push a file whose name has a space and a
quote, run a command there, pull it back. Each skips unless --se-device names such a device."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("kind, example", [("adb", "adb or adb:SERIAL"), ("ssh", "ssh:[user@]host[:port]")])
def test_round_trip(kind, example, request, tmp_path, make_transport):
    spec = request.config.getoption("--se-device")
    if spec.split(":")[0] != kind:
        pytest.skip(f"no {kind} device configured (run with --se-device {example})")
    local = tmp_path / "a dir" / "it's here.bin"
    local.parent.mkdir()
    local.write_bytes(bytes(range(256)) * 4)
    with make_transport() as t:
        remote = t.push(local)
        listing = t.execute(["ls", "-l", remote])
        assert listing.returncode == 0 and "1024" in listing.stdout, listing.stderr
        back = t.pull(remote, tmp_path / "back.bin")
    assert back.read_bytes() == local.read_bytes()


def test_python_on_the_device_has_a_runtime(request, make_transport):
    spec = request.config.getoption("--se-device")
    if spec.split(":")[0] not in ("adb", "ssh"):
        pytest.skip("no adb or ssh device configured (run with --se-device adb[:SERIAL] or ssh:HOST)")
    from se_edge.device.remote_bench import RUNNER

    with make_transport() as t:
        runner = t.push(RUNNER, "runner.py")
        proc = t.execute([t.python, runner, "--runtimes"])
    if proc.returncode != 0:
        pytest.skip(f"{t.python} on {spec} cannot run runner.py: {proc.stderr.strip()[-200:]} (--device-python)")
    assert '"litert"' in proc.stdout
