"""Weight initialisation (the book's section 6.2): each function fills a Parameter or array in place.

Standard deviations for a weight with fan_in inputs and fan_out outputs per unit:

    normal_(w, std)     std                          the book's weight_init_std = 0.01
    lecun_normal_       1 / sqrt(fan_in)             what the book calls "Xavier" (sigmoid, tanh)
    xavier_normal_      sqrt(2 / (fan_in + fan_out)) Glorot & Bengio 2010, as torch.nn.init.xavier_normal_
    kaiming_normal_     sqrt(2 / fan_in)             He et al. 2015 (the book's "He"), for ReLU

The uniform variants draw from [-b, b] with b = sqrt(3) * std. Fans are computed for Linear weights
(out, in) and conv weights (out, in, kh, kw): fan_in = in * kh * kw, fan_out = out * kh * kw.
`generator` is a NumPy Generator (zerograd.Generator is one), an int seed, or None for zerograd's default
generator, which zerograd.manual_seed resets.
Every function returns its argument, so `init.zeros_(layer.bias)` can be used inline.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from .. import random as _random
from ..errors import ShapeError, ZerogradError
from ..tensor import Tensor

T = TypeVar("T", Tensor, np.ndarray)
GeneratorLike = np.random.Generator | int | None


def _array(tensor: Tensor | np.ndarray) -> np.ndarray:
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise ZerogradError(
            f"init functions fill floating-point Tensors or arrays in place, got {type(tensor).__name__}"
            + (f" of dtype {array.dtype}" if isinstance(array, np.ndarray) else "")
        )
    return array


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in) or (out, in, kh, kw)."""
    if len(shape) < 2:
        raise ShapeError(
            f"fan in and fan out need a weight of at least 2 dimensions, got shape {tuple(shape)}: "
            "initialise biases with zeros_ or normal_"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for an activation, as torch.nn.init.calculate_gain: relu sqrt(2), tanh 5/3, ..."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    raise ZerogradError(
        f"unknown nonlinearity '{nonlinearity}': use linear, sigmoid, tanh, relu or leaky_relu"
    )


def _fill_normal(array: np.ndarray, mean: float, std: float, generator: GeneratorLike) -> None:
    rng = _random.rng(generator)
    if array.dtype in (np.float32, np.float64) and array.flags.c_contiguous:
        rng.standard_normal(out=array, dtype=array.dtype)  # straight into the weights: no temporary
    else:
        array[...] = rng.standard_normal(array.shape)
    array *= std
    if mean:
        array += mean


def _fill_uniform(array: np.ndarray, low: float, high: float, generator: GeneratorLike) -> None:
    rng = _random.rng(generator)
    if array.dtype in (np.float32, np.float64) and array.flags.c_contiguous:
        rng.random(out=array, dtype=array.dtype)
    else:
        array[...] = rng.random(array.shape)
    array *= high - low
    array += low


def normal_(tensor: T, std: float = 0.01, *, mean: float = 0.0, generator: GeneratorLike = None) -> T:
    """Fills any shape with N(mean, std^2); the default std 0.01 is the book's weight_init_std."""
    if std < 0:
        raise ZerogradError(f"normal_: std must be >= 0, got {std}")
    _fill_normal(_array(tensor), mean, std, generator)
    return tensor


def uniform_(tensor: T, a: float = 0.0, b: float = 1.0, *, generator: GeneratorLike = None) -> T:
    """Fills any shape with U(a, b)."""
    if b < a:
        raise ZerogradError(f"uniform_: need a <= b, got a={a}, b={b}")
    _fill_uniform(_array(tensor), a, b, generator)
    return tensor


def constant_(tensor: T, value: float) -> T:
    """Fills any shape with `value`."""
    _array(tensor).fill(value)
    return tensor


def zeros_(tensor: T) -> T:
    """Fills any shape with 0 (the usual bias init)."""
    return constant_(tensor, 0.0)


