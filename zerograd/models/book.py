"""The book's own networks and trained weights: its chapter-3 MLP and the arrays of its weight pickles.

The book stores a Linear layer's W as (in, out) and multiplies x @ W; nn.Linear keeps weight (out, in).
Each loader here turns the book's W1.., b1.. arrays into a model's state dict.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import nn
from ..errors import ModelFileError, ZerogradError
from .cnn import DeepConvNet, SimpleConvNet
from .mlp import MLP

__all__ = ["BOOK_ARCHS", "book_ch3", "book_model", "load_book_ch3_weights", "load_book_deep_cnn",
           "load_book_simple_cnn"]


def book_ch3() -> MLP:
    """The book's chapter-3 network: 784 -> 50 -> 100 -> 10, sigmoid hidden layers."""
    model = MLP(784, (50, 100), 10, activation="sigmoid")
    model.config = {"arch": "book-ch3"}
    return model


def load_book_ch3_weights(model: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Loads the book's W1..W3 (in, out) and b1..b3 into `model` (a book_ch3 network)."""
    missing = [k for k in ("W1", "b1", "W2", "b2", "W3", "b3") if k not in arrays]
    if missing:
        raise ModelFileError(f"the book's chapter-3 weights need W1, b1, W2, b2, W3, b3; missing {', '.join(missing)}")
    state = model.state_dict()
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for i, name in enumerate(linears, start=1):
        # the book multiplies x @ W with W (in, out); nn.Linear keeps weight (out, in)
        state[f"{name}.weight"] = np.asarray(arrays[f"W{i}"], dtype=np.float32).T
        state[f"{name}.bias"] = np.asarray(arrays[f"b{i}"], dtype=np.float32)
    model.load_state_dict(state)
    return model


def _book_arrays(arrays: dict[str, np.ndarray], count: int, what: str) -> None:
    names = [f"{p}{i}" for i in range(1, count + 1) for p in ("W", "b")]
    missing = [k for k in names if k not in arrays]
    if missing:
        raise ModelFileError(f"the book's {what} weights need {', '.join(names)}; missing {', '.join(missing)}: "
                             "is this the right --arch?")


def _load_book_layers(model: nn.Module, arrays: dict[str, np.ndarray], what: str,
                      scale: dict[str, float] | None = None) -> nn.Module:
    """Loads the book's W1.., b1.. into model's Conv2d and Linear layers in order (Linear W is (in, out))."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    _book_arrays(arrays, len(layers), what)
    state = model.state_dict()
    for i, (name, layer) in enumerate(layers, start=1):
        w, b = np.asarray(arrays[f"W{i}"]), np.asarray(arrays[f"b{i}"])
        w = w.T if isinstance(layer, nn.Linear) else w
        factor = (scale or {}).get(f"W{i}", 1.0)
        if tuple(w.shape) != tuple(layer.weight.shape) or b.shape != (w.shape[0],):
            raise ModelFileError(f"the book's {what} W{i} {np.shape(arrays[f'W{i}'])} / b{i} {b.shape} do not fit "
                                 f"layer {name} (weight {layer.weight.shape}): is this the right --arch?")
        state[f"{name}.weight"] = (w * factor).astype(np.float32)
        state[f"{name}.bias"] = (b * (scale or {}).get(f"b{i}", 1.0)).astype(np.float32)
    model.load_state_dict(state)
    return model


def load_book_simple_cnn(model: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Loads the book's chapter-7 params.pkl (W1 conv (30,1,5,5), W2 (4320,100), W3 (100,10)) into a SimpleConvNet."""
    return _load_book_layers(model, arrays, "SimpleConvNet")


def load_book_deep_cnn(model: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Loads the book's chapter-8 deep_convnet_params.pkl (W1..W6 conv, W7 (1024,50), W8 (50,10)) into a DeepConvNet.

    The book's dropout multiplies by 1 - 0.5 at inference, after the hidden layer and after the output;
    ours is the identity at inference, so those factors are folded into the last layer:
    W8 * 0.5 * 0.5 and b8 * 0.5 (powers of two: the scaling itself is exact).
    """
    return _load_book_layers(model, arrays, "DeepConvNet", scale={"W8": 0.25, "b8": 0.5})


BOOK_ARCHS: dict[str, tuple[Callable[[], nn.Module], Callable[..., nn.Module]]] = {
    "book-ch3": (book_ch3, load_book_ch3_weights),
    "simple-cnn": (SimpleConvNet, load_book_simple_cnn),
    "deep-cnn": (DeepConvNet, load_book_deep_cnn),
}


def book_model(name: str, arrays: dict[str, np.ndarray]) -> nn.Module:
    """One of the book's networks (book-ch3, simple-cnn, deep-cnn) with the book's `arrays` loaded, in eval mode."""
    if name not in BOOK_ARCHS:
        raise ZerogradError(f"unknown network {name!r}: known are {', '.join(BOOK_ARCHS)}")
    build, load = BOOK_ARCHS[name]
    model = load(build(), arrays)
    model.eval()
    return model
