"""Loss functions: the mean over the mini-batch by default, as the book and PyTorch do.

Each takes PyTorch's `reduction=`: "mean" (default), "sum", or "none" (one loss per sample, or per
element for the elementwise losses).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError, ZerogradError
from ..tensor import Function, Tensor
from .activation import _sigmoid
from .math import as_tensor, mean


def _target_array(target: Any) -> np.ndarray:
    return target.data if isinstance(target, Tensor) else np.asarray(target)


_REDUCTIONS = ("mean", "sum", "none")
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by itemsize: labels viewed as unsigned


def _check_reduction(name: str, reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ZerogradError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return losses
    total = np.add.reduce(losses, axis=None)  # ndarray.mean() costs several microseconds more: once per step
    return np.asarray(total / losses.size if reduction == "mean" else total, dtype=losses.dtype)


def _scale(grad: np.ndarray, g: np.ndarray, reduction: str, count: int) -> np.ndarray:
    """The upstream gradient of a reduction applied to per-element gradients `grad`."""
    if reduction == "none":
        return grad * g.reshape(g.shape + (1,) * (grad.ndim - g.ndim))
    return grad * (g / count if reduction == "mean" else g)


def _same_shape(name: str, input: Any, target: Any) -> tuple[Tensor, np.ndarray]:
    """input as a Tensor and target as an array of the same shape (no silent broadcasting)."""
    input, target = as_tensor(input), _target_array(target)
    if target.shape != input.shape:
        raise ShapeError(f"{name}: input {input.shape} and target {target.shape} differ: reshape one of them")
    return input, target


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean of (input - target)**2 over all elements, as torch's mse_loss; shapes must match."""
    _check_reduction("mse_loss", reduction)
    input, target = _same_shape("mse_loss", input, target)
    diff = input - as_tensor(target.astype(input.dtype, copy=False))
    squared = diff * diff
    return mean(squared) if reduction == "mean" else squared.sum() if reduction == "sum" else squared


class CrossEntropy(Function):
    """Softmax and cross-entropy fused: the gradient is simply (softmax - target) / N.

    Forward keeps the softmax itself (not the log-probabilities), so backward is one scaled copy and
    one indexed subtraction: no second exp, no extra passes over the logits. The work is done class by
    class, on the logits transposed to (C, N): NumPy reduces short rows (the book's 10 classes) one row
    at a time, so the row maximum and sum of a (100, 10) batch take 3-7x longer than the same reductions
    across the rows of its (10, 100) transpose. The gradient goes back as the transpose of that (C, N)
    array: an (N, C) view, which the products of the layer below take as it is.
    """

    def forward(self, logits, target, reduction="mean"):
        if logits.ndim != 2:
            raise ShapeError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}: flatten them first")
        n, c = logits.shape
        # the ufuncs' own reduce: ndarray.max/.sum add a Python layer, microseconds on every step
        shifted = logits.T.copy()  # (C, N): a copy, this function's own array (changed in place below)
        shifted -= np.maximum.reduce(shifted, axis=0)  # minus each column's (sample's) maximum: no overflow
        probs = np.exp(shifted)
        total = np.add.reduce(probs, axis=0)
        log_total = np.log(total)
        if target.ndim == 1 and target.dtype.kind in "iu":
            if target.shape[0] != n:
                raise ShapeError(f"cross_entropy: {n} rows of logits but {target.shape[0]} labels")
            # one pass finds labels < 0 too: as unsigned integers they are huge
            if n and np.maximum.reduce(target.view(_UNSIGNED[target.dtype.itemsize])) >= c:
                raise ShapeError(f"cross_entropy: labels must lie in 0..{c - 1}, got {target.min()}..{target.max()}")
            self.at_labels = (target, np.arange(n))  # (label, sample) of each sample
            losses = log_total - shifted[self.at_labels]  # -log softmax at the labels
            self.onehot = None
        elif target.shape == logits.shape:
            self.onehot = target.T.astype(logits.dtype)  # (C, N) as the rest
            shifted -= log_total  # log softmax
            losses = -np.add.reduce(self.onehot * shifted, axis=0)
        else:
            raise ShapeError(
                f"cross_entropy: target of shape {target.shape} fits neither integer labels ({n},) "
                f"nor one-hot/probabilities {logits.shape}"
            )
        if self.needs_input_grad[0]:
            probs /= total
            self.probs = probs
        self.reduction = reduction
        return _reduce(losses, reduction)

    def backward(self, g):
        n = self.probs.shape[1]
        if self.onehot is None:
            if self.reduction == "mean":  # the usual case, in two operations
                scale = g / n
                grad = self.probs * scale
                grad[self.at_labels] -= scale
                return grad.T
            grad = self.probs.copy()
            grad[self.at_labels] -= 1
        else:
            # d/dx of -sum(t log softmax(x)) is softmax(x) * sum(t) - t; sum(t) is 1 for one-hot rows
            grad = self.probs * np.add.reduce(self.onehot, axis=0) - self.onehot
        return _scale(grad.T, g, self.reduction, n)


def cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits (N, C) against labels (N,) or one-hot/probabilities (N, C): mean, sum or (N,)."""
    if reduction == "mean":  # the benchmarked path: no extra checks
        return CrossEntropy.apply(as_tensor(input), target=_target_array(target))
    _check_reduction("cross_entropy", reduction)
    return CrossEntropy.apply(as_tensor(input), target=_target_array(target), reduction=reduction)


class NLLLoss(Function):
    def forward(self, logp, target, reduction="mean"):
        if target.shape != logp.shape[:1] or (len(target) and (target.min() < 0 or target.max() >= logp.shape[1])):
            raise ShapeError(f"nll_loss: needs labels (N,) in 0..{logp.shape[1] - 1} for input {logp.shape}")
        self.shape, self.labels, self.reduction = logp.shape, target, reduction
        return _reduce(-logp[np.arange(len(target)), target], reduction)

    def backward(self, g):
        grad = np.zeros(self.shape, dtype=g.dtype)
        n = len(self.labels)
        scale = -g / n if self.reduction == "mean" else -g
        grad[np.arange(n), self.labels] = scale
        return grad


def nll_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) at integer labels (N,): mean, sum or (N,)."""
    _check_reduction("nll_loss", reduction)
    return NLLLoss.apply(as_tensor(input), target=_target_array(target).astype(np.int64), reduction=reduction)


class BinaryCrossEntropy(Function):
    """-mean(t log p + (1 - t) log(1 - p)) on probabilities p, logs clamped at -100 as in PyTorch."""

    def forward(self, p, target, reduction="mean"):
        self.p, self.t, self.reduction = p, target.astype(p.dtype, copy=False), reduction
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p), -100)
            log_1p = np.maximum(np.log(1 - p), -100)
        return _reduce(-(self.t * log_p + (1 - self.t) * log_1p), reduction)

    def backward(self, g):
        p, eps = self.p, 1e-12
        return _scale((p - self.t) / np.maximum(p * (1 - p), eps), g, self.reduction, p.size)


def binary_cross_entropy(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities in (0, 1) against targets in [0, 1], same shape: mean, sum or each."""
    _check_reduction("binary_cross_entropy", reduction)
    input, target = _same_shape("binary_cross_entropy", input, target)
    return BinaryCrossEntropy.apply(input, target=target, reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """binary_cross_entropy(sigmoid(input), target) computed stably from logits."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    input, target = _same_shape("binary_cross_entropy_with_logits", input, target)
    return BinaryCrossEntropyWithLogits.apply(input, target=target, reduction=reduction)


class BinaryCrossEntropyWithLogits(Function):
    def forward(self, x, target, reduction="mean"):
        self.x, self.t, self.reduction = x, target.astype(x.dtype, copy=False), reduction
        # log(1 + exp(-|x|)) + max(x, 0) - x t: no overflow for any x
        loss = np.maximum(x, 0) - x * self.t + np.log1p(np.exp(-np.abs(x)))
        return _reduce(loss, reduction)

    def backward(self, g):
        return _scale(_sigmoid(self.x) - self.t, g, self.reduction, self.x.size)