def ones_(tensor: T) -> T:
    """Fills any shape with 1 (BatchNorm's scale)."""
    return constant_(tensor, 1.0)


def lecun_normal_(tensor: T, *, generator: GeneratorLike = None) -> T:
    """Weight (out, in[, kh, kw]) ~ N(0, 1/fan_in): the book's "Xavier" initial value (LeCun 1998)."""
    array = _array(tensor)
    fan_in, _ = fan_in_and_fan_out(array.shape)
    _fill_normal(array, 0.0, 1.0 / math.sqrt(fan_in), generator)
    return tensor


def xavier_normal_(tensor: T, gain: float = 1.0, *, generator: GeneratorLike = None) -> T:
    """Weight (out, in[, kh, kw]) ~ N(0, gain^2 * 2/(fan_in + fan_out)): Glorot, as PyTorch's xavier_normal_."""
    array = _array(tensor)
    fan_in, fan_out = fan_in_and_fan_out(array.shape)
    _fill_normal(array, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)
    return tensor


def xavier_uniform_(tensor: T, gain: float = 1.0, *, generator: GeneratorLike = None) -> T:
    """Weight (out, in[, kh, kw]) ~ U(-b, b), b = gain * sqrt(6/(fan_in + fan_out)): Glorot uniform."""
    array = _array(tensor)
    fan_in, fan_out = fan_in_and_fan_out(array.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    _fill_uniform(array, -bound, bound, generator)
    return tensor


def _kaiming_std(shape: tuple[int, ...], a: float, mode: str, nonlinearity: str) -> float:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ZerogradError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got '{mode}'")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_normal_(
    tensor: T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "relu", *,
    generator: GeneratorLike = None,
) -> T:
    """Weight (out, in[, kh, kw]) ~ N(0, 2/fan_in) for ReLU: He init, as PyTorch's kaiming_normal_."""
    array = _array(tensor)
    _fill_normal(array, 0.0, _kaiming_std(array.shape, a, mode, nonlinearity), generator)
    return tensor


def kaiming_uniform_(
    tensor: T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "relu", *,
    generator: GeneratorLike = None,
) -> T:
    """Weight (out, in[, kh, kw]) ~ U(-b, b), b = sqrt(6/fan_in) for ReLU: He uniform."""
    array = _array(tensor)
    bound = math.sqrt(3.0) * _kaiming_std(array.shape, a, mode, nonlinearity)
    _fill_uniform(array, -bound, bound, generator)
    return tensor


# The `init=` argument of Linear (and the book's weight_init_std): name -> initialiser.
_WEIGHT_INITS = {
    "he": kaiming_normal_,
    "relu": kaiming_normal_,
    "xavier": lecun_normal_,  # the book's meaning: std 1/sqrt(fan_in)
    "sigmoid": lecun_normal_,
    "glorot": xavier_normal_,  # PyTorch's meaning of "xavier"
    "normal": normal_,  # std 0.01
}


def init_weight_(tensor: T, init: str | float = "he", *, generator: GeneratorLike = None) -> T:
    """Fills a weight by the book's weight_init_std convention: a name from the table or a float std.

    "he"/"relu": std sqrt(2/fan_in); "xavier"/"sigmoid": std 1/sqrt(fan_in) (the book's Xavier);
    "glorot": std sqrt(2/(fan_in+fan_out)) (PyTorch's Xavier); "normal": std 0.01; a float: that std.
    """
    if isinstance(init, str):
        fn = _WEIGHT_INITS.get(init.lower())
        if fn is None:
            raise ZerogradError(
                f"unknown init '{init}': use one of {', '.join(_WEIGHT_INITS)} or a float standard deviation"
            )
        return fn(tensor, generator=generator)
    if isinstance(init, (int, float)) and not isinstance(init, bool) and init >= 0:
        return normal_(tensor, float(init), generator=generator)
    raise ZerogradError(
        f"init must be one of {', '.join(_WEIGHT_INITS)} or a float standard deviation >= 0, got {init!r}"
    )
