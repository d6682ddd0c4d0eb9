"""The pipeline commands: each parses its options, builds one config, makes one keyword call, prints."""
from __future__ import annotations

import argparse
import os

from se_edge.cli import options as o

RUN_OPTIONS = ("model", "weights", "rewrite", "rewrite_silu", "se", "se_squeeze", "stem", "data", "out", "size",
               "in_chans", "seed", "epochs", "batch_size", "lr", "device", "qat_epochs", "qat_lr", "distill",
               "calibration_images", "freeze_bn_after", "freeze_observers_after", "ptq", "resume", "warmup", "runs",
               "threads")
QAT_OPTIONS = ("qat_epochs", "qat_lr", "distill", "calibration_images", "freeze_bn_after", "freeze_observers_after",
               "batch_size", "device")


def add_parsers(sub) -> None:
    p = sub.add_parser("run", help="model -> rewrite -> train -> PTQ + QAT -> export .tflite/.pte -> parity -> latency -> report")
    o.model_options(p)
    o.data_options(p)
    o.train_options(p)
    o.qat_options(p)
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue float training and QAT from <out>/float.ckpt and <out>/qat.ckpt where they exist")
    o.latency_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="float model (built, rewritten, trained); writes <out>/run.json and float.pt "
                                     "(torchrun: DDP)")
    o.model_options(p)
    o.data_options(p)
    o.train_options(p)
    p.add_argument("--resume", action="store_true", default=None, help="continue from <out>/float.ckpt")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("quantize", help="PTQ baseline and PT2E QAT of a trained run; writes ptq.pt and qat.pt "
                                        "(torchrun: DDP)")
    # --run-dir: under torchrun, whose own parser takes `--run` for an abbreviation of its --run-path
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="run directory made by `se-edge train`")
    o.trust_option(p)
    o.qat_options(p)
    p.add_argument("--batch-size", type=o.positive(int), help="QAT batch size (default: the run's float training's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="training device (default auto)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue QAT from <run>/qat.ckpt, keeping an existing ptq.pt (as `se-edge run --resume`)")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("export", help="export fp32, fp16 and int8 .tflite and .pte from a quantized run")
    p.add_argument("--run", required=True, help="run directory made by `se-edge quantize`")
    o.trust_option(p)
    p.add_argument("--keep-float", metavar="NAME[,NAME]",
                   help="also write model_int8_mixed.tflite/.pte with these modules left in float (mixed precision; "
                        "`se-edge debug` ranks the layers), and print what that buys and costs: accuracy, ops "
                        "outside the delegate, p50 latency")
    p.add_argument("--io", choices=("nhwc",),
                   help="input layout of the app files model_int8_app.tflite/.pte: nhwc, a camera frame's (the only one "
                        "the apps' classifiers take)")
    p.add_argument("--input", choices=("uint8", "float"),
                   help="the app files' input: RGB pixels 0..255 as uint8 (default) or float32; re-exports only the app "
                        "files and prints what they buy and cost against the float-input int8 files")
    p.add_argument("--target", metavar="NPU", help="instead: a .pte for a Cortex-M with this Ethos-U NPU through "
                   "ExecuTorch's Arm backend (ethos-u55-128, ...; runs in .venv-ethosu, `make ethosu-venv`)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("parity", help="evaluate every artifact of a run in its runtime on a dataset")
    p.add_argument("--run", required=True, help="run directory")
    o.trust_option(p)
    p.add_argument("--data", help="dataset SPEC (default: the run's own test split)")
    p.add_argument("--json", help="write the results (report.json's `artifacts` shape) to this file")
    p.add_argument("--threads", type=o.positive(int), default=1)
    p.add_argument("--stress", nargs="?", const=0, type=o.seed, metavar="SEED",
                   help="also evaluate the images under a seeded shift (rotation, translation, contrast, noise; "
                        "seed 0 unless given), where decisions are close and int8 disagreements show")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("debug", help="per-layer SQNR of the int8 reference and the int8 .tflite, worst layer first")
    p.add_argument("--run", required=True, help="run directory")
    o.trust_option(p)
    p.add_argument("--data", help="dataset SPEC (default: the run's own test split)")
    p.add_argument("--images", type=o.positive(int), default=64, help="images to compare on (default 64)")
    p.add_argument("--top", type=o.positive(int), default=5, help="layers printed per comparison (default 5)")
    p.add_argument("--stress", nargs="?", const=0, type=o.seed, metavar="SEED",
                   help="compare on the images under parity --stress's seeded shift (seed 0 unless given)")
    p.add_argument("--sensitivity", type=o.non_negative, default=3, metavar="K",
                   help="test accuracy with each of the K worst layers alone left in float (default 3; 0: skip)")
    p.set_defaults(func=cmd_debug)

    p = sub.add_parser("models", help="list the zoo's models (any timm:, torchvision: or file.py:FACTORY model works too)")
    p.set_defaults(func=cmd_models)


def _print_table(result: dict) -> None:
    from se_edge.report.run_report import artifacts_table, stress_lines, yardstick_lines

    print(f"{result['model']} on {result['dataset']} ({result['num_test']} images)")
    print(artifacts_table(result["artifacts"]))
    print("\n".join(yardstick_lines(result["artifacts"])))
    if result.get("stress"):
        print("\n".join(stress_lines(result["stress"])))


def cmd_run(args: argparse.Namespace) -> None:
    from se_edge.config import RunConfig
    from se_edge.pipeline import run_all

    report = run_all(RunConfig.from_options(progress=not args.quiet, **o.user_set(args, *RUN_OPTIONS)))
    if report is None:  # a torchrun rank other than 0: rank 0 reports
        return
    _print_table(report)
    out = os.path.dirname(report["artifacts"]["float"]["path"])
    print(f"report: {os.path.join(out, 'report.md')} and report.json; total {report['timings_s']['total']:.0f} s")


def cmd_train(args: argparse.Namespace) -> None:
    from se_edge.config import RunConfig
    from se_edge.distributed import is_main
    from se_edge.pipeline import locked, run_dir_for, train_stage

    options = o.user_set(args, "model", "weights", "rewrite", "rewrite_silu", "se", "se_squeeze", "stem", "data", "out",
                         "size", "in_chans", "seed", "epochs", "batch_size", "lr", "device", "resume")
    cfg = RunConfig.from_options(progress=not args.quiet, ptq=False, **options)
    with locked(run_dir_for(cfg)):
        run = train_stage(cfg)
    if is_main():
        print(f"float model written to {run.artifact_path('float')}")


def cmd_quantize(args: argparse.Namespace) -> None:
    from se_edge.config import RunConfig
    from se_edge.pipeline import locked, quantize_stages
    from se_edge.run import Run

    run = Run(args.run)
    recorded = run.record
    options = {"batch_size": recorded.float_training.batch_size, "seed": recorded.split.seed,
               **o.user_set(args, *QAT_OPTIONS, "ptq")}
    cfg = RunConfig.from_options(**options)
    with locked(run):
        result = quantize_stages(run, cfg.qat, cfg.ptq, bool(args.resume), progress=not args.quiet)["qat"]
    if result is not None:
        print(f"QAT result written to {run.artifact_path('reference_int8')} "
              f"(fake-quant test accuracy {result['fake_quant_test_accuracy']:.4f})")


def cmd_export(args: argparse.Namespace) -> None:
    from se_edge.pipeline import export_stage, locked
    from se_edge.run import Run

    run = Run(args.run)
    run.check()
    keep_float = None
    if args.keep_float is not None:
        from se_edge.quantize.mixed import parse_names

        keep_float = parse_names(args.keep_float)
    if args.target is not None:
        from se_edge.pipeline import ethosu_stage

        with locked(run):
            report = ethosu_stage(run, args.target)
        print(f"{report['file']}: {report['size_bytes']} bytes for {report['target']}; {report['ops_on_npu']} ops in "
              f"{report['partitions']} NPU partition(s), {report['ops_on_cpu']} on the CPU"
              + (f" ({', '.join(f'{k} x{v}' for k, v in report['cpu_ops'].items())})" if report["cpu_ops"] else ""))
        return
    from se_edge.export.app_io import AppIO

    app_io = AppIO(args.io or "nhwc", args.input or "uint8") if (args.io or args.input) else None
    with locked(run):
        exported = export_stage(run, progress=not args.quiet, keep_float=keep_float, app_io=app_io)
    for name, path in exported.paths.items():
        print(f"{name}: {path}")
    from se_edge.evaluate import tradeoff

    for key, result in exported.tradeoffs.items():
        for line in tradeoff.lines(result, tradeoff.PAIRS[key]):
            print(line)


def cmd_parity(args: argparse.Namespace) -> None:
    from se_edge.evaluate.parity import run_parity
    from se_edge.io import write_json
    from se_edge.run import Run

    run = Run(args.run)
    if args.json:
        run.check()
        run.check_output(args.json)  # before minutes of evaluation, not after
    result = run_parity(run, args.data, threads=args.threads, progress=not args.quiet, stress=args.stress)
    _print_table(result)
    if args.json:
        write_json(args.json, result)
        print(f"written {args.json}")


def cmd_debug(args: argparse.Namespace) -> None:
    from se_edge.evaluate.debug import run_debug
    from se_edge.report.debug_report import write_debug
    from se_edge.run import Run

    run = Run(args.run)
    run.check()
    with run.lock():  # writes debug.json/.md/.png into the run
        result = run_debug(run, args.data, args.images, stress=args.stress, layers=args.sensitivity,
                           progress=not args.quiet)
        paths = write_debug(result, run.path)
    for k, order in result["worst_first"].items():
        print(f"{k}: worst first (SQNR dB, drop dB vs the layer's inputs, max LSB)")
        for i in order[:args.top]:
            r = result["points"][i]
            print(f"  #{i:<3} {r['layer']:<28} {r['op']:<14} {r['sqnr_db'][k]:6.1f} {r['drop_db'][k]:6.1f} "
                  f"{r['max_lsb'][k]:6.1f}")
    from se_edge.evaluate.debug import own_summary

    for source, o in own_summary(result).items():
        w = o["worst"]
        print(f"{source}, each layer fed the runtime's own int8 inputs: {o['within_1_lsb']} of {o['layers']} layers "
              f"within 1 LSB of the reference ({o['exact']} exact); worst #{w['index']} {w['layer']} ({w['op']}) "
              f"{w['max_lsb']:.0f} LSB on {100 * w['share']:.2f}% of its values")
    if result["sensitivity"]:
        from se_edge.report.debug_report import sensitivity_lines

        print("\n".join(line for line in sensitivity_lines(result)[2:] if line))
    print(f"written {', '.join(paths)}")


def cmd_models(args: argparse.Namespace) -> None:
    from se_edge.models import list_models

    print("\n".join(list_models()))
