"""se-edge debug on a healthy run, end to end (debug --stress, on the demo run's files): every layer found in
both runtimes, each runtime's own arithmetic within 1 LSB of the reference. In a file of its own, beside
test_debug_planted.py, so that pytest-xdist's --dist loadfile can balance the two."""
import json
import shutil

from conftest import cli


def test_debug_on_a_healthy_run_finds_every_layer_and_each_runtime_computes_as_the_reference(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.ckpt"))
    healthy = cli("debug", "--run", copy, "--images", "32", "--stress", "--sensitivity", "0")
    assert healthy.returncode == 0, healthy.stderr[-3000:]
    result = json.loads((copy / "debug.json").read_text())
    assert result["stress"] == 0 and "shifted with seed 0" in (copy / "debug.md").read_text()
    assert len(result["points"]) >= 20 and all(r["sqnr_db"].get("reference_int8_vs_float") is not None
                                               for r in result["points"])
    for source in ("tflite_int8", "executorch_int8"):
        found = [r for r in result["points"] if f"{source}_vs_reference_int8" in r["sqnr_db"]]
        assert len(found) >= len(result["points"]) // 2, f"most int8 activations are found in {source}"
    assert (copy / "debug.md").read_text().count("| stages.") >= 10 and (copy / "debug.png").stat().st_size > 0

    assert result["sensitivity"] == []
    # A healthy run's runtimes, fed their own inputs, compute each layer as the reference does to rounding.
    for source in ("tflite_int8", "executorch_int8"):
        own = [r["own_max_lsb"][source] for r in result["points"] if source in r.get("own_max_lsb", {})]
        assert len(own) >= len(result["points"]) // 2 and max(own) <= 1.0, (source, own)
    assert "own arithmetic" in (copy / "debug.md").read_text() and "within 1 LSB of the reference" in healthy.stdout
