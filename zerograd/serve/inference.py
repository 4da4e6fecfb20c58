"""What the page shows for one image: the served models, their prediction, and a saliency map.

Two kinds of model are served. A "digits" model (MNIST-format data: no per-channel mean recorded) reads a
drawing or a photo of one digit after the MNIST preprocessing of zerograd.images (invert, crop, centre by
mass). An "images" model (trained on a folder of images or CIFAR-10) reads any image prepared as its
training images were: converted to its channels, resized and centre-cropped to its size, normalised.

Nothing here needs FastAPI: the web app (app.py) calls these functions, and so can a script.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import functional as F
from ..datasets import fit_image
from ..errors import ModelFileError, ZerogradError
from ..images import load_digit_bytes
from ..io import MAX_PIXELS, open_image
from ..models import class_names, image_info, list_pretrained, load_model, normalize
from ..nn import Module
from ..tensor import Tensor, enable_grad, no_grad

__all__ = ["ServedModel", "best_pretrained", "load_served_model", "load_served_models", "predict_bytes",
           "predict_digit", "predict_image"]

PRETRAINED_PREFIX = "pretrained:"
DIGIT_CLASSES = [str(d) for d in range(10)]
MAX_SIDE = 4096  # a recorded image size past this is not a model's input but a damaged (or hostile) file


@dataclass
class ServedModel:
    """A loaded model ready to read images, with the name the API knows it by."""

    name: str  # "deep-cnn" for pretrained:deep-cnn, else the model file's path as given
    spec: str  # what load_model was given
    model: Module
    arch: str
    test_accuracy: float | None  # None when nothing recorded it
    kind: str = "digits"  # "digits": 28x28 digits prepared like MNIST's; "images": prepared as in training
    classes: list[str] = field(default_factory=lambda: list(DIGIT_CLASSES))
    info: dict[str, Any] | None = None  # "images": the model file's data record (zerograd.models.image_info)

    @property
    def channels(self) -> int:
        return 1 if self.info is None else int(self.info["channels"])

    @property
    def image_size(self) -> tuple[int, int]:
        return (28, 28) if self.info is None else (int(self.info["image_size"][0]), int(self.info["image_size"][1]))

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: name, arch, test_accuracy, label (what the page's selector shows), kind, classes,
        channels and image_size [H, W]."""
        acc = "test accuracy unknown" if self.test_accuracy is None else f"test accuracy {self.test_accuracy:.4f}"
        return {"name": self.name, "arch": self.arch, "test_accuracy": self.test_accuracy,
                "label": f"{self.name} ({acc})", "kind": self.kind, "classes": list(self.classes),
                "channels": self.channels, "image_size": list(self.image_size)}


def _recorded_accuracy(meta: dict[str, Any]) -> float | None:
    """The test accuracy stored with a model (meta["training"]["results"]), None if it has none."""
    training = meta.get("training")
    results = training.get("results") if isinstance(training, dict) else None
    acc = results.get("test_accuracy") if isinstance(results, dict) else None
    return float(acc) if isinstance(acc, (int, float)) and not isinstance(acc, bool) else None


