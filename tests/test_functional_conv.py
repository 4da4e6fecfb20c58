"""Convolution and pooling: values against a plain-loop reference, gradients against central differences."""

from __future__ import annotations

import numpy as np
import pytest
from _graph import node_kinds

import zerograd as zg
from zerograd import Tensor, nn
from zerograd import functional as F
from zerograd.errors import ShapeError, ZerogradError


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def conv_reference(x, w, b, stride, padding):
    """Cross-correlation by the definition: a loop over every output pixel."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def pool_reference(x, kernel, stride, padding, reduce):
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    fill = -np.inf if reduce is np.max else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], axis=(2, 3))
    return out


# (N, C, H, W, out_channels, (kh, kw), stride, padding): square and non-square kernels, one channel and many,
# batch size 1, strides that do not divide the input evenly, asymmetric strides and paddings
CONV_CASES = [
    (2, 3, 7, 8, 4, (3, 3), 1, 1),
    (1, 1, 9, 9, 2, (5, 2), 2, 0),
    (3, 2, 10, 7, 3, (3, 2), (2, 3), (1, 0)),
    (2, 4, 5, 5, 1, (5, 5), 1, 2),
    (1, 2, 11, 11, 3, (4, 4), 3, 1),
    (2, 1, 6, 6, 5, (1, 1), 1, 0),
    (1, 3, 8, 5, 2, (2, 5), (3, 1), (2, 2)),
    # 8 channels and more at stride 1: row runs, and the weight gradient by kernel offsets (conv.offsets_gradient)
    (2, 8, 8, 9, 3, (3, 3), 1, 1),
    (1, 9, 10, 8, 4, (2, 3), 1, (0, 1)),
    # rows share their padding (pitch W + pw, or W + 2*pw - kw + 1 when larger): padding 2 of a 3x3 kernel (no
    # cut-off columns), padding beyond the kernel, a 5x5 kernel; 8 output channels: the input gradient has runs too
    (2, 8, 6, 7, 8, (3, 3), 1, 2),
    (1, 8, 5, 6, 9, (3, 3), 1, (1, 3)),
    (2, 9, 7, 7, 8, (5, 5), 1, 2),
]


@pytest.mark.parametrize("n, c, h, w, o, kernel, stride, padding", CONV_CASES)
def test_conv2d_forward_matches_the_definition(n, c, h, w, o, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x, weight, bias = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, *kernel)), rng.standard_normal(o)
    out = F.conv2d(Tensor(x), Tensor(weight), Tensor(bias), stride=stride, padding=padding)
    np.testing.assert_allclose(out.data, conv_reference(x, weight, bias, stride, padding), rtol=1e-12, atol=1e-12)
    no_bias = F.conv2d(Tensor(x), Tensor(weight), stride=stride, padding=padding)
    np.testing.assert_allclose(no_bias.data, conv_reference(x, weight, None, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n, c, h, w, o, kernel, stride, padding", CONV_CASES)
def test_conv2d_gradients_match_central_differences(n, c, h, w, o, kernel, stride, padding):
    rng = np.random.default_rng(1)
    result = zg.gradcheck(
        lambda x, weight, bias: F.conv2d(x, weight, bias, stride=stride, padding=padding),
        rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, *kernel)), rng.standard_normal(o),
    )
    assert result.ok and result.max_abs_error < 1e-6


def test_conv2d_without_bias_gradients():
    rng = np.random.default_rng(2)
    result = zg.gradcheck(lambda x, weight: F.conv2d(x, weight, stride=2, padding=1),
                          rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)))
    assert result.ok


def test_conv2d_computes_no_input_gradient_when_the_input_needs_none():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 1, 6, 6)).astype(np.float32))  # images: no gradient wanted
    weight = Tensor(rng.standard_normal((3, 1, 3, 3)).astype(np.float32), requires_grad=True)
    out = F.conv2d(x, weight)
    grads = out._ctx.backward(np.ones(out.shape, dtype=np.float32))
    assert grads[0] is None and grads[1].shape == (3, 1, 3, 3)
    F.conv2d(x, weight).sum().backward()
    assert x.grad is None and weight.grad is not None


def test_conv2d_keeps_float32():
    x = Tensor(np.ones((1, 2, 5, 5), dtype=np.float32), requires_grad=True)
    layer = nn.Conv2d(2, 3, 3, padding=1)
    out = layer(x)
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32 and layer.weight.grad.dtype == np.float32


POOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((1, 1, 7, 7), 2, None, 0),  # 7 is not a multiple of 2: the last row and column are dropped
    ((2, 2, 9, 7), 3, 2, 1),  # overlapping windows with padding
    ((1, 3, 6, 9), (2, 3), (1, 2), (1, 1)),
    ((3, 1, 5, 5), 3, 1, 0),
]


@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
@pytest.mark.parametrize("op, reduce", [(F.max_pool2d, np.max), (F.avg_pool2d, np.mean)])
def test_pooling_forward_matches_the_definition(op, reduce, shape, kernel, stride, padding):
    x = np.random.default_rng(4).standard_normal(shape)
    out = op(Tensor(x), kernel, stride, padding)
    expected = pool_reference(x, kernel, kernel if stride is None else stride, padding, reduce)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, kernel, stride, padding", POOL_CASES)
@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_pooling_gradients_match_central_differences(op, shape, kernel, stride, padding):
    # distinct values a good distance apart: central differences never cross a tie of the maximum
    x = np.random.default_rng(5).permutation(np.prod(shape)).reshape(shape) * 0.1
    result = zg.gradcheck(lambda t: op(t, kernel, stride, padding), x)
    assert result.ok and result.max_abs_error < 1e-6


def test_max_pool_ties_send_the_gradient_to_one_element_per_window():
    # as PyTorch: the first maximum in row-major order within each window takes all of the gradient
    x = Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(x.grad[0, 0], expected)

    x = Tensor(np.zeros((1, 1, 5, 5)), requires_grad=True)  # overlapping 3x3 windows, stride 1
    F.max_pool2d(x, 3, 1).sum().backward()
    expected = np.zeros((5, 5))
    expected[:3, :3] = 1  # each window's first element: window (i, j) picks pixel (i, j)
    np.testing.assert_array_equal(x.grad[0, 0], expected)

    x = Tensor(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 5], [0, 0]])


def test_im2col_is_the_books():
    # the book's example shapes (chapter 7.4.3)
    x1 = np.random.default_rng(6).random((1, 3, 7, 7))
    assert F.im2col(x1, 5, 1, 0).shape == (9, 75)
    assert F.im2col(np.zeros((10, 3, 7, 7)), 5, 1, 0).shape == (90, 75)
    # each row is one window, channels first, then rows and columns of the window
    np.testing.assert_array_equal(F.im2col(x1, 5)[0], x1[0, :, :5, :5].ravel())
    np.testing.assert_array_equal(F.im2col(x1, 5)[4], x1[0, :, 1:6, 1:6].ravel())


@pytest.mark.parametrize(
    "make, x_shape, message",
    [
        (lambda: nn.Conv2d(1, 4, 5), (1, 1, 3, 3), "kernel 5x5 is larger than the padded input 3x3"),
        (lambda: nn.Conv2d(1, 4, 5, padding=1), (1, 1, 2, 2), "padded input 4x4"),
        (lambda: nn.Conv2d(3, 4, 3), (2, 1, 8, 8), "input has 1 channels but the weight (4, 3, 3, 3) expects 3"),
        (lambda: nn.Conv2d(1, 4, 3), (1, 28, 28), "expects images (N, C, H, W), got shape (1, 28, 28)"),
        (lambda: nn.MaxPool2d(3), (1, 1, 2, 2), "kernel 3x3 is larger than the padded input 2x2"),
        (lambda: nn.AvgPool2d(2), (4, 4), "expects images (N, C, H, W), got shape (4, 4)"),
    ],
)
def test_bad_input_names_the_layer_and_the_shapes(make, x_shape, message):
    layer = make()
    with pytest.raises(ShapeError) as info:
        layer(Tensor(np.zeros(x_shape, dtype=np.float32)))
    assert message in str(info.value) and str(info.value).startswith(type(layer).__name__ + "(")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.Conv2d(1, 4, 3, stride=0), "stride must be at least 1"),
        (lambda: nn.Conv2d(1, 4, 3, stride=(1, -2)), "stride must be at least 1"),
        (lambda: nn.Conv2d(1, 4, 0), "kernel_size must be at least 1"),
        (lambda: nn.Conv2d(1, 4, 3, padding=-1), "padding must be at least 0"),
        (lambda: nn.Conv2d(0, 4, 3), "positive channel counts"),
        (lambda: nn.MaxPool2d(2, stride=0), "stride must be at least 1"),
        (lambda: nn.MaxPool2d(2, padding=2), "at most half the kernel size"),
        (lambda: F.conv2d(Tensor(np.zeros((1, 1, 5, 5))), Tensor(np.zeros((1, 1, 3, 3))), stride=0), "stride"),
        (lambda: F.conv2d(Tensor(np.zeros((1, 1, 5, 5))), Tensor(np.zeros((3, 3)))), "weight must be"),
    ],
)
def test_bad_settings_are_refused_clearly(make, message):
    with pytest.raises(ZerogradError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_one_pair_reads_kernel_stride_and_padding_for_functional_and_nn():
    import zerograd.nn.layers
    from zerograd.functional.conv import pair

    assert zerograd.nn.layers.pair is pair and "pair" not in F.__all__
    assert pair(3, "stride", "conv2d", 1) == (3, 3) and pair([2, np.int64(1)], "padding", "conv2d", 0) == (2, 1)
    assert all(type(v) is int for v in pair(np.int64(2), "stride", "conv2d", 1))
    with pytest.raises(ZerogradError, match=r"^Conv2d: stride must be an int or a pair of ints, got \(1, 2, 3\)$"):
        pair((1, 2, 3), "stride", "Conv2d", 1)
    with pytest.raises(ZerogradError, match=r"^max_pool2d: padding must be at least 0, got -1$"):
        pair(-1, "padding", "max_pool2d", 0)
    with pytest.raises(ZerogradError, match=r"^Conv2d: kernel_size must be at least 1, got \(3, 0\)$"):
        nn.Conv2d(1, 4, (3, 0))
    with pytest.raises(ZerogradError, match=r"^AvgPool2d: stride must be at least 1, got 0$"):
        nn.AvgPool2d(2, stride=0)
    conv = nn.Conv2d(1, 4, np.int64(3), stride=[2, 1])
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (2, 1), (0, 0))
    assert all(type(v) is int for v in conv.kernel_size + conv.stride + conv.padding)
    pool = nn.MaxPool2d([2, 3], padding=1)
    assert (pool.kernel_size, pool.stride, pool.padding) == ((2, 3), (2, 3), (1, 1))


def test_layers_have_pytorchs_defaults():
    conv = nn.Conv2d(3, 8, 5)
    assert (conv.stride, conv.padding, conv.kernel_size) == ((1, 1), (0, 0), (5, 5))
    assert conv.weight.shape == (8, 3, 5, 5) and conv.bias.shape == (8,) and not conv.bias.data.any()
    assert nn.Conv2d(3, 8, (3, 2), bias=False).bias is None
    big = nn.Conv2d(16, 64, 3, generator=0)  # He: std sqrt(2 / fan_in), fan_in = 16 * 3 * 3
    assert big.weight.data.std() == pytest.approx(np.sqrt(2 / 144), rel=0.05)
    pool = nn.MaxPool2d(3)
    assert (pool.kernel_size, pool.stride, pool.padding) == ((3, 3), (3, 3), (0, 0))
    assert nn.AvgPool2d(2, 1).stride == (1, 1)
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]


def test_conv_layer_trains_with_batchnorm2d():
    # a tiny CNN learns to tell a vertical bar from a horizontal one
    rng = np.random.default_rng(7)
    x = np.zeros((40, 1, 6, 6), dtype=np.float32)
    t = np.arange(40) % 2
    for i, label in enumerate(t):
        k = rng.integers(1, 5)
        if label:
            x[i, 0, :, k] = 1
        else:
            x[i, 0, k, :] = 1
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, generator=0), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2, generator=1))
    opt = zg.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        loss = F.cross_entropy(model(Tensor(x)), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with zg.no_grad():
        accuracy = (model(Tensor(x)).data.argmax(axis=1) == t).mean()
    assert accuracy == 1.0 and loss.item() < 0.1


def adaptive_reference(x, out_h, out_w):
    """PyTorch's adaptive average pooling by its definition: a loop over the output's windows."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * h // out_h, -(-(i + 1) * h // out_h))
            cols = slice(j * w // out_w, -(-(j + 1) * w // out_w))
            out[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return out


ADAPTIVE_CASES = [
    ((2, 3, 8, 8), 1, (1, 1)),  # global average pooling
    ((2, 3, 7, 5), 1, (1, 1)),
    ((2, 3, 8, 6), (4, 3), (4, 3)),  # divisible: windows tile the image
    ((2, 3, 7, 5), (3, 2), (3, 2)),  # windows of sizes 3 and 2 that overlap
    ((1, 2, 5, 7), (7, 9), (7, 9)),  # larger than the input: windows of one or two pixels
    ((2, 1, 9, 6), (None, 4), (9, 4)),  # None keeps the input's size
]


@pytest.mark.parametrize("shape, size, out", ADAPTIVE_CASES)
def test_adaptive_avg_pool_forward_matches_the_definition(shape, size, out):
    x = np.random.default_rng(8).standard_normal(shape)
    got = F.adaptive_avg_pool2d(Tensor(x), size)
    assert got.shape == shape[:2] + out and got.dtype == np.float64
    np.testing.assert_allclose(got.data, adaptive_reference(x, *out), rtol=1e-12, atol=1e-12)
    layer = nn.AdaptiveAvgPool2d(size)
    np.testing.assert_array_equal(layer(Tensor(x)).data, got.data)
    assert F.adaptive_avg_pool2d(Tensor(x.astype(np.float32)), size).dtype == np.float32


@pytest.mark.parametrize("shape, size, out", ADAPTIVE_CASES)
def test_adaptive_avg_pool_gradients_match_central_differences(shape, size, out):
    x = np.random.default_rng(9).standard_normal(shape)
    result = zg.gradcheck(lambda t: F.adaptive_avg_pool2d(t, size), x)
    assert result.ok and result.max_abs_error < 1e-8


def test_adaptive_avg_pool_gradient_shares_each_output_among_its_window():
    x = Tensor(np.zeros((1, 1, 3, 4)), requires_grad=True)  # 3x4 -> 1x1: every pixel gets 1/12
    F.adaptive_avg_pool2d(x, 1).backward(np.array([[[[6.0]]]]))
    np.testing.assert_array_equal(x.grad, np.full((1, 1, 3, 4), 0.5))
    x = Tensor(np.zeros((1, 1, 3, 1)), requires_grad=True)  # 3 rows -> 2: windows rows [0, 2) and [1, 3)
    F.adaptive_avg_pool2d(x, (2, 1)).backward(np.array([[[[2.0], [4.0]]]]))
    np.testing.assert_array_equal(x.grad[0, 0, :, 0], [1.0, 3.0, 2.0])


def test_adaptive_avg_pool_refuses_bad_sizes_and_inputs():
    for size in (0, (2, 0), (1, 2, 3), 1.5, "2", True):
        with pytest.raises(ZerogradError, match=r"^AdaptiveAvgPool2d: output_size must be a whole number >= 1"):
            nn.AdaptiveAvgPool2d(size)
    with pytest.raises(ZerogradError, match="^adaptive_avg_pool2d: output_size"):
        F.adaptive_avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), -1)
    with pytest.raises(ShapeError, match=r"^AdaptiveAvgPool2d\(output_size=\(1, 1\)\): .*got shape \(4, 4\)"):
        nn.AdaptiveAvgPool2d(1)(Tensor(np.zeros((4, 4), dtype=np.float32)))
    assert nn.AdaptiveAvgPool2d(np.int64(2)).output_size == (2, 2) and nn.AdaptiveAvgPool2d([3, None]).output_size \
        == (3, None)


