"""Multi-layer perceptrons: the MLPs of the book's chapters 3-6 and its TwoLayerNet of chapters 4-5."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ZerogradError
from ..nn.module import fused_run
from ..numerical import numerical_gradient
from ..tensor import Tensor, no_grad

__all__ = ["ACTIVATIONS", "MLP", "TwoLayerNet"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


class MLP(nn.Sequential):
    """Multi-layer perceptron (N, input_size) -> logits (N, num_classes).

    Each hidden layer is Linear -> [BatchNorm1d] -> activation -> [Dropout]. `init` "auto" picks
    He initialisation for ReLU-like activations and Xavier for sigmoid/tanh, as chapter 6 advises.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden: Sequence[int] = (100, 100),
        num_classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        init: str | float = "auto",
        seed: int | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ZerogradError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if init == "auto":
            init = "he" if activation in ("relu", "leaky_relu") else "xavier"
        rng = None if seed is None else np.random.default_rng(seed)  # None: the default generator
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [input_size, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers.append(nn.Linear(fan_in, fan_out, generator=rng, init=init))
            if batchnorm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout, generator=rng))
        layers.append(nn.Linear(sizes[-1], num_classes, generator=rng, init=init))
        super().__init__(*layers)
        self.config = {
            "arch": "mlp", "input_size": input_size, "hidden": list(hidden), "num_classes": num_classes,
            "activation": activation, "dropout": dropout, "batchnorm": batchnorm, "init": init,
        }


class TwoLayerNet(nn.Module):
    """The book's two-layer network of chapters 4-5: input -> hidden -> output, trained on logits.

    `numerical_gradient(x, t)` (chapter 4) and `gradient(x, t)` (chapter 5, backprop) return the
    gradients of the same loss as dicts keyed by parameter name, so the two can be compared.
    """

    def __init__(
        self, input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
        activation: str = "relu", weight_init_std: float | str = 0.01, seed: int | None = None,
    ) -> None:
        super().__init__()
        rng = None if seed is None else np.random.default_rng(seed)  # None: the default generator
        self.fc1 = nn.Linear(input_size, hidden_size, generator=rng, init=weight_init_std)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden_size, output_size, generator=rng, init=weight_init_std)
        self.config = {
            "arch": "two-layer", "input_size": input_size, "hidden_size": hidden_size,
            "output_size": output_size, "activation": activation, "weight_init_std": weight_init_std,
        }

    def forward(self, x: Tensor) -> Tensor:
        """(N, input_size), or images (N, C, H, W) flattened first -> logits (N, output_size)."""
        if x.ndim > 2:
            x = x.reshape(len(x), -1)
        if run := fused_run([self.fc1, self.act]):  # with a ReLU: one node, the same numbers (as in nn.Sequential)
            method, _ = run
            h = method(x, self.act)
        else:
            h = self.act(self.fc1(x))
        return self.fc2(h)

    def loss(self, x: Any, t: Any) -> Tensor:
        """Mean cross-entropy of softmax(forward(x)) against labels or one-hot t."""
        return F.cross_entropy(self(Tensor(x) if not isinstance(x, Tensor) else x), t)

    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of rows whose largest logit is the label."""
        with no_grad():
            y = self(Tensor(x)).data.argmax(axis=1)
        t = np.asarray(t)
        return float((y == (t.argmax(axis=1) if t.ndim == 2 else t)).mean())

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) by central differences (slow: two forward passes per weight)."""
        with no_grad():
            return {
                name: numerical_gradient(lambda _: self.loss(x, t).item(), p.data)
                for name, p in self.named_parameters()
            }

    def gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) by backpropagation."""
        self.zero_grad()
        self.loss(x, t).backward()
        return {name: p.grad for name, p in self.named_parameters()}
