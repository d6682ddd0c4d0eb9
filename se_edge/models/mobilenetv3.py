"""SE-MobileNetV3 (Howard et al., ICCV 2019): inverted residuals, SE after the depthwise conv with
its reduction at 1/4 of the expanded channels rounded to 8 (`se_rd="input"`: of the block's input channels, as
EfficientNet sizes it), hard-swish in the later stages.

`se` is the SE gate (`hw` by default: integer-only) or None; `se_squeeze` the squeeze form.
`stem="small"` keeps the stem conv at stride 1 for 28-32 px inputs.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from se_edge.blocks import ConvBnAct, SqueezeExcite, get_attn, make_divisible
from se_edge.models.registry import register_model
from se_edge.models.resnet import check_stem

# kernel, expanded, out, use_se, activation (RE: ReLU, HS: hard-swish), stride
SMALL = [
    (3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1),
]
LARGE = [
    (3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
]
ACTS = {"RE": nn.ReLU, "HS": nn.Hardswish}


SE_RD = ("expanded", "input")  # the SE's hidden width: a quarter of the expanded channels (MobileNetV3) or of the
# block's input channels (EfficientNet's choice; 3-6x fewer excitation MACs), rounded to a multiple of 8


class InvertedResidual(nn.Module):
    def __init__(self, in_chs: int, kernel: int, expanded: int, out: int, use_se: bool, act: str, stride: int, attn):
        super().__init__()
        act_layer = ACTS[act]
        self.expand = ConvBnAct(in_chs, expanded, 1, act_layer=act_layer) if expanded != in_chs else nn.Identity()
        self.dw = ConvBnAct(expanded, expanded, kernel, stride, groups=expanded, act_layer=act_layer)
        self.se = attn(expanded, in_chs) if use_se and attn is not None else nn.Identity()
        self.project = ConvBnAct(expanded, out, 1, act_layer=None)
        self.residual = stride == 1 and in_chs == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class SeMobileNetV3(nn.Module):
    def __init__(self, config, last_channel: int, num_classes: int = 1000, in_chans: int = 3, se: str | None = "hw",
                 se_squeeze: str = "avg", stem: str = "imagenet", drop_rate: float = 0.2, attn_layer=None,
                 se_rd: str = "expanded"):
        super().__init__()
        if se_rd not in SE_RD:
            raise ValueError(f"unknown se_rd {se_rd!r}; valid: {', '.join(SE_RD)}")
        if attn_layer is not None:  # timm's attn_layer: a name from blocks.ATTN_LAYERS, a module class or factory
            layer = get_attn(attn_layer)
            attn = lambda c, in_chs: layer(c)  # noqa: E731
        else:
            attn = None if se is None else lambda c, in_chs: SqueezeExcite(
                c, rd_channels=make_divisible((c if se_rd == "expanded" else in_chs) // 4, 8), gate=se,
                squeeze=se_squeeze)
        self.stem = ConvBnAct(in_chans, 16, 3, 2 if check_stem(stem) == "imagenet" else 1, act_layer=nn.Hardswish)
        blocks, in_chs = [], 16
        for kernel, expanded, out, use_se, act, stride in config:
            blocks.append(InvertedResidual(in_chs, kernel, expanded, out, use_se, act, stride, attn))
            in_chs = out
        self.blocks = nn.Sequential(*blocks)
        self.head_conv = ConvBnAct(in_chs, 6 * in_chs, 1, act_layer=nn.Hardswish)
        self.classifier = nn.Sequential(nn.Linear(6 * in_chs, last_channel), nn.Hardswish(), nn.Dropout(drop_rate),
                                        nn.Linear(last_channel, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head_conv(self.blocks(self.stem(x)))
        return self.classifier(x.mean((2, 3), keepdim=True).flatten(1))


@register_model
def se_mobilenetv3_small(**kwargs) -> SeMobileNetV3:
    return SeMobileNetV3(SMALL, 1024, **kwargs)


@register_model
def se_mobilenetv3_large(**kwargs) -> SeMobileNetV3:
    return SeMobileNetV3(LARGE, 1280, **kwargs)
