"""Running exported files where they will run: a phone, a board, or another Python on this host.

    transport.py       the Transport interface: setup, push, pull, execute, teardown
    local.py           a subprocess here, optionally with another Python (`local:/path/to/python`)
    adb.py             an Android device over adb (`adb`, `adb:SERIAL`)
    ssh.py             a Linux board over ssh/scp (`ssh:[user@]host[:port]`)
    spec.py            parse_device_spec: a --device SPEC string -> a Transport
    remote_bench.py    bench_on_device: inputs and host references, then every file through a DeviceSession
    session.py         DeviceSession: push runner.py and inputs, probe runtimes, run each file, pull, compare
    received.py        what a device sends back (outputs .npy, stats JSON, --runtimes), checked before it is read
    benchmark_model.py TFLite's own benchmark_model: its command line and its output, parsed
    native.py          the native ExecuTorch runner (native/pte_runner): build and locate it
    report.py          the device bench as Markdown and a latency plot

Nothing here imports torch at module level; only remote_bench's host reference does, when called.
"""
from se_edge.device.spec import DEVICE_SPECS, parse_device_spec
from se_edge.device.transport import Transport

__all__ = ["DEVICE_SPECS", "Transport", "parse_device_spec"]
