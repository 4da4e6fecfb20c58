"""Loss functions, each reducing to the mean over the mini-batch as the book and PyTorch do."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ..tensor import Function, Tensor
from .activation import _log_softmax, _sigmoid
from .math import as_tensor, mean


def _target_array(target: Any) -> np.ndarray:
    return target.data if isinstance(target, Tensor) else np.asarray(target)


def _same_shape(name: str, input: Any, target: Any) -> tuple[Tensor, np.ndarray]:
    """input as a Tensor and target as an array of the same shape (no silent broadcasting)."""
    input, target = as_tensor(input), _target_array(target)
    if target.shape != input.shape:
        raise ShapeError(f"{name}: input {input.shape} and target {target.shape} differ: reshape one of them")
    return input, target


def mse_loss(input: Tensor, target: Any) -> Tensor:
    """Mean of (input - target)**2 over all elements, as torch's mse_loss; shapes must match."""
    input, target = _same_shape("mse_loss", input, target)
    diff = input - as_tensor(target.astype(input.dtype, copy=False))
    return mean(diff * diff)


class CrossEntropy(Function):
    """Softmax and cross-entropy fused: the gradient is simply (softmax - target) / N."""

    def forward(self, logits, target):
        if logits.ndim != 2:
            raise ShapeError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}: flatten them first")
        n = logits.shape[0]
        logp = _log_softmax(logits, axis=1)
        if target.ndim == 1 and target.dtype.kind in "iu":
            if target.shape[0] != n:
                raise ShapeError(f"cross_entropy: {n} rows of logits but {target.shape[0]} labels")
            if n and (target.min() < 0 or target.max() >= logits.shape[1]):
                raise ShapeError(
                    f"cross_entropy: labels must lie in 0..{logits.shape[1] - 1}, got {target.min()}..{target.max()}"
                )
            self.labels = target
            loss = -logp[np.arange(n), target].mean()
        elif target.shape == logits.shape:
            self.labels = None
            self.onehot = target.astype(logits.dtype, copy=False)
            loss = -(self.onehot * logp).sum() / n
        else:
            raise ShapeError(
                f"cross_entropy: target of shape {target.shape} fits neither integer labels ({n},) "
                f"nor one-hot/probabilities {logits.shape}"
            )
        self.logp = logp
        return np.asarray(loss, dtype=logits.dtype)

    def backward(self, g):
        grad = np.exp(self.logp)
        n = grad.shape[0]
        if self.labels is not None:
            grad[np.arange(n), self.labels] -= 1
        else:
            # d/dx of -sum(t log softmax(x)) is softmax(x) * sum(t) - t; sum(t) is 1 for one-hot rows
            grad = grad * self.onehot.sum(axis=1, keepdims=True) - self.onehot
        grad *= g / n
        return grad


def cross_entropy(input: Tensor, target: Any) -> Tensor:
    """Mean cross-entropy of logits (N, C) against labels (N,) or one-hot/probabilities (N, C)."""
    return CrossEntropy.apply(as_tensor(input), target=_target_array(target))


class NLLLoss(Function):
    def forward(self, logp, target):
        if target.shape != logp.shape[:1] or (len(target) and (target.min() < 0 or target.max() >= logp.shape[1])):
            raise ShapeError(f"nll_loss: needs labels (N,) in 0..{logp.shape[1] - 1} for input {logp.shape}")
        self.shape, self.labels = logp.shape, target
        return np.asarray(-logp[np.arange(len(target)), target].mean(), dtype=logp.dtype)

    def backward(self, g):
        grad = np.zeros(self.shape, dtype=g.dtype)
        grad[np.arange(len(self.labels)), self.labels] = -g / len(self.labels)
        return grad


def nll_loss(input: Tensor, target: Any) -> Tensor:
    """Mean negative log-likelihood of log-probabilities (N, C) at integer labels (N,)."""
    return NLLLoss.apply(as_tensor(input), target=_target_array(target).astype(np.int64))


class BinaryCrossEntropy(Function):
    """-mean(t log p + (1 - t) log(1 - p)) on probabilities p, logs clamped at -100 as in PyTorch."""

    def forward(self, p, target):
        self.p, self.t = p, target.astype(p.dtype, copy=False)
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p), -100)
            log_1p = np.maximum(np.log(1 - p), -100)
        return np.asarray(-(self.t * log_p + (1 - self.t) * log_1p).mean(), dtype=p.dtype)

    def backward(self, g):
        p, eps = self.p, 1e-12
        return g * (p - self.t) / np.maximum(p * (1 - p), eps) / p.size


def binary_cross_entropy(input: Tensor, target: Any) -> Tensor:
    """Mean binary cross-entropy of probabilities in (0, 1) against targets in [0, 1], same shape."""
    input, target = _same_shape("binary_cross_entropy", input, target)
    return BinaryCrossEntropy.apply(input, target=target)


def binary_cross_entropy_with_logits(input: Tensor, target: Any) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target) computed stably from logits."""
    input, target = _same_shape("binary_cross_entropy_with_logits", input, target)
    return BinaryCrossEntropyWithLogits.apply(input, target=target)


class BinaryCrossEntropyWithLogits(Function):
    def forward(self, x, target):
        self.x, self.t = x, target.astype(x.dtype, copy=False)
        # log(1 + exp(-|x|)) + max(x, 0) - x t: no overflow for any x
        loss = np.maximum(x, 0) - x * self.t + np.log1p(np.exp(-np.abs(x)))
        return np.asarray(loss.mean(), dtype=x.dtype)

    def backward(self, g):
        return g * (_sigmoid(self.x) - self.t) / self.x.size
