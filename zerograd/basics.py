"""The book's chapters 2-3 in plain NumPy: perceptrons, activations, forward propagation, plus losses and preprocessing.

Everything here is a short function on NumPy arrays, so it can be read top to bottom
next to the book. Lists and integer input (pixels, truth tables) become float32; NumPy
float arrays keep their dtype. A 1-D array is one sample; a 2-D array is a batch, one
sample per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike

from zerograd.errors import ShapeError, ZerogradError

__all__ = [
    "Perceptron", "AND", "OR", "NAND", "XOR", "AND_PERCEPTRON", "OR_PERCEPTRON", "NAND_PERCEPTRON",
    "TrainResult", "train_perceptron",
    "step_function", "sigmoid", "relu", "identity_function", "tanh", "softmax", "softmax_naive",
    "output_activation_for", "init_network", "forward", "predict",
    "mean_squared_error", "cross_entropy_error",
    "normalize", "fit_standardize", "standardize", "fit_pca_whitening", "fit_zca_whitening", "whiten",
]

Activation = Callable[[np.ndarray], np.ndarray]


def _as_float(x: ArrayLike) -> np.ndarray:
    """x as an array of any shape: NumPy floats keep their dtype; lists, Python numbers and ints become float32."""
    if isinstance(x, (np.ndarray, np.generic)) and np.issubdtype(x.dtype, np.floating):
        return np.asarray(x)
    return np.asarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------
# Chapter 2: perceptrons
# ---------------------------------------------------------------------------

class Perceptron:
    """A perceptron with weights w (n,) and bias b: outputs 1 when sum(w * x) + b > 0, else 0."""

    def __init__(self, w: ArrayLike, b: float) -> None:
        # np.array copies, so training this perceptron never changes the caller's array.
        w = np.array(w)
        if w.ndim != 1:
            raise ShapeError(f"Perceptron weights must be 1-D (one weight per input), got shape {w.shape}")
        self.w = _as_float(w)
        self.b = self.w.dtype.type(b)

    def weighted_sum(self, x: ArrayLike) -> np.ndarray:
        """sum(w * x) + b for x (..., n); returns shape (...)."""
        x = _as_float(x)
        if x.shape[-1:] != self.w.shape:
            raise ShapeError(f"input of shape {x.shape} does not fit a perceptron with {self.w.size} weights; "
                             f"pass x with shape (..., {self.w.size})")
        return np.sum(self.w * x, axis=-1) + self.b

    def __call__(self, x: ArrayLike) -> np.ndarray:
        """0/1 output for x (..., n); returns int array of shape (...), a scalar for one sample."""
        return np.where(self.weighted_sum(x) > 0, 1, 0)[()]

    def __repr__(self) -> str:
        return f"Perceptron(w={np.array2string(self.w, separator=', ')}, b={float(self.b):.6g})"


# The book's hand-picked weights. Many others work too: any line separating the 1s from the 0s.
AND_PERCEPTRON = Perceptron([0.5, 0.5], -0.7)
NAND_PERCEPTRON = Perceptron([-0.5, -0.5], 0.7)
OR_PERCEPTRON = Perceptron([0.5, 0.5], -0.2)


def _gate(perceptron: Perceptron, x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """Apply a two-input perceptron to x1, x2 of the same (broadcastable) shape (...); returns (...)."""
    try:
        x = np.stack(np.broadcast_arrays(x1, x2), axis=-1)
    except ValueError:
        raise ShapeError(f"x1 and x2 must have the same shape, got {np.shape(x1)} and {np.shape(x2)}") from None
    return perceptron(x)


def AND(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """AND gate for 0/1 inputs of shape (...); returns 0/1 of shape (...)."""
    return _gate(AND_PERCEPTRON, x1, x2)


def NAND(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """NAND gate for 0/1 inputs of shape (...); returns 0/1 of shape (...)."""
    return _gate(NAND_PERCEPTRON, x1, x2)


def OR(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """OR gate for 0/1 inputs of shape (...); returns 0/1 of shape (...)."""
    return _gate(OR_PERCEPTRON, x1, x2)


def XOR(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """XOR gate for 0/1 inputs of shape (...) as a two-layer perceptron; returns 0/1 of shape (...)."""
    # No single line separates XOR's outputs, but stacking perceptrons does.
    return AND(NAND(x1, x2), OR(x1, x2))


@dataclass
class TrainResult:
    """Outcome of train_perceptron: the perceptron, whether it fits every sample, and epochs used."""

    perceptron: Perceptron
    converged: bool
    epochs: int
    mistakes_per_epoch: list[int]


def train_perceptron(X: ArrayLike, t: ArrayLike, lr: float = 0.1, max_epochs: int = 100) -> TrainResult:
    """Learn a perceptron from X (N, n) and 0/1 targets t (N,) with w += lr(t-y)x, b += lr(t-y)."""
    X, t = _as_float(X), np.asarray(t)
    if X.ndim != 2 or t.shape != X.shape[:1]:
        raise ShapeError(f"expected X of shape (N, n) and t of shape (N,), got {X.shape} and {t.shape}")
    if not np.isin(t, (0, 1)).all():
        raise ZerogradError(f"perceptron targets must be 0 or 1, got values {np.unique(t).tolist()}")
    if lr <= 0 or max_epochs < 1:
        raise ZerogradError(f"need lr > 0 and max_epochs >= 1, got lr={lr}, max_epochs={max_epochs}")

    p = Perceptron(np.zeros(X.shape[1], dtype=X.dtype), 0.0)
    mistakes_per_epoch = []
    for epoch in range(1, max_epochs + 1):
        mistakes = 0
        for x_i, t_i in zip(X, t):
            error = int(t_i) - int(p(x_i))
            if error:
                mistakes += 1
                # The step in w's dtype: NumPy 1.x's np.float32 + Python float is float64, which made b float64 while
                # w stayed float32, and a batch (which adds b rounded to float32) could then disagree with training.
                step = p.w.dtype.type(lr * error)
                p.w += step * x_i
                p.b += step
        mistakes_per_epoch.append(mistakes)
        # One clean pass means the current w, b classify every sample correctly.
        if mistakes == 0:
            return TrainResult(p, True, epoch, mistakes_per_epoch)
    # Not linearly separable (XOR) or not enough epochs: report it, the learner decides what to do.
    return TrainResult(p, False, max_epochs, mistakes_per_epoch)


# ---------------------------------------------------------------------------
# Chapter 3: activation functions (all elementwise except softmax)
# ---------------------------------------------------------------------------

def step_function(x: ArrayLike) -> np.ndarray:
    """1 where x > 0 else 0, same shape as x."""
    x = _as_float(x)
    return (x > 0).astype(x.dtype)


def sigmoid(x: ArrayLike) -> np.ndarray:
    """1 / (1 + exp(-x)) elementwise, same shape as x."""
    x = _as_float(x)
    # exp(-x) overflows for x << 0; exp(-|x|) never does, and both branches are the same formula.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def relu(x: ArrayLike) -> np.ndarray:
    """max(0, x) elementwise, same shape as x."""
    return np.maximum(0, _as_float(x))


def identity_function(x: ArrayLike) -> np.ndarray:
    """x unchanged (as a float array), same shape as x: the output layer for regression."""
    return _as_float(x)


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent elementwise, same shape as x."""
    return np.tanh(_as_float(x))