@pytest.mark.parametrize("n, c, h, o", [(3, 16, 28, 16), (5, 16, 14, 64), (2, 32, 8, 64)])
def test_products_cut_in_pieces_give_the_convolution_and_its_gradients(monkeypatch, n, c, h, o):
    """On OpenBLAS with small-matrix kernels the float32 products are cut into pieces (conv._product): forced on
    here whatever the machine's BLAS, on shapes like DeepConvNet's (28x28, 14x14 and 8x8 images, one per product),
    the output and gradients are those of the float64 convolution, which is never cut."""
    from zerograd.functional import conv

    monkeypatch.setattr(conv, "blas_small_products", lambda: True)
    cuts = []
    pieces = conv._pieces.__wrapped__
    monkeypatch.setattr(conv, "_pieces", lambda *shape: cuts.append(pieces(*shape)) or cuts[-1])
    rng = np.random.default_rng(7)
    x, weight, bias = rng.standard_normal((n, c, h, h)), rng.standard_normal((o, c, 3, 3)), rng.standard_normal(o)
    g = rng.standard_normal((n, o, h, h))

    def run(dtype):
        xs, ws, bs = (Tensor(a.astype(dtype), requires_grad=True) for a in (x, weight, bias))
        out = F.conv2d(xs, ws, bs, padding=1)
        (out * Tensor(g.astype(dtype))).sum().backward()
        return out.data, xs.grad, ws.grad, bs.grad

    exact = run(np.float64)
    assert not cuts  # float64 products are never cut
    for got, want in zip(run(np.float32), exact):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())
    assert max(cuts) > 1  # the forward and input-gradient products were cut
    np.testing.assert_allclose(exact[0], conv_reference(x, weight, bias, 1, 1), rtol=1e-10, atol=1e-10)


