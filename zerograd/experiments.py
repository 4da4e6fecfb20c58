"""The book's chapter-6 experiments as functions that return their data (figures: zerograd.plots).

    optimizer_paths        6.1  SGD, Momentum, AdaGrad and Adam on f(x, y) = x**2 / 20 + y**2
    activation_histograms  6.2  hidden-layer activations for different weight scales
    batchnorm_comparison   6.3  training accuracy with and without batch normalisation
    overfitting            6.4  300 training images: overfitting, weight decay, dropout
    random_search          6.5  random search over learning rate and weight decay

The training experiments use the book's settings (MNIST subsets, plain SGD, batches of 100,
He-initialised ReLU networks) and, like the book, measure accuracy on whole sets in evaluation
mode after every epoch. Everything random comes from the `seed` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import functional as F
from . import nn, optim
from .datasets import DataLoader, TensorDataset, load_mnist
from .errors import ZerogradError
from .models import ACTIVATIONS, MLP
from .tensor import Tensor, no_grad
from .training import predict_logits

OptimizerFactory = Callable[[list[Tensor]], optim.Optimizer]

# The book's optimizer_compare_naive.py: learning rates tuned for this surface, 30 updates each.
# AdaGrad's eps is the book's 1e-7 (PyTorch's default is 1e-10).
BOOK_OPTIMIZERS: dict[str, OptimizerFactory] = {
    "SGD": lambda params: optim.SGD(params, lr=0.95),
    "Momentum": lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
    "AdaGrad": lambda params: optim.AdaGrad(params, lr=1.5, eps=1e-7),
    "Adam": lambda params: optim.Adam(params, lr=0.3),
}

# The book's weight scales for the batch-norm figure (6-19): 16 values from 1 down to 1e-4.
BOOK_WEIGHT_SCALES: tuple[float, ...] = tuple(float(s) for s in np.logspace(0, -4, num=16))


def optimizer_objective(x: Any, y: Any) -> Any:
    """The book's f(x, y) = x**2 / 20 + y**2 on arrays or Tensors of any (matching) shape."""
    return x * x / 20.0 + y * y


def optimizer_paths(
    steps: int = 30,
    start: tuple[float, float] = (-7.0, 2.0),
    optimizers: Mapping[str, OptimizerFactory] | None = None,
) -> dict[str, np.ndarray]:
    """Path (steps + 1, 2) of (x, y) from `start` for each optimizer minimising x**2/20 + y**2.

    `optimizers` maps a name to a function making an optimizer from a parameter list, e.g.
    {"Nesterov": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)}; the default is
    the book's four (BOOK_OPTIMIZERS). Row 0 is the start, row i the position after i updates.
    """
    if steps < 0:
        raise ZerogradError(f"optimizer_paths needs steps >= 0, got {steps}")
    factories = BOOK_OPTIMIZERS if optimizers is None else optimizers
    paths: dict[str, np.ndarray] = {}
    for name, make in factories.items():
        # float64: the book computes this two-number toy in Python floats
        point = Tensor(np.array(start, dtype=np.float64), requires_grad=True)
        optimizer = make([point])
        path = np.empty((steps + 1, 2))
        path[0] = point.data
        for i in range(1, steps + 1):
            optimizer.zero_grad()
            optimizer_objective(point[0], point[1]).backward()
            optimizer.step()
            path[i] = point.data
        paths[name] = path
    return paths


def activation_histograms(
    weight_std: str | float = "xavier",
    activation: str = "sigmoid",
    layers: int = 5,
    nodes: int = 100,
    samples: int = 1000,
    seed: int = 0,
) -> list[np.ndarray]:
    """Activations (samples, nodes) of each of `layers` bias-free layers fed standard-normal input.

    The book's weight_init_activation_histogram.py: weight_std is "xavier" (1/sqrt(nodes)), "he"
    (sqrt(2/nodes)) or a float standard deviation; activation is "sigmoid", "relu", "tanh" or
    "leaky_relu".
    """
    if activation not in ACTIVATIONS:
        raise ZerogradError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if layers < 1 or nodes < 1 or samples < 1:
        raise ZerogradError(
            f"activation_histograms needs layers, nodes and samples >= 1, got {layers}, {nodes}, {samples}"
        )
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((samples, nodes), dtype=np.float32))
    act = ACTIVATIONS[activation]()
    outputs: list[np.ndarray] = []
    with no_grad():
        for _ in range(layers):
            layer = nn.Linear(nodes, nodes, bias=False, generator=rng, init=weight_std)
            x = act(layer(x))
            outputs.append(x.data)
    return outputs


