"""Convolution and pooling on NCHW images (the book's chapter 7): im2col, col2im and BLAS matrix products.

A convolution is one matrix product once every receptive field is laid out as a column (im2col):
weight (O, C*kh*kw) @ columns (C*kh*kw, N*OH*OW). The columns are read from a sliding-window *view*
of the padded input (no Python loop over samples or pixels); backward spreads the column gradients
back onto the image (col2im) with one strided slice-add per kernel offset (kh*kw of them).
Cross-correlation, weights (out_channels, in_channels, kh, kw), as in the book and PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ShapeError, ZerogradError
from ..tensor import Function, Tensor
from .math import as_tensor

IntPair = int | tuple[int, int]


def _pair(value: Any, what: str, where: str, minimum: int) -> tuple[int, int]:
    """(a, b) from an int or a pair, each at least `minimum`."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ZerogradError(f"{where}: {what} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ZerogradError(f"{where}: {what} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _output_size(shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], where: str) -> tuple[int, int]:
    """(OH, OW) of sliding a kernel over an (N, C, H, W) input; checks that the kernel fits."""
    if len(shape) != 4:
        raise ShapeError(f"{where} expects images (N, C, H, W), got shape {shape}: add the missing "
                         "dimensions, e.g. x.reshape(N, 1, 28, 28) for a batch of MNIST digits")
    h, w = shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]
    if kernel[0] > h or kernel[1] > w:
        raise ShapeError(f"{where}: kernel {kernel[0]}x{kernel[1]} is larger than the padded input "
                         f"{h}x{w} (input shape {shape}, padding {padding})")
    return (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1


def _pad(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             out: tuple[int, int]) -> np.ndarray:
    """View (N, C, OH, OW, kh, kw) of every kernel window of the padded input: no copy."""
    view = sliding_window_view(xp, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    return view[:, :, : out[0], : out[1]]


def col2im(cols: np.ndarray, padded_shape: tuple[int, ...], stride: tuple[int, int],
           padding: tuple[int, int], layout: str = "nckk") -> np.ndarray:
    """Adds window gradients back onto the image: the transpose of taking windows.

    cols is (N, C, kh, kw, OH, OW) for layout "nckk" or (C, kh, kw, N, OH, OW) for "cknn";
    returns (N, C, H, W) with the padding cut off. One strided slice-add per kernel offset.
    """
    if layout == "cknn":
        cols = cols.transpose(3, 0, 1, 2, 4, 5)  # a view: (N, C, kh, kw, OH, OW)
    _, _, kh, kw, oh, ow = cols.shape
    sh, sw = stride
    dx = np.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += cols[:, :, i, j]
    ph, pw = padding
    return dx[:, :, ph : padded_shape[2] - ph, pw : padded_shape[3] - pw]


class Conv2d(Function):
    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
        n, c = x.shape[:2]
        o, wc, kh, kw = weight.shape
        oh, ow = _output_size(x.shape, (kh, kw), stride, padding, "conv2d")
        if wc != c:
            raise ShapeError(f"conv2d: input has {c} channels but the weight {weight.shape} expects {wc} "
                             f"(input shape {x.shape}; weight is (out_channels, in_channels, kh, kw))")
        xp = _pad(x, padding)
        # im2col: (C*kh*kw, N*OH*OW), one copy out of the window view, laid out for a single GEMM
        cols = _windows(xp, (kh, kw), stride, (oh, ow)).transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, -1)
        out = (weight.reshape(o, -1) @ cols).reshape(o, n, oh, ow)
        if bias is not None:
            out += bias.reshape(o, 1, 1, 1)
        self.cols, self.weight, self.padded_shape, self.stride, self.padding = cols, weight, xp.shape, stride, padding
        return out.transpose(1, 0, 2, 3)  # (N, O, OH, OW), a view of the GEMM's result

    def backward(self, g):
        o, c, kh, kw = self.weight.shape
        n, _, oh, ow = g.shape
        g2 = g.transpose(1, 0, 2, 3).reshape(o, -1)  # (O, N*OH*OW), matching the columns
        gx = gw = gb = None
        if self.needs_input_grad[1]:
            gw = (g2 @ self.cols.T).reshape(self.weight.shape)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = g2.sum(axis=1)
        if self.needs_input_grad[0]:  # skipped for the first layer, whose input is the images
            gcols = (self.weight.reshape(o, -1).T @ g2).reshape(c, kh, kw, n, oh, ow)
            gx = col2im(gcols, self.padded_shape, self.stride, self.padding, layout="cknn")
        return gx, gw, gb


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, OH, OW).

    OH = (H + 2*padding - kh) // stride + 1, likewise OW; stride and padding are ints or (h, w) pairs.
    """
    x = as_tensor(x)
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: weight must be (out_channels, in_channels, kh, kw), got shape {weight.shape}")
    params = {"stride": _pair(stride, "stride", "conv2d", 1), "padding": _pair(padding, "padding", "conv2d", 0)}
    if bias is None:
        return Conv2d.apply(x, weight, **params)
    return Conv2d.apply(x, weight, bias, **params)


def _pool_params(kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                 where: str) -> dict[str, tuple[int, int]]:
    kernel = _pair(kernel_size, "kernel_size", where, 1)
    pad = _pair(padding, "padding", where, 0)
    if pad[0] * 2 > kernel[0] or pad[1] * 2 > kernel[1]:
        raise ZerogradError(f"{where}: padding {pad} must be at most half the kernel size {kernel}, as in PyTorch")
    step = kernel if stride is None else _pair(stride, "stride", where, 1)
    return {"kernel_size": kernel, "stride": step, "padding": pad}


class MaxPool2d(Function):
    def forward(self, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        n, c = x.shape[:2]
        kh, kw = kernel_size
        oh, ow = _output_size(x.shape, kernel_size, stride, padding, "max_pool2d")
        xp = _pad(x, padding, -np.inf)  # padding never wins a maximum, as in PyTorch
        windows = _windows(xp, kernel_size, stride, (oh, ow)).reshape(n, c, oh, ow, kh * kw)
        # argmax takes the first of tied maxima: one element per window gets the gradient, as PyTorch
        self.argmax = windows.argmax(axis=-1)
        self.shape, self.padded_shape, self.kernel, self.stride, self.padding = (
            x.shape, xp.shape, kernel_size, stride, padding)
        return np.take_along_axis(windows, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, g):
        n, c, oh, ow = g.shape
        kh, kw = self.kernel
        cols = np.zeros((n, c, oh, ow, kh * kw), dtype=g.dtype)
        np.put_along_axis(cols, self.argmax[..., None], g[..., None], axis=-1)
        cols = cols.reshape(n, c, oh, ow, kh, kw).transpose(0, 1, 4, 5, 2, 3)
        return col2im(cols, self.padded_shape, self.stride, self.padding)


class AvgPool2d(Function):
    def forward(self, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        oh, ow = _output_size(x.shape, kernel_size, stride, padding, "avg_pool2d")
        xp = _pad(x, padding)  # zeros count in the average (PyTorch's count_include_pad=True)
        self.padded_shape, self.kernel, self.stride, self.padding = xp.shape, kernel_size, stride, padding
        return _windows(xp, kernel_size, stride, (oh, ow)).mean(axis=(4, 5), dtype=x.dtype)

    def backward(self, g):
        n, c, oh, ow = g.shape
        kh, kw = self.kernel
        share = g / np.asarray(kh * kw, dtype=g.dtype)
        cols = np.broadcast_to(share[:, :, None, None], (n, c, kh, kw, oh, ow))
        return col2im(cols, self.padded_shape, self.stride, self.padding)


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Maximum over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to kernel_size."""
    return MaxPool2d.apply(as_tensor(x), **_pool_params(kernel_size, stride, padding, "max_pool2d"))


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Mean over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to kernel_size."""
    return AvgPool2d.apply(as_tensor(x), **_pool_params(kernel_size, stride, padding, "avg_pool2d"))


def im2col(x: np.ndarray, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0) -> np.ndarray:
    """The book's im2col on a plain array: (N, C, H, W) -> (N*OH*OW, C*kh*kw), one row per window."""
    kernel = _pair(kernel_size, "kernel_size", "im2col", 1)
    step, pad = _pair(stride, "stride", "im2col", 1), _pair(padding, "padding", "im2col", 0)
    x = np.asarray(x)
    oh, ow = _output_size(x.shape, kernel, step, pad, "im2col")
    windows = _windows(_pad(x, pad), kernel, step, (oh, ow))  # (N, C, OH, OW, kh, kw)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(x.shape[0] * oh * ow, -1)
