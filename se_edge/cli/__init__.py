"""`se-edge` command line: thin subcommands over the Python API.

    commands.py  run | train | quantize | export | parity | models
    bench.py     bench latency | runtimes | forms | gates | zoo | qat
    options.py   argument types and shared option groups (defaults live in se_edge/config.py)

Known errors print one line on stderr and exit with code 2; SE_EDGE_DEBUG=1 shows tracebacks.
Heavy libraries are imported inside the commands, so `se-edge --help` stays fast.
"""
from __future__ import annotations

import errno
import os
import sys

from se_edge.cli import bench, commands
from se_edge.cli.options import Parser


def build_parser() -> Parser:
    parser = Parser(prog="se-edge", description="Hardware-aware SE networks: QAT in PyTorch, int8 export to LiteRT and "
                                                "ExecuTorch, parity and on-device latency.")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or stage messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    commands.add_parsers(sub)
    bench.add_parser(sub)
    return parser


def _bench_argv(argv: list[str]) -> list[str] | str:
    """Old `bench --MODE` calls: a one-line hint; `bench --run RUN ...` still means `bench latency --run RUN ...`."""
    words = [a for a in argv if a != "--quiet"]
    if not words or words[0] != "bench" or len(words) < 2 or not words[1].startswith("-") or words[1] in ("-h", "--help"):
        return argv
    i = argv.index("bench")
    if hint := bench.legacy_hint(argv[i + 1:]):
        return hint
    return [*argv[:i + 1], "latency", *argv[i + 1:]]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _bench_argv(argv)
    if isinstance(argv, str):
        print(f"se-edge bench: error: {argv}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    debug = os.environ.get("SE_EDGE_DEBUG") == "1"
    from se_edge.errors import SeEdgeError
    from se_edge.quiet import quiet_libraries
    from se_edge.runner import RunnerError

    quiet_libraries()
    name = args.command + (f" {args.bench}" if args.command == "bench" else "")
    if trust := getattr(args, "trust_model_file", None):
        from se_edge.run.models import trust_model_files

        trust_model_files(trust)
    previous = _terminate_as_interrupt()
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)
    try:
        args.func(args)
        sys.stdout.flush()  # a full or closed stdout fails here, inside the handler below, not at exit
    except (SeEdgeError, RunnerError) as e:
        if debug:
            raise
        print(f"se-edge {name}: error: {e}", file=sys.stderr)
        return 2
    except _Terminated:
        print(f"se-edge {name}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"se-edge {name}: interrupted", file=sys.stderr)
        return 130
    except _StdoutFailed as e:
        if debug:
            raise
        _silence(stdout)
        if e.args[1] == errno.EPIPE:  # `se-edge models | head`: the reader has what it wanted, as with any Unix tool
            return 141
        print(f"se-edge {name}: error: cannot write the output to stdout: {e.args[0]}", file=sys.stderr)
        return 2
    finally:
        sys.stdout = stdout
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised where the process is: every `finally` runs (the run lock is released, temporary files go)."""


def _terminate_as_interrupt():
    """SIGTERM unwinds the command as Ctrl-C does; the previous handler (to restore), or None where this is not the
    main thread (signals can be set there only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise _Terminated()

    return signal.signal(signal.SIGTERM, handler)


class _StdoutFailed(Exception):
    """stdout refused what a command printed (a full disk, /dev/full, a closed pipe)."""


class _Stdout:
    """sys.stdout, with a failed write told apart from the command's own I/O errors."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as e:
            raise _StdoutFailed(e.strerror or str(e), e.errno) from None

    def flush(self):
        try:
            self._stream.flush()
        except OSError as e:
            raise _StdoutFailed(e.strerror or str(e), e.errno) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _silence(stream) -> None:
    """Point the failed stdout at /dev/null, so that the interpreter's own flush at exit prints no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


__all__ = ["build_parser", "main"]
