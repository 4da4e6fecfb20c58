"""Convolutional networks: the book's SimpleConvNet (chapter 7) and DeepConvNet (chapter 8)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import nn
from ..errors import ZerogradError

__all__ = ["DeepConvNet", "SimpleConvNet", "conv_out"]


def conv_out(size: int, kernel: int, padding: int, stride: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


class SimpleConvNet(nn.Sequential):
    """The book's chapter-7 SimpleConvNet: (N, C, H, W) images -> logits (N, num_classes).

    conv (30 filters 5x5, stride 1, pad 0) -> [BatchNorm2d] -> ReLU -> max-pool 2x2 stride 2 ->
    Linear (30*12*12 = 4320 for 28x28 digits) -> 100 -> ReLU -> Linear 100 -> num_classes.
    He initialisation throughout (the book uses std 0.01).
    """

    def __init__(
        self, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, filters: int = 30,
        kernel_size: int = 5, hidden: int = 100, batchnorm: bool = False, seed: int | None = None,
    ) -> None:
        channels, height, width = input_shape
        rng = None if seed is None else np.random.default_rng(seed)
        pooled = [conv_out(conv_out(n, kernel_size, 0), 2, 0, 2) for n in (height, width)]
        if min(pooled) < 1:
            raise ZerogradError(f"simple-cnn needs images of at least {kernel_size + 1}x{kernel_size + 1} pixels, "
                                f"got {height}x{width}")
        layers: list[nn.Module] = [nn.Conv2d(channels, filters, kernel_size, generator=rng)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(filters))
        layers += [
            nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(filters * pooled[0] * pooled[1], hidden, generator=rng), nn.ReLU(),
            nn.Linear(hidden, num_classes, generator=rng),
        ]
        super().__init__(*layers)
        self.config = {
            "arch": "simple-cnn", "input_shape": [channels, height, width], "num_classes": num_classes,
            "filters": filters, "kernel_size": kernel_size, "hidden": hidden, "batchnorm": batchnorm,
        }


class DeepConvNet(nn.Sequential):
    """The book's chapter-8 DeepConvNet: (N, C, H, W) images -> logits (N, num_classes).

    [conv 3x3 -> ReLU -> conv 3x3 -> ReLU -> max-pool 2x2] x 3 with channels 16,16 / 32,32 / 64,64 and
    paddings 1,1 / 1,2 / 1,1, then Linear (1024 for 28x28) -> 50 -> ReLU -> Dropout -> Linear 50 ->
    num_classes -> Dropout, as in the book. `batchnorm` adds BatchNorm2d after each convolution.
    Dropout here is inverted (scaled in training); the book's scales at inference (see load_book_deep_cnn).
    """

    CHANNELS = (16, 16, 32, 32, 64, 64)
    PADDINGS = (1, 1, 1, 2, 1, 1)

    def __init__(
        self, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, hidden: int = 50,
        dropout: float = 0.5, batchnorm: bool = False, seed: int | None = None,
    ) -> None:
        channels, height, width = input_shape
        rng = None if seed is None else np.random.default_rng(seed)
        layers: list[nn.Module] = []
        size = [height, width]
        for i, (out, pad) in enumerate(zip(self.CHANNELS, self.PADDINGS)):
            layers.append(nn.Conv2d(channels, out, 3, padding=pad, generator=rng))
            if batchnorm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            size = [conv_out(n, 3, pad) for n in size]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2, 2))
                size = [conv_out(n, 2, 0, 2) for n in size]
            if min(size) < 1:
                raise ZerogradError(f"deep-cnn needs images of at least 8x8 pixels, got {height}x{width}")
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * size[0] * size[1], hidden, generator=rng), nn.ReLU(),
                   nn.Dropout(dropout, generator=rng), nn.Linear(hidden, num_classes, generator=rng),
                   nn.Dropout(dropout, generator=rng)]
        super().__init__(*layers)
        self.config = {
            "arch": "deep-cnn", "input_shape": [input_shape[0], height, width], "num_classes": num_classes,
            "hidden": hidden, "dropout": dropout, "batchnorm": batchnorm,
        }
