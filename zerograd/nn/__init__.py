"""Neural-network building blocks (`zerograd.nn`, as torch.nn): Module, Parameter, layers and init."""

import sys as _sys

from .. import functional as _functional
from . import init
from .containers import ModuleDict, ModuleList
from .layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, Parameter, Sequential

# `import zerograd.nn.functional as F` finds the very module zerograd.functional, as in PyTorch
functional = _functional
_sys.modules[__name__ + ".functional"] = _functional

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Identity", "IncompatibleKeys",
    "LeakyReLU", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
    "init", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "ModuleDict", "ModuleList", "NLLLoss",
    "functional", "LogSoftmax", "AdaptiveAvgPool2d",
]