def test_pieces_are_the_fewest_equal_ones_below_the_small_product_size():
    from zerograd.functional.conv import _pieces

    assert _pieces(16 * 145, 840) == 2  # DeepConvNet's second layer, one image: 1.9e6 -> 2 x 0.97e6
    assert _pieces(32 * 289, 448) == 7  # its fourth, two images side by side: 4.1e6 -> 7 x 0.59e6
    assert _pieces(16 * 10, 784) == 1  # already small
    assert _pieces(64 * 289, 72) == 2  # its fifth, one 8x8 image in row runs: 1.3e6 -> 2 x 0.67e6, 36 columns each
    assert _pieces(64 * 577, 72) == 1  # its sixth: 3 pieces would be small enough, but only 24 columns wide
    assert _pieces(256 * 2305, 64) == 1  # no piece of 32 columns or more is small enough: left whole


def test_the_weight_gradient_by_kernel_offsets_is_taken_where_it_pays(monkeypatch):
    """Up to 1024 channel pairs with runs of 72 and more (8x8 images): the offsets; wider layers and short runs
    (7x7 images): the columns."""
    from zerograd.functional import conv

    calls = []
    offsets = conv._Columns.offsets_gradient
    monkeypatch.setattr(conv._Columns, "offsets_gradient", lambda self, *a: calls.append(1) or offsets(self, *a))
    rng = np.random.default_rng(5)
    for c, o, h, taken in [(8, 3, 8, True), (32, 32, 14, True), (32, 64, 14, False), (32, 32, 7, False)]:
        calls.clear()
        weight = Tensor(rng.standard_normal((o, c, 3, 3)).astype(np.float32), requires_grad=True)
        F.conv2d(Tensor(rng.standard_normal((2, c, h, h)).astype(np.float32)), weight, padding=1).sum().backward()
        assert bool(calls) is taken, (c, o, h)


