"""Differentiable operations (`zerograd.functional`, imported as F): PyTorch's names and argument order.

Importing this package also binds the operators and methods (`+`, `@`, `x.sum()`, ...) to Tensor, all in
`methods.bind`, so that tensor.py stays only the graph machinery; `zerograd/tensor.pyi` declares them for editors.
"""

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
from .conv import adaptive_avg_pool2d, avg_pool2d, conv2d, im2col, max_pool2d
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
    "adaptive_avg_pool2d", "binary_cross_entropy", "binary_cross_entropy_with_logits",
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


_methods.bind(Tensor)
