"""A model's `config`: the JSON-able dict from which build_model rebuilds its architecture.

Every model built here carries `config`; a model file stores it beside the weights, so loading needs
no other flag. A config read from a file is untrusted: check_config_fits refuses one that describes
more weights than the file holds before anything is allocated.
"""

from __future__ import annotations

import reprlib
from typing import Any, Callable

import numpy as np

from .. import nn
from ..errors import ModelFileError
from .book import book_ch3
from .cnn import DeepConvNet, SimpleConvNet, conv_out
from .mlp import MLP, TwoLayerNet
from .resnet import ResNet, resnet_state_size

__all__ = ["ARCHITECTURES", "build_model", "check_config_fits"]

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "book-ch3": book_ch3,
    "two-layer": TwoLayerNet,
    "simple-cnn": SimpleConvNet,
    "deep-cnn": DeepConvNet,
    "resnet": ResNet,
}


def build_model(config: dict[str, Any]) -> nn.Module:
    """Rebuilds an untrained model from its `config` dict (as stored in a model file)."""
    config = dict(config)
    arch = config.pop("arch", None)
    if not isinstance(arch, str) or arch not in ARCHITECTURES:  # a file may hold any JSON there
        known = ", ".join(ARCHITECTURES)
        raise ModelFileError(f"unknown architecture {reprlib.repr(arch)}: this zerograd knows {known}")
    try:
        return ARCHITECTURES[arch](**config)
    except (TypeError, ValueError, OverflowError) as err:
        # reprlib: a configuration read from a file may be megabytes long; the message stays one short line.
        raise ModelFileError(
            f"the {arch} configuration {reprlib.repr(config)} does not fit this zerograd: {err}"
        ) from err


def _whole(value: Any, what: str) -> int:
    """`value` if it is a positive whole number (not a bool), else ModelFileError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelFileError(f"the model configuration's {what} must be a positive whole number, "
                             f"got {reprlib.repr(value)}; the file is damaged or was not written by zerograd")
    return value


def _image_shape(config: dict[str, Any], default: tuple[int, int, int]) -> tuple[int, ...]:
    """The configuration's input_shape (channels, height, width), three positive whole numbers, else ModelFileError."""
    shape = config.get("input_shape", default)
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ModelFileError(f"the model configuration's input_shape must be [channels, height, width], "
                             f"got {reprlib.repr(shape)}")
    return tuple(_whole(d, "input_shape entry") for d in shape)


def _weight_count(config: dict[str, Any]) -> int | None:
    """Number of weights the model of `config` holds, from the config alone (None: no formula for its arch).

    Computed on Python ints, without building anything: a file must not make zerograd allocate
    a network it cannot hold the weights of.
    """
    arch = config.get("arch")
    if arch == "mlp":
        hidden = config.get("hidden", (100, 100))
        if not isinstance(hidden, (list, tuple)):
            raise ModelFileError(f"the model configuration's hidden must be a list of layer sizes, "
                                 f"got {reprlib.repr(hidden)}")
        sizes = [_whole(config.get("input_size", 784), "input_size"),
                 *(_whole(h, "hidden layer size") for h in hidden),
                 _whole(config.get("num_classes", 10), "num_classes")]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if arch == "two-layer":
        sizes = [_whole(config.get(k, d), k) for k, d in
                 (("input_size", 784), ("hidden_size", 50), ("output_size", 10))]
        return sizes[0] * sizes[1] + sizes[1] * sizes[2]
    if arch in ("simple-cnn", "deep-cnn"):
        channels, height, width = _image_shape(config, (1, 28, 28))
        hidden = _whole(config.get("hidden", 100 if arch == "simple-cnn" else 50), "hidden")
        classes = _whole(config.get("num_classes", 10), "num_classes")
        if arch == "simple-cnn":
            filters = _whole(config.get("filters", 30), "filters")
            k = _whole(config.get("kernel_size", 5), "kernel_size")
            pooled = [max(conv_out(conv_out(n, k, 0), 2, 0, 2), 0) for n in (height, width)]
            return filters * channels * k * k + filters * pooled[0] * pooled[1] * hidden + hidden * classes
        convs, size = 0, [height, width]
        for i, (out, pad) in enumerate(zip(DeepConvNet.CHANNELS, DeepConvNet.PADDINGS)):
            convs, channels = convs + out * channels * 9, out
            size = [max(conv_out(n, 3, pad), 0) for n in size]
            if i % 2 == 1:
                size = [max(conv_out(n, 2, 0, 2), 0) for n in size]
        return convs + channels * size[0] * size[1] * hidden + hidden * classes
    if arch == "resnet":
        channels = _image_shape(config, (3, 32, 32))[0]
        sizes = [_whole(config.get(k, d), k) for k, d in (("num_classes", 10), ("depth", 20), ("width", 16))]
        return resnet_state_size(channels, *sizes)
    return None


def check_config_fits(config: dict[str, Any], state: dict[str, np.ndarray], where: str) -> None:
    """Refuse a configuration that describes more weights than the file's `state` holds, before building it."""
    held = sum(int(np.asarray(v).size) for v in state.values())
    needed = _weight_count(config)
    what = "a network of {:,} weights"
    if needed is None:  # no formula for this architecture: bound every size it names instead
        needed, what = max(_ints(config), default=0), "a layer size of {:,}"
    if needed > held:
        raise ModelFileError(
            f"{where}: its configuration describes {what.format(needed)} but the file holds "
            f"only {held:,} values; the file is damaged or was not written by zerograd"
        )


def _ints(obj: Any) -> list[int]:
    """Every integer inside a JSON value (iteratively: a hostile file may nest deeply)."""
    found, stack = [], [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            found.append(item)
    return found
