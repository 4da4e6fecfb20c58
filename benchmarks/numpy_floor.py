"""The NumPy floor: the book's networks written by hand in plain, fast NumPy, with no framework.

Each layer is a small class in the book's style (forward keeps what backward needs, backward
returns the input's gradient and fills the layer's `grads`), and a network is a list of layers.
It is what a careful person writes for one network: im2col convolution through a sliding-window
view and batched BLAS products, max-pooling by reshaping when the window tiles the input, fused
softmax + cross-entropy, optimizers updating in place, float32 throughout. The benchmarks time
zerograd against it: the gap is what zerograd's generality costs.

Networks are built from a layer spec (a list of dicts, see `build`) and a dict of weights named as
in zerograd's state_dict, so that all frameworks in a benchmark start from the same weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Linear:
    """x (N, ...) flattened to (N, in) -> x @ W.T + b (N, out); W is (out, in) as in zerograd and PyTorch."""

    def __init__(self, w: np.ndarray, b: np.ndarray | None) -> None:
        self.params = [w] if b is None else [w, b]
        self.grads: list[np.ndarray | None] = [None] * len(self.params)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x if train else None
        out = x @ self.params[0].T
        if len(self.params) > 1:
            out += self.params[1]
        return out

    def backward(self, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        w = self.params[0]
        self.grads[0] = g.T @ self.x
        if len(self.params) > 1:
            self.grads[1] = g.sum(axis=0)
        self.x = None
        return (g @ w).reshape(self.shape) if need_input_grad else None


class ReLU:
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        g = g * (self.out > 0)
        self.out = None
        return g


class Sigmoid:
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        e = np.negative(x)
        with np.errstate(over="ignore"):  # exp(88+) is inf in float32 and 1 / inf is the right 0
            np.exp(e, out=e)
        e += 1
        self.out = np.reciprocal(e, out=e)
        return self.out

    def backward(self, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        y = self.out
        self.out = None
        return g * y * (1 - y)


class Dropout:
    """Inverted dropout (as zerograd and PyTorch): scale the kept units by 1 / (1 - p) in training."""

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        self.p, self.rng = p, rng

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train or self.p == 0:
            self.mask = None
            return x
        self.mask = (self.rng.random(x.shape, dtype=np.float32) >= self.p).astype(x.dtype)
        self.mask *= 1 / (1 - self.p)
        return x * self.mask

    def backward(self, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        return g if self.mask is None else g * self.mask


class Conv2d:
    """Cross-correlation of x (N, C, H, W) with w (OC, C, kh, kw) by im2col and BLAS -> (N, OC, OH, OW).

    The columns are laid out per image as (C*kh*kw, OH*OW), so one batched product W @ cols gives
    the output directly in NCHW order (no transpose of the result), and the copy that builds them
    reads whole rows of the sliding-window view.
    """

    def __init__(self, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int], padding: tuple[int, int]) -> None:
        self.params = [w] if b is None else [w, b]
        self.grads: list[np.ndarray | None] = [None] * len(self.params)
        self.stride, self.padding = stride, padding

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        w = self.params[0]
        n, c, h, wd = x.shape
        oc, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        if ph or pw:
            xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
            xp[:, :, ph:ph + h, pw:pw + wd] = x
        else:
            xp = x
        win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C, OH, OW, kh, kw)
        oh, ow = win.shape[2], win.shape[3]
        cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * kh * kw, oh * ow)
        out = np.matmul(w.reshape(oc, -1), cols)
        if len(self.params) > 1:
            out += self.params[1][:, None]
        if train:
            self.cols, self.xshape = cols, x.shape
        return out.reshape(n, oc, oh, ow)

    def backward(self, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        w = self.params[0]
        n, oc, oh, ow = g.shape
        _, c, kh, kw = w.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        g3 = g.reshape(n, oc, oh * ow)
        cols, self.cols = self.cols, None
        self.grads[0] = np.matmul(g3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
        if len(self.params) > 1:
            self.grads[1] = g3.sum(axis=(0, 2))
        del cols
        if not need_input_grad:
            return None
        gcols = np.matmul(w.reshape(oc, -1).T, g3).reshape(n, c, kh, kw, oh, ow)
        _, _, h, wd = self.xshape
        gxp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=g.dtype)
        for i in range(kh):  # col2im: one strided add per kernel offset, none per pixel
            for j in range(kw):
                gxp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += gcols[:, :, i, j]
        return gxp[:, :, ph:ph + h, pw:pw + wd]


class MaxPool2d:
    """Max over kh x kw windows of x (N, C, H, W); the gradient goes to the first maximum, as in PyTorch.

    When the windows tile the input (stride = kernel, no padding) x is reshaped so that each
    window's columns and then its rows are reduced by elementwise maxima of strided views; the
    offset of the winner is kept (int8) for backward. Otherwise the same runs over every kernel offset.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> None:
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        n, c, h, w = x.shape
        self.xshape = x.shape
        if (kh, kw) == (sh, sw) and not (ph or pw) and h % kh == 0 and w % kw == 0:
            self.tiled = True
            cols, self.col_arg = _max_over(x.reshape(n, c, h, w // kw, kw), 4)      # (N, C, H, OW)
            out, self.row_arg = _max_over(cols.reshape(n, c, h // kh, kh, w // kw), 3)  # (N, C, OH, OW)
            return out
        self.tiled = False
        if ph or pw:
            xp = np.full((n, c, h + 2 * ph, w + 2 * pw), -np.inf, dtype=x.dtype)
            xp[:, :, ph:ph + h, pw:pw + w] = x
        else:
            xp = x
        win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        out, self.arg = _max_over(win.reshape(win.shape[:4] + (kh * kw,)), 4)
        return out

    def backward(self, g: np.ndarray, need_input_grad: bool = True) -> np.ndarray:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        n, c, h, w = self.xshape
        if self.tiled:
            gcols = np.empty((n, c, h // kh, kh, w // kw), dtype=g.dtype)
            for i in range(kh):
                np.multiply(g, self.row_arg == i, out=gcols[:, :, :, i])
            gcols = gcols.reshape(n, c, h, w // kw)
            gx = np.empty((n, c, h, w // kw, kw), dtype=g.dtype)
            for j in range(kw):
                np.multiply(gcols, self.col_arg == j, out=gx[..., j])
            return gx.reshape(n, c, h, w)
        oh, ow = g.shape[2], g.shape[3]
        gxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                gxp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += g * (self.arg == i * kw + j)
        return gxp[:, :, ph:ph + h, pw:pw + w]


def _max_over(v: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum along a short `axis` of v and the index of its first occurrence (int8), by elementwise maxima."""
    k = v.shape[axis]
    views = [v[(slice(None),) * axis + (j,)] for j in range(k)]
    if k == 1:
        return views[0].copy(), np.zeros(views[0].shape, dtype=np.int8)
    arg = (views[1] > views[0]).view(np.int8)  # 1 where the second is strictly greater: ties keep the first
    m = np.maximum(views[0], views[1])
    for j in range(2, k):
        # j wins where it is strictly greater than all before it; later winners have larger j, so
        # the winner's index is a running maximum (cheaper than a masked assignment)
        np.maximum(arg, (views[j] > m).view(np.int8) * np.int8(j), out=arg)
        np.maximum(m, views[j], out=m)
    return m, arg


def build(spec: list[dict[str, Any]], weights: dict[str, np.ndarray], seed: int = 0) -> list[Any]:
    """Layers from a spec such as [{"op": "conv", "weight": "0.weight", "bias": "0.bias", "stride": [1, 1],
    "padding": [0, 0]}, {"op": "relu"}, {"op": "maxpool", "kernel": [2, 2], ...}, {"op": "flatten"},
    {"op": "linear", ...}, {"op": "dropout", "p": 0.5}]; weights are copied (float32)."""
    rng = np.random.default_rng(seed)

    def param(name: str | None) -> np.ndarray | None:
        return None if name is None else np.array(weights[name], dtype=np.float32)

    layers: list[Any] = []
    for op in spec:
        kind = op["op"]
        if kind == "linear":
            layers.append(Linear(param(op["weight"]), param(op.get("bias"))))
        elif kind == "conv":
            layers.append(Conv2d(param(op["weight"]), param(op.get("bias")), tuple(op["stride"]), tuple(op["padding"])))
        elif kind == "maxpool":
            layers.append(MaxPool2d(tuple(op["kernel"]), tuple(op["stride"]), tuple(op["padding"])))
        elif kind == "relu":
            layers.append(ReLU())
        elif kind == "sigmoid":
            layers.append(Sigmoid())
        elif kind == "dropout":
            layers.append(Dropout(op["p"], rng))
        elif kind == "flatten":
            continue  # Linear flattens its input itself
        else:
            raise ValueError(f"the NumPy floor has no layer {kind!r}")
    return layers


class Net:
    """A list of layers with softmax + cross-entropy on top; `step` trains on one batch, `predict` infers."""

    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers
        self.params = [p for layer in layers for p in getattr(layer, "params", [])]

    def predict(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, False)
        return x

    def loss_and_backward(self, x: np.ndarray, t: np.ndarray) -> float:
        """Forward in training mode, mean cross-entropy against labels t (N,), backward into the layers' grads."""
        for layer in self.layers:
            x = layer.forward(x, True)
        n = x.shape[0]
        # softmax + cross-entropy fused: the gradient of the mean loss is (softmax - onehot) / N
        x -= x.max(axis=1, keepdims=True)
        e = np.exp(x)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.log(s).mean() - x[np.arange(n), t].mean())
        e /= s
        e[np.arange(n), t] -= 1
        e /= n
        g = e
        first = self.layers[0]
        for layer in reversed(self.layers):
            g = layer.backward(g, layer is not first)
        return loss

    def grads(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in getattr(layer, "grads", [])]


class SGD:
    def __init__(self, params: list[np.ndarray], lr: float) -> None:
        self.params, self.lr = params, lr

    def step(self, grads: list[np.ndarray]) -> None:
        for p, g in zip(self.params, grads):
            g *= self.lr  # the gradient arrays are fresh every step: scale them in place
            p -= g


class Adam:
    """torch.optim.Adam's update, in place on the parameters and the moment arrays."""

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, (self.b1, self.b2), self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.b1, self.b2
        step_size = self.lr / (1 - b1**self.t)
        root_bc2 = math.sqrt(1 - b2**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            g *= g
            g *= 1 - b2
            v += g
            np.sqrt(v, out=g)  # g is this step's own array: reuse it as the denominator
            g /= root_bc2
            g += self.eps
            np.divide(m, g, out=g)
            g *= step_size
            p -= g
