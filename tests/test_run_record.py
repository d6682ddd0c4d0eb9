"""run.json through run/record.py: typed sections, an exact round trip, versions, and a run directory made by the
previous release (tests/data/run_v1: its run.json and float.pt, as `make demo` wrote them before records carried a
version) that still opens."""
import json
import shutil
from pathlib import Path

import pytest

from se_edge.errors import SeEdgeError
from se_edge.run import Run
from se_edge.run.record import RECORD_VERSION, RunRecord, Split

V1 = Path(__file__).parent / "data" / "run_v1"


def test_a_run_made_by_the_previous_release_still_opens(tmp_path):
    from se_edge.train import accuracy, predict

    copy = tmp_path / "run"
    shutil.copytree(V1, copy)
    before = json.loads((copy / "run.json").read_text())
    run = Run(copy)
    record = run.record
    assert "version" not in before and record.version == 1 and record.lineage is not None and run.vouched
    assert (record.model, record.dataset, record.split.seed, record.split.test_fraction) == ("se_cnn", "digits", 0, 0.2)
    assert record.preprocessing.to_data().size == 32 and record.float_training.batch_size == 64
    assert record.to_dict() == before and list(record.to_dict()) == list(before)  # nothing read is changed

    # Its float.pt passes the lineage the old release recorded, and is the model it trained: the same test accuracy
    # on the same split.
    assert run.require("float") == copy / "float.pt"
    splits = run.splits()
    assert len(splits.test) == record.split.num_test == 360
    assert accuracy(predict(run.load_float(), splits.test.x), splits.test.y) == pytest.approx(
        record.float_training.test_accuracy, abs=1e-12)
    with pytest.raises(SeEdgeError, match="qat.pt is missing; run the stage that makes it first"):
        run.require("reference_int8")

    # Written again, it keeps every key as it was and gains only what was set.
    run.update(mixed_tradeoff={"measured": True})
    after = json.loads((copy / "run.json").read_text())
    assert after == {**before, "mixed_tradeoff": {"measured": True}} and list(after)[:-1] == list(before)


def test_sections_are_typed_and_keep_keys_they_do_not_name():
    data = {"seed": 3, "val_fraction": 0.1, "test_fraction": 0.2, "from_a_later_release": [1, 2]}
    split = Split.from_dict(data, "run.json", "split.")
    assert split.seed == 3 and split.num_test is None and split.to_dict() == data
    moved = split.replace(seed=4, num_test=10)
    assert moved.to_dict() == {**data, "seed": 4, "num_test": 10} and split.seed == 3  # frozen: a copy
    with pytest.raises(SeEdgeError, match=r"run.json: 'split.seed' should be a whole number, found str"):
        Split.from_dict({**data, "seed": "3"}, "run.json", "split.")
    with pytest.raises(SeEdgeError, match=r"'split.seed' should be a whole number, found bool"):
        Split.from_dict({**data, "seed": True}, "run.json", "split.")
    with pytest.raises(SeEdgeError, match="missing split.test_fraction"):
        Split.from_dict({"seed": 1, "val_fraction": 0.1}, "run.json", "split.")


def test_versions_are_read_up_to_this_one(tmp_path):
    data = json.loads((V1 / "run.json").read_text())
    assert RunRecord.from_dict({**data, "version": RECORD_VERSION}).version == RECORD_VERSION
    for version, says in ((RECORD_VERSION + 1, "written by a newer se_edge"), (0, "'version' should be a whole number"),
                          ("2", "'version' should be a whole number")):
        with pytest.raises(SeEdgeError, match=says):
            RunRecord.from_dict({**data, "version": version})
    with pytest.raises(SeEdgeError, match=r"'qat.epochs' should be a whole number, found str"):
        RunRecord.from_dict({**data, "qat": {**data["qat"], "epochs": "four"}})
