"""zerograd: deep learning from zero on NumPy, along the path of 'Deep Learning from Scratch'."""

__version__ = "0.1.0"

from . import functional, nn, optim  # noqa: E402  (importing functional binds the operators to Tensor)
from .errors import DataError, ModelFileError, ShapeError, ZerogradError  # noqa: E402
from .numerical import (  # noqa: E402
    GradcheckError,
    GradcheckResult,
    gradcheck,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
)
from .tensor import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor  # noqa: E402
from .torch_names import *  # noqa: E402, F403  (PyTorch's vocabulary: zeros, float32, manual_seed, cat, save, ...)
from .torch_names import __all__ as _torch_names

__all__ = [
    "DataError", "Function", "GradcheckError", "GradcheckResult", "ModelFileError", "ShapeError", "Tensor",
    "ZerogradError", "__version__", "enable_grad", "functional", "nn", "optim", "gradcheck", "gradient_descent",
    "is_grad_enabled", "no_grad", "numerical_diff", "numerical_gradient", "tensor", *_torch_names,
]
