"""Tensor creation with PyTorch's names: zeros, ones, full, arange, rand, randn, ... (float32 by default).

Each takes `dtype=` (a NumPy dtype or zerograd.float32, ...) and `requires_grad=`; the random ones take
`generator=` and otherwise draw from zerograd's default generator, which `zerograd.manual_seed` resets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import random as _random
from .errors import ZerogradError
from .tensor import Tensor

Size = int | Sequence[int]
GeneratorLike = np.random.Generator | int | None


def _size(size: tuple[Any, ...]) -> tuple[int, ...]:
    """zeros(2, 3), zeros((2, 3)) and zeros([2, 3]) all mean the shape (2, 3)."""
    if len(size) == 1 and not isinstance(size[0], (int, np.integer)):
        size = tuple(size[0])
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in size):
        raise ZerogradError(f"a size is a sequence of non-negative ints, got {size}")
    return tuple(int(n) for n in size)


def _or(dtype: Any, default: Any) -> Any:
    return default if dtype is None else dtype


def _new(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def _float_dtype(dtype: Any, what: str) -> np.dtype:
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise ZerogradError(f"{what} makes floating-point tensors, got dtype={dtype}: use randint for integers")
    return dtype


def zeros(*size: Size, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape filled with 0."""
    return _new(np.zeros(_size(size), dtype=_or(dtype, np.float32)), requires_grad)


def ones(*size: Size, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape filled with 1."""
    return _new(np.ones(_size(size), dtype=_or(dtype, np.float32)), requires_grad)


def empty(*size: Size, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape with unspecified contents."""
    return _new(np.empty(_size(size), dtype=_or(dtype, np.float32)), requires_grad)


def _fill_dtype(value: Any) -> Any:
    # as torch.full: a bool fill makes bool, an int fill int64, a float fill float32
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    return np.int64 if isinstance(value, (int, np.integer)) else np.float32


def full(size: Size, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape `size` filled with fill_value (dtype from the value when not given)."""
    return _new(np.full(_size((size,)), fill_value, dtype=_or(dtype, _fill_dtype(fill_value))), requires_grad)


def arange(
    start: float, end: float | None = None, step: float = 1, *, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """start, start + step, ... below end (arange(n) is 0..n-1); int64 for ints, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else np.float32
    return _new(np.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(
    start: float, end: float, steps: int, *, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    return _new(np.linspace(start, end, steps, dtype=_or(dtype, np.float32)), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Identity matrix (n, m) (square when m is None)."""
    return _new(np.eye(n, m, dtype=_or(dtype, np.float32)), requires_grad)


def rand(
    *size: Size, generator: GeneratorLike = None, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Uniform samples in [0, 1) of the given shape."""
    dtype = _float_dtype(dtype, "rand")
    array = _random.rng(generator).random(_size(size), dtype=np.float64 if dtype == np.float64 else np.float32)
    return _new(array.astype(dtype, copy=False), requires_grad)


def randn(
    *size: Size, generator: GeneratorLike = None, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples of the given shape."""
    dtype = _float_dtype(dtype, "randn")
    array = _random.rng(generator).standard_normal(
        _size(size), dtype=np.float64 if dtype == np.float64 else np.float32
    )
    return _new(array.astype(dtype, copy=False), requires_grad)


def randint(*args: Any, generator: GeneratorLike = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """randint(high, size) or randint(low, high, size): integers in [low, high), int64 by default."""
    if len(args) == 2:
        low, (high, size) = 0, args
    elif len(args) == 3:
        low, high, size = args
    else:
        raise ZerogradError("randint takes (high, size) or (low, high, size), e.g. randint(0, 10, (3,))")
    array = _random.rng(generator).integers(low, high, _size((size,)), dtype=np.int64)
    return _new(array.astype(_or(dtype, np.int64), copy=False), requires_grad)


def randperm(n: int, *, generator: GeneratorLike = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    return _new(_random.rng(generator).permutation(n).astype(_or(dtype, np.int64)), requires_grad)


def _like(input: Any, dtype: Any) -> tuple[tuple[int, ...], Any]:
    array = input.data if isinstance(input, Tensor) else np.asarray(input)
    return array.shape, _or(dtype, array.dtype)


def zeros_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of input's shape and dtype."""
    shape, dtype = _like(input, dtype)
    return zeros(shape, dtype=dtype, requires_grad=requires_grad)


def ones_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of input's shape and dtype."""
    shape, dtype = _like(input, dtype)
    return ones(shape, dtype=dtype, requires_grad=requires_grad)


def empty_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Unspecified contents of input's shape and dtype."""
    shape, dtype = _like(input, dtype)
    return empty(shape, dtype=dtype, requires_grad=requires_grad)


def full_like(input: Any, fill_value: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """fill_value in input's shape and dtype."""
    shape, dtype = _like(input, dtype)
    return full(shape, fill_value, dtype=dtype, requires_grad=requires_grad)


def rand_like(
    input: Any, *, generator: GeneratorLike = None, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Uniform samples in [0, 1) of input's shape and (floating) dtype."""
    shape, dtype = _like(input, dtype)
    return rand(shape, generator=generator, dtype=dtype, requires_grad=requires_grad)


def randn_like(
    input: Any, *, generator: GeneratorLike = None, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples of input's shape and (floating) dtype."""
    shape, dtype = _like(input, dtype)
    return randn(shape, generator=generator, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing the NumPy array's memory and keeping its dtype (float64 stays float64), as torch."""
    if not isinstance(array, np.ndarray):
        raise ZerogradError(f"from_numpy needs a NumPy array, got {type(array).__name__}: use zerograd.tensor(data)")
    return Tensor(array)
