"""A compact SE network for small images (28-32 px): three strided stages, SE at the end of each."""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from se_edge.blocks import ConvBnAct, SqueezeExcite, get_attn
from se_edge.models.registry import register_model


class SeCnn(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        widths: tuple[int, ...] = (32, 64, 128),
        stem_width: int = 16,
        se: str | None = "hw",
        se_squeeze: str = "avg",
        stem: str = "small",
        drop_rate: float = 0.1,
        attn_layer=None,
    ):
        super().__init__()
        # timm's attn_layer: a name from blocks.ATTN_LAYERS, a module class or factory; else SE with gate `se`
        attn = get_attn(attn_layer) if attn_layer is not None else (
            None if se is None else partial(SqueezeExcite, gate=se, squeeze=se_squeeze))
        if stem != "small":
            raise ValueError(f"se_cnn is built for 28-32 px inputs; valid stem: 'small', got {stem!r}")
        self.stem = ConvBnAct(in_chans, stem_width)
        stages, prev = [], stem_width
        for i, width in enumerate(widths):
            layers = [ConvBnAct(prev, width, stride=2)]
            if i < len(widths) - 1:
                layers.append(ConvBnAct(width, width))
            if attn is not None:
                layers.append(attn(width))
            stages.append(nn.Sequential(*layers))
            prev = width
        self.stages = nn.Sequential(*stages)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        # keepdim=True: the form of mean that XNNPACK delegates; flatten afterwards.
        x = x.mean((2, 3), keepdim=True).flatten(1)
        return self.fc(self.drop(x))


@register_model
def se_cnn(**kwargs) -> SeCnn:
    """3-stage SE CNN (16-32-64-128 channels, ~0.3 M parameters) for 28-32 px inputs."""
    return SeCnn(**kwargs)
