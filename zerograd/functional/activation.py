"""Activation functions as differentiable operations (the book's chapter-3 functions, with backward)."""

from __future__ import annotations

import numpy as np

from ..tensor import Function, Tensor
from ..threads import parallel_map
from .math import as_tensor, batch_slices, relu_grad


class ReLU(Function):
    """Elementwise, a shard of the batch per thread (zerograd.threads.batch_shards): a CNN's activations are large."""

    def forward(self, x):
        out = np.empty_like(x)
        # not x * (x > 0): -inf * 0 would be nan
        parallel_map(lambda s: np.maximum(x[s], 0, out=out[s]), batch_slices(x))
        if self.needs_input_grad[0]:
            self.out = out  # out > 0 exactly where x > 0: backward's mask, no bool array kept meanwhile
        return out

    def backward(self, g):
        return relu_grad(g, self.out)  # g has the output's shape


class LeakyReLU(Function):
    def forward(self, x, negative_slope=0.01):
        self.slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
        return x * self.slope

    def backward(self, g):
        return g * self.slope


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)) in place on one buffer: for x < -88 (float32) exp overflows to inf and the
    # result is exactly 0, which is right, so that overflow is not worth a warning
    e = np.negative(x, out=np.empty(x.shape, np.result_type(x.dtype, np.float32)))
    with np.errstate(over="ignore"):
        np.exp(e, out=e)
    e += 1
    return np.reciprocal(e, out=e)


class Sigmoid(Function):
    def forward(self, x):
        self.out = _sigmoid(x)
        return self.out

    def backward(self, g):
        return g * self.out * (1 - self.out)


class Tanh(Function):
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        return g * (1 - self.out * self.out)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)  # the row maximum: exp never overflows
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    def forward(self, x, axis=-1):
        self.axis = axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        return self.out

    def backward(self, g):
        y = self.out
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        self.axis = axis
        self.out = _log_softmax(x, axis)
        return self.out

    def backward(self, g):
        return g - np.exp(self.out) * g.sum(axis=self.axis, keepdims=True)


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise."""
    return ReLU.apply(as_tensor(x))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return LeakyReLU.apply(as_tensor(x), negative_slope=negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)) elementwise, computed without overflow."""
    return Sigmoid.apply(as_tensor(x))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise."""
    return Tanh.apply(as_tensor(x))


def softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the maximum for stability."""
    return Softmax.apply(as_tensor(x), axis=axis if dim is None else dim)


def log_softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """log(softmax(x)) along `axis`, computed stably in one step."""
    return LogSoftmax.apply(as_tensor(x), axis=axis if dim is None else dim)
