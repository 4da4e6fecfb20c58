"""zerograd: deep learning from zero on NumPy, along the path of 'Deep Learning from Scratch'."""

from . import functional, nn, optim  # importing functional binds the operators to Tensor
from ._version import __version__
from .errors import DataError, ModelFileError, ShapeError, ZerogradError
from .numerical import (
    GradcheckError,
    GradcheckResult,
    gradcheck,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
)
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .torch_names import *  # noqa: F403  (PyTorch's vocabulary: zeros, float32, manual_seed, cat, save, ...)
from .torch_names import __all__ as _torch_names

__all__ = [
    "DataError", "Function", "GradcheckError", "GradcheckResult", "ModelFileError", "ShapeError", "Tensor",
    "ZerogradError", "__version__", "enable_grad", "functional", "nn", "optim", "gradcheck", "gradient_descent",
    "is_grad_enabled", "no_grad", "numerical_diff", "numerical_gradient", "tensor", *_torch_names,
]
