"""Batch normalisation and dropout: the book's chapter-6 layers as differentiable operations."""

from __future__ import annotations

import numpy as np

from .. import random as _random
from ..errors import ShapeError
from ..tensor import Function, Tensor
from .math import as_tensor


def _stat_axes(ndim: int) -> tuple[int, ...]:
    # (N, C) normalises over N; (N, C, H, W) over N, H and W, one statistic per channel
    if ndim == 2:
        return (0,)
    if ndim == 4:
        return (0, 2, 3)
    raise ShapeError(f"batch_norm expects input of shape (N, C) or (N, C, H, W), got {ndim} dimensions")


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape(1, -1, 1, 1) if ndim == 4 else v


class BatchNorm(Function):
    def forward(self, x, weight, bias, mean, var, eps=1e-5):
        self.axes = _stat_axes(x.ndim)
        self.inv_std = 1.0 / np.sqrt(_per_channel(var, x.ndim) + eps)
        self.x_hat = (x - _per_channel(mean, x.ndim)) * self.inv_std
        self.weight = _per_channel(weight, x.ndim)
        self.batch_stats = True
        return self.x_hat * self.weight + _per_channel(bias, x.ndim)

    def backward(self, g):
        axes, x_hat = self.axes, self.x_hat
        gw = (g * x_hat).sum(axis=axes)
        gb = g.sum(axis=axes)
        gx_hat = g * self.weight
        if self.batch_stats:
            # mean and variance came from this batch, so they carry gradient too
            m = g.size // gb.size
            gx = (self.inv_std / m) * (
                m * gx_hat
                - gx_hat.sum(axis=axes, keepdims=True)
                - x_hat * (gx_hat * x_hat).sum(axis=axes, keepdims=True)
            )
        else:
            gx = gx_hat * self.inv_std
        return gx, gw, gb


class _BatchNormEval(BatchNorm):
    def forward(self, x, weight, bias, mean, var, eps=1e-5):
        out = super().forward(x, weight, bias, mean, var, eps)
        self.batch_stats = False
        return out


def batch_norm(
    x: Tensor,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: Tensor,
    bias: Tensor,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalises x (N, C) or (N, C, H, W) per channel, then scales by weight and shifts by bias (C,).

    In training, batch statistics are used and the running averages are updated in place
    (running = (1 - momentum) * running + momentum * batch, as in PyTorch).
    """
    x = as_tensor(x)
    axes = _stat_axes(x.ndim)
    if training or running_mean is None:
        mean = x.data.mean(axis=axes)
        var = x.data.var(axis=axes)
        if running_mean is not None and running_var is not None:
            n = x.data.size // mean.size
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (n / max(n - 1, 1))  # unbiased, as PyTorch keeps it
        return BatchNorm.apply(x, weight, bias, mean=mean, var=var, eps=eps)
    return _BatchNormEval.apply(x, weight, bias, mean=running_mean, var=running_var, eps=eps)


class Dropout(Function):
    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask


def dropout(
    x: Tensor, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None
) -> Tensor:
    """Zeroes each element with probability p and scales the rest by 1/(1-p) (inverted dropout).

    The book scales at inference time instead; both give the same expected activations.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    rng = _random.rng(generator)
    mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype) / np.asarray(1 - p, dtype=x.dtype)
    return Dropout.apply(x, mask=mask)
