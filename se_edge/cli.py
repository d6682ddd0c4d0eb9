"""`se-edge` command line: thin subcommands over the Python API (se_edge.pipeline and friends).

Known errors print one line on stderr and exit with code 2; SE_EDGE_DEBUG=1 shows tracebacks.
Heavy libraries are imported inside the commands, so `se-edge --help` stays fast.
"""
from __future__ import annotations

import argparse
import os
import sys

DEVICES = ("auto", "cpu", "cuda")


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _common_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="se_cnn", help="model name (see `se-edge models`; default se_cnn)")
    p.add_argument("--data", default="digits", help="dataset: 'digits' or an MNIST-style IDX directory (default digits)")
    p.add_argument("--out", help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--se", choices=("hw", "hard_sigmoid", "sigmoid"), help="SE gate (default: the model's, hw)")
    p.add_argument("--size", type=_positive(int), default=32, help="input size in pixels (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed for splits, init and training (default 0)")
    p.add_argument("--epochs", type=_positive(int), default=30, help="float training epochs (default 30)")
    p.add_argument("--batch-size", type=_positive(int), default=64)
    p.add_argument("--lr", type=_positive(float), default=3e-3, help="float training peak learning rate")
    p.add_argument("--device", choices=DEVICES, default="auto", help="training device (default auto: cuda if available)")


def _common_latency(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per artifact (default 10)")
    p.add_argument("--runs", type=_positive(int), default=50, help="timed single-image runs per artifact (default 50)")
    p.add_argument("--threads", type=_positive(int), default=1, help="CPU threads for every runtime (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="se-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="no progress bars or stage messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="train -> QAT -> export .tflite/.pte -> parity -> latency -> report")
    _common_data(p)
    p.add_argument("--qat-epochs", type=_positive(int), default=4, help="QAT fine-tuning epochs (default 4)")
    _common_latency(p)

    p = sub.add_parser("train", help="float training; writes <out>/run.json and float.pt")
    _common_data(p)

    p = sub.add_parser("quantize", help="PT2E QAT fine-tune of a trained run; writes qat.pt")
    p.add_argument("--run", required=True, help="run directory made by `se-edge train`")
    p.add_argument("--qat-epochs", type=_positive(int), default=4)
    p.add_argument("--device", choices=DEVICES, default="auto")

    p = sub.add_parser("export", help="export fp32 and int8 .tflite and .pte from a quantized run")
    p.add_argument("--run", required=True, help="run directory made by `se-edge quantize`")

    p = sub.add_parser("parity", help="evaluate every artifact of a run in its runtime on a dataset")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--data", help="dataset SPEC (default: the run's own test split)")
    p.add_argument("--json", help="write the results (report.json's `artifacts` shape) to this file")
    p.add_argument("--threads", type=_positive(int), default=1)

    p = sub.add_parser("bench", help="latency of every artifact of a run (p50/p90/p99)")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--json", help="write the latencies to this file")
    _common_latency(p)

    sub.add_parser("models", help="list the registered models")
    return parser


def _run_config(args):
    from se_edge.pipeline import RunConfig

    keys = {"model", "data", "out", "se", "size", "seed", "epochs", "batch_size", "lr", "device", "qat_epochs",
            "warmup", "runs", "threads"}
    return RunConfig(progress=not args.quiet, **{k: v for k, v in vars(args).items() if k in keys and v is not None})


def _check_model(name: str) -> None:
    from se_edge.errors import SeEdgeError
    from se_edge.models import list_models

    if name not in list_models():
        raise SeEdgeError(f"unknown model {name!r}; valid: {', '.join(list_models())}")


def _print_table(result: dict) -> None:
    from se_edge.report import artifacts_table

    print(f"{result['model']} on {result['dataset']} ({result['num_test']} images)")
    print(artifacts_table(result["artifacts"]))


def cmd_run(args) -> None:
    from se_edge.pipeline import run_all

    _check_model(args.model)
    report = run_all(_run_config(args))
    _print_table(report)
    out = os.path.dirname(report["artifacts"]["float"]["path"])
    print(f"report: {os.path.join(out, 'report.md')} and report.json; total {report['timings_s']['total']:.0f} s")


def cmd_train(args) -> None:
    from se_edge.pipeline import train_stage

    _check_model(args.model)
    run = train_stage(_run_config(args))
    print(f"float model written to {run.artifact_path('float')}")


def cmd_quantize(args) -> None:
    from se_edge.artifacts import RunDir
    from se_edge.pipeline import quantize_stage

    run = RunDir(args.run)
    result = quantize_stage(run, epochs=args.qat_epochs, device=args.device, progress=not args.quiet)
    print(f"QAT checkpoint written to {run.artifact_path('reference_int8')} "
          f"(fake-quant test accuracy {result['fake_quant_test_accuracy']:.4f})")


def cmd_export(args) -> None:
    from se_edge.artifacts import RunDir
    from se_edge.pipeline import export_stage

    for name, path in export_stage(RunDir(args.run), progress=not args.quiet).items():
        print(f"{name}: {path}")


def cmd_parity(args) -> None:
    from se_edge.artifacts import RunDir
    from se_edge.io import write_json
    from se_edge.parity import run_parity

    result = run_parity(RunDir(args.run), args.data, threads=args.threads, progress=not args.quiet)
    _print_table(result)
    if args.json:
        write_json(args.json, result)
        print(f"written {args.json}")


def cmd_bench(args) -> None:
    from se_edge.artifacts import ARTIFACTS, RunDir
    from se_edge.bench import run_latency
    from se_edge.io import write_json

    run = RunDir(args.run)
    cfg = run.config()
    latency = run_latency(run, args.warmup, args.runs, args.threads, progress=not args.quiet)
    print(f"| artifact | runtime | dtype | p50 ms | p90 ms | p99 ms | runs | threads |\n|---|---|---|---:|---:|---:|---:|---:|")
    for name, lat in latency.items():
        a = ARTIFACTS[name]
        print(f"| {name} | {a.runtime} | {a.dtype} | {lat['p50']:.3f} | {lat['p90']:.3f} | {lat['p99']:.3f} | "
              f"{lat['count']} | {lat['threads']} |")
    if args.json:
        write_json(args.json, {"model": cfg["model"], "artifacts": {
            n: {"path": str(run.artifact_path(n)), "runtime": ARTIFACTS[n].runtime, "dtype": ARTIFACTS[n].dtype,
                "latency_ms": lat} for n, lat in latency.items()}})
        print(f"written {args.json}")


def cmd_models(args) -> None:
    from se_edge.models import list_models

    print("\n".join(list_models()))


COMMANDS = {"run": cmd_run, "train": cmd_train, "quantize": cmd_quantize, "export": cmd_export,
            "parity": cmd_parity, "bench": cmd_bench, "models": cmd_models}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = os.environ.get("SE_EDGE_DEBUG") == "1"
    from se_edge.errors import SeEdgeError
    from se_edge.quiet import quiet_libraries
    from se_edge.runner import RunnerError

    quiet_libraries()
    try:
        COMMANDS[args.command](args)
    except (SeEdgeError, RunnerError) as e:
        if debug:
            raise
        print(f"se-edge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"se-edge {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
