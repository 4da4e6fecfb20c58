"""Differentiable operations (`zerograd.functional`, imported as F): PyTorch's names and argument order.

Importing this package also binds the operators (`+`, `@`, `x.sum()`, ...) to Tensor, so that
tensor.py stays only the graph machinery.
"""

import numpy as np

from ..tensor import Tensor
from . import methods as _methods
from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .compare import (
    all,
    allclose,
    any,
    eq,
    equal,
    ge,
    gt,
    isclose,
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
from .conv import avg_pool2d, conv2d, im2col, max_pool2d
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .math import (
    ValuesIndices,
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
    linear,
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
    one_hot,
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
from .methods import clone, is_floating_point, is_tensor, numel
from .norm import batch_norm, dropout
from .shape import (
    broadcast_to,
    cat,
    chunk,
    concatenate,
    expand,
    flatten,
    getitem,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    t,
    transpose,
    unsqueeze,
    view,
)

__all__ = [
    "abs", "add", "as_tensor", "avg_pool2d", "cast", "batch_norm", "conv2d", "im2col", "max_pool2d",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "broadcast_to", "cat", "clip", "concatenate", "cross_entropy", "div", "dropout", "exp", "flatten",
    "getitem", "leaky_relu", "linear", "log", "log_softmax", "matmul", "max", "mean", "min", "mse_loss",
    "mul", "neg", "nll_loss", "permute", "pow", "relu", "reshape", "sigmoid", "softmax", "sqrt", "stack",
    "sub", "sum", "tanh", "transpose",
    "ValuesIndices", "all", "allclose", "amax", "amin", "any", "argmax", "argmin", "chunk", "clamp", "clamp_max",
    "clamp_min", "clone", "eq", "equal", "expand", "gather", "ge", "gt", "is_floating_point", "is_tensor", "isclose",
    "isfinite", "isinf", "isnan", "le", "logical_and", "logical_not", "logical_or", "logsumexp", "lt", "masked_fill",
    "maximum", "minimum", "ne", "numel", "repeat", "split", "squeeze", "std", "t", "unsqueeze", "var", "view",
    "where", "argsort", "logical_xor", "one_hot", "sort", "topk",
]


def _compare(fn):  # noqa: ANN001, ANN202
    def method(self, other):  # noqa: ANN001, ANN202
        if other is None or isinstance(other, str):  # not comparable: Python falls back to identity
            return NotImplemented
        return fn(self, other)

    return method


def _bind_tensor_methods() -> None:
    T = Tensor
    T.__add__ = add
    T.__radd__ = lambda self, other: add(other, self)
    T.__sub__ = sub
    T.__rsub__ = lambda self, other: sub(other, self)
    T.__mul__ = mul
    T.__rmul__ = lambda self, other: mul(other, self)
    T.__truediv__ = div
    T.__rtruediv__ = lambda self, other: div(other, self)
    T.astype = cast  # differentiable, as torch's .to(dtype)
    T.float = lambda self: cast(self, np.float32)
    T.double = lambda self: cast(self, np.float64)
    T.__neg__ = neg
    T.__pow__ = pow
    T.__rpow__ = lambda self, other: pow(other, self)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, other: matmul(other, self)
    T.__getitem__ = getitem
    T.matmul = matmul
    T.exp, T.log, T.sqrt, T.abs, T.clip = exp, log, sqrt, abs, clip
    T.sum, T.mean, T.max, T.min = sum, mean, max, min
    T.reshape, T.flatten, T.transpose, T.permute = reshape, flatten, transpose, permute
    T.relu, T.sigmoid, T.tanh, T.softmax, T.log_softmax = relu, sigmoid, tanh, softmax, log_softmax
    T.T = property(lambda self: transpose(self))
    T.__abs__ = abs
    T.clamp, T.clamp_min, T.clamp_max, T.masked_fill, T.where = clamp, clamp_min, clamp_max, masked_fill, where
    T.argmax, T.argmin, T.amax, T.amin, T.gather = argmax, argmin, amax, amin, gather
    T.var, T.std, T.logsumexp, T.maximum, T.minimum = var, std, logsumexp, maximum, minimum
    T.view, T.unsqueeze, T.squeeze, T.expand, T.repeat, T.t = view, unsqueeze, squeeze, expand, repeat, t
    T.split, T.chunk, T.sort, T.argsort, T.topk = split, chunk, sort, argsort, topk
    T.expand_as = lambda self, other: expand(self, other.shape)
    T.view_as = lambda self, other: view(self, other.shape)
    T.reshape_as = lambda self, other: reshape(self, other.shape)
    # comparisons give boolean Tensors: they have no gradient
    T.__eq__, T.__ne__, T.__lt__, T.__gt__, T.__le__, T.__ge__ = map(_compare, (eq, ne, lt, gt, le, ge))
    T.__hash__ = object.__hash__
    T.eq, T.ne, T.lt, T.gt, T.le, T.ge = eq, ne, lt, gt, le, ge
    T.all, T.any, T.isnan, T.isinf, T.isfinite, T.allclose, T.equal = all, any, isnan, isinf, isfinite, allclose, equal
    T.__and__, T.__or__, T.__xor__, T.__invert__ = logical_and, logical_or, logical_xor, logical_not
    T.logical_and, T.logical_or, T.logical_xor, T.logical_not = logical_and, logical_or, logical_xor, logical_not
    _methods.bind(T)


_bind_tensor_methods()
