"""Residual networks (the book's chapter 8 on deeper networks): ResNet-20 of He et al. (2016), CIFAR variant.

A stack of plain convolutions trains worse as it gets deeper; a residual block learns a correction F(x)
added to its input, out = relu(F(x) + x), so that the identity is easy and gradients reach the first
layers through the shortcuts. The CIFAR-10 networks of the paper's section 4.2 have 6n + 2 layers:

    conv 3x3 (C -> w) -> BN -> ReLU
    n BasicBlocks of w channels, n of 2w (the first with stride 2), n of 4w (the first with stride 2)
    global average pooling -> Linear (4w -> num_classes)

with w = 16 and n = 3 for ResNet-20. Where a block changes the shape its shortcut is a 1x1 convolution
with stride 2 and batch norm (the paper's option B, "projection shortcuts" that match the shapes).
Names and initialisation follow torchvision's ResNet: conv1, bn1, layer1..3, avgpool, fc; blocks with
conv1, bn1, relu, conv2, bn2, downsample; He normal initialisation with fan_out for the convolutions.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ZerogradError
from ..tensor import Tensor

__all__ = ["BasicBlock", "ResNet", "resnet_state_size"]


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int,
          rng: np.random.Generator | None) -> nn.Conv2d:
    """A convolution without bias (batch norm follows), He normal with fan_out = out * k * k, as torchvision's."""
    std = math.sqrt(2.0 / (out_channels * kernel_size * kernel_size))  # init.kaiming_normal_(mode="fan_out")
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False,
                     generator=rng, init=std)


class BasicBlock(nn.Module):
    """The residual block: conv 3x3 (stride) -> BN -> ReLU -> conv 3x3 -> BN, plus the shortcut, then ReLU.

    The shortcut is the input itself when the shapes match, else `downsample`: a 1x1 convolution with the
    same stride and batch norm. `generator`: a NumPy Generator or None for zerograd's default generator.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, *,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 3, stride, generator)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = _conv(planes, planes, 3, 1, generator)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(_conv(in_planes, planes, 1, stride, generator), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _blocks(depth: int) -> int:
    """n, the number of blocks per stage, of a depth 6n + 2."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ZerogradError(f"resnet: depth must be 6n + 2 for a whole n >= 1 (8, 14, 20, 32, 44, 56, 110), "
                            f"got {depth!r}")
    return (depth - 2) // 6


class ResNet(nn.Module):
    """ResNet of depth 6n + 2 for small images (He et al. 2016, CIFAR-10): (N, C, H, W) -> logits (N, num_classes).

    ResNet() is ResNet-20 for CIFAR-10's 3x32x32 images (272,474 parameters, 1x1 projection shortcuts
    included); input_shape, num_classes, depth (20, 32, 44, 56, 110, ...) and width (the first stage's
    channels) size it to other data: global average pooling makes it take any image size.
    """

    def __init__(self, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, depth: int = 20,
                 width: int = 16, seed: int | None = None) -> None:
        super().__init__()
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ZerogradError(f"resnet: input_shape must be (channels, height, width), got {tuple(input_shape)}")
        if num_classes < 1 or width < 1:
            raise ZerogradError(f"resnet: num_classes and width must be at least 1, got {num_classes} and {width}")
        channels, height, width_px = (int(d) for d in input_shape)
        n = _blocks(depth)
        rng = None if seed is None else np.random.default_rng(seed)
        self.conv1 = _conv(channels, width, 3, 1, rng)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        planes = width
        for stage, (out, stride) in enumerate(((width, 1), (2 * width, 2), (4 * width, 2)), start=1):
            blocks = [BasicBlock(planes, out, stride, generator=rng)]
            blocks += [BasicBlock(out, out, generator=rng) for _ in range(n - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            planes = out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes, generator=rng)
        self.config = {"arch": "resnet", "input_shape": [channels, height, width_px], "num_classes": num_classes,
                       "depth": depth, "width": width}

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.flatten(self.avgpool(x), 1))


def resnet_state_size(channels: int, num_classes: int, depth: int, width: int) -> int:
    """How many values ResNet(...).state_dict() holds (weights, biases, running statistics), from its sizes alone.

    Closed form on Python ints, a constant amount of work whatever the sizes: what a model file's
    configuration is checked against before anything is built (models.config.check_config_fits).
    """
    n = max((depth - 2) // 6, 1)
    total = 9 * channels * width + 4 * width  # conv1; a batch norm holds 4 values per channel
    planes = width
    for stage, out in enumerate((width, 2 * width, 4 * width)):
        total += 9 * planes * out + (2 * n - 1) * 9 * out * out + 2 * n * 4 * out  # 2n convolutions, 2n batch norms
        if stage:  # the projection shortcut of the stage's first block
            total += planes * out + 4 * out
        planes = out
    return total + planes * num_classes + num_classes
