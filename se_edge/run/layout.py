"""Every file a run directory can hold, by name: the artifact table, the checkpoints, the reports, the lock.

    runs/<name>/
      run.json             model, dataset, preprocessing, split and training settings (run/record.py)
      float.pt             float weights (state dict; loaded with weights_only=True)
      qat.pt               QAT result (state dict of the prepared PT2E graph)
      ptq.pt               PTQ baseline (state dict of the calibrated PT2E graph)
      float.ckpt qat.ckpt  per-epoch training checkpoints, for --resume
      model_fp32.tflite    model_int8.tflite    model_fp32.pte    model_int8.pte
      model_fp16.tflite    model_fp16.pte      float.pt at half precision (export/fp16.py)
      model_int8_ptq.tflite  model_int8_ptq.pte
      mixed.pt             the QAT result with the layers of `export --keep-float` in float (quantize/mixed.py)
      model_int8_mixed.tflite  model_int8_mixed.pte
      model_int8_app.tflite  model_int8_app.pte   the QAT result in the apps' form: RGB pixels in, probabilities
                           out (export/app_io.py); `export --input float` for float pixels
      model_int8_ethosu.pte  ethosu.json   float.pt quantised by the Arm quantizer and compiled by Vela for an
                           Ethos-U NPU (`export --target`, export/ethosu.py), and where its ops went
      report.json  report.md  accuracy.png  latency.png
      .se_edge.lock        held while a command uses the run (run/lock.py)

Paths only: nothing here opens a file.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Artifact:
    name: str
    filename: str
    runtime: str  # pytorch | litert | executorch
    dtype: str  # fp32 | fp16 | int8
    reference: str  # the artifact whose predictions this one is compared with
    parent: str | None = None  # the artifact it is made from, where that is not its reference
    peer: str | None = None  # the same model in the other runtime: the runtime-vs-runtime yardstick
    fed: str = "normalised"  # normalised: the run's preprocessed float images; pixels: RGB pixels 0..255, as an app
    output: str = "logits"  # logits | probabilities
    # What runs the file: "cpu" (LiteRT or ExecuTorch on a CPU, here or on a device: evaluated for parity and
    # latency), or the accelerator it is compiled for ("ethos-u"), whose files are read here for their structure.
    target: str = "cpu"


ARTIFACTS = {a.name: a for a in (
    Artifact("float", "float.pt", "pytorch", "fp32", "float"),
    Artifact("reference_int8", "qat.pt", "pytorch", "int8", "float"),
    Artifact("tflite_fp32", "model_fp32.tflite", "litert", "fp32", "float", peer="executorch_fp32"),
    Artifact("tflite_int8", "model_int8.tflite", "litert", "int8", "reference_int8", peer="executorch_int8"),
    Artifact("executorch_fp32", "model_fp32.pte", "executorch", "fp32", "float", peer="tflite_fp32"),
    # float.pt at half precision (export/fp16.py): the baseline an int8 file is weighed against
    Artifact("tflite_fp16", "model_fp16.tflite", "litert", "fp16", "float", peer="executorch_fp16"),
    Artifact("executorch_fp16", "model_fp16.pte", "executorch", "fp16", "float", peer="tflite_fp16"),
    Artifact("executorch_int8", "model_int8.pte", "executorch", "int8", "reference_int8", peer="tflite_int8"),
    Artifact("reference_int8_ptq", "ptq.pt", "pytorch", "int8", "float"),
    Artifact("tflite_int8_ptq", "model_int8_ptq.tflite", "litert", "int8", "reference_int8_ptq", peer="executorch_int8_ptq"),
    Artifact("executorch_int8_ptq", "model_int8_ptq.pte", "executorch", "int8", "reference_int8_ptq", peer="tflite_int8_ptq"),
    Artifact("reference_int8_mixed", "mixed.pt", "pytorch", "int8", "float", parent="reference_int8"),
    Artifact("tflite_int8_mixed", "model_int8_mixed.tflite", "litert", "int8", "reference_int8_mixed", peer="executorch_int8_mixed"),
    Artifact("executorch_int8_mixed", "model_int8_mixed.pte", "executorch", "int8", "reference_int8_mixed", peer="tflite_int8_mixed"),
    # The app files are held against their runtime's float-input int8 file fed the same pixels (normalised as the
    # app file does it): both are the QAT graph, so any decision apart is the app form's doing.
    Artifact("tflite_int8_app", "model_int8_app.tflite", "litert", "int8", "tflite_int8", parent="reference_int8",
             peer="executorch_int8_app", fed="pixels", output="probabilities"),
    Artifact("executorch_int8_app", "model_int8_app.pte", "executorch", "int8", "executorch_int8",
             parent="reference_int8", peer="tflite_int8_app", fed="pixels", output="probabilities"),
    # Quantised from float.pt by ExecuTorch's Arm quantizer (the NPU's scheme), not from qat.pt.
    Artifact("ethosu_int8", "model_int8_ethosu.pte", "executorch", "int8", "float", target="ethos-u"),
)}
QUANTISED = {"qat": "reference_int8", "ptq": "reference_int8_ptq", "mixed": "reference_int8_mixed"}
CHECKPOINTS = {"float": "float.ckpt", "qat": "qat.ckpt"}
REQUIRED = ("float", "reference_int8")  # every run has these; the others when their stage ran
EXPORTED = [a for a in ARTIFACTS.values() if a.runtime != "pytorch"]
RUNNABLE = [a for a in EXPORTED if a.target == "cpu"]  # what LiteRT and ExecuTorch run on a CPU, here or on a device
RECORD = "run.json"
REPORTS = ("report.json", "report.md", "accuracy.png", "latency.png", "tradeoff.png", "debug.json", "debug.md",
           "debug.png", "app_clients.json")
ETHOSU_REPORT = "ethosu.json"
LOCK = ".se_edge.lock"
# What each stage's output makes stale when it is made again: a new float.pt outdates every quantised
# model, export and report; a new qat.pt/ptq.pt its exports and the report.
DOWNSTREAM = {
    "float": [*(a.name for a in ARTIFACTS.values() if a.name != "float"), "qat.ckpt", *REPORTS, ETHOSU_REPORT],
    # the Ethos-U file is made from float.pt by its own quantizer: a new qat.pt leaves it as valid as before
    "quantize": [*(a.name for a in EXPORTED if a.target == "cpu"), "reference_int8_mixed",
                 *REPORTS],
    "mixed": ["tflite_int8_mixed", "executorch_int8_mixed"],
}
# The command that makes each artifact, for the one line that refuses a missing or stale one.
MADE_BY = ({"float": "se-edge train", "reference_int8": "se-edge quantize", "reference_int8_ptq": "se-edge quantize --ptq",
            "reference_int8_mixed": "se-edge export --keep-float NAME[,NAME]"}
           | {a.name: "se-edge export" if a.target == "cpu" else f"se-edge export --target {a.target}-..."
              for a in EXPORTED})


def own_files() -> list[str]:
    """The names of every file se_edge writes into a run: none of them may be replaced by a user's output path."""
    return [a.filename for a in ARTIFACTS.values()] + list(CHECKPOINTS.values()) + list(REPORTS) + [
        RECORD, LOCK, ETHOSU_REPORT]
