"""Arithmetic, elementwise math and reductions: each Function's forward and backward side by side."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Function, Tensor

Axis = int | tuple[int, ...] | None


def as_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    """`x` as a Tensor; Python numbers take the dtype of `like` so float32 stays float32."""
    if isinstance(x, Tensor):
        return x
    # NumPy scalars (from np.sum, argmax, ...) are as weak as Python numbers: float32 stays float32
    if like is not None and isinstance(x, (int, float, np.integer, np.floating)) and (
        like.data.dtype.kind == "f" or isinstance(x, (int, np.integer))
    ):
        return Tensor._wrap(np.asarray(x, dtype=like.data.dtype))
    return Tensor(x)


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        return a, as_tensor(b, a)
    b = as_tensor(b)
    return as_tensor(a, b), b


# --- arithmetic ------------------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = g * self.b if self.needs_input_grad[0] else None
        gb = g * self.a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a**b
        return self.out

    def backward(self, g):
        a, b = self.a, self.b
        ga = g * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = g * self.out * np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
        return ga, gb


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        # 1-D operands behave as a row (left) or column (right) vector, as in np.matmul
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if b.ndim == 1:  # first, so that 1-D @ 1-D (a 0-d g) becomes (1, 1)
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g @ np.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                ga = ga.reshape(-1, a.shape[0]).sum(0)
        if self.needs_input_grad[1]:
            gb = np.swapaxes(a2, -1, -2) @ g
            if b.ndim == 1:
                gb = gb.reshape(-1, b.shape[0]).sum(0)
        return ga, gb


def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting."""
    return Add.apply(*_pair(a, b))


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting."""
    return Sub.apply(*_pair(a, b))


def mul(a: Any, b: Any) -> Tensor:
    """a * b elementwise with broadcasting."""
    return Mul.apply(*_pair(a, b))


def div(a: Any, b: Any) -> Tensor:
    """a / b elementwise with broadcasting."""
    return Div.apply(*_pair(a, b))


def neg(a: Tensor) -> Tensor:
    """-a."""
    return Neg.apply(a)


def pow(a: Any, b: Any) -> Tensor:
    """a ** b elementwise (the gradient for b needs a > 0)."""
    return Pow.apply(*_pair(a, b))


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product as np.matmul: (..., n, k) @ (..., k, m) -> (..., n, m), batched and broadcast."""
    return MatMul.apply(*_pair(a, b))


# --- elementwise functions -------------------------------------------------------------------
class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return g / self.a


class Sqrt(Function):
    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Abs(Function):
    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, g):
        return g * np.sign(self.a)


class Clip(Function):
    def forward(self, a, min=None, max=None):
        self.mask = np.ones(a.shape, dtype=bool)
        if min is not None:
            self.mask &= a >= min
        if max is not None:
            self.mask &= a <= max
        return np.clip(a, min, max)

    def backward(self, g):
        return g * self.mask


class Cast(Function):
    def forward(self, a, dtype):
        return a.astype(dtype)

    def backward(self, g):
        return g  # the engine casts the gradient back to the input's dtype


def cast(a: Tensor, dtype: Any) -> Tensor:
    """a converted to `dtype`, differentiably (a itself when it already has that dtype)."""
    a = as_tensor(a)
    return a if a.dtype == np.dtype(dtype) else Cast.apply(a, dtype=np.dtype(dtype))


def exp(a: Tensor) -> Tensor:
    """e ** a elementwise."""
    return Exp.apply(as_tensor(a))


def log(a: Tensor) -> Tensor:
    """Natural logarithm elementwise."""
    return Log.apply(as_tensor(a))


def sqrt(a: Tensor) -> Tensor:
    """Square root elementwise."""
    return Sqrt.apply(as_tensor(a))


def abs(a: Tensor) -> Tensor:
    """|a| elementwise (gradient 0 at 0)."""
    return Abs.apply(as_tensor(a))


def clip(a: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """a limited to [min, max]; the gradient passes only where a was inside."""
    return Clip.apply(as_tensor(a), min=min, max=max)


# --- reductions ------------------------------------------------------------------------------
def _expand(g: np.ndarray, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> np.ndarray:
    """Broadcasts the gradient of a reduction back to the input's shape."""
    if axis is not None and not keepdims:
        axes = (axis,) if isinstance(axis, int) else axis
        g = np.expand_dims(g, tuple(ax % len(shape) for ax in axes))
    return np.broadcast_to(g, shape)


def _torch_names(axis: Axis, keepdims: bool, dim: Axis, keepdim: bool | None) -> tuple[Axis, bool]:
    """Accepts PyTorch's `dim`/`keepdim` as well as NumPy's `axis`/`keepdims`."""
    return (dim if dim is not None else axis), (keepdim if keepdim is not None else keepdims)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        return _expand(g, self.shape, self.axis, self.keepdims)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        out = np.asarray(a.mean(axis=axis, keepdims=keepdims))
        self.count = a.size // out.size if a.size else 1  # not max(): this module shadows the builtin
        return out

    def backward(self, g):
        return _expand(g / self.count, self.shape, self.axis, self.keepdims)


class Max(Function):
    """Maximum over axes; ties share the gradient equally."""

    reduce = staticmethod(np.max)

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.axis, self.keepdims = a, axis, keepdims
        self.out = np.asarray(self.reduce(a, axis=axis, keepdims=keepdims))
        return self.out

    def backward(self, g):
        shape = self.a.shape
        mask = self.a == _expand(self.out, shape, self.axis, self.keepdims)
        count = mask.sum(axis=self.axis, keepdims=True).astype(g.dtype)  # an int count would promote to float64
        return mask * _expand(g, shape, self.axis, self.keepdims) / count


class Min(Max):
    reduce = staticmethod(np.min)


def sum(
    a: Tensor, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
) -> Tensor:
    """Sum over `axis` (all elements when None)."""
    axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
    return Sum.apply(as_tensor(a), axis=axis, keepdims=keepdims)


def mean(
    a: Tensor, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
) -> Tensor:
    """Mean over `axis` (all elements when None)."""
    axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
    return Mean.apply(as_tensor(a), axis=axis, keepdims=keepdims)


def max(
    a: Tensor, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
) -> Tensor:
    """Maximum over `axis` (values only; use argmax on .data for indices)."""
    axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
    return Max.apply(as_tensor(a), axis=axis, keepdims=keepdims)


def min(
    a: Tensor, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
) -> Tensor:
    """Minimum over `axis`."""
    axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
    return Min.apply(as_tensor(a), axis=axis, keepdims=keepdims)


# --- fused affine layer ----------------------------------------------------------------------
class Linear(Function):
    """x @ W.T + b in one node: one matmul each way and no broadcast bookkeeping."""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, w = self.x, self.weight
        gx = g @ w if self.needs_input_grad[0] else None
        gw = gb = None
        if self.needs_input_grad[1]:
            gw = g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map as nn.Linear: x (..., in) @ weight (out, in).T + bias (out,) -> (..., out)."""
    if bias is None:
        return Linear.apply(as_tensor(x), weight)
    return Linear.apply(as_tensor(x), weight, bias)
