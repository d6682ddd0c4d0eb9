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


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem (`--help` shows the usage), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of epochs (0 or more), got {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _between_0_and_1(inclusive: bool):
    span = "from 0 to 1" if inclusive else "between 0 and 1 (exclusive)"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {span}, got {text}") from None
        if not (0 <= value <= 1 if inclusive else 0 < value < 1):
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value
    return parse


def _common_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="se_cnn", help="model name (see `se-edge models`; default se_cnn)")
    p.add_argument("--data", default="digits", help="dataset: 'digits', or a directory in MNIST IDX, CIFAR-10 batches or "
                                                    "ImageFolder form, or an .npz with x and y (default digits)")
    p.add_argument("--out", help="run directory (default runs/<model>-<dataset>)")
    p.add_argument("--se", choices=("hw", "hw_clamp", "hard_sigmoid", "sigmoid", "none"),
                   help="SE gate, or none (default: the model's, hw)")
    p.add_argument("--se-squeeze", choices=("avg", "max", "avgmax", "avg_s2", "avgpool"),
                   help="SE squeeze (default: the model's, avg)")
    p.add_argument("--size", type=_positive(int), default=32, help="input size in pixels (default 32)")
    p.add_argument("--stem", choices=("small", "imagenet"), help="model stem (default: small up to 64 px, else imagenet)")
    p.add_argument("--in-chans", type=_positive(int), help="input channels of the model (default: the dataset's, 1 or 3)")
    p.add_argument("--seed", type=int, default=0, help="seed for splits, init and training (default 0)")
    p.add_argument("--epochs", type=_positive(int), default=30, help="float training epochs (default 30)")
    p.add_argument("--batch-size", type=_positive(int), default=64)
    p.add_argument("--lr", type=_positive(float), default=3e-3, help="float training peak learning rate")
    p.add_argument("--device", choices=DEVICES, default="auto", help="training device (default auto: cuda if available)")


def _common_qat(p: argparse.ArgumentParser) -> None:
    p.add_argument("--qat-epochs", type=_positive(int), default=4, help="QAT fine-tuning epochs (default 4)")
    p.add_argument("--qat-lr", type=_positive(float), help="QAT peak learning rate (default 1e-4)")
    p.add_argument("--distill", type=_between_0_and_1(inclusive=True), help="weight of distillation from the float model in the QAT loss, "
                                                 "against the labels' cross-entropy (default 1: float's outputs only; "
                                                 "0: labels only)")
    p.add_argument("--calibration-images", type=_non_negative, metavar="K",
                   help="training images that calibrate the PTQ baseline's ranges and QAT's starting ranges "
                        "(default 1024; 0: QAT starts from its first batches' ranges)")
    p.add_argument("--freeze-bn-after", type=_non_negative, metavar="M",
                   help="QAT epochs before batch-norm statistics freeze (default 0: the float model's, throughout)")
    p.add_argument("--freeze-observers-after", type=_non_negative, metavar="N",
                   help="QAT epochs before quantisation ranges freeze (default 0: the calibrated ranges, throughout)")


