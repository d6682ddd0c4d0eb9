"""`se-edge bench SUBCOMMAND`: latency of a run's files (here or on a device), and the benchmarks.

    latency   a run's exported files: p50/p90/p99 here, or on a device (--device local|adb|ssh)
    runtimes  fp32 vs int8, SE vs no SE, on LiteRT and ExecuTorch, with delegation
    forms     candidate hard-sigmoid / hard-swish forms and what each runtime does with them
    gates     each SE gate and squeeze in int8: CPU latency, delegation, Ethos-U NPU time (needs Vela)
    zoo       purity and delegation of every zoo model's files
    qat       float vs PTQ vs QAT accuracy of exported files, and QAT's step cost
    recipe    QAT recipe variants on a run's float model: how many of float's decisions each keeps
    runners   native runner vs runner.py vs the runtime's bare invoke loop on a run's files
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from se_edge.cli import options as o

# the mode flags `se-edge bench` took before it had subcommands
LEGACY = {"--runtimes": "runtimes", "--forms": "forms", "--compare-gates": "gates", "--zoo": "zoo", "--qat": "qat"}


def legacy_hint(argv: list[str]) -> str | None:
    """A one-line hint for an old `bench --MODE` call; `bench --run RUN ...` still means `bench latency`."""
    for flag, sub in LEGACY.items():
        if flag in argv:
            rest = " ".join(a for a in argv if a != flag)
            return f"`se-edge bench {flag}` is now `se-edge bench {sub}`: run se-edge bench {sub} {rest}".rstrip()
    return None


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="latency of a run's files (here or on a device), and the benchmarks: "
                                         "runtimes, forms, gates, zoo, qat")
    modes = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK", parser_class=o.Parser)

    p = modes.add_parser("latency", help="latency of a run's exported files here, or on a device with --device")
    p.add_argument("--run", required=True, help="run directory")
    o.trust_option(p)
    p.add_argument("--json", help="write the latencies to this file (with --device: also FILE.md and "
                                  "FILE_latency.png; default RUN/device-DEVICE.json)")
    o.latency_options(p)
    p.add_argument("--profile", action="store_true",
                   help="also profile each file op by op in its runtime (ExecuTorch's ETDump; LiteRT's profiler "
                        "through the native tflite_runner, make native-runner): time per op kind, the slowest ops "
                        "and each SE block's squeeze, excitation, gate and scale; --runs profiled runs per file; "
                        "with --device, the native runners (--native) profile there")
    d = p.add_argument_group("on a device (runs each exported file there and checks it against the host reference)")
    d.add_argument("--device", metavar="SPEC", help="local | local:/path/to/python | adb | adb:SERIAL | "
                                                    "ssh:[user@]host[:port] | qemu-arm64[:CPU] (make arm64-board)")
    d.add_argument("--native", nargs="?", const="", metavar="PATH",
                   help="also run each file with a native runner (pte_runner for .pte, tflite_runner for .tflite): "
                        "without PATH the ones `make native-runner` built (local) or the board's (qemu-arm64); PATH a "
                        "runner built for the device, or a directory with both and their libraries (pushed beside "
                        "them), e.g. build/arm64/bundle from `make native-runner ARCH=arm64`")
    d.add_argument("--runner-bin", metavar="BENCHMARK_MODEL",
                   help="also time each .tflite with TFLite's benchmark_model binary built for the device")
    d.add_argument("--device-python", metavar="PYTHON", help="Python on an adb/ssh device (default python3)")
    d.add_argument("--device-dir", metavar="DIR", help="directory on an adb/ssh device for the files (default "
                                                       "/data/local/tmp for adb, /tmp for ssh)")
    d.add_argument("--artifacts", metavar="NAME[,NAME]", help="only these exported files (default all)")
    d.add_argument("--images", type=o.positive(int), help="parity on the first N test images (default all)")
    d.add_argument("--timeout", type=_timeout, default=300.0,
                   help="seconds per device command, at most 86400 (default 300)")
    p.set_defaults(func=cmd_latency)

    p = modes.add_parser("runtimes", help="fp32 vs int8 and SE vs no SE on LiteRT and ExecuTorch, with delegation "
                                          "(default se_mobilenetv3_small/large, se_resnet18/50 at 224 px)")
    _models_size_out(p, "runs/bench-runtimes", 224)
    o.latency_options(p)
    p.add_argument("--profile", action="store_true",
                   help="also profile each model's int8 files with and without SE op by op in turn (5 rounds): SE's "
                        "own ops by role (squeeze, excitation, gate, scale) and what the rest of the graph costs "
                        "beyond the no-SE model's (LiteRT's through the native tflite_runner: make native-runner)")
    p.set_defaults(func=cmd_runtimes)

    p = modes.add_parser("forms", help="candidate forms of the hard-sigmoid gate and hard-swish: what LiteRT, "
                                       "ExecuTorch and Vela do with each")
    p.add_argument("--out", help="output directory (default runs/bench-forms)")
    p.set_defaults(func=cmd_forms)

    p = modes.add_parser("gates", help="each SE gate and squeeze, int8: CPU latency, delegation, Ethos-U NPU time "
                                       "(default se_mobilenetv3_small at 224 px; needs ethos-u-vela)")
    _models_size_out(p, "runs/compare-gates", 224, several=False)
    p.add_argument("--data", help="also train each squeeze on this dataset and compare int8 accuracy "
                                  "(e.g. ../shared/data/mnist-8k)")
    _training(p)
    o.latency_options(p)
    p.set_defaults(func=cmd_gates)

    p = modes.add_parser("zoo", help="purity and delegation of every zoo model's fp32/fp16/int8 files on LiteRT, "
                                     "ExecuTorch and Ethos-U")
    _models_size_out(p, "runs/zoo-purity", 32)
    p.add_argument("--fp16-epochs", type=o.positive(int), metavar="N",
                   help="also train each model N float epochs on digits and hold its fp16 files against float on "
                        "the test split")
    p.set_defaults(func=cmd_zoo)

    p = modes.add_parser("qat", help="float vs PTQ vs QAT accuracy of exported files, and QAT step cost")
    _models_size_out(p, "runs/bench-qat", 32)
    p.add_argument("--data", required=True, help="dataset (e.g. ../shared/data/mnist-8k)")
    _training(p)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="training device (default auto)")
    p.add_argument("--resume", action="store_true", help="continue each model's run from its checkpoints")
    p.add_argument("--unseen-fraction", type=o.between_0_and_1(inclusive=False), default=0.25,
                   help="share of --data set aside before training, for parity on unseen images (default 0.25)")
    p.set_defaults(func=cmd_qat)

    p = modes.add_parser("recipe", help="QAT recipe variants on a run's float model: agreement of each int8 model "
                                        "with float (train, val, test)")
    p.add_argument("--run", required=True, help="run directory (its float.pt is fine-tuned; nothing in it changes)")
    o.trust_option(p)
    p.add_argument("--variant", action="append", metavar="FIELD=VALUE[,...]",
                   help="QAT settings over the defaults, e.g. epochs=8,temperature=4 (repeatable; 'default' is the "
                        "recipe as shipped; default: a standard set of six)")
    p.add_argument("--out", default="runs/bench-recipe", help="output directory (default runs/bench-recipe)")
    p.set_defaults(func=cmd_recipe)

    p = modes.add_parser("runners", help="a run's files through the native runner, runner.py and the runtime's bare "
                                         "invoke loop: how much of a p50 is the runner (needs make native-runner)")
    p.add_argument("--run", required=True, help="run directory")
    o.trust_option(p)
    p.add_argument("--artifacts", metavar="NAME[,NAME]", default="tflite_int8,executorch_int8",
                   help="files fed normalised images (default tflite_int8,executorch_int8)")
    p.add_argument("--rounds", type=o.positive(int), default=5, help="interleaved rounds (default 5)")
    p.add_argument("--runs", type=o.positive(int), default=200, help="timed runs per round and tool (default 200)")
    p.add_argument("--warmup", type=o.non_negative, default=20, help="untimed runs first (default 20)")
    p.add_argument("--threads", type=o.positive(int), default=1, help="CPU threads (default 1)")
    p.add_argument("--json", help="also write the result here (and FILE.md)")
    p.set_defaults(func=cmd_runners)


def cmd_runners(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.runners import markdown, runners_bench
    from se_edge.io import write_json, write_text

    if args.json:
        from se_edge.run import Run

        Run(args.run).check_output(args.json)
    result = runners_bench(args.run, tuple(a.strip() for a in args.artifacts.split(",") if a.strip()), args.rounds,
                           args.runs, args.warmup, args.threads, progress=not args.quiet)
    text = markdown(result)
    print(text, end="")
    if args.json:
        write_json(args.json, result)
        write_text(Path(args.json).with_suffix(".md"), text)
        print(f"written {args.json} and {Path(args.json).with_suffix('.md')}")


def _timeout(text: str) -> float:
    """--timeout: seconds, > 0 and at most a day (a wait much longer overflows the OS's timers)."""
    from se_edge.device.transport import MAX_TIMEOUT_S

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_TIMEOUT_S:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0 and at most {MAX_TIMEOUT_S:g} (one day), "
                                         f"got {text}")
    return value


