"""`se-edge` command line: thin subcommands over the Python API.

    commands.py  run | train | quantize | export | parity | models
    bench.py     bench latency | runtimes | forms | gates | zoo | qat
    options.py   argument types and shared option groups (defaults live in se_edge/config.py)

Known errors print one line on stderr and exit with code 2; SE_EDGE_DEBUG=1 shows tracebacks.
Heavy libraries are imported inside the commands, so `se-edge --help` stays fast.
"""
from __future__ import annotations

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
    try:
        args.func(args)
    except (SeEdgeError, RunnerError) as e:
        if debug:
            raise
        print(f"se-edge {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"se-edge {name}: interrupted", file=sys.stderr)
        return 130
    return 0


__all__ = ["build_parser", "main"]
