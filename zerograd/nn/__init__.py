"""Neural-network building blocks (`zerograd.nn`, as torch.nn): Module, Parameter, layers and init."""

from . import init
from .layers import (
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import IncompatibleKeys, Module, Parameter, Sequential

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "Dropout", "Flatten", "Identity", "IncompatibleKeys", "LeakyReLU", "Linear",
    "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh", "init",
]
