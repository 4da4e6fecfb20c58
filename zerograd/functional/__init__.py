"""Differentiable operations (`zerograd.functional`, imported as F): PyTorch's names and argument order.

Importing this package also binds the operators (`+`, `@`, `x.sum()`, ...) to Tensor, so that
tensor.py stays only the graph machinery.
"""

import numpy as np

from ..tensor import Tensor
from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import avg_pool2d, conv2d, im2col, max_pool2d
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from .math import (
    abs,
    add,
    as_tensor,
    cast,
    clip,
    div,
    exp,
    linear,
    log,
    matmul,
    max,
    mean,
    min,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    sum,
)
from .norm import batch_norm, dropout
from .shape import broadcast_to, cat, concatenate, flatten, getitem, permute, reshape, stack, transpose

__all__ = [
    "abs", "add", "as_tensor", "avg_pool2d", "cast", "batch_norm", "conv2d", "im2col", "max_pool2d",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "broadcast_to", "cat", "clip", "concatenate", "cross_entropy", "div", "dropout", "exp", "flatten",
    "getitem", "leaky_relu", "linear", "log", "log_softmax", "matmul", "max", "mean", "min", "mse_loss",
    "mul", "neg", "nll_loss", "permute", "pow", "relu", "reshape", "sigmoid", "softmax", "sqrt", "stack",
    "sub", "sum", "tanh", "transpose",
]


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
    # comparisons give plain boolean arrays: they have no gradient
    T.__eq__ = lambda self, other: self.data == (other.data if isinstance(other, Tensor) else other)
    T.__lt__ = lambda self, other: self.data < (other.data if isinstance(other, Tensor) else other)
    T.__gt__ = lambda self, other: self.data > (other.data if isinstance(other, Tensor) else other)
    T.__le__ = lambda self, other: self.data <= (other.data if isinstance(other, Tensor) else other)
    T.__ge__ = lambda self, other: self.data >= (other.data if isinstance(other, Tensor) else other)
    T.__hash__ = object.__hash__


_bind_tensor_methods()
