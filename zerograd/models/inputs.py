"""What input a model takes: its input size or shape, and data checked against it."""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..errors import ZerogradError

__all__ = ["check_input", "example_batch", "input_shape", "input_size"]


def input_size(model: nn.Module) -> int:
    """Number of input features the model's first Linear layer expects."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m.weight.shape[1]
    raise ZerogradError("model has no Linear layer, its input size is unknown")


def input_shape(model: nn.Module) -> tuple[int, ...]:
    """Shape of one input the model expects: (C, H, W) for the CNNs, (features,) for the MLPs."""
    config = getattr(model, "config", None) or {}
    if "input_shape" in config:
        return tuple(config["input_shape"])
    return (input_size(model),)


def check_input(model: nn.Module, x: np.ndarray, data: str) -> np.ndarray:
    """x (N, ...) reshaped to what `model` takes, or a ZerogradError naming both sizes."""
    shape = input_shape(model)
    if len(shape) == 1 and int(np.prod(x.shape[1:])) == shape[0]:
        return x  # an MLP flattens whatever image shape it gets
    if tuple(x.shape[1:]) != shape:
        wanted = f"{shape[0]} input features" if len(shape) == 1 else f"images of shape {shape}"
        raise ZerogradError(
            f"the model expects {wanted} but {data} has inputs of shape {tuple(x.shape[1:])} "
            f"({int(np.prod(x.shape[1:]))} values): use data of the size it was trained on"
        )
    return x


def example_batch(model: nn.Module) -> np.ndarray:
    """A batch of two zero inputs in the shape `model` takes: (2, C, H, W) for images, (2, features) else."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        config = getattr(model, "config", None) or {}
        shape = config.get("input_shape") or config.get("input_dim")
    if shape is None:
        n = input_size(model)
        side = math.isqrt(n)
        shape = (1, side, side) if side * side == n else (n,)
    # two samples, not one: a batch of 1 could not be told apart from other axes of size 1
    return np.zeros((2, *tuple(int(s) for s in shape)), dtype=np.float32)
