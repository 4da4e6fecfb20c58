"""What the page shows for one digit: the served models, their prediction, and a saliency map.

Nothing here needs FastAPI: the web app (app.py) calls these functions, and so can a script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import functional as F
from ..errors import ZerogradError
from ..models import list_pretrained, load_model
from ..nn import Module
from ..tensor import Tensor, enable_grad, no_grad

__all__ = ["ServedModel", "best_pretrained", "load_served_model", "load_served_models", "predict_digit"]

PRETRAINED_PREFIX = "pretrained:"


@dataclass
class ServedModel:
    """A loaded model ready to read 28x28 digits, with the name the API knows it by."""

    name: str  # "deep-cnn" for pretrained:deep-cnn, else the model file's path as given
    spec: str  # what load_model was given
    model: Module
    arch: str
    test_accuracy: float | None  # None when nothing recorded it

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: name, arch, test_accuracy, label (what the page's selector shows)."""
        acc = "test accuracy unknown" if self.test_accuracy is None else f"test accuracy {self.test_accuracy:.4f}"
        return {"name": self.name, "arch": self.arch, "test_accuracy": self.test_accuracy,
                "label": f"{self.name} ({acc})"}


def _recorded_accuracy(meta: dict[str, Any]) -> float | None:
    """The test accuracy stored with a model (meta["training"]["results"]), None if it has none."""
    training = meta.get("training")
    results = training.get("results") if isinstance(training, dict) else None
    acc = results.get("test_accuracy") if isinstance(results, dict) else None
    return float(acc) if isinstance(acc, (int, float)) and not isinstance(acc, bool) else None


def load_served_model(spec: str) -> ServedModel:
    """Load a model file or "pretrained:NAME" and check that it reads (1, 1, 28, 28) digits into 10 classes."""
    model, meta = load_model(spec)
    name = spec[len(PRETRAINED_PREFIX):] if spec.startswith(PRETRAINED_PREFIX) else spec
    model.eval()
    # Served models are only read, never trained: frozen weights keep the saliency backward to the input.
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with no_grad():
            out = model(Tensor(np.zeros((1, 1, 28, 28), dtype=np.float32)))
    except (ZerogradError, ValueError) as err:
        raise ZerogradError(f"{spec} does not read 28x28 digit images ({err}); serve a model trained on MNIST") from err
    if out.shape != (1, 10):
        raise ZerogradError(f"{spec} gives {out.shape[1:]} outputs per image, not 10 digit classes; "
                            "serve a model trained on MNIST")
    arch = str(meta.get("config", {}).get("arch", "unknown"))
    return ServedModel(name, spec, model, arch, _recorded_accuracy(meta))


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


def predict_digit(model: Module, image: np.ndarray) -> dict[str, Any]:
    """Read one prepared digit (28, 28) in [0, 1] -> label, probabilities (10,), input and saliency (28, 28).

    The saliency map is the gradient of the predicted class's score (its logit) with respect to the
    28x28 input, by zerograd's autograd. The model must be in eval mode; its parameters' .grad
    accumulate unless they are frozen (load_served_model freezes them).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.shape != (28, 28):
        raise ZerogradError(f"predict_digit takes a prepared (28, 28) digit, got shape {image.shape}")
    x = Tensor(image.reshape(1, 1, 28, 28).copy(), requires_grad=True)
    with enable_grad():  # the caller may be under no_grad(); the saliency map needs the graph
        logits = model(x)
        probabilities = F.softmax(logits.detach()).data[0]
        label = int(probabilities.argmax())
        logits[0, label].backward()
    saliency = x.grad.reshape(28, 28)
    return {"label": label, "probabilities": probabilities.tolist(), "input": image.tolist(),
            "saliency": saliency.tolist()}
