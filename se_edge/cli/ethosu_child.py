"""`se-edge export --target ethos-u...`'s work, in the environment that has ExecuTorch's Arm backend
(.venv-ethosu): the run's float model and calibration images in, model_int8_ethosu.pte out, its report as one
JSON line on stdout. The parent holds the run's lock and records the file in the run's lineage."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from se_edge.errors import SeEdgeError
    from se_edge.export import ethosu
    from se_edge.run import Run

    p = argparse.ArgumentParser(description="Export a run's float model to a .pte for an Ethos-U NPU")
    p.add_argument("--run", required=True)
    p.add_argument("--target", choices=ethosu.TARGETS, default="ethos-u55-128")
    p.add_argument("--calibration-images", type=int, default=256)
    args = p.parse_args(argv)
    try:
        why = ethosu.available()
        if why:
            raise SeEdgeError(why)
        run = Run(args.run)
        train = run.splits().train
        report = ethosu.export(run.load_float(), train.x[:args.calibration_images], args.target,
                               run.artifact_path("ethosu_int8"))
    except SeEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
