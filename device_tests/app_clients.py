"""Classify image files with an app's own classifier clients, as an app developer would: MediaPipe Tasks'
`ImageClassifier` and tflite-support's Task Library `ImageClassifier`, each loading the .tflite by path and
reading every image from its file. Standalone (numpy and the clients only, no se_edge, no torch): it runs
in the app clients' own venv (`make app-venv`), which the test in test_app_clients.py calls.

    python app_clients.py MODEL.tflite IMAGE_DIR OUT.json

OUT.json: {client: {"version", "loaded", "error", "categories": [[[index, name, score], ...] per image,
in sorted file-name order]}}; a client that is not installed or refuses the file has "loaded": false and the
one-line reason.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def mediapipe_client(model: str, images: list[Path]) -> dict:
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    options = vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=-1)
    out = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            result = classifier.classify(mp.Image.create_from_file(str(path)))
            out.append([[c.index, c.category_name, c.score] for c in result.classifications[0].categories])
    return {"version": mp.__version__, "categories": out}


def task_library_client(model: str, images: list[Path]) -> dict:
    from importlib.metadata import version

    from tflite_support.task import core, processor, vision

    options = vision.ImageClassifierOptions(base_options=core.BaseOptions(file_name=model),
                                            classification_options=processor.ClassificationOptions(max_results=-1))
    classifier = vision.ImageClassifier.create_from_options(options)
    out = []
    for path in images:
        result = classifier.classify(vision.TensorImage.create_from_file(str(path)))
        out.append([[c.index, c.category_name, c.score] for c in result.classifications[0].categories])
    return {"version": version("tflite-support"), "categories": out}


CLIENTS = {"mediapipe": mediapipe_client, "task_library": task_library_client}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: app_clients.py MODEL.tflite IMAGE_DIR OUT.json", file=sys.stderr)
        return 2
    model, image_dir, out = argv
    images = sorted(Path(image_dir).glob("*.png"))
    result = {}
    for name, client in CLIENTS.items():
        try:
            result[name] = {"loaded": True, "error": None, **client(model, images)}
        except Exception as e:  # noqa: BLE001 - a client's refusal is the measurement, reported in one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            result[name] = {"loaded": False, "error": f"{type(e).__name__}: {first}", "version": None, "categories": []}
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