# --- a convolution and the ReLU after it as one node (conv2d_relu; nn.Sequential runs a Conv2d + ReLU pair so) ---
def _conv_then_relu(fused: bool, arrays: list[np.ndarray], stride, padding, needs: tuple[bool, ...]):
    """Output and gradients of relu(conv2d(x, w, b)), as one node or two; needs: which inputs require grad."""
    from zerograd.functional.conv import conv2d_relu

    tensors = [Tensor(a, requires_grad=r) for a, r in zip(arrays, needs)]
    if fused:
        out = conv2d_relu(*tensors, stride=stride, padding=padding)
    else:
        out = F.relu(F.conv2d(*tensors, stride=stride, padding=padding))
    weights = np.random.default_rng(9).standard_normal(out.shape).astype(out.dtype)
    if any(needs):
        (out * Tensor(weights)).sum().backward()
    return [out.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n, c, h, w, o, kernel, stride, padding", CONV_CASES)
def test_conv2d_relu_is_bit_identical_to_conv2d_then_relu(monkeypatch, n_threads, n, c, h, w, o, kernel, stride,
                                                          padding):
    """Every path of the convolution (kept columns, windows, row runs, offsets or rebuilt columns, col2im), at one
    thread and split over two, with and without the gradients of each input: the same bits as the two nodes."""
    from zerograd import threads

    old = zg.get_num_threads()
    monkeypatch.setattr(threads, "MIN_SHARD_SIZE", 1)
    zg.set_num_threads(n_threads)
    try:
        rng = np.random.default_rng(10)
        arrays = [rng.standard_normal(s).astype(np.float32) for s in ((n, c, h, w), (o, c, *kernel), (o,))]
        for needs in [(True, True, True), (False, True, True), (True, False, False), (False, False, True),
                      (False, False, False)]:
            fused, apart = (_conv_then_relu(f, arrays, stride, padding, needs) for f in (True, False))
            for a, b in zip(fused, apart):
                assert (a is None and b is None) or a.tobytes() == b.tobytes()
            assert (fused[0] == 0).any() and (fused[0] > 0).any()  # the ReLU did cut something
    finally:
        zg.set_num_threads(old)


@pytest.mark.parametrize("stride, padding, c", [(1, 1, 8), (2, 1, 3), (1, 0, 1)])
def test_conv2d_relu_gradients_match_central_differences(stride, padding, c):
    from zerograd.functional.conv import conv2d_relu

    rng = np.random.default_rng(11)
    result = zg.gradcheck(lambda x, weight, bias: conv2d_relu(x, weight, bias, stride=stride, padding=padding),
                          rng.standard_normal((2, c, 7, 6)), rng.standard_normal((4, c, 3, 3)), rng.standard_normal(4))
    assert result.ok and result.max_abs_error < 1e-6


def _fused_and_layer_by_layer(model: nn.Sequential, x: np.ndarray) -> tuple[list[str], list[str]]:
    """The node kinds of the model's graph (Sequential fusing its runs) and of its layers run one by one, after
    checking that the two give the same bits: outputs and the gradients of every parameter."""
    out = model(Tensor(x))
    fused_kinds = node_kinds(out)
    out.sum().backward()
    fused = [out.data] + [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    manual = Tensor(x)
    for layer in model:
        manual = layer(manual)
    manual_kinds = node_kinds(manual)
    manual.sum().backward()
    for a, b in zip(fused, [manual.data] + [p.grad for p in model.parameters()]):
        assert a.tobytes() == b.tobytes()
    return fused_kinds, manual_kinds


def test_sequential_runs_a_conv2d_and_the_relu_after_it_as_one_node():
    rng = np.random.default_rng(12)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, generator=0), nn.ReLU(), nn.Conv2d(4, 4, 3, generator=1),
                          nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.ReLU())
    fused, manual = _fused_and_layer_by_layer(model, rng.standard_normal((3, 1, 8, 8)).astype(np.float32))
    # only a Conv2d directly followed by a ReLU: the one after BatchNorm2d and the one after pooling stay apart
    assert fused == ["BatchNorm", "Conv2d", "Conv2d + ReLU", "MaxPool2d", "ReLU", "ReLU"]
    assert manual.count("ReLU") == 3  # each layer on its own: two nodes for the pair


