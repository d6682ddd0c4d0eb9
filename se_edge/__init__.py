"""se_edge: Squeeze-and-Excitation networks whose every op stays int8 inside the phone's delegate.

    import se_edge
    model, report = se_edge.to_hardware_aware(my_model, example)   # SE blocks -> the delegable hw form
    int8 = se_edge.to_int8(model, images, labels, qat=se_edge.QatConfig(epochs=2))
    int8.export_tflite("m.tflite"); int8.export_pte("m.pte")
    se_edge.check_parity({"tflite": "m.tflite", "pte": "m.pte"}, images, labels, reference=int8)
    se_edge.run(model="net.py:build", weights="w.pt", epochs=0, data="digits")   # the whole pipeline

Names resolve on first use, so `import se_edge` (and `se-edge --help`) does not import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    # blocks and models
    "SqueezeExcite": "se_edge.blocks", "create_attn": "se_edge.blocks", "to_hardware_aware": "se_edge.api",
    "create_model": "se_edge.models", "list_models": "se_edge.models", "ModelSpec": "se_edge.models.sources",
    "load_weights": "se_edge.models.weights",
    # data
    "load_splits": "se_edge.data",
    # configs
    "RunConfig": "se_edge.config", "TrainConfig": "se_edge.config", "QatConfig": "se_edge.config",
    "LatencyConfig": "se_edge.config",
    # quantise, export, parity, the whole run
    "to_int8": "se_edge.api", "Int8Model": "se_edge.api", "export_float": "se_edge.api",
    "check_parity": "se_edge.api", "run": "se_edge.api",
    "SeEdgeError": "se_edge.errors",
}
__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("se_edge")
        except PackageNotFoundError:
            return "0+unknown"
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'se_edge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
