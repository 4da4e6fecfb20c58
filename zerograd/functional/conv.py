"""Convolution and pooling on NCHW images (the book's chapter 7): im2col, col2im and BLAS matrix products.

A convolution is one matrix product once every receptive field is laid out as a column (im2col):
per image, weight (O, C*kh*kw) @ columns (C*kh*kw, OH*OW), built a few images at a time from the padded
input (see _Columns), so the output comes out already in NCHW order. Backward: the weight gradient
rebuilds the columns; the input gradient of a stride-1 convolution is itself a correlation (of the
padded output gradient with the flipped kernel); other strides spread the column gradients back onto
the image (col2im) with one strided slice-add per kernel offset. No Python loop over pixels.
Cross-correlation, weights (out_channels, in_channels, kh, kw), as in the book and PyTorch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from ..errors import ShapeError, ZerogradError
from ..tensor import Function, Tensor
from ..threads import SMALL_PRODUCT, batch_shards, blas_small_products, l2_cache_bytes, parallel_map
from .math import as_tensor

IntPair = int | tuple[int, int]


def pair(value: Any, what: str, where: str, minimum: int) -> tuple[int, int]:
    """(a, b) from an int or a pair, each at least `minimum`; errors name `where` (conv2d, Conv2d, ...) and `what`.

    The one reading of kernel_size, stride and padding: nn's layers use it too (public for them, not in F's __all__).
    """
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ZerogradError(f"{where}: {what} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ZerogradError(f"{where}: {what} must be at least {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


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
    n, c, h, w = x.shape
    # a filled array and one slice assignment: several times faster than np.pad on these shapes
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def _windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             out: tuple[int, int]) -> np.ndarray:
    """View (N, C, OH, OW, kh, kw) of every kernel window of the padded input: no copy."""
    view = sliding_window_view(xp, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    return view[:, :, : out[0], : out[1]]


def _offset(a: np.ndarray, i: int, j: int, stride: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """View (N, C, OH, OW) of the elements at offset (i, j) of every window: a[..., i + sh*oh, j + sw*ow]."""
    return a[:, :, i : i + stride[0] * (out[0] - 1) + 1 : stride[0], j : j + stride[1] * (out[1] - 1) + 1 : stride[1]]


def _col2im_add(dx: np.ndarray, cols: np.ndarray, stride: tuple[int, int]) -> None:
    """dx (N, C, Hp, Wp) += the window gradients cols (N, C, kh, kw, OH, OW), one strided add per offset."""
    _, _, kh, kw, oh, ow = cols.shape
    for i in range(kh):
        for j in range(kw):
            _offset(dx, i, j, stride, (oh, ow))[...] += cols[:, :, i, j]


def col2im(cols: np.ndarray, padded_shape: tuple[int, ...], stride: tuple[int, int],
           padding: tuple[int, int]) -> np.ndarray:
    """Adds window gradients cols (N, C, kh, kw, OH, OW) back onto the image: the transpose of taking windows.

    Returns (N, C, H, W) with the padding cut off. One strided slice-add per kernel offset.
    """
    dx = np.zeros(padded_shape, dtype=cols.dtype)
    _col2im_add(dx, cols, stride)
    ph, pw = padding
    return dx[:, :, ph : padded_shape[2] - ph, pw : padded_shape[3] - pw]


# im2col columns are kh*kw times the size of the image. Built for a whole batch they are one large
# array, written to main memory and read back by the product (450 MB for DeepConvNet's second layer
# at batch 1000). Built for a few images at a time into one reused buffer of half the L2 cache (256 KiB to
# 1 MiB; 512 KiB where Linux does not say), they stay in L2 between the copy and the product: 1.5-2x faster,
# and nothing to keep. Measured on DeepConvNet's step: 512 KiB on the 1 MiB L2 of a Zen 4 core; on an Intel Xeon
# with 2 MiB, 1 MiB took the two-thread step from 39.7 to 38.2 ms (the same at one thread), 2 MiB was slower (40.4).
_CHUNK_BYTES = min(1 << 20, max(1 << 18, l2_cache_bytes(1 << 20) // 2))
# Row runs (see _Columns) pay off from this many input channels on: measured on the book's networks,
# layers of 16-64 channels run 10-25% faster with them, single-channel first layers slower (their
# columns are small, and the cut-off columns are a larger share of narrow images).
_RUNS_MIN_CHANNELS = 8
# With row runs (see _Columns) the weight gradient can be one product per kernel offset on views of the padded input
# (_Columns.offsets_gradient), no columns built. Measured at one thread, batch 100, against rebuilding the columns:
# 10-35% faster up to 1024 pairs of in and out channels (16x16 to 32x32, 16x64, 64x16) on images of 8x8 and larger
# (runs of L >= 72 with padding 1: DeepConvNet's 28x28 and 14x14 layers); 15-35% slower from 2048 pairs (32x64,
# 48x48, 64x64, 128x128, at any L) and on 7x7 images of 32 channels (L = 56), which keep the columns.
_OFFSETS_MAX_CHANNEL_PAIRS = 1024
_OFFSETS_MIN_LENGTH = 72


# A convolution followed by max-pooling (_Columns.correlate_pooled) gathers the products of several groups of images, up
# to this many bytes, and pools them at once: NumPy's strided maximum over a few images at a time costs more in calls
# than it saves in cache misses. Measured on DeepConvNet's step at one thread: 64.1 ms with 512 KiB, 63.2 ms with
# 1 MiB (this), 69.5 ms with 256 KiB.
_POOL_BYTES = _CHUNK_BYTES

_MIN_PIECE = 32  # columns: see _pieces


@lru_cache(maxsize=256)
def _pieces(rows_by_depth: int, length: int) -> int:
    """The fewest equal pieces, at least 32 columns wide, that cut a product (O, K) @ (K, length) below
    SMALL_PRODUCT (rows_by_depth = O*K); 1 when there are none.

    Narrower pieces cost more than the small-matrix kernels save: DeepConvNet's (64, 577) @ (577, 72) (8x8 images)
    in three pieces of 24 columns ran at 114 GFLOP/s against 144 whole (one thread, Intel Xeon with AVX-512), and
    its forward and input-gradient products 5.9 -> 4.5 and 5.2 -> 4.5 ms left whole."""
    for pieces in range(1, length // _MIN_PIECE + 1):
        if length % pieces == 0 and rows_by_depth * (length // pieces) <= SMALL_PRODUCT:
            return pieces
    return 1


def _with_bias(w2: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """[w2 | bias]: the weights (O, K) with the bias as a last column, for columns with a last row of ones."""
    return w2 if bias is None else np.concatenate([w2, bias.reshape(-1, 1).astype(w2.dtype, copy=False)], axis=1)


def _product(w2: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    """out = w2 (O, K) @ cols (..., K, L): the convolutions' products, cut in pieces where that is faster.

    On OpenBLAS with small-matrix kernels (threads.blas_small_products) a float32 product up to O*K*L =
    SMALL_PRODUCT runs without packing its operands. The products here are just above that (DeepConvNet's
    (16, 145) @ (145, 840) is 1.9e6): cut into the fewest equal pieces of columns below it, all in one batched
    np.matmul over strided views of cols and out (no copy, no Python loop), they run 25-35% faster (measured:
    78 -> 107, 86 -> 112, 77 -> 106 GFLOP/s at one thread on this project's Zen 4 machine). Elsewhere one product.
    """
    o, k = w2.shape
    n = cols.shape[-1]
    pieces = _pieces(o * k, n) if cols.dtype == np.float32 and blas_small_products() else 1
    if pieces == 1:
        np.matmul(w2, cols, out=out)
        return

    def cut(a: np.ndarray) -> np.ndarray:  # (..., R, L) -> (..., pieces, R, L / pieces), a view
        return a.reshape(a.shape[:-1] + (pieces, n // pieces)).swapaxes(-2, -3)

    np.matmul(w2, cut(cols), out=cut(out))


class _Columns:
    """The im2col columns of a batch x (N, C, H, W), built a few images at a time (see _CHUNK_BYTES).

    Per image the columns are (C*kh*kw, L): row (c, i, j) holds what kernel offset (i, j) of channel c
    sees at each output position, so one batched product W (O, C*kh*kw) @ cols gives (N, O, L), the
    output already in NCHW order. With stride 1 the row of offset (i, j) is one contiguous run of the
    flattened padded image, whose rows are `pitch` apart (see __init__), starting at i*pitch + j: L = OH*pitch,
    and each output row comes out pitch wide, its first OW values real and the rest cut off (they mix in the
    start of the next row).
    Copying such long runs is 2-3x faster than copying windows OW values at a time. Other strides,
    and images with few channels, copy from a sliding-window view: L = OH*OW.
    """

    def __init__(self, x: np.ndarray | None, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], shape: tuple[int, ...] | None = None, dtype: Any = None) -> None:
        """The columns of x; or, with x None, of an input of `shape` and `dtype` that the caller writes into
        self.image (row runs only: stride 1 and at least _RUNS_MIN_CHANNELS channels), before using them."""
        n, c, h, w = x.shape if x is not None else shape
        (kh, kw), (ph, pw) = kernel, padding
        hp, wp = h + 2 * ph, w + 2 * pw
        self.oh, self.ow = (hp - kh) // stride[0] + 1, (wp - kw) // stride[1] + 1
        self.n, self.depth = n, c * kh * kw
        self.kept: np.ndarray | None = None  # see correlate(keep=True)
        self.runs = stride == (1, 1) and c >= _RUNS_MIN_CHANNELS
        if self.runs:
            # Rows `pitch` apart, each image row followed by its zeros, which are also the next row's left padding:
            # pitch = W + pw (W + 2*pw - kw + 1 when larger), so each output row has kw - 1 - pw cut-off columns
            # (a 3x3 kernel with padding 1: one, padding 2: none) instead of kw - 1. pw leading zeros pad the first
            # row, and kw - 1 spare zeros after each channel keep the last runs inside the array.
            pitch = w + max(pw, 2 * pw - kw + 1)
            flat = np.zeros((n, c, pw + hp * pitch + kw - 1), dtype=x.dtype if x is not None else dtype)
            start = pw + ph * pitch
            # the image's rows `pitch` wide, zeros after each (a view of flat), and the image (its view without them)
            self.image_rows = flat[:, :, start : start + h * pitch]
            self.image = self.image_rows.reshape(n, c, h, pitch)[:, :, :, :w]
            if x is not None:
                self.image[...] = x
            self.pitch, self.length = pitch, self.oh * pitch
            item = flat.itemsize
            self.source = as_strided(flat, (n, c, kh, kw, self.length),
                                     flat.strides[:2] + (pitch * item, item, item), writeable=False)
        else:
            if x is None:
                raise ValueError("_Columns without x needs row runs (stride 1, 8 channels or more)")
            self.pitch, self.length = self.ow, self.oh * self.ow
            windows = _windows(_pad(x, padding), kernel, stride, (self.oh, self.ow))
            self.source = windows.transpose(0, 1, 4, 5, 2, 3)  # (N, C, kh, kw, OH, OW)

    def group_size(self, ones: bool = False) -> int:
        """How many images' columns (with `ones`: and a row of ones) fill the buffer (see _CHUNK_BYTES)."""
        return max(1, min(self.n, _CHUNK_BYTES // ((self.depth + ones) * self.length * self.source.itemsize)))

    def chunks(self, ones: bool = False, side_by_side: bool = False) -> Iterator[tuple[slice, np.ndarray]]:
        """Yields (images, cols (m, C*kh*kw [+ 1], L)); one buffer is reused: use each before the next.

        With `ones`, a last row of ones: the product with [W | bias] then adds the bias (and the
        product of the output gradient with the columns yields the bias gradient as a last column),
        which saves a pass over the output. With `side_by_side` the group's columns are laid out as
        one matrix (C*kh*kw [+ 1], m*L), the images next to each other: the weight gradient is then
        one product with a long inner dimension instead of m short ones and a sum (10-20% faster).
        """
        depth = self.depth + ones
        step = self.group_size(ones)
        flat = np.empty(step * depth * self.length, dtype=self.source.dtype)
        for start in range(0, self.n, step):
            m = min(step, self.n - start)
            if start == 0 or m < step:  # views of the buffer for groups of m images
                if side_by_side:
                    cols = flat[: depth * m * self.length].reshape(depth, m, self.length)
                    target = cols[: self.depth].reshape(self.source.shape[1:4] + (m,) + self.source.shape[4:])
                    target = np.moveaxis(target, 3, 0)  # (m, C, kh, kw, ...) as the source
                    if ones:
                        cols[-1] = 1
                    cols = cols.reshape(depth, m * self.length)
                else:
                    cols = flat[: m * depth * self.length].reshape(m, depth, self.length)
                    target = cols[:, : self.depth].reshape((m,) + self.source.shape[1:])
                    if ones:
                        cols[:, -1] = 1
            np.copyto(target, self.source[start : start + m])
            yield slice(start, start + m), cols

    def offsets_gradient(self, g: np.ndarray, bias: bool, g_rows: np.ndarray | None = None) -> np.ndarray:
        """The transposed gradient of [W | b], (C*kh*kw [+ 1], O), from g (N, O, OH, OW), with row runs only (see
        _OFFSETS_MAX_CHANNEL_PAIRS for when it pays), without building columns. g_rows, if given, is g already laid
        out pitch wide, (N, O, OH * pitch) with zeros in the cut-off columns (a view: see Conv2d._backward_shard).

        The gradient of weight (o, c, i, j) is the sum over positions of g times what offset (i, j) of channel c
        sees, and with row runs that is one run of the flattened padded image: per image and offset, one
        product g (O, L) @ runs (L, C), where runs is a strided view of the padded input (column-major, no copy).
        One batched np.matmul does all offsets of a group of images; g is laid out pitch wide in a small reused buffer
        whose cut-off columns stay zero, and the groups' products are summed in order.
        """
        n, o = g.shape[:2]
        c, kh, kw = self.source.shape[1:4]
        runs = self.source.transpose(0, 2, 3, 4, 1)  # (N, kh, kw, L, C)
        dtype = np.result_type(g, self.source)
        step = max(1, min(n, _CHUNK_BYTES // (max(kh * kw * o * c, o * self.length) * np.dtype(dtype).itemsize)))
        wide = np.zeros((step, o, self.oh, self.pitch), dtype=g.dtype) if g_rows is None else None
        total = np.zeros((kh, kw, o, c), dtype=dtype)
        bias_total = np.zeros(o, dtype=dtype) if bias else None
        for start in range(0, n, step):
            m = min(step, n - start)
            if wide is None:
                rows = g_rows[start : start + m].reshape(m, 1, 1, o, self.length)
            else:
                np.copyto(wide[:m, :, :, : self.ow], g[start : start + m])
                rows = wide[:m].reshape(m, 1, 1, o, self.length)
            total += np.matmul(rows, runs[start : start + m]).sum(axis=0)
            if bias_total is not None:
                bias_total += rows.sum(axis=4).sum(axis=0).reshape(o)
        gw_t = total.transpose(3, 0, 1, 2).reshape(c * kh * kw, o)
        return gw_t if bias_total is None else np.concatenate([gw_t, bias_total[None]])

    def _keep_columns(self, ones: bool) -> np.ndarray:
        """The columns of the whole batch (N, C*kh*kw [+ a row of ones], L), kept in self.kept (see correlate)."""
        self.kept = np.empty((self.n, self.depth + ones, self.length), dtype=self.source.dtype)
        np.copyto(self.kept[:, : self.depth].reshape(self.source.shape), self.source)
        if ones:
            self.kept[:, -1] = 1
        return self.kept

    def correlate(self, w2: np.ndarray, bias: np.ndarray | None = None, keep: bool = False,
                  out: np.ndarray | None = None, relu: bool = False) -> np.ndarray:
        """The product with w2 (O, C*kh*kw) for every image, plus bias (O,): the output (N, O, OH, OW), written
        into `out` if given (a contiguous array: a thread's part of the batch's output, no concatenation after).
        With `relu`, max(output, 0), taken while each group's product is still in cache (see Conv2d).

        With `keep` (windows layout only) the columns of the whole batch are built at once and kept in
        `self.kept` (N, C*kh*kw [+ 1], L) for the weight gradient: worth it when they are no larger
        than the output, as in a first layer on one-channel images (2-3x faster than rebuilding them).

        Otherwise one batched product per group of images writes (m, O, L): into one array for the batch, whose view
        without the cut-off columns is the output; with `out`, straight into it when there are no cut-off columns,
        else into a small reused buffer copied from there. (Measured at one thread with and without OpenBLAS's
        small-matrix kernels, 3x3 layers from 4x4 to 32x32 images: as fast as, or up to 17% faster than, one product
        per group with the images' columns side by side, which the weight gradient still uses.)
        """
        w2 = _with_bias(w2, bias)
        o, dtype = w2.shape[0], np.result_type(self.source, w2)
        if keep:
            self._keep_columns(ones=bias is not None)
            if out is None:
                out = np.empty((self.n, o, self.oh, self.ow), dtype=dtype)
            _product(w2, self.kept, out.reshape(self.n, o, self.length))
            if relu:
                np.maximum(out, 0, out=out)
            return out
        if out is None:  # one array for the batch; the output is its view without the cut-off columns
            rows = np.empty((self.n, o, self.length), dtype=dtype)
            for images, cols in self.chunks(ones=bias is not None):
                _product(w2, cols, rows[images])
                if relu:
                    np.maximum(rows[images], 0, out=rows[images])
            return rows.reshape(self.n, o, self.oh, self.pitch)[:, :, :, : self.ow]
        if self.pitch == self.ow:  # no cut-off columns: straight into `out`
            for images, cols in self.chunks(ones=bias is not None):
                part = out[images].reshape(len(cols), o, self.length)
                _product(w2, cols, part)
                if relu:
                    np.maximum(part, 0, out=part)
            return out
        rows = None
        for images, cols in self.chunks(ones=bias is not None):
            if rows is None:
                rows = np.empty((len(cols), o, self.length), dtype=dtype)
            part = rows[: len(cols)].reshape(len(cols), o, self.oh, self.pitch)[:, :, :, : self.ow]
            _product(w2, cols, rows[: len(cols)])
            if relu:  # the copy out takes the maximum on the way: no pass of its own
                np.maximum(part, 0, out=out[images])
            else:
                np.copyto(out[images], part)
        return out

    def correlate_pooled(self, w2: np.ndarray, bias: np.ndarray | None, out: np.ndarray, pool: tuple[int, int],
                         track: bool, relu: bool = False,
                         keep: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """correlate (w2, bias, keep as there) followed by max-pooling with windows `pool` that tile the output, and
        with `relu` by max(., 0): each group's product goes into a small reused buffer and is pooled from there,
        while still in cache, into out (N, O, OH // pool[0], OW // pool[1]); the convolution's output is never
        written whole. The ReLU comes after the pooling, on a quarter of the numbers (the maximum and ReLU commute).
        With `track`, returns where each window's maximum was (see _tiled_max) for the gradient."""
        w2, ones = _with_bias(w2, bias), bias is not None
        step = self.group_size(ones)
        if keep:  # the columns of the whole batch, kept for the weight gradient (see correlate)
            kept = self._keep_columns(ones)
            groups: Iterator[tuple[slice, np.ndarray]] = (
                (slice(s, s + step), kept[s : s + step]) for s in range(0, self.n, step))
        else:
            groups = self.chunks(ones=ones)
        o, (oh, ow) = w2.shape[0], out.shape[2:]
        args = None
        if track:
            args = (np.empty((self.n, o, oh * pool[0], ow), dtype=np.int8), np.empty(out.shape, dtype=np.int8))
        # the products of several groups gather in one buffer, pooled together: fewer (slower, strided) calls
        per_image = o * self.length * out.itemsize
        held = step * max(1, _POOL_BYTES // (per_image * step))
        rows = np.empty((min(held, self.n), o, self.length), dtype=out.dtype)

        def pool_rows(first: int, last: int) -> None:
            images = slice(first, last)
            conv = rows[: last - first].reshape(last - first, o, self.oh, self.pitch)[:, :, :, : self.ow]
            _tiled_max(conv, pool, out[images], track, None if args is None else (args[0][images], args[1][images]))
            if relu:
                np.maximum(out[images], 0, out=out[images])

        first = 0
        for images, cols in groups:
            if images.start - first + len(cols) > len(rows):
                pool_rows(first, images.start)
                first = images.start
            _product(w2, cols, rows[images.start - first : images.start - first + len(cols)])
        pool_rows(first, self.n)
        return args


class Conv2d(Function):
    """Each thread convolves its shard of the batch (zerograd.threads.batch_shards) with its own columns and
    buffers; backward likewise, the weight gradient summed over the shards in their order.

    With `relu`, the node is a convolution followed by a ReLU (what nn.Sequential runs for a Conv2d followed by a
    ReLU): the maximum with 0 is taken while each group of images' product is still in cache, as it is copied out,
    instead of in a pass of its own over the activations, and backward masks the incoming gradient in each shard,
    as ReLU's backward does, inside the convolution's own parallel region (masking it where it is laid out for the
    products measured slower: NumPy's multiply by a bool mask into strided views). Same numbers as the two
    operations one after the other; a DeepConvNet training step 3 % faster at one thread and 4 % at two (steps
    alternating in one process, medians of 16 rounds, paired ratios 0.964-0.973 and 0.951-0.974 over 3-4 runs),
    with 18 parallel regions instead of 30.

    With `pool` as well (kh, kw), the node is that followed by a max-pooling whose windows tile the output (what
    nn.Sequential runs for a Conv2d, a ReLU and a MaxPool2d(k)): each group's product is pooled in cache
    (_Columns.correlate_pooled) and the ReLU taken on the pooled values; backward masks the pooled gradient, where
    the pooled output is positive, and sends it to each window's maximum (_output_grad). The full output is neither
    written in forward nor masked in backward. Same numbers as the three operations; in one process with the steps
    alternating, against the pair only: SimpleConvNet's training step 10-11 % faster at one and two threads,
    DeepConvNet's 2-5 % at one thread and 2-3 % at two.
    """

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), relu=False, pool=None):
        c = x.shape[1]
        o, wc, kh, kw = weight.shape
        oh, ow = _output_size(x.shape, (kh, kw), stride, padding, "conv2d")
        if wc != c:
            raise ShapeError(f"conv2d: input has {c} channels but the weight {weight.shape} expects {wc} "
                             f"(input shape {x.shape}; weight is (out_channels, in_channels, kh, kw))")
        self.weight, self.stride, self.padding, self.relu, self.pool = weight, stride, padding, relu, pool
        self.conv_size = oh, ow
        if pool is not None:
            oh, ow = _output_size((len(x), o, oh, ow), pool, pool, (0, 0), "max_pool2d")
        self.shards = batch_shards(len(x), x.size)
        # with several shards each writes its part of one output (else one shard makes its own, maybe a view of a
        # wider array; with relu or pool always one contiguous array, written with the maximum on the way)
        out = None if len(self.shards) == 1 and not relu and pool is None else np.empty(
            (len(x), o, oh, ow), dtype=np.result_type(x, weight))
        parts = parallel_map(lambda images: self._forward_shard(x[images], bias, None if out is None else out[images]),
                             self.shards)
        # the weight's gradient needs each shard's columns (kept, or rebuilt from its input)
        self.columns = [columns for _, columns in parts] if self.needs_input_grad[1] else None
        h, w = x.shape[2:]
        self.image_size = h, w
        if pool is not None:
            self.args = [args for args, _ in parts]  # where each window's maximum was, per shard
        out = parts[0][0] if out is None else out
        self.out = out if relu and True in self.needs_input_grad else None  # the ReLU's mask: out > 0
        return out

    def _forward_shard(self, x, bias, out):
        o = self.weight.shape[0]
        columns = _Columns(x, self.weight.shape[2:], self.stride, self.padding)
        keep = self.needs_input_grad[1] and not columns.runs and columns.depth < o
        w2 = self.weight.reshape(o, -1)
        if self.pool is not None:
            return columns.correlate_pooled(w2, bias, out, self.pool, True in self.needs_input_grad, self.relu,
                                            keep), columns
        return columns.correlate(w2, bias, keep=keep, out=out, relu=self.relu), columns

    def _output_grad(self, g, k, into=None):
        """The gradient of shard k's convolution output, from the gradient g of the node's output (its shard): through
        the max-pooling (to each window's maximum) and the ReLU (where the output is positive) when they are part of
        the node; written into `into` (a view, zeros where nothing is written) if given. After pooling, a window's
        maximum is positive exactly where the ReLU passed the pooled value, so the mask is taken on the pooled
        gradient, a quarter of the numbers."""
        if self.out is not None:  # the ReLU's backward first, as ReLU does it
            g = np.multiply(g, self.out[self.shards[k]] > 0, out=into if self.pool is None else None)
        if self.pool is None:
            if into is None or g is into:
                return g
            np.copyto(into, g)
            return into
        (oh, ow), (kh, kw) = self.conv_size, self.pool
        if into is None:
            exact = oh % kh == 0 and ow % kw == 0
            into = (np.empty if exact else np.zeros)((len(g), g.shape[1], oh, ow), dtype=g.dtype)  # left over: 0
        _tiled_max_backward(g, self.args[k], self.pool, into)
        return into

    def backward(self, g):
        want_gb = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        gx = gw = gb = None
        if self.needs_input_grad[0] and len(self.shards) > 1:  # each shard writes its part
            gx = np.empty((len(g), self.weight.shape[1]) + self.image_size, dtype=np.result_type(g, self.weight))
        parts = parallel_map(lambda k: self._backward_shard(g[self.shards[k]], k, want_gb,
                                                            None if gx is None else gx[self.shards[k]]),
                             range(len(self.shards)))
        self.columns = None  # free the padded input as soon as it has been used
        if self.needs_input_grad[0] and gx is None:
            gx = parts[0][0]
        if self.needs_input_grad[1]:
            gwb_t = parts[0][1]
            for _, part in parts[1:]:  # in shard order: the same sum on every run
                gwb_t = gwb_t + part
            depth = gwb_t.shape[0] - want_gb
            gw = gwb_t[:depth].T.reshape(self.weight.shape)
            if want_gb:
                gb = gwb_t[depth]
        elif want_gb:
            g_out = np.concatenate([self._output_grad(g[images], k) for k, images in enumerate(self.shards)])
            gb = g_out.sum(axis=(0, 2, 3))
        return gx, gw, gb

    def _backward_shard(self, g, k, want_gb, gx_out):
        """(input gradient, transposed [weight | bias] gradient (C*kh*kw [+ 1], O)) of shard k's images g; the input
        gradient written into gx_out if given.

        With stride 1 the input's gradient is a correlation of the output's gradient (see below), whose padded copy is
        made first: the output's gradient is written straight into it (masked, or sent to each window's maximum),
        and the weight gradient by kernel offsets reads its rows from there when they are laid out as its own."""
        o, c, kh, kw = self.weight.shape
        (ph, pw), (sh, sw) = self.padding, self.stride
        flipped = self.needs_input_grad[0] and (sh, sw) == (1, 1) and ph < kh and pw < kw
        g_columns = None
        if flipped and o >= _RUNS_MIN_CHANNELS:
            g_columns = _Columns(None, (kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw), (len(g), o) + self.conv_size,
                                 g.dtype)
            g = self._output_grad(g, k, into=g_columns.image)
        else:
            g = self._output_grad(g, k)
        n, _, oh, ow = g.shape
        gx = gwb_t = None
        if self.needs_input_grad[1]:
            columns, depth = self.columns[k], c * kh * kw
            if (columns.runs and columns.length >= _OFFSETS_MIN_LENGTH
                    and c * o <= _OFFSETS_MAX_CHANNEL_PAIRS):
                same_rows = g_columns is not None and g_columns.pitch == columns.pitch  # then laid out alike
                gwb_t = columns.offsets_gradient(g, want_gb, g_columns.image_rows if same_rows else None)
            elif columns.kept is not None:
                # columns kept by forward (N, C*kh*kw [+ 1 row of ones: the bias gradient], L): per image
                # g (O, L) @ cols.T, summed over the images
                kept = columns.kept if want_gb else columns.kept[:, :depth]
                gwb_t = np.matmul(g.reshape(n, o, -1), kept.transpose(0, 2, 1)).sum(axis=0).T
            else:
                # rebuilt: cols (C*kh*kw [+ 1], m*L) @ g (m*L, O) for each group of m images, summed: the
                # transpose of the weight gradient. g is laid out per group as the columns are, (O, m*L),
                # in a small reused buffer; its cut-off columns stay zero.
                gwb_t = np.zeros((depth + want_gb, o), dtype=np.result_type(g, columns.source))
                wide = None
                for images, cols in columns.chunks(ones=want_gb, side_by_side=True):
                    if wide is None:
                        wide = np.zeros(o * cols.shape[1], dtype=g.dtype)
                    m = cols.shape[1] // columns.length
                    g_group = wide[: o * cols.shape[1]].reshape(o, m, oh, columns.pitch)
                    np.copyto(g_group[:, :, :, :ow], g[images].transpose(1, 0, 2, 3))
                    gwb_t += cols @ g_group.reshape(o, cols.shape[1]).T
        if self.needs_input_grad[0]:  # skipped for the first layer, whose input is the images
            h, w = self.image_size
            if flipped:
                # With stride 1 the input's gradient is itself a correlation: of g padded by k-1-p with
                # the kernel flipped and its in/out channels swapped. One im2col copy and one product
                # replace col2im's kh*kw read-modify-write passes over the image: 2-3x faster here.
                w_flip = np.ascontiguousarray(self.weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(c, -1)
                if g_columns is None:
                    g_columns = _Columns(g, (kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw))
                gx = g_columns.correlate(w_flip, out=gx_out)
            else:  # col2im, a group of images at a time
                g3 = g.reshape(n, o, oh * ow)
                dx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=np.result_type(g, self.weight))
                w2t = self.weight.reshape(o, -1).T
                step = max(1, min(n, _CHUNK_BYTES // (c * kh * kw * oh * ow * dx.itemsize)))
                for start in range(0, n, step):
                    images = slice(start, start + step)
                    gcols = np.matmul(w2t, g3[images]).reshape(-1, c, kh, kw, oh, ow)
                    _col2im_add(dx[images], gcols, self.stride)
                gx = dx[:, :, ph : ph + h, pw : pw + w]
                if gx_out is not None:
                    np.copyto(gx_out, gx)
                    gx = gx_out
        return gx, gwb_t


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0) -> Tensor:
    """2-D cross-correlation: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, OH, OW).

    OH = (H + 2*padding - kh) // stride + 1, likewise OW; stride and padding are ints or (h, w) pairs.
    """
    return _conv2d(x, weight, bias, stride, padding, relu=False)


def conv2d_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                padding: IntPair = 0) -> Tensor:
    """relu(conv2d(x, weight, bias, stride, padding)) as one node, the same numbers with one pass over the activations
    fewer (see Conv2d): what nn.Sequential runs for a Conv2d followed by a ReLU. Public for nn (not in F's
    __all__)."""
    return _conv2d(x, weight, bias, stride, padding, relu=True)


def conv2d_relu_max_pool2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                           padding: IntPair = 0, pool: IntPair = 2) -> Tensor:
    """max_pool2d(relu(conv2d(x, weight, bias, stride, padding)), pool) as one node, with pooling windows that tile the
    output (stride = kernel size `pool`, no padding): the same numbers, and the convolution's output is never written
    whole (see _Columns.correlate_pooled). What nn.Sequential runs for a Conv2d, a ReLU and such a MaxPool2d. Public
    for nn (not in F's __all__)."""
    return _conv2d(x, weight, bias, stride, padding, relu=True, pool=pair(pool, "kernel_size", "max_pool2d", 1))


def _conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: IntPair, padding: IntPair, relu: bool,
            pool: tuple[int, int] | None = None) -> Tensor:
    x = as_tensor(x)
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: weight must be (out_channels, in_channels, kh, kw), got shape {weight.shape}")
    params: dict[str, Any] = {"stride": pair(stride, "stride", "conv2d", 1),
                              "padding": pair(padding, "padding", "conv2d", 0)}
    if relu:
        params["relu"] = True
    if pool is not None:
        params["pool"] = pool
    if bias is None:
        return Conv2d.apply(x, weight, **params)
    return Conv2d.apply(x, weight, bias, **params)


def _pool_params(kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                 where: str) -> dict[str, tuple[int, int]]:
    kernel = pair(kernel_size, "kernel_size", where, 1)
    pad = pair(padding, "padding", where, 0)
    if pad[0] * 2 > kernel[0] or pad[1] * 2 > kernel[1]:
        raise ZerogradError(f"{where}: padding {pad} must be at most half the kernel size {kernel}, as in PyTorch")
    step = kernel if stride is None else pair(stride, "stride", where, 1)
    return {"kernel_size": kernel, "stride": step, "padding": pad}


def _running_max(m: np.ndarray, arg: np.ndarray, v: np.ndarray, code: int) -> None:
    """m = max(m, v) in place, and arg = code where v is strictly greater (ties keep the earlier index).

    Codes grow in scan order, so the index of the winner is a running maximum of `code * (v > m)`:
    elementwise and branch-free, several times faster than a masked assignment.
    """
    np.maximum(arg, (v > m).view(np.int8) * arg.dtype.type(code), out=arg)
    np.maximum(m, v, out=m)


def _max_of(views: list[np.ndarray], track: bool, out: np.ndarray | None = None,
            arg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Elementwise maximum of same-shaped views (into `out` if given) and, if `track`, the index of the first view
    holding it (into `arg` if given; int8, or int32 beyond 127 views)."""
    if track and arg is None:
        arg = np.empty(views[0].shape, dtype=np.int8 if len(views) <= 127 else np.int32)
    if len(views) == 1:
        if out is None:
            out = views[0].copy()
        else:
            np.copyto(out, views[0])
        if track:
            arg[...] = 0
        return out, arg
    if track:  # the first pair directly: index 1 where the second is strictly greater
        if arg.dtype == np.int8:
            np.greater(views[1], views[0], out=arg.view(np.bool_))
        else:
            np.copyto(arg, views[1] > views[0])
    m = np.maximum(views[0], views[1], out=out)
    for code, v in enumerate(views[2:], start=2):
        if track:
            _running_max(m, arg, v, code)
        else:
            np.maximum(m, v, out=m)
    return m, arg


def _tiled_max(x: np.ndarray, kernel: tuple[int, int], out: np.ndarray, track: bool,
               args: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Max-pooling of x (N, C, H, W) by windows that tile it (stride = kernel, no padding; rows and columns left over
    are ignored) into out (N, C, OH, OW): the columns of each window are reduced first, then its rows, on half-size
    intermediates. With `track`, returns where the maxima were, (column (N, C, OH*kh, OW), row (N, C, OH, OW)),
    written into `args` if given (int8 arrays of those shapes), for _tiled_max_backward."""
    (kh, kw), (oh, ow) = kernel, out.shape[2:]
    n, c = x.shape[:2]
    rows = x[:, :, : oh * kh]
    col_arg, row_arg = (None, None) if args is None else args
    cols, col_arg = _max_of([rows[:, :, :, j : j + kw * (ow - 1) + 1 : kw] for j in range(kw)], track, arg=col_arg)
    split = cols.reshape(n, c, oh, kh, ow)
    row_arg = _max_of([split[:, :, :, i] for i in range(kh)], track, out, row_arg)[1]
    return (col_arg, row_arg) if track else None


def _tiled_max_backward(g: np.ndarray, args: tuple[np.ndarray, np.ndarray], kernel: tuple[int, int],
                        gx: np.ndarray) -> None:
    """Writes the gradient g (N, C, OH, OW) of _tiled_max into gx (N, C, H, W), each window's to where its maximum
    was; rows and columns left over are not written."""
    (kh, kw), (oh, ow) = kernel, g.shape[2:]
    col_arg, row_arg = args
    n, c = g.shape[:2]
    g_rows = np.empty((n, c, oh, kh, ow), dtype=g.dtype)
    for i in range(kh):
        np.multiply(g, row_arg == i, out=g_rows[:, :, :, i])
    g_rows = g_rows.reshape(n, c, oh * kh, ow)
    for j in range(kw):
        np.multiply(g_rows, col_arg == j, out=gx[:, :, : oh * kh, j : j + kw * (ow - 1) + 1 : kw])


class MaxPool2d(Function):
    """The gradient goes to the first maximum of each window in row-major order, as in PyTorch.

    The maximum is taken by elementwise np.maximum over one strided view per kernel offset, keeping
    the winning offset's index (int8) for backward: no copy of the windows, no argmax over a
    reshaped axis. When the windows tile the input (stride = kernel, no padding) the columns of each
    window are reduced first and then its rows, on half-size intermediates. Each thread takes a shard
    of the batch (zerograd.threads.batch_shards), writing its part of the output and of the gradient.
    """

    def forward(self, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        oh, ow = _output_size(x.shape, kernel_size, stride, padding, "max_pool2d")
        self.shape, self.kernel, self.stride, self.padding, self.out_size = (
            x.shape, kernel_size, stride, padding, (oh, ow))
        self.tiled = stride == kernel_size and padding == (0, 0)
        track = self.needs_input_grad[0]  # under no_grad only the maxima are needed, not where they were
        out = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
        self.shards = batch_shards(len(x), x.size)
        self.args = parallel_map(lambda images: self._forward_shard(x[images], out[images], track), self.shards)
        return out

    def _forward_shard(self, x, out, track):
        """Writes the maxima of images x into out; returns where they were (for backward)."""
        if self.tiled:
            return _tiled_max(x, self.kernel, out, track)
        (kh, kw), (oh, ow) = self.kernel, self.out_size
        xp = _pad(x, self.padding, -np.inf)  # padding never wins a maximum, as in PyTorch
        views = [_offset(xp, i, j, self.stride, (oh, ow)) for i in range(kh) for j in range(kw)]
        return _max_of(views, track, out)[1]

    def backward(self, g):
        (kh, kw), (oh, ow) = self.kernel, self.out_size
        exact = not self.tiled or (self.shape[2] == oh * kh and self.shape[3] == ow * kw)
        gx = (np.empty if exact else np.zeros)(self.shape, dtype=g.dtype)  # else rows/columns left over get 0
        parallel_map(lambda k: self._backward_shard(g[self.shards[k]], self.args[k], gx[self.shards[k]]),
                     range(len(self.shards)))
        return gx

    def _backward_shard(self, g, arg, gx):
        """Writes the gradient of the shard's images into gx, each window's to where its maximum was."""
        if self.tiled:
            _tiled_max_backward(g, arg, self.kernel, gx)
            return
        (kh, kw), (oh, ow) = self.kernel, self.out_size
        (ph, pw), (h, w) = self.padding, self.shape[2:]
        dx = np.zeros((len(g), self.shape[1], h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                _offset(dx, i, j, self.stride, (oh, ow))[...] += g * (arg == i * kw + j)
        gx[...] = dx[:, :, ph : ph + h, pw : pw + w]


class AvgPool2d(Function):
    def forward(self, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
        kh, kw = kernel_size
        oh, ow = _output_size(x.shape, kernel_size, stride, padding, "avg_pool2d")
        xp = _pad(x, padding)  # zeros count in the average (PyTorch's count_include_pad=True)
        self.padded_shape, self.kernel, self.stride, self.padding = xp.shape, kernel_size, stride, padding
        out = _offset(xp, 0, 0, stride, (oh, ow)).copy()  # a sum of strided views, one per kernel offset
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    out += _offset(xp, i, j, stride, (oh, ow))
        out /= np.asarray(kh * kw, dtype=out.dtype)
        return out

    def backward(self, g):
        n, c, oh, ow = g.shape
        kh, kw = self.kernel
        share = g / np.asarray(kh * kw, dtype=g.dtype)
        cols = np.broadcast_to(share[:, :, None, None], (n, c, kh, kw, oh, ow))
        return col2im(cols, self.padded_shape, self.stride, self.padding)


def adaptive_pool_size(output_size: Any, where: str) -> tuple[int | None, int | None]:
    """(h, w) from an int or a pair whose entries are ints >= 1 or None (keep the input's size), as PyTorch reads it.

    Public for nn.AdaptiveAvgPool2d, which refuses a bad size when it is built (not in F's __all__).
    """
    single = output_size is None or isinstance(output_size, (int, np.integer))
    values = (output_size, output_size) if single else tuple(output_size) if isinstance(output_size, (tuple, list)) \
        else ()
    if len(values) != 2 or not all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                 and v >= 1) for v in values):
        raise ZerogradError(f"{where}: output_size must be a whole number >= 1 or a pair of them (None keeps the "
                            f"input's size), got {output_size!r}")
    return tuple(None if v is None else int(v) for v in values)  # type: ignore[return-value]


def _adaptive_weights(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size) matrix of PyTorch's adaptive windows: row i is 1/length on [i*size//out, ceil((i+1)*size/out))."""
    i = np.arange(out)
    start, end = i * size // out, -(-(i + 1) * size // out)
    j = np.arange(size)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool2d(Function):
    """Mean over PyTorch's adaptive windows: output (OH, OW) whatever the input's (H, W).

    Output 1x1 (global average pooling) is a mean over the flattened H*W, its gradient a broadcast view.
    Any other size, divisible or not: averaging is separable, so A_h (OH, H) @ x @ A_w.T (W, OW) with
    the averaging matrices of _adaptive_weights, and the gradient is the transpose, A_h.T @ g @ A_w.
    Measured on (128, 64, 16, 16) float32 to 8x8: 2.0 ms, where a reshape and a mean over the two window
    axes takes 19 ms (NumPy reduces short inner axes slowly); no Python loop over windows either way.
    """

    def forward(self, x, output_size=(1, 1)):
        if x.ndim != 4:
            raise ShapeError(f"adaptive_avg_pool2d expects images (N, C, H, W), got shape {x.shape}")
        n, c, h, w = x.shape
        oh, ow = (size if out is None else out for size, out in zip((h, w), output_size))
        self.shape = x.shape
        if (oh, ow) == (1, 1):
            self.weights = None
            return x.reshape(n, c, 1, h * w).mean(axis=3, keepdims=True)
        self.weights = _adaptive_weights(h, oh, x.dtype), _adaptive_weights(w, ow, x.dtype)
        return self.weights[0] @ x @ self.weights[1].T

    def backward(self, g):
        if self.weights is None:
            h, w = self.shape[2:]
            return np.broadcast_to(g / np.asarray(h * w, dtype=g.dtype), self.shape)
        return self.weights[0].T @ g @ self.weights[1]


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """Mean over adaptive windows: (N, C, H, W) -> (N, C, OH, OW) for any H, W; output_size 1 is global pooling.

    As PyTorch: output row i averages input rows floor(i*H/OH) to ceil((i+1)*H/OH) - 1, likewise columns;
    output_size is an int or an (OH, OW) pair whose None entries keep the input's size.
    """
    return AdaptiveAvgPool2d.apply(as_tensor(x), output_size=adaptive_pool_size(output_size, "adaptive_avg_pool2d"))


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Maximum over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to kernel_size."""
    return MaxPool2d.apply(as_tensor(x), **_pool_params(kernel_size, stride, padding, "max_pool2d"))


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Mean over each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to kernel_size."""
    return AvgPool2d.apply(as_tensor(x), **_pool_params(kernel_size, stride, padding, "avg_pool2d"))


def im2col(x: np.ndarray, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0) -> np.ndarray:
    """The book's im2col on a plain array: (N, C, H, W) -> (N*OH*OW, C*kh*kw), one row per window."""
    kernel = pair(kernel_size, "kernel_size", "im2col", 1)
    step, pad = pair(stride, "stride", "im2col", 1), pair(padding, "padding", "im2col", 0)
    x = np.asarray(x)
    oh, ow = _output_size(x.shape, kernel, step, pad, "im2col")
    windows = _windows(_pad(x, pad), kernel, step, (oh, ow))  # (N, C, OH, OW, kh, kw)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(x.shape[0] * oh * ow, -1)