def test_sequential_keeps_the_pair_apart_when_a_layer_is_changed():
    class MyConv(nn.Conv2d):  # a subclass may change forward: it runs as written
        def forward(self, x):
            return super().forward(x) * 2

    x = Tensor(np.random.default_rng(13).standard_normal((2, 1, 6, 6)).astype(np.float32))
    sub = nn.Sequential(MyConv(1, 2, 3, generator=0), nn.ReLU())
    assert node_kinds(sub(x)) == ["Conv2d", "Mul", "ReLU"]
    plain = nn.Sequential(nn.Conv2d(1, 2, 3, generator=0), nn.ReLU())
    seen = []
    relu = plain[1]
    relu.forward = lambda t: seen.append(t.shape) or F.relu(t)  # a forward set on the instance (as tracing does)
    assert node_kinds(plain(x)) == ["Conv2d", "ReLU"] and seen == [(2, 2, 4, 4)]
    del relu.forward
    assert node_kinds(plain(x)) == ["Conv2d + ReLU"]


def test_sequential_runs_a_linear_and_the_relu_after_it_as_one_node():
    rng = np.random.default_rng(14)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8, generator=0), nn.ReLU(), nn.Linear(8, 6, generator=1),
                          nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4, generator=2), nn.ReLU(), nn.Dropout(0.0),
                          nn.Linear(4, 3, generator=3))
    fused, manual = _fused_and_layer_by_layer(model, rng.standard_normal((5, 3, 2, 2)).astype(np.float32))
    # the ReLU after BatchNorm1d stays apart; a Linear at the end, with no ReLU after it, is a Linear
    assert fused == ["BatchNorm", "Linear", "Linear", "Linear + ReLU", "Linear + ReLU", "ReLU"]
    assert manual.count("ReLU") == 3


