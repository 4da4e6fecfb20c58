"""Layers as Modules: the book's Affine, ReLU, Sigmoid, Dropout and BatchNorm with PyTorch's names.

Each layer keeps its parameters and settings; the computation is one call into zerograd.functional.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import functional as F
from .. import random as _random
from ..errors import ShapeError, ZerogradError
from ..functional.conv import conv2d_relu, conv2d_relu_max_pool2d, pair
from ..functional.math import linear_relu
from ..tensor import Tensor
from . import init as _init
from .module import Module, Parameter, register_fused


class Linear(Module):
    """Affine layer y = x @ weight.T + bias: x (..., in_features) -> y (..., out_features).

    weight is (out_features, in_features) and bias (out_features,), as in PyTorch (the book's W is
    the transpose). `init` sets the weight like the book's weight_init_std: "he" (default, for ReLU),
    "xavier" (the book's: std 1/sqrt(in_features)), "glorot" (PyTorch's Xavier), "normal" (std 0.01)
    or a float std; see zerograd.nn.init. Biases start at zero. `generator`: Generator, seed or None.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *,
        generator: np.random.Generator | int | None = None, init: str | float = "he",
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ZerogradError(
                f"Linear needs positive sizes, got in_features={in_features}, out_features={out_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        _init.init_weight_(self.weight, init, generator=generator)
        if bias:
            self.bias = Parameter(np.zeros(out_features, dtype=np.float32))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        """(..., in_features) -> (..., out_features)."""
        return F.linear(self._check(x), self.weight, self.bias)

    def forward_relu(self, x: Tensor, relu: ReLU | None = None) -> Tensor:
        """relu(self(x)) as one node (functional.math.linear_relu): what Sequential runs for this layer and a ReLU."""
        return linear_relu(self._check(x), self.weight, self.bias)

    def _check(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}) got input of shape {x.shape}: the last "
                f"dimension must be {self.in_features} (flatten images first, e.g. with nn.Flatten())"
            )
        return x

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution (the book's Convolution): (N, in_channels, H, W) -> (N, out_channels, OH, OW).

    weight is (out_channels, in_channels, kh, kw), bias (out_channels,), as in PyTorch; the weight
    starts with He initialisation (fan_in = in_channels * kh * kw) like Linear, the bias at zero.
    `init` and `generator` as for Linear.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, bias: bool = True, *,
        generator: np.random.Generator | int | None = None, init: str | float = "he",
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ZerogradError(
                f"Conv2d needs positive channel counts, got in_channels={in_channels}, out_channels={out_channels}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        # refuse bad settings now, not at first use
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = pair(stride, "stride", "Conv2d", 1)
        self.padding = pair(padding, "padding", "Conv2d", 0)
        self.weight = Parameter(np.empty((out_channels, in_channels, *self.kernel_size), dtype=np.float32))
        _init.init_weight_(self.weight, init, generator=generator)
        if bias:
            self.bias = Parameter(np.zeros(out_channels, dtype=np.float32))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, out_channels, OH, OW)."""
        return self._apply_conv(F.conv2d, x)

    def forward_relu(self, x: Tensor, relu: ReLU | None = None) -> Tensor:
        """relu(self(x)) as one node (functional.conv.conv2d_relu): what Sequential runs for this layer and a ReLU."""
        return self._apply_conv(conv2d_relu, x)

    def forward_relu_max_pool2d(self, x: Tensor, relu: ReLU, pool: MaxPool2d) -> Tensor:
        """pool(relu(self(x))) as one node (functional.conv.conv2d_relu_max_pool2d) when the pooling windows tile the
        output (stride = kernel size, no padding), else forward_relu and then pool: what Sequential runs for this
        layer, a ReLU and a MaxPool2d."""
        if pool.stride != pool.kernel_size or pool.padding != (0, 0):
            return pool(self.forward_relu(x, relu))
        try:
            return conv2d_relu_max_pool2d(x, self.weight, self.bias, self.stride, self.padding, pool.kernel_size)
        except ShapeError as err:
            layer = pool if str(err).startswith("max_pool2d") else self  # the error as the layer on its own gives it
            raise ShapeError(f"{type(layer).__name__}({layer.extra_repr()}): {err}") from err

    def _apply_conv(self, conv: Callable[..., Tensor], x: Tensor) -> Tensor:
        try:
            return conv(x, self.weight, self.bias, self.stride, self.padding)
        except ShapeError as err:
            raise ShapeError(f"{type(self).__name__}({self.extra_repr()}): {err}") from err

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """Shared body of MaxPool2d and AvgPool2d: a window sliding over each channel of (N, C, H, W)."""

    _function = staticmethod(F.max_pool2d)

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        # refuse bad settings now, not at first use
        settings = F.conv._pool_params(kernel_size, stride, padding, type(self).__name__)
        self.kernel_size, self.stride, self.padding = settings["kernel_size"], settings["stride"], settings["padding"]

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, OH, OW)."""
        try:
            return type(self)._function(x, self.kernel_size, self.stride, self.padding)
        except ShapeError as err:
            raise ShapeError(f"{type(self).__name__}({self.extra_repr()}): {err}") from err

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each kernel window (the book's Pooling); stride defaults to kernel_size."""


class AvgPool2d(_Pool2d):
    """Mean over each kernel window (padding zeros count, as PyTorch's default); stride defaults to kernel_size."""

    _function = staticmethod(F.avg_pool2d)


class AdaptiveAvgPool2d(Module):
    """Mean over adaptive windows to a fixed output size whatever the image size: (N, C, H, W) -> (N, C, OH, OW).

    output_size is an int or an (OH, OW) pair, a None entry keeping the input's size, as PyTorch's;
    AdaptiveAvgPool2d(1) is global average pooling (ResNet's last pooling).
    """

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = F.conv.adaptive_pool_size(output_size, "AdaptiveAvgPool2d")  # refused now, not at first use

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, OH, OW)."""
        try:
            return F.adaptive_avg_pool2d(x, self.output_size)
        except ShapeError as err:
            raise ShapeError(f"{type(self).__name__}({self.extra_repr()}): {err}") from err

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class ReLU(Module):
    """max(x, 0) elementwise, any shape."""

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape."""
        return F.relu(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x; any shape."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape."""
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise, any shape."""

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape."""
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x) elementwise, any shape."""

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape."""
        return F.tanh(x)


class Softmax(Module):
    """softmax along `dim` (the class axis, last by default); any shape."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape, summing to 1 along dim."""
        return F.softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax) along `dim`, computed stably (pair it with NLLLoss); any shape."""

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape."""
        return F.log_softmax(x, axis=self.dim)


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. where an activation is optional).

    Like PyTorch's, it takes and ignores any arguments, so it can stand in for a layer: Identity(64).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> the same tensor."""
        return x


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...): joins the dimensions from `start_dim` on."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C*H*W) with the default start_dim=1."""
        return F.flatten(x, self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


class Dropout(Module):
    """Inverted dropout: in training zeroes each element with probability p and scales the rest by 1/(1-p).

    In eval mode it is the identity. The mask comes from `generator` (a Generator, an int seed for a
    Generator of this layer's own, or None for zerograd's default generator, see manual_seed), so a
    seed reproduces it.
    """

    def __init__(self, p: float = 0.5, *, generator: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ZerogradError(f"Dropout probability p must be in [0, 1), got {p}")
        self.p = p
        self.generator = _random.rng(generator)

    def forward(self, x: Tensor) -> Tensor:
        """Any shape -> same shape."""
        if not self.training or self.p == 0:
            return x
        return F.dropout(x, self.p, True, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _BatchNorm(Module):
    """Shared body of BatchNorm1d and BatchNorm2d: per-channel normalisation, scale and shift."""

    _ndim = 2
    _shape_text = "(N, C)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if num_features < 1:
            raise ZerogradError(f"{type(self).__name__} needs num_features >= 1, got {num_features}")
        if not 0 <= momentum <= 1:
            raise ZerogradError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        """Normalised per channel, same shape; in training also updates the running statistics."""
        shape = x.shape
        if len(shape) != self._ndim or shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}({self.num_features}) expects input {self._shape_text} with "
                f"C={self.num_features}, got shape {shape}"
            )
        if self.training and math.prod(shape) == self.num_features:
            raise ShapeError(
                f"{type(self).__name__} in training needs more than one value per channel, got shape {shape}: "
                "use a larger batch, or call model.eval() to predict a single sample"
            )
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.momentum, self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features (the book's BatchNormalization): weight, bias, running stats (C,).

    Training normalises with the batch's mean and (biased) variance and updates the running
    averages: running = (1 - momentum) * running + momentum * batch (unbiased variance), as PyTorch.
    Evaluation normalises with the running averages.
    """


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of images (N, C, H, W), one mean and variance per channel over N, H and W."""

    _ndim = 4
    _shape_text = "(N, C, H, W)"


# the runs Sequential takes as one node
register_fused(Linear, (ReLU,), "forward_relu")
register_fused(Conv2d, (ReLU,), "forward_relu")
register_fused(Conv2d, (ReLU, MaxPool2d), "forward_relu_max_pool2d")
