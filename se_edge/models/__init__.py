"""The model zoo: `create_model(name, num_classes=..., in_chans=..., se=...)`, `list_models()`."""
from se_edge.models import se_cnn  # noqa: F401  (registers)
from se_edge.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
