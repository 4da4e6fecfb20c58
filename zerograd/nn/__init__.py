"""Neural-network building blocks (`zerograd.nn`, as torch.nn): Module, Parameter, layers and init."""

from . import init
from .layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import IncompatibleKeys, Module, Parameter, Sequential

__all__ = [
    "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Identity", "IncompatibleKeys",
    "LeakyReLU", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Tanh",
    "init",
]
