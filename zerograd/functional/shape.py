"""Operations that move elements around: reshape, transpose, indexing, concatenation."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError
from ..tensor import Function, Tensor
from .math import as_tensor


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)


class Transpose(Function):
    def forward(self, a, axes=None):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, g):
        if self.axes is None:
            return np.transpose(g)
        return np.transpose(g, np.argsort(self.axes))


class BroadcastTo(Function):
    def forward(self, a, shape):
        return np.broadcast_to(a, shape)

    def backward(self, g):
        return g  # the engine sums a broadcast gradient back to the input's shape


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray, Tensor)) for p in parts)


class GetItem(Function):
    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return np.asarray(a[index])

    def backward(self, g):
        grad = np.zeros(self.shape, dtype=self.dtype)
        if _has_array_index(self.index):
            np.add.at(grad, self.index, g)  # an index may repeat: gradients must add up
        else:
            grad[self.index] = g
        return grad


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        return tuple(np.split(g, self.splits, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, g):
        return tuple(np.moveaxis(g, self.axis, 0))


def reshape(a: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """Same elements in a new shape (one dimension may be -1)."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return Reshape.apply(as_tensor(a), shape=shape)


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Joins dimensions start_dim..end_dim into one: all of them by default, as torch.flatten (nn.Flatten keeps N)."""
    shape = a.shape
    if not shape:
        return reshape(a, (1,))
    start, end = start_dim % len(shape), end_dim % len(shape)
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {shape}")
    return reshape(a, shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])


def view(a: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """reshape under PyTorch's name (NumPy copies where torch.view would refuse a non-contiguous tensor)."""
    return reshape(a, *shape)


def unsqueeze(a: Tensor, dim: int) -> Tensor:
    """A new axis of length 1 at `dim` (-1 appends one): (3,) -> unsqueeze(0) -> (1, 3)."""
    a = as_tensor(a)
    position = dim if dim >= 0 else dim + a.ndim + 1
    if not 0 <= position <= a.ndim:
        raise ShapeError(f"unsqueeze: dim {dim} is out of range for a tensor of {a.ndim} dimensions")
    return reshape(a, a.shape[:position] + (1,) + a.shape[position:])


def squeeze(a: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """Removes axes of length 1: all of them, or those among `dim` (others stay, as in PyTorch)."""
    a = as_tensor(a)
    if dim is None:
        dims = {i for i, n in enumerate(a.shape) if n == 1}
    else:
        dims = {d % a.ndim for d in ((dim,) if isinstance(dim, int) else dim) if a.shape[d] == 1} if a.ndim else set()
    return reshape(a, tuple(n for i, n in enumerate(a.shape) if i not in dims))


def _sizes(sizes: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], int) else tuple(sizes)


def expand(a: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """A broadcast (read-only) view to `sizes`; -1 keeps a dimension, new ones may be added in front."""
    a = as_tensor(a)
    sizes = _sizes(sizes)
    extra = len(sizes) - a.ndim
    if extra < 0:
        raise ShapeError(f"expand: {len(sizes)} sizes given for a tensor of {a.ndim} dimensions {a.shape}")
    shape = tuple(a.shape[i - extra] if n == -1 and i >= extra else n for i, n in enumerate(sizes))
    return broadcast_to(a, shape)


class Repeat(Function):
    def forward(self, a, repeats):
        self.shape = (1,) * (len(repeats) - a.ndim) + a.shape
        self.repeats = repeats
        return np.tile(a, repeats)

    def backward(self, g):
        # (r0*s0, r1*s1, ...) -> (r0, s0, r1, s1, ...): sum the copies
        split = [n for pair in zip(self.repeats, self.shape) for n in pair]
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(self.shape)


def repeat(a: Tensor, *repeats: int | Sequence[int]) -> Tensor:
    """a tiled `repeats` times per dimension, as torch's repeat (NumPy's tile): (2,) -> repeat(3, 2) -> (3, 4)."""
    a = as_tensor(a)
    repeats = _sizes(repeats)
    if len(repeats) < a.ndim:
        raise ShapeError(f"repeat: {len(repeats)} counts given for a tensor of {a.ndim} dimensions {a.shape}")
    return Repeat.apply(a, repeats=repeats)


def split(a: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces along `dim`: of split_size each (the last may be smaller), or of the listed sizes."""
    a = as_tensor(a)
    length = a.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections < 1:
            raise ShapeError(f"split: split_size must be positive, got {split_size_or_sections}")
        step = split_size_or_sections
        sizes = [min(step, length - start) for start in range(0, length, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ShapeError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {dim} has {length}")
    pieces, start = [], 0
    lead = (slice(None),) * (dim % a.ndim)
    for n in sizes:
        pieces.append(getitem(a, lead + (slice(start, start + n),)))
        start += n
    return tuple(pieces)


def chunk(a: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most `chunks` pieces of equal size ceil(n / chunks) along `dim`, as torch.chunk."""
    if chunks < 1:
        raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    length = as_tensor(a).shape[dim]
    return split(a, max(-(-length // chunks), 1), dim)


def t(a: Tensor) -> Tensor:
    """Transpose of a matrix (n, m) -> (m, n); vectors are returned as they are, as torch.t."""
    a = as_tensor(a)
    if a.ndim > 2:
        raise ShapeError(f"t() expects at most 2 dimensions, got {a.shape}: use transpose(dim0, dim1)")
    return Transpose.apply(a) if a.ndim == 2 else a


def transpose(a: Tensor, *axes: int) -> Tensor:
    """Swaps two axes (`transpose(a, 0, 1)`) or, with no axes, reverses them all."""
    if not axes:
        return Transpose.apply(as_tensor(a))
    if len(axes) != 2:
        raise TypeError("transpose takes two axes to swap; use permute for a full reordering")
    order = list(range(a.ndim))
    order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
    return Transpose.apply(as_tensor(a), axes=tuple(order))


def permute(a: Tensor, *axes: int | Sequence[int]) -> Tensor:
    """Reorders all axes: permute(a, 0, 2, 3, 1) turns NCHW into NHWC."""
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = tuple(axes[0])
    return Transpose.apply(as_tensor(a), axes=tuple(axes))


def broadcast_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    """a repeated along broadcast dimensions to `shape`."""
    return BroadcastTo.apply(as_tensor(a), shape=tuple(shape))


def getitem(a: Tensor, index: Any) -> Tensor:
    """a[index]: slices, integers, masks and integer arrays as in NumPy."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(a, index=index)


def cat(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Joins tensors along an existing axis."""
    return Concatenate.apply(*[as_tensor(t) for t in tensors], axis=axis if dim is None else dim)


concatenate = cat


def stack(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Joins same-shaped tensors along a new axis."""
    return Stack.apply(*[as_tensor(t) for t in tensors], axis=axis if dim is None else dim)
