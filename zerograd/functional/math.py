"""Arithmetic, elementwise math and reductions: each Function's forward and backward side by side."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..errors import ShapeError, ZerogradError
from ..tensor import Function, Tensor
from ..threads import batch_shards, get_num_threads, parallel_map

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
    """a / b elementwise with broadcasting; integers divide to float32, as in PyTorch (not NumPy's float64)."""
    a, b = _pair(a, b)
    if a.data.dtype.kind in "biu" and b.data.dtype.kind in "biu":
        a, b = Cast.apply(a, dtype=np.dtype(np.float32)), Cast.apply(b, dtype=np.dtype(np.float32))
    return Div.apply(a, b)


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
    """Mean over `axis` (all elements when None); of integers or booleans, float32 (not NumPy's float64)."""
    axis, keepdims = _torch_names(axis, keepdims, dim, keepdim)
    a = as_tensor(a)
    if a.data.dtype.kind in "biu":
        a = Cast.apply(a, dtype=np.dtype(np.float32))
    return Mean.apply(a, axis=axis, keepdims=keepdims)


class ValuesIndices(NamedTuple):
    """What max(dim)/min(dim) return, as torch.return_types.max: the values and where they are (int64)."""

    values: Tensor
    indices: Tensor


def _extreme(
    a: Any, dim: Any, keepdim: bool, axis: Axis, keepdims: bool | None, arg: Any, reduce: type[Max], pair: Any
) -> Any:
    if isinstance(dim, (Tensor, np.ndarray)):  # torch.max(a, b) is the elementwise maximum
        return pair(a, dim)
    a = as_tensor(a)
    if dim is None or isinstance(dim, tuple):  # NumPy style: the values only, over any axes
        axis = dim if axis is None else axis
        return reduce.apply(a, axis=axis, keepdims=bool(keepdim if keepdims is None else keepdims))
    idx = np.expand_dims(arg(a.data, axis=dim), dim)
    values = gather(a, dim, idx)
    indices = Tensor._wrap(idx.astype(np.int64, copy=False))
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return ValuesIndices(values, indices)


def max(
    a: Tensor, dim: int | Tensor | None = None, keepdim: bool = False, *, axis: Axis = None,
    keepdims: bool | None = None,
) -> Any:
    """As torch.max: the largest value (0-d); with an int dim, (values, indices) along it; with a Tensor, maximum.

    NumPy's `axis=` (ints or tuples) gives the values only; ties share the gradient equally there,
    while max(dim) sends it to the returned index, as PyTorch does.
    """
    return _extreme(a, dim, keepdim, axis, keepdims, np.argmax, Max, maximum)


def min(
    a: Tensor, dim: int | Tensor | None = None, keepdim: bool = False, *, axis: Axis = None,
    keepdims: bool | None = None,
) -> Any:
    """As torch.min: the smallest value (0-d); with an int dim, (values, indices) along it; with a Tensor, minimum."""
    return _extreme(a, dim, keepdim, axis, keepdims, np.argmin, Min, minimum)


def amax(a: Tensor, dim: Axis = None, keepdim: bool = False) -> Tensor:
    """Largest values over `dim` (int, tuple or None for all); ties share the gradient."""
    return Max.apply(as_tensor(a), axis=dim, keepdims=keepdim)


def amin(a: Tensor, dim: Axis = None, keepdim: bool = False) -> Tensor:
    """Smallest values over `dim` (int, tuple or None for all); ties share the gradient."""
    return Min.apply(as_tensor(a), axis=dim, keepdims=keepdim)


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """int64 index of the largest value along `dim` (of the flattened tensor when None); no gradient."""
    return _arg(np.argmax, a, dim, keepdim)


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """int64 index of the smallest value along `dim` (of the flattened tensor when None); no gradient."""
    return _arg(np.argmin, a, dim, keepdim)


def _arg(fn: Any, a: Any, dim: int | None, keepdim: bool) -> Tensor:
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    out = fn(data, axis=dim, keepdims=keepdim) if dim is not None else fn(data)
    if dim is None and keepdim:
        out = np.reshape(out, (1,) * data.ndim)
    return Tensor._wrap(np.asarray(out, dtype=np.int64))


class Gather(Function):
    """out[..., i, ...] = a[..., index[..., i, ...], ...] along one axis, as torch.gather."""

    def forward(self, a, axis, index):
        self.shape, self.axis, self.index = a.shape, axis, index
        return np.take_along_axis(a, index, axis)

    def backward(self, g):
        grad = np.zeros(self.shape, dtype=g.dtype)
        where = list(np.ix_(*[np.arange(n) for n in self.index.shape]))
        where[self.axis] = self.index
        np.add.at(grad, tuple(where), g)  # an index may repeat: gradients add up
        return grad


def gather(a: Tensor, dim: int, index: Any) -> Tensor:
    """Values of a picked along `dim` by an integer index of a's rank, as torch.gather; output has index's shape."""
    index = index.data if isinstance(index, Tensor) else np.asarray(index)
    if index.ndim != a.ndim or index.dtype.kind not in "iu":
        raise ShapeError(
            f"gather: index must be an integer tensor with as many dimensions as the input ({a.ndim}), "
            f"got {index.dtype} of shape {index.shape}"
        )
    return Gather.apply(as_tensor(a), axis=dim % a.ndim, index=index)


def sort(a: Tensor, dim: int = -1, descending: bool = False) -> ValuesIndices:
    """(values, indices) sorted along `dim` (stable); the values carry the gradient back to where they came from."""
    a = as_tensor(a)
    key = a.data.astype(np.int64) if descending and a.data.dtype.kind in "ub" else a.data  # -uint8 would wrap
    order = np.argsort(-key if descending else key, axis=dim, kind="stable")
    return ValuesIndices(gather(a, dim, order), Tensor._wrap(order.astype(np.int64, copy=False)))


def argsort(a: Tensor, dim: int = -1, descending: bool = False) -> Tensor:
    """int64 indices that sort a along `dim` (stable)."""
    return sort(a, dim, descending).indices


def topk(a: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """(values, indices) of the k largest (or smallest) elements along `dim`, largest first."""
    a = as_tensor(a)
    if not 0 <= k <= a.shape[dim]:
        raise ShapeError(f"topk: k={k} is out of range for dimension {dim} of size {a.shape[dim]}")
    values, indices = sort(a, dim, descending=largest)
    pick = (slice(None),) * (dim % a.ndim) + (slice(0, k),)
    return ValuesIndices(values[pick], indices[pick])


def one_hot(labels: Any, num_classes: int = -1) -> Tensor:
    """int64 labels (...,) -> one-hot int64 (..., num_classes); num_classes=-1 takes max(labels) + 1."""
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise ZerogradError(f"one_hot needs non-negative integer labels, got {labels.dtype}")
    n = int(labels.max(initial=-1)) + 1 if num_classes == -1 else num_classes
    if labels.size and labels.max() >= n:
        raise ZerogradError(f"one_hot: label {labels.max()} does not fit num_classes={n}")
    return Tensor._wrap((labels[..., None] == np.arange(n)).astype(np.int64))


# --- elementwise maximum, where, clamp ------------------------------------------------------
class Maximum(Function):
    """Elementwise larger of a and b; at ties each gets half the gradient, as PyTorch."""

    pick = staticmethod(np.greater)

    def forward(self, a, b):
        out = np.maximum(a, b) if self.pick is np.greater else np.minimum(a, b)
        self.first = np.where(a == b, 0.5, self.pick(a, b)).astype(out.dtype, copy=False)
        return out

    def backward(self, g):
        ga = g * self.first if self.needs_input_grad[0] else None
        gb = g * (1 - self.first) if self.needs_input_grad[1] else None
        return ga, gb


class Minimum(Maximum):
    pick = staticmethod(np.less)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum with broadcasting."""
    return Maximum.apply(*_pair(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum with broadcasting."""
    return Minimum.apply(*_pair(a, b))


class Where(Function):
    def forward(self, a, b, condition):
        self.condition = condition
        return np.where(condition, a, b)

    def backward(self, g):
        ga = np.where(self.condition, g, 0) if self.needs_input_grad[0] else None
        gb = np.where(self.condition, 0, g) if self.needs_input_grad[1] else None
        return ga, gb


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """input where condition is true, else other (all three broadcast together); gradients flow to both."""
    condition = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    return Where.apply(*_pair(input, other), condition=condition.astype(bool, copy=False))


class MaskedFill(Function):
    def forward(self, a, mask, value):
        self.mask = mask
        return np.where(mask, np.asarray(value, dtype=a.dtype), a)

    def backward(self, g):
        return np.where(self.mask, 0, g)


def masked_fill(a: Tensor, mask: Any, value: float) -> Tensor:
    """a with `value` wherever the boolean mask (broadcast to a's shape) is true; no gradient there."""
    mask = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ZerogradError(f"masked_fill needs a boolean mask, got {mask.dtype}: build it with a comparison")
    value = value.item() if isinstance(value, Tensor) else value
    return MaskedFill.apply(as_tensor(a), mask=mask, value=value)


def clamp(a: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """a limited to [min, max] (numbers or tensors); the gradient passes only where a was inside."""
    if min is None and max is None:
        raise ZerogradError("clamp needs min or max (or both)")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = as_tensor(a)
        out = out if min is None else maximum(out, min)
        return out if max is None else minimum(out, max)
    return Clip.apply(as_tensor(a), min=min, max=max)


def clamp_min(a: Tensor, min: Any) -> Tensor:
    """clamp(a, min=min)."""
    return clamp(a, min=min)


def clamp_max(a: Tensor, max: Any) -> Tensor:
    """clamp(a, max=max)."""
    return clamp(a, max=max)


# --- statistics ------------------------------------------------------------------------------
class Var(Function):
    def forward(self, a, axis=None, keepdims=False, correction=1):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        self.centred = a - a.mean(axis=axis, keepdims=True)
        axes = range(a.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
        count = int(np.prod([a.shape[ax] for ax in axes]))
        self.denominator = np.asarray(count - correction, dtype=a.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):  # one sample, unbiased: nan, as PyTorch
            return np.asarray((self.centred * self.centred).sum(axis=axis, keepdims=keepdims) / self.denominator)

    def backward(self, g):
        return _expand(g, self.shape, self.axis, self.keepdims) * (2 * self.centred / self.denominator)


def _correction(unbiased: bool | None, correction: int | None) -> int:
    if correction is not None:
        return int(correction)
    return 0 if unbiased is False else 1


def var(
    a: Tensor, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, *,
    correction: int | None = None,
) -> Tensor:
    """Variance over `dim` (all elements when None), unbiased (divides by n - 1) as PyTorch's default."""
    return Var.apply(as_tensor(a), axis=dim, keepdims=keepdim, correction=_correction(unbiased, correction))


def std(
    a: Tensor, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, *,
    correction: int | None = None,
) -> Tensor:
    """Standard deviation over `dim`: sqrt of var, unbiased by default."""
    return sqrt(var(a, dim, unbiased, keepdim, correction=correction))


class LogSumExp(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.a, self.axis, self.keepdims = a, axis, keepdims
        m = a.max(axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # a row of -inf gives -inf, not nan
        with np.errstate(divide="ignore"):
            self.out = np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m
        return np.asarray(self.out if keepdims else self.out.squeeze(axis))

    def backward(self, g):
        g = _expand(g, self.a.shape, self.axis, self.keepdims)
        with np.errstate(invalid="ignore"):
            return g * np.exp(self.a - self.out)


def logsumexp(a: Tensor, dim: Axis = None, keepdim: bool = False) -> Tensor:
    """log(sum(exp(a))) over `dim` (all elements when None), computed without overflow."""
    return LogSumExp.apply(as_tensor(a), axis=dim, keepdims=keepdim)


# --- fused affine layer ----------------------------------------------------------------------
# Products of at least this many multiply-adds are split over the threads (a CNN's hidden layer: 43 M);
# below it (the book's MLPs) one BLAS call is faster than waking a worker.
_PARALLEL_MACS = 1 << 24
# A forward product whose output, this many times over, is still smaller than each operand is split along its inner
# axis: each thread then reads half of both operands instead of half of one and all of the other, for a few small
# partial products to add. SimpleConvNet's (100, 4320) @ (4320, 100) at two threads: the product alone 453-514 ->
# 354-369 us on warm data, 675-691 -> 576-606 us from memory; its training step 1-2 % faster (medians of the paired
# ratios 0.976-0.988 over 30 rounds alternating in one process, three runs). The MLP's (128, 784) @ (784, 256)
# keeps the output split (its output is a third of x).
_INNER_SPLIT = 4


def _split(a: np.ndarray, b: np.ndarray, axis_a: int, axis_b: int) -> tuple[int, list[slice]]:
    """Where to split a product of operands a and b over the threads: along the output axis that comes from a
    (a's axis_a) when b is the smaller operand, else along the one from b. Each thread reads its part of the
    larger operand and all of the smaller. Returns (whose axis: 0 for a's, 1 for b's; the shards along it).
    Of equal operands, b's: SimpleConvNet's (100, 4320) @ (4320, 100) forward measured 0.65 ms at two threads split
    by rows of W, 0.81 ms by rows of x (1.1 ms at one thread)."""
    if b.size < a.size:
        return 0, batch_shards(a.shape[axis_a], a.size)
    return 1, batch_shards(b.shape[axis_b], b.size)


def _bias_relu(out: np.ndarray, bias: np.ndarray | None, relu: bool) -> np.ndarray:
    """out + bias, then its ReLU if asked, in place in out (an array or a view of one)."""
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, 0, out=out)
    return out


class Linear(Function):
    """x @ W.T + b in one node: one matmul each way and no broadcast bookkeeping.

    A large product is split over the threads along an axis of its output (rows of x or rows of W forward; for
    the gradients, rows of g or columns of W, and rows of g.T or columns of x), whichever lets each thread read
    a part of the larger operand. Each output number then comes from one thread's product, and nothing is copied
    together after (each writes its part in place). One exception: a forward output much smaller than both operands
    (see _INNER_SPLIT) is split along the inner axis, each thread multiplying a part of x's columns by the same part
    of W's, and the partial products are added in thread order (bit-identical run after run at a given thread count,
    within float32 rounding of one thread's result).

    With relu=True (functional.math.linear_relu) it is relu(x @ W.T + b) in one node: the maximum with 0 taken in
    place on the product on every path, the output kept as backward's mask, and backward masking the gradient
    before its products, the same numbers as a Linear node and a ReLU node.
    """

    def forward(self, x, weight, bias=None, relu=False):
        self.x, self.weight, self.relu = x, weight, relu
        self.parallel = self._parallel(x, weight)
        if not self.parallel:  # one product; its bias and ReLU over a shard of the rows per thread if it is large
            out = x @ weight.T
            shards = batch_slices(out) if out.ndim > 1 else [...]  # a 1-D output's axis is the bias's: one shard
            if len(shards) > 1:
                parallel_map(lambda s: _bias_relu(out[s], bias, relu), shards)
            else:
                _bias_relu(out, bias, relu)
        elif (outputs := _INNER_SPLIT * len(x) * len(weight)) < x.size and outputs < weight.size:  # (min here is F.min)
            out = self._forward_inner_split(x, weight, bias, relu)
        else:
            out = np.empty((len(x), len(weight)), dtype=np.result_type(x, weight))
            side, shards = _split(x, weight, 0, 0)

            def part(s: slice) -> None:
                rows, features = (s, slice(None)) if side == 0 else (slice(None), s)
                np.matmul(x[rows], weight[features].T, out=out[rows, features])
                _bias_relu(out[rows, features], None if bias is None else bias[features], relu)

            parallel_map(part, shards)
        if relu and True in self.needs_input_grad:
            self.out = out  # positive exactly where the affine map was: backward's mask
        return out

    @staticmethod
    def _forward_inner_split(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, relu: bool) -> np.ndarray:
        """x @ W.T + b with each thread multiplying a part of the inner axis, x[:, s] @ W[:, s].T, into its own
        partial product; the partials added in thread order."""
        shards = batch_shards(x.shape[1], x.size + weight.size)
        parts = np.empty((len(shards), len(x), len(weight)), dtype=np.result_type(x, weight))
        parallel_map(lambda k: np.matmul(x[:, shards[k]], weight[:, shards[k]].T, out=parts[k]), range(len(shards)))
        return _bias_relu(parts.sum(axis=0), bias, relu)  # the first part, plus the next, ...: in order

    @staticmethod
    def _parallel(x: np.ndarray, weight: np.ndarray) -> bool:
        # get_num_threads() first, always: it also gives the cores to zerograd's threads (BLAS: one thread)
        return get_num_threads() > 1 and x.ndim == 2 and x.shape[0] * weight.size >= _PARALLEL_MACS

    def backward(self, g):
        x, w, needed = self.x, self.weight, self.needs_input_grad
        if self.relu:  # the ReLU's backward first: the gradient where the output was positive
            g = relu_grad(g, self.out)
        if self.parallel:
            gx = np.empty(x.shape, dtype=np.result_type(g, w)) if needed[0] else None
            gw = np.empty(w.shape, dtype=np.result_type(g, x)) if needed[1] else None
            items = []
            if needed[0]:  # gx (N, in) = g (N, out) @ w (out, in): by rows of g or columns of w
                side, shards = _split(g, w, 0, 1)
                items += [(0, side, s) for s in shards]
            if needed[1]:  # gw (out, in) = g.T (out, N) @ x (N, in): by columns of g or columns of x
                side, shards = _split(g, x, 1, 1)
                items += [(1, side, s) for s in shards]

            def part(item: tuple[int, int, slice]) -> None:
                which, side, s = item
                first, second, target = (g, w, gx) if which == 0 else (g.T, x, gw)
                if side == 0:  # rows of the first operand (for g.T: columns of g)
                    np.matmul(first[s], second, out=target[s])
                else:  # columns of the second
                    np.matmul(first, second[:, s], out=target[:, s])

            parallel_map(part, items)
        else:
            gx = g @ w if needed[0] else None
            if g.ndim != 2:  # (..., out): the weight sees every leading position as one more row
                g, x = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
            gw = g.T @ x if needed[1] else None
        gb = np.add.reduce(g, axis=0) if len(needed) > 2 and needed[2] else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map as nn.Linear: x (..., in) @ weight (out, in).T + bias (out,) -> (..., out)."""
    if bias is None:
        return Linear.apply(as_tensor(x), weight)
    return Linear.apply(as_tensor(x), weight, bias)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """relu(linear(x, weight, bias)) as one node: the same numbers, without a node and an array for the ReLU. What
    nn.Sequential runs for a Linear followed by a ReLU. Public for nn (not in F's __all__)."""
    if bias is None:
        return Linear.apply(as_tensor(x), weight, relu=True)
    return Linear.apply(as_tensor(x), weight, bias, relu=True)


# ReLU's helpers live here, not in activation.py, because Linear's fused ReLU needs them and activation imports math
def batch_slices(x: np.ndarray) -> list:
    """Index expressions of x's batch shards, one per thread (a 0-d array is one shard: all of it)."""
    return batch_shards(len(x), x.size) if x.ndim else [...]


def relu_grad(g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """ReLU's backward: g times (out > 0), out being the ReLU's output; a shard of the batch per thread."""
    gx = np.empty_like(g)
    parallel_map(lambda s: np.multiply(g[s], out[s] > 0, out=gx[s]), batch_slices(g))
    return gx
