"""The end-to-end job, as stages over a run directory:

    train (model SPEC -> --weights -> rewrite -> float training, or none with epochs 0)
      -> quantize (PTQ baseline + PT2E QAT) -> export (.tflite, .pte; fp32 and int8)
      -> parity (each file in its runtime) -> latency -> report

Every stage takes the run directory and its part of a RunConfig (se_edge/config.py); run.json
(schema: se_edge/run/record.py) carries what a later stage needs, the model spec included.

Each stage reads what the earlier ones wrote to `runs/<name>/` and writes its own outputs there,
so `se-edge train|quantize|export|parity|bench` can run one stage at a time and `se-edge run`
runs them all.
"""
from __future__ import annotations

import copy
import dataclasses
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from se_edge.config import QatConfig, RunConfig
from se_edge.errors import SeEdgeError
from se_edge.run import EXPORTED, QUANTISED, Run


def run_dir_for(cfg: RunConfig) -> Run:
    return Run(cfg.out or default_out(cfg.model.spec, cfg.data.data))


def locked(run: Run):
    """The run directory's lock, taken by rank 0 only (other torchrun ranks never write into it)."""
    import contextlib

    from se_edge import distributed

    return run.lock() if distributed.is_main() else contextlib.nullcontext(run)


def default_out(model: str, data: str) -> str:
    from se_edge.models.sources import ModelSpec

    return str(Path("runs") / f"{ModelSpec.parse(model).short_name}-{Path(data).name or 'data'}")


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[se-edge] {msg}", flush=True)


def _save_state(path, module) -> None:
    from se_edge.io import write_torch

    write_torch(path, module.state_dict())


def _test_accuracy(model, splits, **predict_kwargs) -> float:
    from se_edge.train import accuracy, predict

    return accuracy(predict(model, splits.test.x, **predict_kwargs), splits.test.y)


def _float_model(cfg: RunConfig):
    """Data splits, then the float model (spec -> weights -> rewrite) with run.json's model fields. A model
    whose first convolution wants other input channels than the dataset has gets the data in its channels
    (greyscale repeated to RGB, or RGB averaged), unless --in-chans said otherwise."""
    import torch

    from se_edge.data import load_splits
    from se_edge.models.build import build_float
    from se_edge.models.sources import ModelSpec, input_channels

    d = cfg.data
    splits = load_splits(d.data, size=d.size, in_chans=d.in_chans, seed=d.seed, val_fraction=d.val_fraction,
                         test_fraction=d.test_fraction)
    spec = ModelSpec.parse(cfg.model.spec)
    if spec.kind != "zoo":  # zoo models take in_chans; another factory's model has its own stem
        wants = input_channels(spec.build(num_classes=splits.num_classes, in_chans=splits.preprocessing.in_chans))
        if wants and wants != splits.preprocessing.in_chans:
            if d.in_chans is not None:
                raise SeEdgeError(f"{spec} takes {wants}-channel input, not the {d.in_chans} of --in-chans")
            splits = load_splits(d.data, size=d.size, in_chans=wants, seed=d.seed, val_fraction=d.val_fraction,
                                 test_fraction=d.test_fraction)
    example = torch.from_numpy(splits.train.x[:16])
    model, record = build_float(cfg.model, splits.num_classes, splits.preprocessing.in_chans, d.size, example)
    return splits, model, record


