"""Tensor methods beyond the operators: sizes, conversions, copies and in-place updates, with PyTorch's names.

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
from .math import add, as_tensor, cast, div, mul, sub


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
    if t.requires_grad and _tensor._grad_enabled:
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
    if other.requires_grad and _tensor._grad_enabled:
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
        if _tensor._grad_enabled and (
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


def bind(T: type[Tensor]) -> None:
    """Adds this module's methods to Tensor."""
    T.__int__, T.__float__, T.__index__ = _scalar(int), _scalar(float), _scalar(int, integer_only=True)
    T.__format__, T.type = _format, _type
    T.cpu = T.contiguous = lambda self: self  # NumPy arrays are on the CPU; NumPy copies where it must
    T.device = property(lambda self: "cpu")
    T.__setitem__ = setitem
    T.grad_fn = property(lambda self: self._ctx)  # the Function that made this tensor (None for leaves)
    T.size, T.numel, T.nelement = size, numel, numel
    T.dim = T.ndimension = lambda self: self.data.ndim
    T.is_floating_point = is_floating_point
    T.to, T.clone = to, clone
    T.long = lambda self: cast(self, np.int64)
    T.int = lambda self: cast(self, np.int32)
    T.bool = lambda self: cast(self, np.bool_)
    T.half = lambda self: cast(self, np.float16)
    T.type_as = lambda self, other: cast(self, other.dtype)
    T.__array__ = _array
    T.add_, T.sub_, T.zero_, T.fill_, T.copy_, T.clamp_ = add_, sub_, zero_, fill_, copy_, clamp_
    T.masked_fill_ = masked_fill_
    T.mul_ = _ufunc_inplace(np.multiply, "mul_")
    T.div_ = _ufunc_inplace(np.true_divide, "div_")
    T.pow_ = _ufunc_inplace(np.power, "pow_")
    T.__iadd__ = _augmented(add_, add)
    T.__isub__ = _augmented(sub_, sub)
    T.__imul__ = _augmented(T.mul_, mul)
    T.__itruediv__ = _augmented(T.div_, div)