def softmax_naive(x: ArrayLike) -> np.ndarray:
    """exp(x) / sum(exp(x)) along the last axis, written as the formula: overflows for large x. For teaching."""
    x = _as_float(x)
    exp_x = np.exp(x)
    return exp_x / np.sum(exp_x, axis=-1, keepdims=True)


def softmax(x: ArrayLike) -> np.ndarray:
    """Probabilities along the last axis of x (..., C); returns (..., C), each row summing to 1."""
    x = _as_float(x)
    if x.ndim == 0:
        raise ShapeError("softmax needs at least one axis of class scores, got a scalar")
    # Subtracting the row maximum leaves the result unchanged and keeps exp() from overflowing.
    exp_x = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return exp_x / np.sum(exp_x, axis=-1, keepdims=True)


_OUTPUT_ACTIVATIONS: dict[str, Activation] = {
    "regression": identity_function,
    "binary": sigmoid,
    "multiclass": softmax,
}


def output_activation_for(task: str) -> Activation:
    """Output-layer activation for a task: 'regression' -> identity, 'binary' -> sigmoid, 'multiclass' -> softmax."""
    try:
        return _OUTPUT_ACTIVATIONS[task]
    except KeyError:
        raise ZerogradError(f"unknown task {task!r}; choose one of {sorted(_OUTPUT_ACTIVATIONS)}") from None


