"""One factory for attention blocks by name (timm's `create_attn`), taking a type or a string."""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch.nn as nn

from se_edge.blocks.cbam import CbamModule
from se_edge.blocks.eca import EcaModule
from se_edge.blocks.se import SqueezeExcite

ATTN_LAYERS: dict[str, Callable[..., nn.Module]] = {
    "se": partial(SqueezeExcite, gate="sigmoid"),  # the classic SE
    "se_hs": partial(SqueezeExcite, gate="hard_sigmoid"),  # torchvision/timm MobileNetV3 style
    "se_hw": partial(SqueezeExcite, gate="hw"),  # inside every delegate, fp32 and int8: se_edge's default
    "se_max_hw": partial(SqueezeExcite, gate="hw", squeeze="max"),
    "se_avgmax_hw": partial(SqueezeExcite, gate="hw", squeeze="avgmax"),
    "se_avgpool_hw": partial(SqueezeExcite, gate="hw", squeeze="avgpool"),  # Ethos-U only: not delegated by LiteRT
    "se_s2_hw": partial(SqueezeExcite, gate="hw", squeeze="avg_s2"),  # not delegable in ExecuTorch (README)
    "eca": partial(EcaModule, gate="sigmoid"),
    "eca_hw": partial(EcaModule, gate="hw"),
    "cbam": partial(CbamModule, gate="sigmoid"),
    "cbam_hw": partial(CbamModule, gate="hw"),
}


def get_attn(attn: str | type[nn.Module] | Callable[..., nn.Module] | None) -> Callable[..., nn.Module] | None:
    """Resolve an attention type: a registered name, a module class or factory, or None."""
    if attn is None or callable(attn):
        return attn
    if attn not in ATTN_LAYERS:
        raise ValueError(f"unknown attention block {attn!r}; valid: {', '.join(ATTN_LAYERS)}")
    return ATTN_LAYERS[attn]


def create_attn(attn: str | type[nn.Module] | None, channels: int, **kwargs) -> nn.Module | None:
    """`create_attn("se_hw", 64)` -> an SE block with the integer-only gate; None -> None."""
    layer = get_attn(attn)
    return None if layer is None else layer(channels, **kwargs)
