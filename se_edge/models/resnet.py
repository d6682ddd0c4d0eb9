"""SE-ResNet and SE-ResNeXt (Hu et al., 2018): SE on each residual branch, before the add.

`stem="imagenet"`: 7x7/2 conv + 3x3/2 max pool, for 224 px inputs. `stem="small"`: a 3x3/1 conv and
no pool, for 28-32 px inputs. `se` is the SE gate (`hw`, `hard_sigmoid`, `sigmoid`) or None for the
same network without SE.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from se_edge.blocks import ConvBnAct, SqueezeExcite, get_attn
from se_edge.models.registry import register_model

STEMS = ("imagenet", "small")


class ZeroPadMaxPool(nn.Module):
    """`nn.MaxPool2d(3, 2, 1)` after a ReLU, as zero padding then an unpadded max pool.

    Equal for non-negative inputs (the stem's ReLU output). The padded max pool becomes TFLite
    PADV2 (padding with -inf), which LiteRT's XNNPACK delegate refuses, in fp32 and int8; a zero
    PAD and a VALID MAX_POOL_2D run inside it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)


def check_stem(stem: str) -> str:
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; valid: {', '.join(STEMS)}")
    return stem


def _attn(attn_layer, se: str | None, squeeze: str):
    """The blocks' attention layer: `attn_layer` (a name from blocks.ATTN_LAYERS, a module class or factory,
    timm's `attn_layer`), else SE with gate `se` and squeeze `squeeze` (None: no attention)."""
    if attn_layer is not None:
        return get_attn(attn_layer)
    return None if se is None else partial(SqueezeExcite, rd_ratio=1 / 16, gate=se, squeeze=squeeze)


def _shortcut(in_chs: int, out_chs: int, stride: int) -> nn.Module:
    if stride == 1 and in_chs == out_chs:
        return nn.Identity()
    return ConvBnAct(in_chs, out_chs, 1, stride, act_layer=None)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int, attn, groups: int = 1, base_width: int = 64):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = ConvBnAct(in_chs, planes, 3, stride)
        self.conv2 = ConvBnAct(planes, out, 3, act_layer=None)
        self.se = nn.Identity() if attn is None else attn(out)
        self.shortcut = _shortcut(in_chs, out, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.conv2(self.conv1(x))) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int, attn, groups: int = 1, base_width: int = 64):
        super().__init__()
        width = int(planes * base_width / 64) * groups
        out = planes * self.expansion
        self.conv1 = ConvBnAct(in_chs, width, 1)
        self.conv2 = ConvBnAct(width, width, 3, stride, groups=groups)
        self.conv3 = ConvBnAct(width, out, 1, act_layer=None)
        self.se = nn.Identity() if attn is None else attn(out)
        self.shortcut = _shortcut(in_chs, out, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.conv3(self.conv2(self.conv1(x)))) + self.shortcut(x))


class SeResNet(nn.Module):
    def __init__(self, block, layers: tuple[int, ...], num_classes: int = 1000, in_chans: int = 3,
                 se: str | None = "hw", se_squeeze: str = "avg", stem: str = "imagenet", groups: int = 1,
                 base_width: int = 64, drop_rate: float = 0.0, attn_layer=None):
        super().__init__()
        attn = _attn(attn_layer, se, se_squeeze)
        if check_stem(stem) == "imagenet":
            self.stem = nn.Sequential(ConvBnAct(in_chans, 64, 7, 2), ZeroPadMaxPool())
        else:
            self.stem = ConvBnAct(in_chans, 64, 3, 1)
        stages, in_chs = [], 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(in_chs, planes, stride, attn, groups, base_width))
                in_chs = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.drop = nn.Dropout(drop_rate)
        # No zero-init of the branches' last BN: PT2E QAT simulates conv-bn by dividing by
        # gamma / std, and a zero gamma turns that into NaN.
        self.fc = nn.Linear(in_chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.drop(x.mean((2, 3), keepdim=True).flatten(1)))


@register_model
def se_resnet18(**kwargs) -> SeResNet:
    return SeResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


@register_model
def se_resnet34(**kwargs) -> SeResNet:
    return SeResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


@register_model
def se_resnet50(**kwargs) -> SeResNet:
    return SeResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


@register_model
def se_resnext50_32x4d(**kwargs) -> SeResNet:
    return SeResNet(Bottleneck, (3, 4, 6, 3), groups=32, base_width=4, **kwargs)