def _common_latency(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per artifact (default 10)")
    p.add_argument("--runs", type=_positive(int), default=50, help="timed single-image runs per artifact (default 50)")
    p.add_argument("--threads", type=_positive(int), default=1, help="CPU threads for every runtime (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="se-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="no progress bars or stage messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="train -> PTQ + QAT -> export .tflite/.pte -> parity -> latency -> report")
    _common_data(p)
    _common_qat(p)
    p.add_argument("--no-ptq", dest="ptq", action="store_false", help="skip the PTQ baseline")
    p.add_argument("--resume", action="store_true", help="continue float training and QAT from <out>/float.ckpt and "
                                                         "<out>/qat.ckpt where they exist")
    _common_latency(p)

    p = sub.add_parser("train", help="float training; writes <out>/run.json and float.pt (torchrun: DDP)")
    _common_data(p)
    p.add_argument("--resume", action="store_true", help="continue from <out>/float.ckpt")

    p = sub.add_parser("quantize", help="PTQ baseline and PT2E QAT of a trained run; writes ptq.pt and qat.pt (torchrun: DDP)")
    # --run-dir: under torchrun, whose own parser takes `--run` for an abbreviation of its --run-path
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="run directory made by `se-edge train`")
    _common_qat(p)
    p.add_argument("--no-ptq", dest="ptq", action="store_false", help="skip the PTQ baseline")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--resume", action="store_true", help="continue QAT from <run>/qat.ckpt")

    p = sub.add_parser("export", help="export fp32 and int8 .tflite and .pte from a quantized run")
    p.add_argument("--run", required=True, help="run directory made by `se-edge quantize`")

    p = sub.add_parser("parity", help="evaluate every artifact of a run in its runtime on a dataset")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--data", help="dataset SPEC (default: the run's own test split)")
    p.add_argument("--json", help="write the results (report.json's `artifacts` shape) to this file")
    p.add_argument("--threads", type=_positive(int), default=1)

    p = sub.add_parser("bench", help="latency of a run's artifacts (here or on a device); or a benchmark: "
                                      "--runtimes, --forms, --compare-gates, --zoo, --qat")
    p.add_argument("--run", help="run directory (for latency of its artifacts)")
    b = p.add_argument_group("benchmarks (instead of --run)")
    b.add_argument("--compare-gates", action="store_true",
                   help="each SE gate and squeeze, int8: CPU latency, purity, Ethos-U NPU time (default "
                        "se_mobilenetv3_small at 224 px)")
    b.add_argument("--zoo", action="store_true", help="purity and delegation of every zoo model's fp32/int8 files on "
                                                      "LiteRT, ExecuTorch and Ethos-U")
    b.add_argument("--runtimes", action="store_true", help="fp32 vs int8 and SE vs no SE on LiteRT and ExecuTorch, with "
                                                           "delegation (default se_mobilenetv3_small/large, se_resnet18/50 "
                                                           "at 224 px)")
    b.add_argument("--forms", action="store_true", help="candidate forms of the hard-sigmoid gate and hard-swish: what "
                                                        "LiteRT, ExecuTorch and Vela do with each")
    b.add_argument("--qat", action="store_true", help="float vs PTQ vs QAT accuracy of exported files, and QAT step cost")
    b.add_argument("--model", help="model for --compare-gates (default se_mobilenetv3_small); models for --qat, "
                                   "--runtimes and --zoo, comma-separated")
    b.add_argument("--size", type=_positive(int), help="input size for --compare-gates and --runtimes (default 224), "
                                                       "--zoo and --qat (default 32)")
    b.add_argument("--data", help="dataset for --qat, and for --compare-gates' squeeze accuracy (e.g. ../shared/data/mnist-8k)")
    b.add_argument("--epochs", type=_positive(int), default=30, help="float epochs of the training runs (default 30)")
    b.add_argument("--qat-epochs", type=_positive(int), default=4, help="QAT epochs of the training runs (default 4)")
    b.add_argument("--resume", action="store_true", help="--qat: continue each model's run from its checkpoints")
    b.add_argument("--unseen-fraction", type=_between_0_and_1(inclusive=False), default=0.25,
                   help="share of --data set aside for --qat before training, for parity on unseen images (default 0.25)")
    b.add_argument("--out", help="output directory (default runs/compare-gates, runs/zoo-purity, runs/bench-qat, "
                                 "runs/bench-runtimes, runs/bench-forms)")
    p.add_argument("--json", help="write the latencies to this file (with --device: also FILE.md and FILE_latency.png; "
                                  "default RUN/device-DEVICE.json)")
    _common_latency(p)
    d = p.add_argument_group("on a device (runs each exported file there and checks it against the host reference)")
    d.add_argument("--device", metavar="SPEC", help="local | local:/path/to/python | adb | adb:SERIAL | ssh:[user@]host[:port]")
    d.add_argument("--native", nargs="?", const="", metavar="PTE_RUNNER",
                   help="also time each .pte with the native runner: the one `make native-runner` built "
                        "(local only), or PTE_RUNNER built for the device")
    d.add_argument("--runner-bin", metavar="BENCHMARK_MODEL",
                   help="also time each .tflite with TFLite's benchmark_model binary built for the device")
    d.add_argument("--device-python", metavar="PYTHON", help="Python on an adb/ssh device (default python3)")
    d.add_argument("--device-dir", metavar="DIR", help="directory on an adb/ssh device for the files (default "
                                                       "/data/local/tmp for adb, /tmp for ssh)")
    d.add_argument("--artifacts", metavar="NAME[,NAME]", help="only these exported files (default all)")
    d.add_argument("--images", type=_positive(int), help="parity on the first N test images (default all)")
    d.add_argument("--timeout", type=_positive(float), default=300.0, help="seconds per device command (default 300)")

    sub.add_parser("models", help="list the registered models")
    return parser


def _run_config(args):
    from se_edge.pipeline import RunConfig

    keys = {"model", "data", "out", "se", "se_squeeze", "size", "stem", "in_chans", "seed", "epochs", "batch_size", "lr",
            "device", "qat_epochs", "qat_lr", "freeze_bn_after", "freeze_observers_after", "distill", "calibration_images", "ptq", "resume", "warmup", "runs",
            "threads"}
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
    _check_calibration(args)
    report = run_all(_run_config(args))
    if report is None:  # a torchrun rank other than 0: rank 0 reports
        return
    _print_table(report)
    out = os.path.dirname(report["artifacts"]["float"]["path"])
    print(f"report: {os.path.join(out, 'report.md')} and report.json; total {report['timings_s']['total']:.0f} s")


def cmd_train(args) -> None:
    from se_edge.pipeline import train_stage

    from se_edge.distributed import is_main

    _check_model(args.model)
    run = train_stage(_run_config(args), resume=args.resume)
    if is_main():
        print(f"float model written to {run.artifact_path('float')}")


def _check_calibration(args) -> None:
    from se_edge.errors import SeEdgeError

    if args.calibration_images == 0 and args.ptq:
        raise SeEdgeError("--calibration-images 0 leaves the PTQ baseline nothing to calibrate on; "
                          "give 1 or more, or add --no-ptq")


def cmd_quantize(args) -> None:
    from se_edge.artifacts import RunDir
    from se_edge.distributed import is_main
    from se_edge.pipeline import ptq_stage, quantize_stage

    run = RunDir(args.run)
    _check_calibration(args)
    if args.ptq and is_main() and not args.resume:
        ptq_stage(run, calibration_images=args.calibration_images, progress=not args.quiet)
    result = quantize_stage(run, epochs=args.qat_epochs, device=args.device, progress=not args.quiet, resume=args.resume,
                            lr=args.qat_lr, freeze_bn_after=args.freeze_bn_after,
                            freeze_observers_after=args.freeze_observers_after, distill=args.distill,
                            calibration_images=args.calibration_images)
    if result is not None:
        print(f"QAT result written to {run.artifact_path('reference_int8')} "
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
    from se_edge.errors import SeEdgeError

    chosen = [flag for flag, on in (("--run", args.run), ("--compare-gates", args.compare_gates), ("--zoo", args.zoo),
                                    ("--qat", args.qat), ("--runtimes", args.runtimes), ("--forms", args.forms)) if on]
    if len(chosen) != 1:
        raise SeEdgeError("bench needs exactly one of --run DIR, --runtimes, --forms, --compare-gates, --zoo, --qat; "
                          f"got {', '.join(chosen) or 'none'}")
    if args.runtimes:
        return _bench_runtimes(args)
    if args.forms:
        return _bench_forms(args)
    if args.compare_gates:
        return _bench_compare_gates(args)
    if args.zoo:
        return _bench_zoo(args)
    if args.qat:
        return _bench_qat(args)
    _bench_run(args)


def _bench_compare_gates(args) -> None:
    from se_edge.compare import compare_gates, markdown

    result = compare_gates(args.model or "se_mobilenetv3_small", args.size or 224, args.out or "runs/compare-gates",
                           args.warmup, args.runs, args.threads, accuracy_data=args.data, epochs=args.epochs,
                           qat_epochs=args.qat_epochs, progress=not args.quiet)
    print(markdown(result))


def _models(args) -> tuple[str, ...] | None:
    if not args.model:
        return None
    names = tuple(n.strip() for n in args.model.split(",") if n.strip())
    for name in names:
        _check_model(name)
    return names


def _bench_runtimes(args) -> None:
    from se_edge.benchmarks.runtimes import MODELS, compare_runtimes, markdown

    result = compare_runtimes(_models(args) or MODELS, args.size or 224, args.out or "runs/bench-runtimes", args.warmup,
                              args.runs, args.threads, progress=not args.quiet)
    print(markdown(result))
    print(f"written {args.out or 'runs/bench-runtimes'}/runtimes.json, runtimes.md, runtimes.png")


def _bench_forms(args) -> None:
    from se_edge.benchmarks.forms import compare_forms, markdown

    print(markdown(compare_forms(args.out or "runs/bench-forms", progress=not args.quiet)))


def _bench_zoo(args) -> None:
    from se_edge.purity import zoo_markdown, zoo_purity

    models = _models(args)
    print(zoo_markdown(zoo_purity(list(models) if models else None, args.size or 32, args.out or "runs/zoo-purity",
                                  progress=not args.quiet)))


def _bench_qat(args) -> None:
    from se_edge.errors import SeEdgeError
    from se_edge.qat_bench import MODELS, markdown, qat_bench

    if not args.data:
        raise SeEdgeError("bench --qat needs --data DIR (e.g. ../shared/data/mnist-8k)")
    models = tuple(args.model.split(",")) if args.model else MODELS
    print(markdown(qat_bench(args.data, models, args.out or "runs/bench-qat", args.epochs, args.qat_epochs,
                             args.size or 32, progress=not args.quiet, unseen_fraction=args.unseen_fraction,
                             resume=args.resume)))


def _bench_run(args) -> None:
    from se_edge.artifacts import ARTIFACTS, RunDir
    from se_edge.errors import SeEdgeError
    from se_edge.io import write_json

    device_only = {"native": "--native", "runner_bin": "--runner-bin", "device_python": "--device-python",
                   "device_dir": "--device-dir", "artifacts": "--artifacts", "images": "--images"}
    if args.device is not None:
        from se_edge.device.remote_bench import device_bench
        from se_edge.device.report import summary

        result, paths = device_bench(args.run, args.device, json_path=args.json, runs=args.runs, warmup=args.warmup,
                                     threads=args.threads, timeout=args.timeout, progress=not args.quiet,
                                     **{k: getattr(args, k) for k in device_only})
        print(summary(result))
        print("written " + ", ".join(paths.values()))
        return
    if given := [flag for k, flag in device_only.items() if getattr(args, k) is not None]:
        raise SeEdgeError(f"{', '.join(given)} need --device SPEC (e.g. --device local)")
    from se_edge.bench import run_latency

    run = RunDir(args.run)
    cfg = run.config()
    latency = run_latency(run, args.warmup, args.runs, args.threads, progress=not args.quiet)
    print("| artifact | runtime | dtype | p50 ms | p90 ms | p99 ms | runs | threads |\n|---|---|---|---:|---:|---:|---:|---:|")
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
