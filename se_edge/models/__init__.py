"""The model zoo: `create_model(name, num_classes=..., in_chans=..., se="hw", stem=...)`, `list_models()`.

`se` is an SE gate name (`hw`, `hard_sigmoid`, `sigmoid`) or None for the same network without SE.
"""
from se_edge.models import mobilenetv3, resnet, se_cnn  # noqa: F401  (register the models)
from se_edge.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
