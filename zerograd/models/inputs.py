"""What input a model takes: its input size or shape, data checked against it, and new images prepared for it."""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from .. import nn
from ..datasets import fit_image
from ..errors import ZerogradError
from ..io import open_image

__all__ = ["check_input", "class_names", "example_batch", "image_info", "input_shape", "input_size", "normalize",
           "prepare_images"]


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


def normalize(images: np.ndarray, mean: list[float] | None, std: list[float] | None) -> np.ndarray:
    """uint8 images (N, C, H, W) -> float32: (x / 255 - mean) / std per channel, or x / 255 without mean/std."""
    x = images.astype(np.float32)
    if mean is None or std is None:
        x *= np.float32(1 / 255)
        return x
    scale = (1 / (255 * np.asarray(std, dtype=np.float64))).astype(np.float32).reshape(1, -1, 1, 1)
    shift = (np.asarray(mean, dtype=np.float64) / np.asarray(std, dtype=np.float64)).astype(np.float32)
    x *= scale
    x -= shift.reshape(1, -1, 1, 1)
    return x


def image_info(meta: dict[str, Any]) -> dict[str, Any] | None:
    """How a model file says its images were prepared (class names, channels, size, mean, std), or None.

    None for the models of MNIST-format data (digits scaled to [0, 1]): a photo of a digit for them goes
    through the MNIST preprocessing of zerograd.images (invert, crop, centre by mass) instead.
    """
    data = meta.get("data") if isinstance(meta, dict) else None
    if not isinstance(data, dict) or data.get("mean") is None:
        return None
    return data


def class_names(meta: dict[str, Any], count: int) -> list[str]:
    """The class names a model file records for its `count` outputs, else "0", "1", ... (digits, older files)."""
    data = meta.get("data") if isinstance(meta, dict) else None
    classes = data.get("classes") if isinstance(data, dict) else None
    if isinstance(classes, list) and len(classes) == count:
        return [str(c) for c in classes]
    return [str(i) for i in range(count)]


def prepare_images(sources: list[str | os.PathLike[str] | bytes], info: dict[str, Any],
                   names: list[str] | None = None) -> np.ndarray:
    """Image files (or their bytes) -> float32 (N, C, H, W) prepared exactly as the training images were:
    converted to the model's channels, resized and centre-cropped to its image size, normalised by its mean and std.

    `names` name the sources in errors (default: the paths; "the image" for bytes).
    """
    arrays = []
    for i, source in enumerate(sources):
        where = names[i] if names is not None else ("the image" if isinstance(source, bytes) else str(source))
        image = open_image(io.BytesIO(source) if isinstance(source, bytes) else source, where)
        arrays.append(fit_image(image, int(info["channels"]), tuple(int(n) for n in info["image_size"])))
    return normalize(np.stack(arrays), info["mean"], info["std"])