# --- a convolution, its ReLU and a max-pooling that tiles the output as one node (conv2d_relu_max_pool2d) ---
def _conv_relu_pool(fused: bool, arrays: list[np.ndarray], stride, padding, pool, needs: tuple[bool, ...]):
    from zerograd.functional.conv import conv2d_relu_max_pool2d

    tensors = [Tensor(a, requires_grad=r) for a, r in zip(arrays, needs)]
    if fused:
        out = conv2d_relu_max_pool2d(*tensors, stride=stride, padding=padding, pool=pool)
    else:
        out = F.max_pool2d(F.relu(F.conv2d(*tensors, stride=stride, padding=padding)), pool)
    weights = np.random.default_rng(9).standard_normal(out.shape).astype(out.dtype)
    if any(needs):
        (out * Tensor(weights)).sum().backward()
    return [out.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("gather", ["one image", "the whole shard"])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n, c, h, w, o, kernel, stride, padding", CONV_CASES)
def test_conv2d_relu_max_pool2d_is_bit_identical_to_the_three_nodes(monkeypatch, gather, n_threads, n, c, h, w, o,
                                                                    kernel, stride, padding):
    """Every path of the convolution, at one thread and split over two, with the products pooled one image at a time
    or all at once, with and without the gradients of each input: the same bits as conv2d, relu and max_pool2d, on
    outputs of even and odd sizes (rows and columns left over)."""
    from zerograd import threads
    from zerograd.functional import conv

    old = zg.get_num_threads()
    monkeypatch.setattr(threads, "MIN_SHARD_SIZE", 1)
    if gather == "one image":
        monkeypatch.setattr(conv, "_CHUNK_BYTES", 1)
        monkeypatch.setattr(conv, "_POOL_BYTES", 1)
    zg.set_num_threads(n_threads)
    try:
        rng = np.random.default_rng(10)
        arrays = [rng.standard_normal(s).astype(np.float32) for s in ((n, c, h, w), (o, c, *kernel), (o,))]
        arrays[2] -= 1.0 * np.sqrt(c * kernel[0] * kernel[1])  # a negative bias: the ReLU cuts some whole windows
        for pool in [2, (1, 2)]:
            for needs in [(True, True, True), (False, True, True), (True, False, False), (False, False, True),
                          (False, False, False)]:
                fused, apart = (_conv_relu_pool(f, arrays, stride, padding, pool, needs) for f in (True, False))
                for a, b in zip(fused, apart):
                    assert (a is None and b is None) or a.tobytes() == b.tobytes()
                assert (fused[0] == 0).any() and (fused[0] > 0).any()  # the ReLU did cut something
    finally:
        zg.set_num_threads(old)


def test_conv2d_relu_max_pool2d_gives_ties_to_the_first_maximum():
    """A window whose maximum is at (0, 1) and (1, 0): the gradient goes to (0, 1), the first in row-major order, as
    max_pool2d and PyTorch give it; a window of zeros after the ReLU passes no gradient."""
    from zerograd.functional.conv import conv2d_relu_max_pool2d

    x = np.array([[[[1, 5, 0, -1], [5, 2, -2, -3]]]], dtype=np.float32)
    ident = Tensor(np.ones((1, 1, 1, 1), dtype=np.float32), requires_grad=True)  # a 1x1 convolution: out = x
    xt = Tensor(x, requires_grad=True)
    out = conv2d_relu_max_pool2d(xt, ident, pool=2)
    assert out.data.tolist() == [[[[5.0, 0.0]]]]
    out.sum().backward()
    assert xt.grad.tolist() == [[[[0, 1, 0, 0], [0, 0, 0, 0]]]]


@pytest.mark.parametrize("stride, padding, c, pool", [(1, 1, 8, 2), (2, 1, 3, 2), (1, 0, 1, (3, 2))])
def test_conv2d_relu_max_pool2d_gradients_match_central_differences(stride, padding, c, pool):
    from zerograd.functional.conv import conv2d_relu_max_pool2d

    rng = np.random.default_rng(11)
    result = zg.gradcheck(lambda x, weight, bias: conv2d_relu_max_pool2d(x, weight, bias, stride=stride,
                                                                         padding=padding, pool=pool),
                          rng.standard_normal((2, c, 7, 6)), rng.standard_normal((4, c, 3, 3)), rng.standard_normal(4))
    assert result.ok and result.max_abs_error < 1e-6


def test_sequential_runs_a_conv2d_relu_and_tiling_max_pool2d_as_one_node():
    rng = np.random.default_rng(14)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, generator=0), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, padding=1, generator=1), nn.ReLU(), nn.MaxPool2d(2, stride=1),
                          nn.Conv2d(4, 4, 3, padding=1, generator=2), nn.ReLU(), nn.MaxPool2d(3, padding=1),
                          nn.Conv2d(4, 2, 1, generator=3), nn.ReLU(), nn.MaxPool2d((1, 2)))
    fused, manual = _fused_and_layer_by_layer(model, rng.standard_normal((3, 1, 11, 11)).astype(np.float32))
    # a pooling that does not tile its input (stride 1, padding) stays a node of its own after the pair
    assert fused == ["Conv2d + ReLU", "Conv2d + ReLU", "Conv2d + ReLU + MaxPool2d", "Conv2d + ReLU + MaxPool2d",
                     "MaxPool2d", "MaxPool2d"]
    assert manual.count("MaxPool2d") == 4