def _checked_image_info(spec: str, info: dict[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of an image model's data record, or a ModelFileError naming what in it is damaged."""
    channels, size, mean, std = info.get("channels"), info.get("image_size"), info.get("mean"), info.get("std")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def per_channel(v: Any) -> bool:
        return (isinstance(v, list) and len(v) == channels
                and all(isinstance(n, (int, float)) and not isinstance(n, bool) and np.isfinite(n) for n in v))

    if not (channels in (1, 3) and is_int(channels) and isinstance(size, list) and len(size) == 2
            and all(is_int(n) and 0 < n <= MAX_SIDE for n in size)
            and per_channel(mean) and per_channel(std) and all(s > 0 for s in std)):
        raise ModelFileError(f"{spec}: its data record (channels {channels!r}, image_size {size!r}, mean {mean!r}, "
                             f"std {std!r}) is damaged; retrain the model or save it again with its data")
    return channels, size[0], size[1]


def load_served_model(spec: str) -> ServedModel:
    """Load a model file or "pretrained:NAME" and check that it reads its images into one score per class.

    A digit model (no per-channel mean recorded: MNIST-format data) must read (1, 1, 28, 28) into 10 classes;
    an image model (a folder of images, CIFAR-10) its recorded (1, C, H, W) into its recorded classes.
    """
    model, meta = load_model(spec)
    name = spec[len(PRETRAINED_PREFIX):] if spec.startswith(PRETRAINED_PREFIX) else spec
    model.eval()
    # Served models are only read, never trained: frozen weights keep the saliency backward to the input.
    for p in model.parameters():
        p.requires_grad_(False)
    info = image_info(meta)
    shape = (1, 28, 28) if info is None else _checked_image_info(spec, info)
    try:
        with no_grad():
            out = model(Tensor(np.zeros((1, *shape), dtype=np.float32)))
    except (ZerogradError, ValueError) as err:
        if info is None:
            raise ZerogradError(f"{spec} does not read 28x28 digit images ({err}); "
                                "serve a model trained on MNIST") from err
        raise ModelFileError(f"{spec} does not read the {shape[1]}x{shape[2]} images with {shape[0]} channel(s) "
                             f"its file records ({err}); retrain the model") from err
    arch = str(meta.get("config", {}).get("arch", "unknown"))
    if info is None:
        if out.shape != (1, 10):
            raise ZerogradError(f"{spec} gives {out.shape[1:]} outputs per image, not 10 digit classes; "
                                "serve a model trained on MNIST")
        return ServedModel(name, spec, model, arch, _recorded_accuracy(meta), classes=class_names(meta, 10))
    classes = info.get("classes")
    if len(out.shape) != 2 or not isinstance(classes, list) or len(classes) != out.shape[1]:
        count = len(classes) if isinstance(classes, list) else "no"
        raise ModelFileError(f"{spec} gives {out.shape[1:]} outputs per image but its file names {count} classes; "
                             "retrain the model or save it again with its data")
    return ServedModel(name, spec, model, arch, _recorded_accuracy(meta), kind="images",
                       classes=[str(c) for c in classes], info=info)


def best_pretrained() -> tuple[ServedModel, dict[str, str]]:
    """The pretrained model with the highest recorded test accuracy, and {name: error} of those left out.

    A pretrained model that does not load (its file missing from this installation, say) is left out
    rather than stopping the server; the caller says so.
    """
    candidates, left_out = [], {}
    for name in list_pretrained():
        try:
            candidates.append(load_served_model(PRETRAINED_PREFIX + name))
        except ZerogradError as err:
            left_out[name] = str(err)
    if not candidates:
        raise ZerogradError("no pretrained model loads in this installation "
                            f"({'; '.join(left_out.values()) or 'none is shipped'}): give a model file")
    return max(candidates, key=lambda m: -1.0 if m.test_accuracy is None else m.test_accuracy), left_out


def load_served_models(specs: Sequence[str]) -> list[ServedModel]:
    """Models to serve, in the order given (the first is the default); none given: the best pretrained one."""
    if not specs:
        return [best_pretrained()[0]]
    models = [load_served_model(str(spec)) for spec in specs]
    names = [m.name for m in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ZerogradError(f"{', '.join(twice)} given more than once: name each model once")
    return models


def _score_gradient(model: Module, x: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """One input (1, ...) -> its class probabilities, the predicted class, and d logit[class] / d x (x's shape)."""
    xt = Tensor(x.copy(), requires_grad=True)
    with enable_grad():  # the caller may be under no_grad(); the saliency map needs the graph
        logits = model(xt)
        probabilities = F.softmax(logits.detach()).data[0]
        label = int(probabilities.argmax())
        logits[0, label].backward()
    return probabilities, label, xt.grad


def predict_digit(model: Module, image: np.ndarray) -> dict[str, Any]:
    """Read one prepared digit (28, 28) in [0, 1] -> label, probabilities (10,), input and saliency (28, 28).

    The saliency map is the gradient of the predicted class's score (its logit) with respect to the
    28x28 input, by zerograd's autograd. The model must be in eval mode; its parameters' .grad
    accumulate unless they are frozen (load_served_model freezes them).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape != (28, 28):
        raise ZerogradError(f"predict_digit takes a prepared (28, 28) digit, got shape {image.shape}")
    probabilities, label, grad = _score_gradient(model, image.reshape(1, 1, 28, 28))
    return {"label": label, "probabilities": probabilities.tolist(), "input": image.tolist(),
            "saliency": grad.reshape(28, 28).tolist()}


def _prepare_upload(data: bytes, info: dict[str, Any], where: str, max_pixels: int) -> np.ndarray:
    """An image file's bytes -> float32 (1, C, H, W) as models.prepare_images makes it, with the server's
    pixel limit (prepare_images decodes with the library's default one)."""
    image = open_image(io.BytesIO(data), where, max_pixels=max_pixels)
    fitted = fit_image(image, int(info["channels"]), (int(info["image_size"][0]), int(info["image_size"][1])),
                       where=where)
    return normalize(fitted[None], info["mean"], info["std"])


def predict_image(served: ServedModel, data: bytes, where: str = "the image",
                  max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """Read one image file's bytes with an "images" model -> what the page shows:

    label (class index), class (its name), classes and probabilities (one per class, in the model's order),
    input (the prepared image with its normalisation undone, in [0, 1]: (H, W, 3) for colour, (H, W) for grey)
    and saliency (H, W): the gradient of the predicted class's logit with respect to the input, its absolute
    value's maximum over the channels (Simonyan, Vedaldi and Zisserman 2014).
    """
    if served.info is None:
        raise ZerogradError(f"{served.name} reads digits: use predict_digit (or predict_bytes)")
    info = served.info
    x = _prepare_upload(data, info, where, max_pixels)
    probabilities, label, grad = _score_gradient(served.model, x)
    mean, std = (np.asarray(info[k], dtype=np.float32).reshape(-1, 1, 1) for k in ("mean", "std"))
    shown = np.clip(x[0] * std + mean, 0, 1)
    shown = shown[0] if served.channels == 1 else shown.transpose(1, 2, 0)
    return {"label": label, "class": served.classes[label], "classes": list(served.classes),
            "probabilities": probabilities.tolist(), "input": np.round(shown, 4).tolist(),
            "saliency": np.abs(grad[0]).max(axis=0).tolist()}


def predict_bytes(served: ServedModel, data: bytes, where: str = "the image",
                  max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """One image file's bytes through any served model: predict_image's fields, for digit models too
    (their input the 28x28 digit prepared like MNIST's, their saliency the signed gradient)."""
    if served.kind == "images":
        return predict_image(served, data, where, max_pixels)
    result = predict_digit(served.model, load_digit_bytes(data, where=where, max_pixels=max_pixels))
    return {**result, "class": served.classes[result["label"]], "classes": list(served.classes)}