def train_stage(cfg: RunConfig) -> Run:
    """The float model: built from its spec (and --weights), rewritten to hardware-aware blocks, trained for
    cfg.train.epochs (0: kept as given). Writes run.json first (an interrupted run can resume), then float.pt."""
    from se_edge import distributed
    from se_edge.train import fit, resolve_device, seed_everything

    device = resolve_device(cfg.train.device)
    run = run_dir_for(cfg)
    main = distributed.is_main()
    if main:
        run.prepare(create=False)  # an unusable --out fails here, before data and model; made once they load
    seed_everything(cfg.data.seed)
    splits, model, model_record = _float_model(cfg)
    tcfg = dataclasses.replace(cfg.train, device=str(device), progress=cfg.progress and main,
                               flip=splits.preprocessing.in_chans == 3)
    dataset = cfg.data.data if cfg.data.data == "digits" else str(Path(cfg.data.data).resolve())
    d = cfg.data
    if main:
        run.prepare()
        if not cfg.resume:  # a new float model outdates everything an earlier run left here
            stale = run.clear_downstream("float")
            if run.checkpoint_path("float").is_file():
                run.checkpoint_path("float").unlink()
                stale.append("float.ckpt")
            if stale:
                _log(f"removed {len(stale)} file(s) an earlier run left in {run.path}: {', '.join(stale)}", cfg.progress)
        record = run.start(
            **model_record, dataset=dataset, dataset_name=splits.name, num_classes=splits.num_classes,
            class_names=splits.classes, preprocessing=splits.preprocessing.to_dict(),
            split={"seed": d.seed, "val_fraction": d.val_fraction, "test_fraction": d.test_fraction,
                   "num_train": len(splits.train), "num_val": len(splits.val), "num_test": len(splits.test)},
            device=str(device), world_size=distributed.world_size(),
            float_training={k: v for k, v in dataclasses.asdict(tcfg).items() if k != "progress"})
        _log_model(record, cfg.progress)
    start = time.perf_counter()
    history = []
    model_name = model_record["model"]  # the builder's record (models/build.py), before run.json has it
    if tcfg.epochs > 0:
        _log(f"float training {model_name} on {splits.name}: {len(splits.train)} train / {len(splits.val)} "
             f"val / {len(splits.test)} test images, device {device} x {distributed.world_size()}", cfg.progress and main)
        seed_everything(d.seed)
        history = fit(model, splits.train, splits.val, tcfg, desc="float", checkpoint=run.checkpoint_path("float"),
                      resume=cfg.resume)
        model.to("cpu")
    else:
        weights = model_record["weights"]
        _log(f"no float training (epochs 0): {model_name} kept as "
             f"{'loaded from ' + weights['path'] if weights else 'initialised'}", cfg.progress and main)
    if main:
        test_acc = _test_accuracy(model, splits)
        _save_state(run.artifact_path("float"), model)
        run.made("float", float_training=run.record.float_training.replace(
            history=history, test_accuracy=test_acc, seconds=time.perf_counter() - start))
        _log(f"float test accuracy {test_acc:.4f}", cfg.progress)
    distributed.barrier()
    return run


def _log_model(record, progress: bool) -> None:
    if record.weights:
        w = record.weights
        _log(f"weights {w.path} ({w.tensors} tensors, sha256 {w.sha256[:12]})", progress)
        for note in w.notes or []:
            _log(note, progress)
    rw = record.rewrite
    if rw and rw.enabled:
        dev = rw.max_abs_deviation
        _log(f"rewrite: {len(rw.replaced or [])} module(s) replaced ({rw.exact_count} exact), max output deviation "
             f"{'n/a' if dev is None else f'{dev:.2e}'} on {rw.deviation_images} images", progress)


def ptq_stage(run: Run, qat: QatConfig = QatConfig(), progress: bool = True) -> dict:
    """The PTQ baseline: observers calibrated on `qat.calibration_images` training images (checked by
    quantize_stages, before anything is removed), no training; writes ptq.pt."""
    from se_edge.quantize import calibrate, prepare_ptq
    from se_edge.quantize.qat import set_eval

    splits = run.splits()
    start = time.perf_counter()
    prepared = prepare_ptq(run.load_float(), run.sample_input())
    calibrate(prepared, splits.train.x, max_images=qat.calibration_images)
    set_eval(prepared)
    # The int8 reference itself (what parity calls reference_int8_ptq): the calibrated graph only observes, so
    # its own outputs are float's.
    from se_edge.quantize.integer import int8_reference

    acc = _test_accuracy(int8_reference(prepared), splits, set_eval=lambda m: None)
    _save_state(run.artifact_path("reference_int8_ptq"), prepared)
    result = {"calibration_images": min(qat.calibration_images, len(splits.train)), "int8_reference_test_accuracy": acc,
              "seconds": time.perf_counter() - start}
    run.made("reference_int8_ptq", ptq=result)
    _log(f"PTQ baseline ({result['calibration_images']} calibration images): reference_int8_ptq test accuracy {acc:.4f}",
         progress)
    return result


