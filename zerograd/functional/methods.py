"""Tensor's operators and methods, all bound in `bind`; here too the ones that exist only as methods: sizes,
conversions, copies and in-place updates, with PyTorch's names. `zerograd/tensor.pyi` declares them for editors.

In-place updates (`x += y`, `x.mul_(2)`, `x.zero_()`) change `x.data` itself, so every view, buffer
and optimizer that holds the array sees the change, and they bump `x._version`, so a backward
through an operation that saved `x` before the change raises instead of returning wrong gradients.
As in PyTorch they are refused on a leaf that requires a gradient while the graph is recorded (do
them under `no_grad()`); unlike PyTorch, a tensor computed inside the graph cannot change in place, nor
can any tensor by an operand that requires a gradient (`y += w` then rebinds y to y + w instead, which
is what such code means). Views (view, slices, detach) share memory but not the version counter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tensor as _tensor
from ..errors import ShapeError, ZerogradError
from ..tensor import Function, Tensor

# functional's names, builtins' among them (all, abs, max, sum, ...), as bind hands them to Tensor
from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .compare import (
    all,
    allclose,
    any,
    eq,
    equal,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    ne,
)
from .math import (
    abs,
    add,
    amax,
    amin,
    argmax,
    argmin,
    argsort,
    as_tensor,
    cast,
    clamp,
    clamp_max,
    clamp_min,
    clip,
    div,
    exp,
    gather,
    log,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pow,
    sort,
    sqrt,
    std,
    sub,
    sum,
    topk,
    var,
    where,
)
from .shape import (
    chunk,
    expand,
    flatten,
    getitem,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    t,
    transpose,
    unsqueeze,
    view,
)


def size(self: Tensor, dim: int | None = None) -> Any:
    """The shape as a tuple, or the length of one dimension (negative dims count from the end)."""
    return self.data.shape if dim is None else self.data.shape[dim]


def numel(input: Tensor) -> int:
    """Number of elements."""
    return int(input.data.size)


def is_tensor(obj: Any) -> bool:
    """Whether obj is a zerograd Tensor (Parameters included)."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    """Whether the tensor holds floating-point numbers (only these can require gradients)."""
    return input.data.dtype.kind == "f"


def to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """to(dtype), to(other_tensor) or to("cpu"): a tensor of that dtype (differentiable), self if nothing changes."""
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise ZerogradError(f"to() got unexpected arguments {sorted(kwargs)}: pass a dtype")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, str) and arg.split(":")[0] == "cpu":
            continue
        elif isinstance(arg, str):
            raise ZerogradError(f"zerograd runs on the CPU only (NumPy); to('{arg}') is not available, use 'cpu'")
        else:
            dtype = arg
    return self if dtype is None else cast(self, dtype)


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


def clone(input: Tensor) -> Tensor:
    """A copy of the data that stays in the graph (gradients flow back to input), as torch.clone."""
    return Clone.apply(as_tensor(input))


# --- in-place updates ------------------------------------------------------------------------------
def _check_inplace(t: Tensor, name: str) -> None:
    if t.requires_grad and _tensor.is_grad_enabled():
        if t._ctx is None:
            raise ZerogradError(
                f"{name}: a leaf tensor that requires grad cannot change in place while the graph is recorded: "
                "do it inside `with zerograd.no_grad():` (as an optimizer step does), or write y = x + ..."
            )
        raise ZerogradError(
            f"{name}: a tensor computed in the graph cannot change in place in zerograd: write y = y + ... "
            "(out of place) instead"
        )


def _inplace(t: Tensor, name: str, update: Callable[[np.ndarray], Any]) -> Tensor:
    """Runs update(t.data) after the checks, names shape and dtype problems, bumps the version."""
    _check_inplace(t, name)
    try:
        update(t.data)
    except TypeError as err:  # NumPy's casting errors (float into an int tensor) are TypeErrors
        raise ZerogradError(
            f"{name}: the result cannot be stored in a tensor of dtype {t.data.dtype} ({err}); "
            "convert the tensor first, e.g. x = x.float()"
        ) from err
    except ValueError as err:
        if not t.data.flags.writeable:
            raise ZerogradError(
                f"{name}: this tensor is a read-only view (from expand or broadcasting); clone() it first"
            ) from err
        raise ShapeError(f"{name}: an operand does not fit the tensor's shape {t.data.shape} in place: {err}") from err
    t._version += 1
    return t


def _operand(other: Any) -> Any:
    if not isinstance(other, Tensor):
        return other
    if other.requires_grad and _tensor.is_grad_enabled():
        raise ZerogradError(
            "an in-place update with an operand that requires grad would not be recorded in the graph: "
            "write x = x + y (out of place), or do it inside `with zerograd.no_grad():`"
        )
    return other.data


def _ufunc_inplace(ufunc: np.ufunc, name: str) -> Callable[..., Tensor]:
    def method(self: Tensor, other: Any) -> Tensor:
        return _inplace(self, name, lambda a: ufunc(a, _operand(other), out=a, casting="same_kind"))

    method.__name__ = name
    method.__doc__ = f"In place: self = {ufunc.__name__}(self, other); returns self."
    return method


def add_(self: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """In place: self += alpha * other; returns self."""
    other = _operand(other)
    return _inplace(self, "add_", lambda a: np.add(a, other if alpha == 1 else alpha * other, out=a,
                                                   casting="same_kind"))


def sub_(self: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """In place: self -= alpha * other; returns self."""
    other = _operand(other)
    return _inplace(self, "sub_", lambda a: np.subtract(a, other if alpha == 1 else alpha * other, out=a,
                                                        casting="same_kind"))


def zero_(self: Tensor) -> Tensor:
    """In place: every element 0; returns self."""
    return _inplace(self, "zero_", lambda a: a.fill(0))


def fill_(self: Tensor, value: Any) -> Tensor:
    """In place: every element `value`; returns self."""
    return _inplace(self, "fill_", lambda a: a.fill(_operand(value)))


def copy_(self: Tensor, src: Any) -> Tensor:
    """In place: the values of src (broadcast, converted to self's dtype); returns self."""
    return _inplace(self, "copy_", lambda a: np.copyto(a, _operand(src), casting="unsafe"))


def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """In place: self limited to [min, max]; returns self."""
    return _inplace(self, "clamp_", lambda a: np.clip(a, _operand(min), _operand(max), out=a))


def masked_fill_(self: Tensor, mask: Any, value: Any) -> Tensor:
    """In place: `value` wherever the boolean mask is true; returns self."""
    return _inplace(self, "masked_fill_", lambda a: np.copyto(a, _operand(value), where=_operand(mask)))


def setitem(self: Tensor, index: Any, value: Any) -> None:
    """In place: x[index] = value (index as in x[index], value broadcast), as PyTorch allows."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    _inplace(self, "x[...] = value", lambda a: a.__setitem__(index, _operand(value)))


def _augmented(inplace: Callable[..., Tensor], out_of_place: Callable[[Any, Any], Tensor]) -> Callable[..., Tensor]:
    """`x op= y`: in place, except on a tensor computed in the graph, which is rebound to x op y."""

    def method(self: Tensor, other: Any) -> Tensor:
        if _tensor.is_grad_enabled() and (
            (self._ctx is not None and self.requires_grad) or (isinstance(other, Tensor) and other.requires_grad)
        ):
            return out_of_place(self, other)  # what PyTorch would record; rebinding keeps the graph right
        return inplace(self, other)

    return method


def _scalar(convert: Callable[[Any], Any], integer_only: bool = False) -> Callable[[Tensor], Any]:
    """int(t), float(t), and list[t] (__index__) of a one-element tensor, as PyTorch allows."""

    def method(self: Tensor) -> Any:
        if self.data.size != 1 or (integer_only and self.data.dtype.kind not in "iub"):
            raise TypeError(
                f"only {'integer ' if integer_only else ''}tensors of one element convert to a Python number, "
                f"this one is {self.data.dtype} of shape {self.data.shape}"
            )
        return convert(self.data.item())

    return method


def _array(self: Tensor, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    """np.asarray(tensor) is its data; np.array(tensor) a copy (NumPy's array protocol)."""
    if dtype is not None and np.dtype(dtype) != self.data.dtype:
        return self.data.astype(dtype)
    return self.data.copy() if copy else self.data


def _type(self: Tensor, dtype: Any = None) -> Any:
    """type(dtype) converts as to(dtype); type() names the dtype."""
    return str(self.data.dtype) if dtype is None else cast(self, dtype)


def _format(self: Tensor, spec: str) -> str:
    # f"{loss:.4f}" works on a 0-d tensor, as in PyTorch
    return format(self.data.item(), spec) if self.data.ndim == 0 else format(repr(self), spec)


def _compare(fn: Callable[[Any, Any], Tensor]) -> Callable[[Tensor, Any], Any]:
    """The operator of comparison `fn`: elementwise bool Tensor, or identity against None and strings."""

    def method(self: Tensor, other: Any) -> Any:
        if other is None or isinstance(other, str):  # not comparable: Python falls back to identity
            return NotImplemented
        return fn(self, other)

    return method


def _where(self: Tensor, condition: Any, other: Any) -> Tensor:
    """x.where(condition, y): x where condition holds, else y, as torch.Tensor.where (F.where: condition first)."""
    return where(condition, self, other)


def bind(T: Any) -> None:
    """Adds the functional API to Tensor (T): operators, methods and properties; tensor.pyi declares them all.

    T is typed Any because a type checker reads the stub, where these are already methods it would not let us assign.
    """
    # arithmetic operators; the reflected ones put the other operand first
    T.__add__ = add
    T.__radd__ = lambda self, other: add(other, self)
    T.__sub__ = sub
    T.__rsub__ = lambda self, other: sub(other, self)
    T.__mul__ = mul
    T.__rmul__ = lambda self, other: mul(other, self)
    T.__truediv__ = div
    T.__rtruediv__ = lambda self, other: div(other, self)
    T.__neg__ = neg
    T.__pow__ = pow
    T.__rpow__ = lambda self, other: pow(other, self)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, other: matmul(other, self)
    T.__abs__ = abs
    T.__getitem__ = getitem
    T.__setitem__ = setitem

    # math, reductions, activations and shapes, as functional's functions with the tensor first
    T.matmul = matmul
    T.exp, T.log, T.sqrt, T.abs, T.clip = exp, log, sqrt, abs, clip
    T.sum, T.mean, T.max, T.min = sum, mean, max, min
    T.clamp, T.clamp_min, T.clamp_max, T.masked_fill, T.where = clamp, clamp_min, clamp_max, masked_fill, _where
    T.argmax, T.argmin, T.amax, T.amin, T.gather = argmax, argmin, amax, amin, gather
    T.var, T.std, T.logsumexp, T.maximum, T.minimum = var, std, logsumexp, maximum, minimum
    T.sort, T.argsort, T.topk = sort, argsort, topk
    T.relu, T.sigmoid, T.tanh, T.softmax, T.log_softmax = relu, sigmoid, tanh, softmax, log_softmax
    T.reshape, T.flatten, T.transpose, T.permute = reshape, flatten, transpose, permute
    T.view, T.unsqueeze, T.squeeze, T.expand, T.repeat, T.t = view, unsqueeze, squeeze, expand, repeat, t
    T.split, T.chunk = split, chunk
    T.T = property(lambda self: transpose(self))
    T.expand_as = lambda self, other: expand(self, other.shape)
    T.view_as = lambda self, other: view(self, other.shape)
    T.reshape_as = lambda self, other: reshape(self, other.shape)

    # comparisons and logic give boolean Tensors: they have no gradient
    T.__eq__, T.__ne__, T.__lt__, T.__gt__, T.__le__, T.__ge__ = map(_compare, (eq, ne, lt, gt, le, ge))
    T.__hash__ = object.__hash__
    T.eq, T.ne, T.lt, T.gt, T.le, T.ge = eq, ne, lt, gt, le, ge
    T.all, T.any, T.isnan, T.isinf, T.isfinite, T.allclose, T.equal = all, any, isnan, isinf, isfinite, allclose, equal
    T.__and__, T.__or__, T.__xor__, T.__invert__ = logical_and, logical_or, logical_xor, logical_not
    T.logical_and, T.logical_or, T.logical_xor, T.logical_not = logical_and, logical_or, logical_xor, logical_not

    # dtypes and conversions: differentiable, as torch's .to(dtype)
    T.astype = cast
    T.float = lambda self: cast(self, np.float32)
    T.double = lambda self: cast(self, np.float64)
    T.long = lambda self: cast(self, np.int64)
    T.int = lambda self: cast(self, np.int32)
    T.bool = lambda self: cast(self, np.bool_)
    T.half = lambda self: cast(self, np.float16)
    T.type_as = lambda self, other: cast(self, other.dtype)
    T.to, T.type = to, _type
    T.__int__, T.__float__, T.__index__ = _scalar(int), _scalar(float), _scalar(int, integer_only=True)
    T.__format__ = _format
    T.__array__ = _array

    # sizes, devices, copies and the graph
    T.size, T.numel, T.nelement = size, numel, numel
    T.dim = T.ndimension = lambda self: self.data.ndim
    T.is_floating_point = is_floating_point
    T.clone = clone
    T.cpu = T.contiguous = lambda self: self  # NumPy arrays are on the CPU; NumPy copies where it must
    T.device = property(lambda self: "cpu")
    T.grad_fn = property(lambda self: self._ctx)  # the Function that made this tensor (None for leaves)

    # in-place updates
    T.add_, T.sub_, T.zero_, T.fill_, T.copy_, T.clamp_ = add_, sub_, zero_, fill_, copy_, clamp_
    T.masked_fill_ = masked_fill_
    T.mul_ = _ufunc_inplace(np.multiply, "mul_")
    T.div_ = _ufunc_inplace(np.true_divide, "div_")
    T.pow_ = _ufunc_inplace(np.power, "pow_")
    T.__iadd__ = _augmented(add_, add)
    T.__isub__ = _augmented(sub_, sub)
    T.__imul__ = _augmented(T.mul_, mul)
    T.__itruediv__ = _augmented(T.div_, div)