def _models_size_out(p, out: str, size: int, several: bool = True) -> None:
    p.add_argument("--model", help="zoo models, comma-separated" if several else "zoo model")
    p.add_argument("--size", type=o.positive(int), default=size, help=f"input size in pixels (default {size})")
    p.add_argument("--out", default=out, help=f"output directory (default {out})")


def _training(p) -> None:
    p.add_argument("--epochs", type=o.positive(int), help="float epochs of the training runs (default: the run default)")
    p.add_argument("--qat-epochs", type=o.positive(int), help="QAT epochs of the training runs (default: the run default)")


def _models(args: argparse.Namespace) -> tuple[str, ...] | None:
    from se_edge.errors import SeEdgeError
    from se_edge.models import list_models

    if not args.model:
        return None
    names = tuple(n.strip() for n in args.model.split(",") if n.strip())
    for name in names:
        if name not in list_models():
            raise SeEdgeError(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    return names


def _latency(args: argparse.Namespace) -> dict:
    from se_edge.config import LatencyConfig

    return {k: getattr(LatencyConfig(**o.user_set(args, "warmup", "runs", "threads")), k) for k in ("warmup", "runs", "threads")}


def cmd_runtimes(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.runtimes import MODELS, compare_runtimes, markdown

    result = compare_runtimes(_models(args) or MODELS, args.size, args.out, progress=not args.quiet,
                              profile=args.profile, **_latency(args))
    print(markdown(result))
    print(f"written {args.out}/runtimes.json, runtimes.md, runtimes.png")


def cmd_forms(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.forms import compare_forms, markdown

    print(markdown(compare_forms(args.out or "runs/bench-forms", progress=not args.quiet)))


def cmd_gates(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.gates import compare_gates, markdown

    model = (_models(args) or ("se_mobilenetv3_small",))[0]
    result = compare_gates(model, args.size, args.out, accuracy_data=args.data, epochs=args.epochs,
                           qat_epochs=args.qat_epochs, progress=not args.quiet, **_latency(args))
    print(markdown(result))


def cmd_zoo(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.zoo import zoo_markdown, zoo_purity

    models = _models(args)
    print(zoo_markdown(zoo_purity(list(models) if models else None, args.size, args.out, progress=not args.quiet,
                                  fp16_epochs=args.fp16_epochs)))


def cmd_qat(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.qat import MODELS, markdown, qat_bench

    print(markdown(qat_bench(args.data, _models(args) or MODELS, args.out, args.epochs, args.qat_epochs, args.size,
                             device=args.device or "auto", progress=not args.quiet, unseen_fraction=args.unseen_fraction,
                             resume=args.resume)))


def cmd_latency(args: argparse.Namespace) -> None:
    from se_edge.errors import SeEdgeError
    from se_edge.io import write_json
    from se_edge.run import ARTIFACTS, Run

    lat_cfg = _latency(args)
    if args.json:
        run = Run(args.run)
        run.check()
        run.check_output(args.json)  # before the device or the timing, not after
    device_only = {"native": "--native", "runner_bin": "--runner-bin", "device_python": "--device-python",
                   "device_dir": "--device-dir", "artifacts": "--artifacts", "images": "--images"}
    if args.profile and args.device is not None and args.native is None:
        from se_edge.device.remote_bench import PROFILE_NEEDS_NATIVE

        raise SeEdgeError(PROFILE_NEEDS_NATIVE)
    if args.device is not None:
        from se_edge.device.remote_bench import device_bench
        from se_edge.device.report import mismatches, summary

        result, paths = device_bench(args.run, args.device, json_path=args.json, timeout=args.timeout,
                                     progress=not args.quiet, profile=args.profile, **lat_cfg,
                                     **{k: getattr(args, k) for k in device_only})
        print(summary(result))
        print("written " + ", ".join(paths.values()))
        entries = [e for a in result["artifacts"].values() for e in (a, a.get("native"), a.get("benchmark_model")) if e]
        if apart := mismatches(result):  # outputs the device computed differently: a finding, never a silent row
            print(f"se-edge bench latency: {len(apart)} output check(s) failed on {result['device']['spec']}: "
                  f"{apart[0][0]}: {apart[0][1]}", file=sys.stderr)
            raise SystemExit(1)
        if not any(e.get("status") == "ok" for e in entries):
            first = next((e.get("reason") for e in entries if e.get("reason")), "no file selected")
            raise SeEdgeError(f"nothing ran on {result['device']['spec']}: every file was skipped ({first}); "
                              f"the report says why: {paths.get('json', next(iter(paths.values()), ''))}")
        return
    if given := [flag for k, flag in device_only.items() if getattr(args, k) is not None]:
        raise SeEdgeError(f"{', '.join(given)} need --device SPEC (e.g. --device local)")
    from se_edge.evaluate.latency import run_latency
    from se_edge.report.run_report import latency_table

    run = Run(args.run)
    model = run.check().model
    latency = run_latency(run, progress=not args.quiet, **lat_cfg)
    print(latency_table(latency))
    profiles = {}
    if args.profile:
        from se_edge.device import profile

        profiles = profile.with_latency(profile.profile_run(run, runs=lat_cfg["runs"], warmup=lat_cfg["warmup"],
                                                            threads=lat_cfg["threads"], progress=not args.quiet),
                                        latency)
        for name, skipped in ((n, p["skipped"]) for n, p in profiles.items() if "skipped" in p):
            print(f"{name}: not profiled: {skipped}")
        print(profile.markdown({n: p for n, p in profiles.items() if "skipped" not in p}))
    if args.json:
        write_json(args.json, {"model": model, "artifacts": {
            n: {"path": str(run.artifact_path(n)), "runtime": ARTIFACTS[n].runtime, "dtype": ARTIFACTS[n].dtype,
                "latency_ms": lat, **({"profile": profiles[n]} if n in profiles else {})}
            for n, lat in latency.items()}})
        print(f"written {args.json}")


def cmd_recipe(args: argparse.Namespace) -> None:
    from se_edge.benchmarks.recipe import DEFAULT_VARIANTS, markdown, parse_variant, recipe_sweep
    from se_edge.io import check_directory
    from se_edge.run import Run

    run = Run(args.run)
    run.require("float")
    variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]  # all checked before any training
    check_directory(args.out, create=False)
    print(markdown(recipe_sweep(run.path, variants, args.out, progress=not args.quiet)))
    print(f"written {args.out}/recipe.json and recipe.md")