def qat_stage(run: Run, qat: QatConfig = QatConfig(), resume: bool = False, progress: bool = True) -> dict | None:
    """PT2E QAT fine-tune from float.pt with `qat` (its batch size, device and seed as given; random flips when
    the run's images are RGB, as in float training): writes qat.pt; returns the record (rank 0)."""
    from se_edge import distributed
    from se_edge.quantize import prepare_qat, qat_finetune
    from se_edge.quantize.qat import set_eval
    from se_edge.train import resolve_device, seed_everything

    splits = run.splits()
    dev = resolve_device(qat.device)
    main = distributed.is_main()
    qcfg = dataclasses.replace(qat, device=str(dev), progress=progress and main,
                               flip=run.record.preprocessing.in_chans == 3)
    seed_everything(qcfg.seed)
    _log(f"QAT fine-tune ({qcfg.epochs} epochs, batch {qcfg.batch_size}, symmetric int8, per-channel weights; ranges "
         f"calibrated on {qcfg.calibration_images} images; batch-norm frozen after {qcfg.freeze_bn_after}, ranges after "
         f"{qcfg.freeze_observers_after} epochs; "
         f"{f'distilled from float, weight {qcfg.distill:g}' if qcfg.distill > 0 else 'labels only'}), device {dev} x "
         f"{distributed.world_size()}", progress and main)
    start = time.perf_counter()
    prepared = prepare_qat(run.load_float(), run.sample_input())
    history = qat_finetune(prepared, splits.train, splits.val, qcfg, checkpoint=run.checkpoint_path("qat"),
                           resume=resume, teacher=run.load_float() if qcfg.distill > 0 else None)
    prepared.to("cpu")
    result = None
    if main:
        # On a copy: observers still running (--freeze-observers-after None, or later than the epochs) would
        # otherwise take ranges from the test images into qat.pt.
        test_acc = _test_accuracy(copy.deepcopy(prepared), splits, set_eval=set_eval)
        _save_state(run.artifact_path("reference_int8"), prepared)
        result = {**{k: v for k, v in dataclasses.asdict(qcfg).items() if k != "progress"}, "history": history,
                  "fake_quant_test_accuracy": test_acc, "seconds": time.perf_counter() - start,
                  "world_size": distributed.world_size()}
        run.made("reference_int8", qat=result)
        _log(f"QAT fake-quant test accuracy {test_acc:.4f}", progress)
    distributed.barrier()
    return result


def quantize_stages(run: Run, qat: QatConfig = QatConfig(), ptq: bool = True, resume: bool = False,
                    progress: bool = True) -> dict:
    """PTQ baseline (rank 0) then QAT: what `se-edge quantize` and `se-edge run` both do. With `resume`,
    QAT continues from qat.ckpt and an existing ptq.pt is kept (it is made when missing)."""
    from se_edge import distributed
    from se_edge.train import resolve_device

    # Everything that can refuse, before anything is removed: a refused command leaves the run as it was.
    resolve_device(qat.device)
    if ptq and qat.calibration_images < 1:
        raise SeEdgeError("the PTQ baseline needs calibration images (--calibration-images 1 or more)")
    run.load_float()  # checked, and its model built: a model file nothing vouches for is refused here
    out = {}
    if distributed.is_main():
        run.clear_downstream("quantize")  # exports and reports of the earlier quantised models are stale now
    if ptq and distributed.is_main() and not (resume and run.artifact_path("reference_int8_ptq").is_file()):
        out["ptq"] = ptq_stage(run, qat, progress)
    out["qat"] = qat_stage(run, qat, resume, progress)
    return out


def mixed_stage(run: Run, keep_float: list[str], progress: bool = True) -> dict:
    """The QAT result with the layers `keep_float` in float (quantize/mixed.py), their output ranges observed
    anew on the QAT stage's calibration images: writes mixed.pt; returns run.json's `mixed` record."""
    from se_edge.quantize.mixed import mixed_precision
    from se_edge.quantize.qat import set_eval

    splits = run.splits()
    images = int((run.record.qat and run.record.qat.calibration_images) or 512)
    start = time.perf_counter()
    mixed, kept = mixed_precision(run.load_prepared("qat"), keep_float, splits.train.x, max_images=images)
    acc = _test_accuracy(mixed, splits, set_eval=set_eval)
    run.clear_downstream("mixed")
    _save_state(run.artifact_path("reference_int8_mixed"), mixed)
    record = {**kept.to_dict(), "calibration_images": min(images, len(splits.train)),
              "fake_quant_test_accuracy": acc, "seconds": time.perf_counter() - start}
    run.made("reference_int8_mixed", mixed=record)
    _log(f"kept in float: {', '.join(keep_float)} ({sum(len(v) for v in kept.nodes.values())} ops, "
         f"{len(kept.folded_batch_norms)} batch norm(s) folded, {len(kept.recalibrate)} output range(s) observed anew "
         f"on {record['calibration_images']} images); fake-quant test accuracy {acc:.4f}", progress)
    return record


