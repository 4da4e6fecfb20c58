"""Comparisons and logic: boolean Tensors that carry no gradient (a step function has none)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


def _array(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _bool(array: Any) -> Tensor:
    return Tensor._wrap(np.asarray(array))


def eq(input: Any, other: Any) -> Tensor:
    """input == other elementwise (broadcast) -> bool Tensor."""
    return _bool(np.equal(_array(input), _array(other)))


def ne(input: Any, other: Any) -> Tensor:
    """input != other elementwise -> bool Tensor."""
    return _bool(np.not_equal(_array(input), _array(other)))


def gt(input: Any, other: Any) -> Tensor:
    """input > other elementwise -> bool Tensor."""
    return _bool(np.greater(_array(input), _array(other)))


def ge(input: Any, other: Any) -> Tensor:
    """input >= other elementwise -> bool Tensor."""
    return _bool(np.greater_equal(_array(input), _array(other)))


def lt(input: Any, other: Any) -> Tensor:
    """input < other elementwise -> bool Tensor."""
    return _bool(np.less(_array(input), _array(other)))


def le(input: Any, other: Any) -> Tensor:
    """input <= other elementwise -> bool Tensor."""
    return _bool(np.less_equal(_array(input), _array(other)))


def logical_and(input: Any, other: Any) -> Tensor:
    """Elementwise and of truth values -> bool Tensor (also `a & b` on bool tensors)."""
    return _bool(np.logical_and(_array(input), _array(other)))


def logical_or(input: Any, other: Any) -> Tensor:
    """Elementwise or of truth values -> bool Tensor (also `a | b` on bool tensors)."""
    return _bool(np.logical_or(_array(input), _array(other)))


def logical_xor(input: Any, other: Any) -> Tensor:
    """Elementwise exclusive or of truth values -> bool Tensor (also `a ^ b` on bool tensors)."""
    return _bool(np.logical_xor(_array(input), _array(other)))


def logical_not(input: Any) -> Tensor:
    """Elementwise not -> bool Tensor (also `~a` on a bool tensor)."""
    return _bool(np.logical_not(_array(input)))


def isnan(input: Any) -> Tensor:
    """Where input is NaN -> bool Tensor."""
    return _bool(np.isnan(_array(input)))


def isinf(input: Any) -> Tensor:
    """Where input is +-inf -> bool Tensor."""
    return _bool(np.isinf(_array(input)))


def isfinite(input: Any) -> Tensor:
    """Where input is neither inf nor NaN -> bool Tensor."""
    return _bool(np.isfinite(_array(input)))


def all(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Whether every element (along `dim`, or of the whole tensor) is true -> bool Tensor."""
    return _bool(np.all(_array(input), axis=dim, keepdims=keepdim))


def any(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Whether some element (along `dim`, or of the whole tensor) is true -> bool Tensor."""
    return _bool(np.any(_array(input), axis=dim, keepdims=keepdim))


def isclose(input: Any, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol * |other| elementwise -> bool Tensor."""
    return _bool(np.isclose(_array(input), _array(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input: Any, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """Whether isclose holds everywhere (a Python bool, as torch.allclose)."""
    return bool(np.allclose(_array(input), _array(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input: Any, other: Any) -> bool:
    """Whether both have the same shape and the same elements (a Python bool, as torch.equal)."""
    return bool(np.array_equal(_array(input), _array(other)))
