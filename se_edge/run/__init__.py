"""A run: its directory's files (layout.py), its lock (lock.py), its record (record.py, the only code that reads
or writes run.json), what each file was made from (lineage.py) and its PyTorch models (models.py).

    run = Run("runs/demo")
    run.require("tflite_int8")          # the path, checked against the lineage
    run.load_prepared("qat")            # a prepared PT2E graph, traced once per process per file version

Every stage, evaluator and device session receives a `Run`.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from se_edge.errors import SeEdgeError
from se_edge.run import lineage, lock, models
from se_edge.run.layout import (ARTIFACTS, CHECKPOINTS, DOWNSTREAM, ETHOSU_REPORT, EXPORTED, LOCK, MADE_BY,
                                QUANTISED, RECORD, REPORTS, REQUIRED, RUNNABLE, Artifact, own_files)
from se_edge.run.record import RunRecord, new_record


class Run:
    """A run's directory: paths, its recorded settings, and its PyTorch models."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._memo: dict = {}  # (what, file stamp) -> this Run's model: the same object for every stage that asks
        self._record: tuple | None = None  # (run.json's stamp, its RunRecord)

    # ---- files

    def reserved(self) -> set[Path]:
        """The run's own files, which no --json or other output may replace."""
        return {(self.path / n).resolve() for n in own_files()}

    def check_output(self, path: str | os.PathLike) -> Path:
        """A user-given output path (e.g. --json) that is writable and not one of this run's own files."""
        from se_edge.io import check_output_path, check_writable

        path = check_output_path(path)
        if path.resolve() in self.reserved():
            raise SeEdgeError(f"refusing to write {path}: it is one of the run's own files; give another path")
        return check_writable(path)

    def prepare(self, create: bool = True) -> None:
        """Create the run directory (or check the one there; `create=False`: only that it could be made):
        one line if it cannot hold a run."""
        from se_edge.io import check_directory

        check_directory(self.path, create)

    @contextlib.contextmanager
    def lock(self):
        """Exclusive use of the run directory for this process (run/lock.py)."""
        with lock.hold(self.path):
            yield self

    def clear_downstream(self, made: str) -> list[str]:
        """Remove what a new `made` ("float" or "quantize") output makes stale; returns the file names removed."""
        removed = []
        for name in DOWNSTREAM[made]:
            path = self.path / (ARTIFACTS[name].filename if name in ARTIFACTS else name)
            if path.is_file():
                path.unlink()
                removed.append(path.name)
        self._memo.clear()
        if removed and (self.path / RECORD).is_file() and self.record.lineage is not None:
            self.save(self.record.replace(lineage=lineage.without(self.record.lineage, removed)))
        return removed

    def checkpoint_path(self, stage: str) -> Path:
        """The per-epoch training checkpoint of `stage` ("float" or "qat"), for --resume."""
        if stage not in CHECKPOINTS:
            raise SeEdgeError(f"unknown checkpoint {stage!r}; valid: {', '.join(CHECKPOINTS)}")
        return self.path / CHECKPOINTS[stage]

    def artifact_path(self, name: str) -> Path:
        return self.path / ARTIFACTS[name].filename

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def present(self, target: str | None = "cpu") -> list[str]:
        """The artifacts this run has (the required ones always: missing ones raise when opened) whose target is
        `target` ("cpu": the runtimes run them here; None: every target)."""
        return [n for n, a in ARTIFACTS.items() if (n in REQUIRED or self.artifact_path(n).is_file())
                and target in (None, a.target)]

    # ---- the record

    @property
    def record(self) -> RunRecord:
        """run.json as a typed, checked RunRecord (run/record.py): read when it changes, one line if it is missing,
        unreadable or not a run record."""
        if not self.path.is_dir():
            raise SeEdgeError(f"run directory not found: {self.path} (create one with `se-edge run` or `se-edge train`)")
        from se_edge.io import read_json

        path = self.path / RECORD
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp is None or self._record is None or self._record[0] != stamp:
            self._record = (stamp, RunRecord.from_dict(read_json(path, "run config"), str(path)))
        return self._record[1]

    def check(self) -> RunRecord:
        """The record, read now: one line if the run directory or its run.json is missing or not a run record.
        Commands call it first, before they touch anything."""
        return self.record

    def start(self, **fields) -> RunRecord:
        """Write the record a new run starts with (train_stage): this version, `fields`, an empty lineage."""
        record = new_record(**fields, lineage={})
        self.save(record)
        return record

    def save(self, record: RunRecord) -> None:
        from se_edge.io import write_json

        RunRecord.from_dict(record.to_dict(), "the run record")  # never write what could not be read back
        write_json(self.path / RECORD, record.to_dict())
        self._record = None

    def update(self, **fields) -> RunRecord:
        """Set run.json's `fields` (sections, or their JSON objects), the rest as it was; returns the new record."""
        record = self.record.replace(**fields)
        self.save(record)
        return record

    def made(self, name: str, **fields) -> RunRecord:
        """Record that artifact `name` was just written (its hash, its parent's, the settings it was made with)
        together with the run.json `fields` that describe it, in one write; returns the new record."""
        a = ARTIFACTS[name]
        source = a.parent or a.reference
        parent = ARTIFACTS[source].filename if source != name else None
        record = self.record.replace(**fields)
        if record.lineage is not None:  # a run made before lineage existed stays without one: a partial record would refuse its files
            entry = lineage.entry(self.path, a.filename, parent, record.to_dict())
            record = record.replace(lineage={**record.lineage, a.filename: entry})
        self.save(record)
        return record

    @property
    def vouched(self) -> bool:
        """Whether the run's lineage vouches for its files (runs made before lineage existed have none)."""
        return self.record.lineage is not None

    def require(self, name: str) -> Path:
        """The path of artifact `name`, checked: present, and what the run's lineage says it is (not stale,
        not changed, not copied in). One line naming the file and the command that makes it otherwise."""
        path = self.artifact_path(name)
        if not path.is_file():
            raise SeEdgeError(f"{path} is missing; run the stage that makes it first ({MADE_BY[name]})")
        lineage.verify(self.path, path.name, self.record.to_dict(), MADE_BY[name])
        return path

    # ---- PyTorch models (run/models.py)

    def create_model(self):
        return models.create_model(self)

    def sample_input(self):
        return models.sample_input(self)

    def example_input(self, name: str) -> np.ndarray:
        return models.example_input(self, name)

    def splits(self):
        return models.splits(self)

    def eval_images(self, data: str | None = None):
        return models.eval_images(self, data)

    @property
    def preprocessing(self):
        """The run's data.Preprocessing (size, mean, std, channels), as training normalised its images."""
        return self.record.preprocessing.to_data()

    def load_float(self):
        return models.load_float(self)

    def load_prepared(self, kind: str = "qat"):
        return models.load_prepared(self, kind)

    def int8_reference(self, kind: str = "qat", arithmetic: str = "xnnpack", hard_swish: str = "written"):
        return models.int8_reference(self, kind, arithmetic, hard_swish)


__all__ = ["ARTIFACTS", "CHECKPOINTS", "DOWNSTREAM", "ETHOSU_REPORT", "EXPORTED", "LOCK", "MADE_BY", "QUANTISED", "RECORD",
           "REPORTS", "REQUIRED", "RUNNABLE", "Artifact", "Run"]