@dataclass(frozen=True)
class Exported:
    """What the export stage made: {artifact: path}, and for a variant (`--keep-float`, `--input`) what it bought
    and cost against the int8 files ({run.json field: evaluate/tradeoff.measure's result})."""
    paths: dict[str, str]
    tradeoffs: dict[str, dict] = field(default_factory=dict)


def export_stage(run: Run, progress: bool = True, keep_float: list[str] | None = None,
                 app_io=None) -> Exported:
    """Export float and int8 (QAT, the PTQ baseline, the app files, and the mixed-precision files where the
    run has them) to .tflite and .pte. With `keep_float`, the mixed-precision model is made (mixed_stage)
    and only its two files are written; with an `app_io` (export/app_io.AppIO), only the app pair, in that
    form. The others stay as they are; the variant is then measured against the int8 files (evaluate/tradeoff.py)
    and recorded in run.json."""
    from tqdm.auto import tqdm

    from se_edge.export.int8 import FORMS
    from se_edge.run import ARTIFACTS

    asked_app = app_io is not None
    if asked_app and run.record.preprocessing.in_chans not in (1, 3):
        raise SeEdgeError(f"--input: app files take RGB images; this run's model takes "
                          f"{run.record.preprocessing.in_chans} channels (valid: 1 or 3)")
    if keep_float:
        mixed_stage(run, keep_float, progress)
    io = app_io if asked_app else _recorded_app_io(run)
    jobs = _export_jobs(run, io)
    only = (("_mixed",) if keep_float else ()) + (("_app",) if asked_app else ())
    if only:
        jobs = {k: v for k, v in jobs.items() if k.endswith(only)}
    paths = {}
    for name in (bar := tqdm(jobs, desc="export", unit="file", disable=not progress)):
        bar.set_postfix_str(name)
        paths[name] = str(jobs[name](run.artifact_path(name)))
        fields = {"app_io": io.record()} if name.endswith("_app") else {}
        if ARTIFACTS[name].dtype == "int8":
            runtime = ARTIFACTS[name].runtime
            fields["forms"] = {**(run.record.forms or {}), runtime: FORMS[runtime]}
        run.made(name, **fields)
    tradeoffs = {}
    if keep_float or asked_app:
        from se_edge.evaluate import tradeoff

        for key, wanted in (("mixed_tradeoff", keep_float), ("app_tradeoff", asked_app)):
            if wanted:
                tradeoffs[key] = tradeoff.measure(run, tradeoff.PAIRS[key], progress=progress)
                run.update(**{key: tradeoffs[key]})
    return Exported(paths, tradeoffs)


def _recorded_app_io(run: Run):
    """The AppIO of the run's app files: as run.json records them where it has files of the app form
    (RGB pixels in, probabilities out), the default otherwise."""
    from se_edge.export.app_io import AppIO

    recorded = run.record.app_io
    if recorded and recorded.output == "probabilities" and recorded.input in ("uint8", "float"):
        return AppIO(recorded.layout, recorded.input)
    return AppIO()