# --- training experiments ------------------------------------------------------------------------
def _book_sgd(model: nn.Module, lr: float, weight_decay: float) -> optim.SGD:
    """SGD with L2 weight decay on the Linear weights only, as the book's loss 0.5 * lambda * sum(W**2)."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    decayed = {id(w) for w in weights}
    others = [p for p in model.parameters() if id(p) not in decayed]
    groups: list[dict[str, Any]] = [{"params": weights, "weight_decay": weight_decay}]
    if others:  # biases and batch-norm scales stay free, as in the book
        groups.append({"params": others, "weight_decay": 0.0})
    return optim.SGD(groups, lr=lr)


def _accuracy(model: nn.Module, x: np.ndarray, t: np.ndarray) -> float:
    """Fraction of rows of x (N, 784) whose predicted class is t (N,), in evaluation mode."""
    with np.errstate(over="ignore", invalid="ignore"):
        predicted = predict_logits(model, x).argmax(axis=1)
    return float((predicted == t).mean())


def _train(
    model: nn.Module,
    optimizer: optim.Optimizer,
    data: tuple[np.ndarray, np.ndarray],
    watch: Mapping[str, tuple[np.ndarray, np.ndarray]],
    epochs: int,
    batch_size: int,
    seed: int,
) -> dict[str, list[float]]:
    """Trains for `epochs` and returns, for each set in `watch`, its accuracy after every epoch."""
    loader = DataLoader(TensorDataset(*data), batch_size=batch_size, shuffle=True, seed=seed)
    curves: dict[str, list[float]] = {name: [] for name in watch}
    # Poor weight scales are meant to blow up in these experiments (the curves show it, stuck at
    # chance), so overflow and NaN must neither stop the run nor flood the user with warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(epochs):
            model.train()
            for x, t in loader:
                loss = F.cross_entropy(model(Tensor(x)), t)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            for name, (x, t) in watch.items():
                curves[name].append(_accuracy(model, x, t))
    return curves


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ZerogradError(f"{name} must be >= 1, got {value}")


def overfitting(
    weight_decay: float = 0.0,
    dropout: float = 0.0,
    train_size: int = 300,
    epochs: int = 201,
    seed: int = 0,
    *,
    test_size: int | None = None,
    hidden: Sequence[int] = (100,) * 6,
    lr: float = 0.01,
    batch_size: int = 100,
) -> dict[str, list[float]]:
    """{"train": [...], "test": [...]}: accuracies after each of `epochs` epochs on a small training set.

    The book's overfit_weight_decay.py / overfit_dropout.py: the first `train_size` MNIST training
    images, a ReLU network with hidden layers `hidden` (six of 100), SGD lr 0.01, batches of 100.
    `weight_decay` is the book's lambda (loss + 0.5 * lambda * sum(W**2), weights only); `dropout`
    the probability of dropping a hidden unit. Test accuracy is measured on all 10,000 test images,
    or, with `test_size`, on that many evenly spaced ones (2,000, every fifth image, halves the
    run time and moves the test curve by about 1%).
    """
    _check_positive(train_size=train_size, epochs=epochs, batch_size=batch_size)
    (x_train, t_train), (x_test, t_test) = load_mnist()
    x_train, t_train = x_train[:train_size], t_train[:train_size]
    if test_size is not None and test_size < len(x_test):
        _check_positive(test_size=test_size)
        # evenly spaced, not the first ones: MNIST's test set is unshuffled and its first part is harder
        keep = np.linspace(0, len(x_test), test_size, endpoint=False).astype(np.int64)
        x_test, t_test = x_test[keep], t_test[keep]
    model = MLP(784, hidden, 10, activation="relu", dropout=dropout, seed=seed)
    optimizer = _book_sgd(model, lr, weight_decay)
    watch = {"train": (x_train, t_train), "test": (x_test, t_test)}
    return _train(model, optimizer, (x_train, t_train), watch, epochs, batch_size, seed)


def batchnorm_comparison(
    weight_std: str | float = 0.01,
    train_size: int = 1000,
    epochs: int = 20,
    seed: int = 0,
    *,
    hidden: Sequence[int] = (100,) * 5,
    lr: float = 0.01,
    batch_size: int = 100,
) -> dict[str, list[float]]:
    """{"batchnorm": [...], "no_batchnorm": [...]}: training accuracy after each epoch, same init scale.

    The book's batch_norm_test.py: the first `train_size` MNIST training images, ReLU networks with
    hidden layers `hidden` (five of 100) whose weights are drawn with std `weight_std` (a float, or
    "he"/"xavier"), one with batch normalisation before each activation and one without; both see
    the same batches, SGD lr 0.01. Loop over BOOK_WEIGHT_SCALES for the book's 16-panel figure.
    """
    _check_positive(train_size=train_size, epochs=epochs, batch_size=batch_size)
    (x_train, t_train), _ = load_mnist()
    data = (x_train[:train_size], t_train[:train_size])
    curves: dict[str, list[float]] = {}
    for name, batchnorm in (("batchnorm", True), ("no_batchnorm", False)):
        # the same seed gives both networks the same weights and the same batches
        model = MLP(784, hidden, 10, activation="relu", batchnorm=batchnorm, init=weight_std, seed=seed)
        optimizer = _book_sgd(model, lr, 0.0)
        curves[name] = _train(model, optimizer, data, {"train": data}, epochs, batch_size, seed)["train"]
    return curves


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], name: str) -> float:
    low, high = bounds
    if not 0 < low <= high:
        raise ZerogradError(f"{name} must be (low, high) with 0 < low <= high, got {bounds}")
    return float(10 ** rng.uniform(math.log10(low), math.log10(high)))


def random_search(
    trials: int = 100,
    train_size: int = 500,
    epochs: int = 50,
    lr_range: tuple[float, float] = (1e-6, 1e-2),
    weight_decay_range: tuple[float, float] = (1e-8, 1e-4),
    seed: int = 0,
    *,
    validation_fraction: float = 0.2,
    hidden: Sequence[int] = (100,) * 6,
    batch_size: int = 100,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Trials sorted by final validation accuracy, best first; each a dict of its settings and curves.

    The book's hyperparameter_optimization.py: the first `train_size` MNIST training images,
    shuffled, `validation_fraction` of them held out (the test set is never looked at), then
    `trials` runs of a ReLU network (`hidden`: six layers of 100) trained with SGD for `epochs`,
    lr and weight decay drawn log-uniformly from their ranges. A trial is {"trial": i, "seed" (of
    its weights and batches), "lr", "weight_decay", "val_accuracy", "train_accuracy" (final),
    "val_accuracies", "train_accuracies" (per epoch)}. `on_trial` is called with each trial as it
    finishes (e.g. to report progress: the library itself stays quiet).
    """
    _check_positive(train_size=train_size, epochs=epochs, batch_size=batch_size)
    if trials < 0:
        raise ZerogradError(f"random_search needs trials >= 0, got {trials}")
    (x, t), _ = load_mnist()
    x, t = x[:train_size], t[:train_size]
    n_val = int(len(x) * validation_fraction)
    if not 1 <= n_val < len(x):
        raise ZerogradError(
            f"validation_fraction {validation_fraction} of {len(x)} images leaves {n_val} for validation "
            f"and {len(x) - n_val} for training: both need at least one"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, t = x[order], t[order]
    val, train = (x[:n_val], t[:n_val]), (x[n_val:], t[n_val:])
    results: list[dict[str, Any]] = []
    for i in range(trials):
        weight_decay = _log_uniform(rng, weight_decay_range, "weight_decay_range")
        lr = _log_uniform(rng, lr_range, "lr_range")
        trial_seed = int(rng.integers(2**31))
        model = MLP(784, hidden, 10, activation="relu", seed=trial_seed)
        curves = _train(model, _book_sgd(model, lr, weight_decay), train, {"train": train, "val": val},
                        epochs, batch_size, trial_seed)
        result = {
            "trial": i, "seed": trial_seed, "lr": lr, "weight_decay": weight_decay,
            "val_accuracy": curves["val"][-1], "train_accuracy": curves["train"][-1],
            "val_accuracies": curves["val"], "train_accuracies": curves["train"],
        }
        results.append(result)
        if on_trial is not None:
            on_trial(result)
    # a stable sort: equal accuracies keep the order in which they were drawn
    return sorted(results, key=lambda r: r["val_accuracy"], reverse=True)
