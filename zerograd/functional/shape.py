"""Operations that move elements around: reshape, transpose, indexing, concatenation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

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


def flatten(a: Tensor, start_dim: int = 0) -> Tensor:
    """Joins the dimensions from `start_dim` on: all of them by default, as torch.flatten (nn.Flatten keeps N)."""
    return reshape(a, a.shape[:start_dim] + (-1,))


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