def _export_jobs(run: Run, io) -> dict:
    """{artifact: write(path) -> path} for every file the run can be exported to: fp32 and fp16, the int8 files of each
    quantised model it has (quantize/mixed.py's in LiteRT's strict QDQ mode), and the QAT model's app pair in
    `io`'s form (an AppIO). The quantised graphs are loaded when a job runs (Run memoizes them)."""
    from se_edge.export import export_pte, export_tflite
    from se_edge.export.app_io import to_app_pte, to_app_tflite
    from se_edge.export.fp16 import export_fp16_pte, fp16_weights
    from se_edge.export.int8 import to_pte, to_tflite
    from se_edge.export.litert import write_tflite

    float_model = run.load_float()
    sample = run.sample_input()
    converted = {}  # the fp32 flatbuffer as converted, before its metadata: the fp16 .tflite is made from it

    def keep(data: bytes) -> bytes:
        converted["fp32"] = data
        return data

    def tflite_fp16(p):
        meta = _metadata(run, "tflite_fp16")
        if "fp32" in converted:
            return write_tflite(converted["fp32"], p, meta, edit=fp16_weights)
        return export_tflite(float_model, sample, p, quantized=False, metadata=meta, edit=fp16_weights)

    jobs = {"tflite_fp32": lambda p: export_tflite(float_model, sample, p, quantized=False,
                                                   metadata=_metadata(run, "tflite_fp32"), edit=keep),
            "tflite_fp16": tflite_fp16,
            "executorch_fp32": lambda p: export_pte(float_model, sample, p),
            "executorch_fp16": lambda p: export_fp16_pte(float_model, sample, p)}
    for kind, reference in QUANTISED.items():
        if kind != "qat" and not run.artifact_path(reference).is_file():
            continue
        suffix = reference[len("reference_int8"):]
        jobs[f"tflite_int8{suffix}"] = lambda p, k=kind, n=f"tflite_int8{suffix}": to_tflite(
            run.load_prepared(k), sample, p, strict_qdq=k == "mixed", metadata=_metadata(run, n))
        jobs[f"executorch_int8{suffix}"] = lambda p, k=kind: to_pte(run.load_prepared(k), sample, p)
    prep = run.preprocessing
    if prep.in_chans in (1, 3):  # an app file takes RGB: a model of other channels has no app form
        jobs["tflite_int8_app"] = lambda p: to_app_tflite(run.load_prepared("qat"), prep, io, sample, p,
                                                          _metadata(run, "tflite_int8_app", io.input))
        jobs["executorch_int8_app"] = lambda p: to_app_pte(run.load_prepared("qat"), prep, io, sample, p)
    return jobs


def _metadata(run: Run, name: str, app_input: str | None = None):
    """The TFLITE_METADATA a run's .tflite carries: model, version (se_edge's, and the first 12 hex digits of
    the checkpoint the file is made from), normalisation and class names (export/metadata.py); `app_input`:
    the app file's, whose input is that type of RGB pixels."""
    from se_edge import __version__
    from se_edge.export.metadata import classifier_info
    from se_edge.io import file_sha256
    from se_edge.run import ARTIFACTS

    a = ARTIFACTS[name]
    parent = ARTIFACTS[a.parent or a.reference]
    r = run.record
    version = f"{__version__}+{file_sha256(run.artifact_path(parent.name))[:12]}"
    description = (f"{r.model} trained on {r.dataset_name or r.dataset}, {a.dtype} "
                   f"({name}, from {parent.filename}), exported by se_edge")
    return classifier_info(r.model, run.preprocessing, r.class_labels, version, description, app_input)


def graph_stage(run: Run) -> dict[str, dict]:
    from se_edge.evaluate.structure import artifact_structure

    return {a.name: artifact_structure(run, a.name) for a in EXPORTED if run.artifact_path(a.name).is_file()}


def ethosu_stage(run: Run, target: str) -> dict:
    """model_int8_ethosu.pte for `target` (export/ethosu.py, in .venv-ethosu), recorded in run.json's lineage and
    `ethosu`, ethosu.json beside it; a report the run has gains the file's row (its NPU partitions and CPU ops)."""
    from se_edge.evaluate.structure import artifact_structure
    from se_edge.evaluate.vela import parse_vela_output
    from se_edge.export import ethosu
    from se_edge.io import write_json
    from se_edge.run import ETHOSU_REPORT

    if target not in ethosu.TARGETS:
        raise SeEdgeError(f"unknown --target {target!r}; valid: {', '.join(ethosu.TARGETS)}")
    run.require("float")
    report, log = ethosu.run_in_env(str(run.path), target)
    report["vela_summary"] = parse_vela_output(log)["summary"]
    write_json(run.path / ETHOSU_REPORT, report)
    # the Arm quantizer takes the float model's hard-swish as it is: one TABLE op on the NPU (export/int8.py FORMS)
    run.made("ethosu_int8", ethosu={k: v for k, v in report.items() if k not in ("file", "vela_summary")},
             forms={**(run.record.forms or {}), "ethos-u": "native"})
    if (run.path / "report.json").is_file():
        from se_edge.io import read_json
        from se_edge.report.run_report import write_report

        old = read_json(run.path / "report.json", "the run's report")
        rows = _structure_rows(run, {"ethosu_int8": artifact_structure(run, "ethosu_int8")})  # the new file's row alone
        write_report({**old, "artifacts": {**old["artifacts"], **rows}}, run.path)
    return report