# ---------------------------------------------------------------------------
# Chapter 3: forward propagation
# ---------------------------------------------------------------------------

def init_network() -> dict[str, np.ndarray]:
    """The book's 3-layer toy network: 2 inputs -> 3 -> 2 -> 2 outputs (W1 (2,3), W2 (3,2), W3 (2,2))."""
    f32 = np.float32
    return {
        "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], dtype=f32),
        "b1": np.array([0.1, 0.2, 0.3], dtype=f32),
        "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], dtype=f32),
        "b2": np.array([0.1, 0.2], dtype=f32),
        "W3": np.array([[0.1, 0.3], [0.2, 0.4]], dtype=f32),
        "b3": np.array([0.1, 0.2], dtype=f32),
    }


def _num_layers(network: dict[str, np.ndarray]) -> int:
    """Number of layers in a dict holding exactly W1, b1, ..., Wn, bn."""
    n = 0
    while f"W{n + 1}" in network:
        n += 1
    expected = {f"{kind}{i}" for i in range(1, max(n, 1) + 1) for kind in "Wb"}
    if set(network) != expected:
        missing, unexpected = sorted(expected - set(network)), sorted(set(network) - expected)
        raise ZerogradError(f"a network is a dict with keys W1, b1, W2, b2, ... without gaps; got {sorted(network)} "
                            f"(missing {missing}, unexpected {unexpected})")
    return n


def forward(network: dict[str, np.ndarray], x: ArrayLike,
            hidden_activation: Activation = sigmoid,
            output_activation: Activation = identity_function) -> np.ndarray:
    """Run x (n_in,) or (N, n_in) through every layer as activation(x @ W + b); returns (n_out,) or (N, n_out)."""
    n_layers = _num_layers(network)
    a = _as_float(x)
    for i in range(1, n_layers + 1):
        W, b = network[f"W{i}"], network[f"b{i}"]
        if a.shape[-1:] != W.shape[:1]:
            source = "x" if i == 1 else f"the output of layer {i - 1}"
            raise ShapeError(f"{source} has shape {a.shape} but W{i} has shape {W.shape}; "
                             f"its last axis must have size {W.shape[0]} to multiply")
        a = a @ W + b
        a = output_activation(a) if i == n_layers else hidden_activation(a)
    return a


def predict(network: dict[str, np.ndarray], x: ArrayLike) -> np.ndarray:
    """The book's MNIST network: sigmoid hidden layers, softmax output; x (784,) or (N, 784) -> (10,) or (N, 10)."""
    return forward(network, x, hidden_activation=sigmoid, output_activation=softmax)


# ---------------------------------------------------------------------------
# Chapter 4: loss functions, averaged over a mini-batch
# ---------------------------------------------------------------------------

