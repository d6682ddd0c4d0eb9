"""Text of a user's own model file, shaped like torchvision's MobileNetV3 (SqueezeExcitation with
fc1/fc2 1x1 convs, ReLU, Hardsigmoid scale; Hardswish blocks; 3-channel input; a Linear classifier).
Tests write it to a directory outside the repo and pass it as `--model FILE.py:build`, as a user would."""

SOURCE = '''
import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


def conv_bn_act(cin, cout, k, stride, groups=1, act=nn.Hardswish):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


class Block(nn.Module):
    def __init__(self, cin, expanded, cout, stride):
        super().__init__()
        self.block = nn.Sequential(conv_bn_act(cin, expanded, 1, 1), conv_bn_act(expanded, expanded, 3, stride, expanded),
                                   SqueezeExcitation(expanded, max(8, expanded // 4)),
                                   nn.Sequential(nn.Conv2d(expanded, cout, 1, bias=False), nn.BatchNorm2d(cout)))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class TinySeMobileNet(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(conv_bn_act(3, 16, 3, 2), Block(16, 32, 16, 1), Block(16, 48, 24, 2),
                                      Block(24, 72, 24, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(24, 64), nn.Hardswish(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def build(num_classes=1000):
    return TinySeMobileNet(num_classes)
'''