def _structure_rows(run: Run, graphs: dict[str, dict]) -> dict[str, dict]:
    """report.json rows for the files that run on an accelerator: their structure, no figures measured here."""
    from se_edge.run import ARTIFACTS

    return {name: {"path": str(run.artifact_path(name)), "runtime": ARTIFACTS[name].runtime,
                   "dtype": ARTIFACTS[name].dtype, "target": ARTIFACTS[name].target,
                   "reference": ARTIFACTS[name].reference, "accuracy": None, "agreement_with_reference": None,
                   "max_abs_diff": None, "latency_ms": None, "graph": graphs[name]}
            for name in run.present(None) if ARTIFACTS[name].target != "cpu" and name in graphs}


def footprint_stage(run: Run, progress: bool = True) -> dict[str, dict]:
    """size_bytes, params, macs and peak_rss_mb per artifact (se_edge/evaluate/footprint.py)."""
    from se_edge.evaluate.footprint import measure

    return measure(run, run.present(), progress)


def report_stage(run: Run, parity: dict, latency: dict, graphs: dict, timings: dict | None = None,
                 footprint: dict | None = None) -> dict:
    from se_edge.report.run_report import write_report
    from se_edge.runner import device_info

    r = run.record
    artifacts = {}
    for name, a in parity["artifacts"].items():
        artifacts[name] = {**a, "latency_ms": latency.get(name), "graph": graphs.get(name, {}),
                           **(footprint or {}).get(name, {})}
    artifacts.update(_structure_rows(run, graphs))
    report = {
        "model": parity["model"], "dataset": parity["dataset"], "num_test": parity["num_test"],
        "device": r.device, "artifacts": artifacts,
        "preprocessing": r.preprocessing.to_dict(),
        "training": {"float_epochs": r.float_training.epochs, "qat_epochs": r.qat.epochs if r.qat else None},
        "model_source": {"spec": r.model, "sha256": r.model_sha256,
                         "weights": r.weights.to_dict() if r.weights else None},
        "rewrite": r.rewrite.to_dict() if r.rewrite else None,
        "host": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                 "python": platform.python_version(), "fp16_features": device_info()["fp16_features"]},
        "versions": _versions(),
    }
    if parity.get("stress"):
        report["stress"] = parity["stress"]
    if timings:
        report["timings_s"] = timings
    return write_report(report, run.path)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "executorch", "litert-torch", "ai-edge-litert", "torchao"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def run_all(cfg: RunConfig) -> dict | None:
    """train -> PTQ baseline -> QAT -> export -> parity -> latency -> report; returns the report.

    Under torchrun every rank trains; only rank 0 exports, evaluates and reports (others return None).
    """
    from se_edge import distributed
    from se_edge.evaluate.latency import run_latency
    from se_edge.evaluate.parity import run_parity

    timings, t0 = {}, time.perf_counter()

    def timed(stage: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[stage] = round(time.perf_counter() - start, 2)
        return result

    with locked(run_dir_for(cfg)):
        run = timed("train", train_stage, cfg)
        timed("quantize", quantize_stages, run, cfg.qat, cfg.ptq, cfg.resume, cfg.progress)
        if not distributed.is_main():
            return None
        timed("export", export_stage, run, cfg.progress)
        parity = timed("parity", run_parity, run, threads=cfg.latency.threads, progress=cfg.progress, stress=0)
        latency = timed("latency", run_latency, run, cfg.latency.warmup, cfg.latency.runs, cfg.latency.threads,
                        cfg.progress)
        graphs = graph_stage(run)
        footprint = timed("footprint", footprint_stage, run, cfg.progress)
        timings["total"] = round(time.perf_counter() - t0, 2)
        return report_stage(run, parity, latency, graphs, timings, footprint)