def _batch_with_one_hot(y: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """y as (N, C) and t as one-hot (N, C), from one-hot t like y or integer labels (N,)."""
    y, t = _as_float(y), np.asarray(t)
    if y.ndim == 1:  # one sample is a batch of one
        y = y.reshape(1, -1)
        t = t.reshape(1, -1) if t.ndim == 1 else t.reshape(1)
    if y.ndim != 2:
        raise ShapeError(f"y must be (C,) or (N, C), got shape {y.shape}")
    if t.shape == y.shape:
        return y, t
    n, c = y.shape
    if t.shape == (n,) and np.issubdtype(t.dtype, np.integer):
        if t.size and (t.min() < 0 or t.max() >= c):
            raise ZerogradError(f"labels must lie in 0..{c - 1} for {c} classes, got {t.min()}..{t.max()}")
        return y, np.eye(c, dtype=y.dtype)[t]
    raise ShapeError(f"t must be one-hot with the shape of y {y.shape} or integer labels of shape ({n},), "
                     f"got {t.dtype} array of shape {t.shape}")


def mean_squared_error(y: ArrayLike, t: ArrayLike) -> float:
    """0.5 * sum((y - t)^2) per sample, averaged over the batch; y (C,) or (N, C), t one-hot or labels."""
    y, t = _batch_with_one_hot(y, t)
    return float(0.5 * np.sum((y - t) ** 2) / y.shape[0])


def cross_entropy_error(y: ArrayLike, t: ArrayLike, delta: float = 1e-7) -> float:
    """-sum(t * log(y + delta)) per sample, averaged over the batch; y (C,) or (N, C), t one-hot or labels."""
    y, t = _batch_with_one_hot(y, t)
    # delta keeps log(0) = -inf out when the network gives the true class probability 0.
    return float(-np.sum(t * np.log(y + delta)) / y.shape[0])


# ---------------------------------------------------------------------------
# Preprocessing: fit statistics on training data only, then apply them to any data
# ---------------------------------------------------------------------------

def normalize(x: ArrayLike, max_value: float = 255.0) -> np.ndarray:
    """Scale x from 0..max_value to 0..1 (uint8 pixels become float32), same shape as x."""
    return _as_float(x) / max_value


def _check_training_data(train: ArrayLike) -> np.ndarray:
    """train as a float (N, D) array with N >= 2."""
    train = _as_float(train)
    if train.ndim != 2 or train.shape[0] < 2:
        raise ShapeError(f"training data must be (N, D) with N >= 2 samples, got shape {train.shape}; "
                         "flatten images first, e.g. x.reshape(len(x), -1)")
    return train


def fit_standardize(train: ArrayLike, eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean (D,) and standard deviation (D,) of train (N, D), for standardize()."""
    train = _check_training_data(train)
    mean, std = train.mean(axis=0), train.std(axis=0)
    # Pixels that never vary in training (MNIST's border) are only centred: dividing by ~0 would
    # turn one stray bright pixel in a test image into a huge value.
    std = np.where(std < eps, 1, std).astype(train.dtype)
    return mean, std


def standardize(x: ArrayLike, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std with training statistics from fit_standardize; x (..., D) -> (..., D)."""
    x = _as_float(x)
    if x.shape[-1:] != np.shape(mean):
        raise ShapeError(f"x of shape {x.shape} does not match statistics of shape {np.shape(mean)}; "
                         "fit and apply on data with the same number of features")
    return (x - mean) / std


def _eigen_covariance(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (D,), eigenvalues (D,) in decreasing order, and eigenvectors (D, D) as columns, of train's covariance."""
    # Eigendecomposition is sensitive to rounding, so fit in float64 whatever the data's dtype.
    data = train.astype(np.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    cov = centred.T @ centred / len(data)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    # Constant features (MNIST's border) give zero variance, which rounding can make slightly negative.
    eigenvalues = np.maximum(eigenvalues, 0)
    order = np.argsort(eigenvalues)[::-1]
    return mean, eigenvalues[order], eigenvectors[:, order]


def fit_pca_whitening(train: ArrayLike, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and PCA whitening matrix W (D, D) of train (N, D): principal axes scaled to unit variance."""
    train = _check_training_data(train)
    mean, eigenvalues, eigenvectors = _eigen_covariance(train)
    # eps stops near-zero-variance directions (noise) from being blown up to unit variance.
    W = eigenvectors / np.sqrt(eigenvalues + eps)
    return mean.astype(train.dtype), W.astype(train.dtype)


def fit_zca_whitening(train: ArrayLike, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and ZCA whitening matrix W (D, D) of train (N, D): PCA whitening rotated back, close to the input."""
    train = _check_training_data(train)
    mean, eigenvalues, eigenvectors = _eigen_covariance(train)
    W = (eigenvectors / np.sqrt(eigenvalues + eps)) @ eigenvectors.T
    # Symmetric in exact arithmetic; average with the transpose so rounding doesn't break it.
    W = (W + W.T) / 2
    return mean.astype(train.dtype), W.astype(train.dtype)


def whiten(x: ArrayLike, mean: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(x - mean) @ W with mean and W from fit_pca_whitening or fit_zca_whitening; x (..., D) -> (..., D)."""
    x = _as_float(x)
    if x.shape[-1:] != np.shape(mean):
        raise ShapeError(f"x of shape {x.shape} does not match a whitening fit on {np.shape(mean)} features; "
                         "fit and apply on data with the same number of features")
    return (x - mean) @ W
