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


def _channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per-channel sum of a (or of a * b) over every axis but 1, without the product as a temporary.

    einsum, because NumPy's sum over (0, 2, 3) walks the short rows of an image one at a time.
    """
    subscripts = "nc,nc->c" if a.ndim == 2 else "nchw,nchw->c"
    if b is None:
        return np.einsum(subscripts.split(",")[0] + "->c", a)
    return np.einsum(subscripts, a, b)


class BatchNorm(Function):
    def forward(self, x, weight, bias, mean, var, eps=1e-5, centered=None):
        # centered: x - mean, when the caller already made it (computing the batch's variance); taken over
        _stat_axes(x.ndim)  # (N, C) or (N, C, H, W)
        self.inv_std = 1.0 / np.sqrt(_per_channel(var, x.ndim) + eps)
        x_hat = x - _per_channel(mean, x.ndim) if centered is None else centered
        x_hat *= self.inv_std
        self.x_hat = x_hat
        self.weight = _per_channel(weight, x.ndim)
        self.batch_stats = True
        out = x_hat * self.weight
        out += _per_channel(bias, x.ndim)
        return out

    def backward(self, g):
        x_hat = self.x_hat
        gw = _channel_sum(g, x_hat)
        gb = _channel_sum(g)
        scale = self.weight * self.inv_std
        if not self.batch_stats:
            return g * scale, gw, gb
        # mean and variance came from this batch, so they carry gradient too:
        # gx = weight * inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), means per channel
        m = g.size // gb.size
        gx = x_hat * _per_channel(gw / m, g.ndim)
        np.subtract(g, gx, out=gx)
        gx -= _per_channel(gb / m, g.ndim)
        gx *= scale
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
    _stat_axes(x.ndim)
    if training or running_mean is None:
        n = x.data.size // x.shape[1]
        mean = _channel_sum(x.data) / n
        centered = x.data - _per_channel(mean, x.ndim)
        var = _channel_sum(centered, centered) / n
        if running_mean is not None and running_var is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (n / max(n - 1, 1))  # unbiased, as PyTorch keeps it
        return BatchNorm.apply(x, weight, bias, mean=mean, var=var, eps=eps, centered=centered)
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
