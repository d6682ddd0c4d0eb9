"""What each file of a run was made from, so a run never mixes files of different parents.

run.json's `lineage` maps each artifact's file name to

    sha256           the file's hash when the stage that made it finished
    parent           the file it was made from (float.pt for qat.pt, qat.pt for model_int8.tflite, ...)
    parent_sha256    that parent's hash at the time
    settings_sha256  the hash of the run.json fields that describe it (the model and data for float.pt,
                     the `qat`/`ptq` record for qat.pt/ptq.pt)

Every stage that opens an artifact checks it first (`verify`): a file changed since it was recorded,
one made from another parent than the one in the run (a retrain that left old exports, a file copied
in from another run, two runs writing one directory) or one not in the lineage is refused with one
line naming it and the command that makes it again. Runs written before lineage existed have no
`lineage` field and are read as they are.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from se_edge.errors import SeEdgeError
from se_edge.io import file_sha256

# The run.json fields whose values a file was made with (others, like reports, describe results).
SETTINGS = {
    "float.pt": ("model", "model_kwargs", "model_sha256", "weights", "rewrite", "dataset", "num_classes",
                 "preprocessing", "split", "float_training"),
    "qat.pt": ("qat",),
    "ptq.pt": ("ptq",),
    "mixed.pt": ("mixed",),
}


def settings_sha256(config: dict, filename: str) -> str | None:
    if filename not in SETTINGS:
        return None
    fields = {k: config.get(k) for k in SETTINGS[filename]}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def entry(directory: Path, filename: str, parent: str | None, config: dict) -> dict:
    """The lineage record of `filename`, just made in `directory` from `parent` with `config` (run.json as it
    will be written)."""
    return {"sha256": file_sha256(directory / filename), "parent": parent,
            "parent_sha256": file_sha256(directory / parent) if parent else None,
            "settings_sha256": settings_sha256(config, filename)}


def verify(directory: Path, filename: str, config: dict, remake: str) -> None:
    """One line if `filename` is not what the run's lineage says it is; `remake` is the command that makes it."""
    lineage = config.get("lineage")
    if lineage is None:
        return  # a run made before lineage was recorded
    path = directory / filename
    rec = lineage.get(filename)
    if not isinstance(rec, dict) or not isinstance(rec.get("sha256"), str):
        raise SeEdgeError(f"{path} is not in the run's lineage (copied in, or left by an earlier run); make it "
                          f"again with `{remake}`")
    if file_sha256(path) != rec["sha256"]:
        raise SeEdgeError(f"{path} has changed since se_edge made it (sha256 {file_sha256(path)[:12]}, recorded "
                          f"{rec['sha256'][:12]}); make it again with `{remake}`")
    parent = rec.get("parent")
    if parent:
        parent_path = directory / parent
        now = file_sha256(parent_path) if parent_path.is_file() else None
        if now != rec.get("parent_sha256"):
            state = "is missing" if now is None else "is another one now"
            raise SeEdgeError(f"{path} is stale: the {parent} it was made from {state}; make it again with `{remake}`")
    if rec.get("settings_sha256") != settings_sha256(config, filename):
        raise SeEdgeError(f"{path} was made with other settings than {directory / 'run.json'} records; make it "
                          f"again with `{remake}`")


def without(lineage: dict, filenames: list[str]) -> dict:
    """`lineage` with the entries of removed files dropped."""
    return {k: v for k, v in lineage.items() if k not in filenames}


__all__ = ["entry", "file_sha256", "settings_sha256", "verify", "without"]
