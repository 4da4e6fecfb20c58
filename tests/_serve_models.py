"""Image models for the `zerograd serve` tests whose answers are known without training, and images for them.

The colour model is linear (Flatten, Linear(C*H*W, 3)): class k adds up the normalised channel k (plus a little
noise so that the saliency map is not flat), so a reddish image is "tomato", a greenish one "leaf", a bluish
one "sky", and its saliency map for class k is exactly max over channels of |its weight row k|.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from zerograd.models import MLP, save_model

COLOURS = {"tomato": (220, 30, 30), "leaf": (30, 200, 40), "sky": (40, 60, 230)}
MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.2, 0.2]


def image_data(size: tuple[int, int] = (32, 32), channels: int = 3, classes: list[str] | None = None) -> dict:
    """A model file's data record for a folder of images."""
    return {"source": "folder", "classes": list(COLOURS) if classes is None else classes, "channels": channels,
            "image_size": list(size), "mean": MEAN[:channels], "std": STD[:channels]}


def save_colour_model(path: Path, size: tuple[int, int] = (32, 32)) -> Path:
    """The linear colour model (see above) for `size` images, saved with its data record."""
    h, w = size
    model = MLP(3 * h * w, (), 3, seed=0)
    noise = 1e-3 * np.random.default_rng(0).standard_normal((3, 3 * h * w))
    weight = np.kron(np.eye(3), np.ones((1, h * w))) / (h * w) + noise  # row k reads channel k
    model.load_state_dict({"1.weight": weight.astype(np.float32), "1.bias": np.zeros(3, dtype=np.float32)})
    save_model(model, path, {"results": {"test_accuracy": 1.0}}, data=image_data(size))
    return path


def solid(colour: tuple[int, ...], size: tuple[int, int] = (40, 60)) -> np.ndarray:
    """A (H, W, 3) uint8 image of one colour (RGB) or (H, W) of one grey level."""
    return np.broadcast_to(np.asarray(colour, dtype=np.uint8), (*size, len(colour)) if len(colour) > 1 else size)


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    """An image file's bytes (PNG, JPEG, ...) holding `array`."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format=fmt)
    return buf.getvalue()