def test_sequential_fused_run_keeps_each_layers_errors_and_changes():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, generator=0), nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(ShapeError, match=r"^MaxPool2d\(kernel_size=\(2, 2\).*kernel 2x2 is larger than the padded "
                                         r"input 1x1"):
        model(Tensor(np.zeros((1, 1, 3, 3), dtype=np.float32)))
    with pytest.raises(ShapeError, match=r"^Conv2d\(1, 2, .*kernel 3x3 is larger"):
        model(Tensor(np.zeros((1, 1, 2, 2), dtype=np.float32)))
    x = Tensor(np.random.default_rng(15).standard_normal((2, 1, 8, 8)).astype(np.float32))
    model[2].forward = lambda t: F.max_pool2d(t, 2) * 2  # a forward set on the pooling: the pair runs, then it
    assert node_kinds(model(x)) == ["Conv2d + ReLU", "MaxPool2d", "Mul"]
    del model[2].forward
    assert node_kinds(model(x)) == ["Conv2d + ReLU + MaxPool2d"]


@pytest.mark.parametrize("c, o, h, padding", [(8, 8, 10, 1), (16, 16, 9, 2), (8, 12, 11, 1)])
def test_weight_gradient_reads_the_padded_output_gradient_of_the_input_gradient(monkeypatch, c, o, h, padding):
    """With stride 1 the output's gradient is written (masked, or sent to each window's maximum) into its padded copy
    for the input's gradient, and the weight gradient by kernel offsets reads its rows from there: the same bits as
    when the input's gradient is not wanted (the rows then laid out in a buffer of its own)."""
    from zerograd.functional import conv

    shared = []
    offsets_gradient = conv._Columns.offsets_gradient
    monkeypatch.setattr(conv._Columns, "offsets_gradient",
                        lambda self, g, bias, g_rows=None: shared.append(g_rows is not None)
                        or offsets_gradient(self, g, bias, g_rows))
    rng = np.random.default_rng(16)
    x, weight, bias = (rng.standard_normal(s).astype(np.float32) for s in ((3, c, h, h), (o, c, 3, 3), (o,)))
    for op in (F.conv2d, conv.conv2d_relu, lambda *a, **k: conv.conv2d_relu_max_pool2d(*a, **k, pool=2)):
        grads = []
        for input_grad in (True, False):
            shared.clear()
            tensors = [Tensor(x, requires_grad=input_grad), Tensor(weight, requires_grad=True),
                       Tensor(bias, requires_grad=True)]
            out = op(*tensors, padding=padding)
            (out * Tensor(np.random.default_rng(17).standard_normal(out.shape).astype(np.float32))).sum().backward()
            assert shared == [input_grad]
            grads.append([tensors[1].grad.tobytes(), tensors[2].grad.tobytes()])
        assert grads[0] == grads[1]
