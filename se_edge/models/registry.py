"""Model registry: models register by name with a decorator and are built by name."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


# Options for which None is a value, not "unset": se=None builds the network without SE.
_NONE_IS_A_VALUE = {"se"}


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model. Options left as None are dropped, so the model's defaults hold,
    except `se`, where None (or "none") means the same network without SE blocks."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    if kwargs.get("se") == "none":
        kwargs["se"] = None
    return _MODELS[name](**{k: v for k, v in kwargs.items() if v is not None or k in _NONE_IS_A_VALUE})
