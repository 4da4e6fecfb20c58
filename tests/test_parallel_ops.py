"""The operations that split a batch over threads: same results at every thread count, gradients checked in float64."""

from __future__ import annotations

import numpy as np
import pytest

import zerograd as zg
from zerograd import functional as F
from zerograd import gradcheck, threads
from zerograd.functional import math as zmath


@pytest.fixture
def tiny_shards(monkeypatch):
    """Shards of any size (and Linear's split from any size), so that small float64 checks take the parallel path."""
    old = zg.get_num_threads()
    monkeypatch.setattr(threads, "MIN_SHARD_SIZE", 1)
    monkeypatch.setattr(zmath, "_PARALLEL_MACS", 1)
    yield
    zg.set_num_threads(old)


def _conv_net(x: zg.Tensor, w1: zg.Tensor, b1: zg.Tensor, w2: zg.Tensor, lin: zg.Tensor) -> zg.Tensor:
    """conv (pad 1) -> ReLU -> max-pool 2x2 -> conv (stride 2) -> flatten -> Linear: every split operation."""
    h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2)
    h = F.conv2d(h, w2, stride=2)
    return F.linear(h.reshape(len(h), -1), lin)


def _weights(rng: np.random.Generator, dtype: type) -> list[zg.Tensor]:
    shapes = [(3, 5, 6, 6), (4, 5, 3, 3), (4,), (2, 4, 3, 3), (3, 2)]
    return [zg.Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def _run(n_threads: int, arrays: list[np.ndarray]) -> list[np.ndarray]:
    zg.set_num_threads(n_threads)
    tensors = [zg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = _conv_net(*tensors)
    (out * zg.Tensor(np.arange(out.data.size, dtype=out.dtype).reshape(out.shape))).sum().backward()
    return [out.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("n_threads", [2, 3])
def test_gradients_of_the_split_operations_in_float64(tiny_shards, n_threads):
    zg.set_num_threads(n_threads)
    rng = np.random.default_rng(0)
    assert len(threads.batch_shards(3, 3 * 5 * 36)) == min(n_threads, 3)
    assert gradcheck(_conv_net, *_weights(rng, np.float64))


def test_every_thread_count_gives_the_same_result_within_float32_rounding(tiny_shards):
    arrays = [t.data for t in _weights(np.random.default_rng(1), np.float32)]
    one = _run(1, arrays)
    for n in (2, 3):
        for a, b in zip(one, _run(n, arrays)):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_a_given_thread_count_gives_bit_identical_results_run_after_run(tiny_shards):
    arrays = [t.data for t in _weights(np.random.default_rng(2), np.float32)]
    first, second = _run(2, arrays), _run(2, arrays)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, second))


def test_elementwise_and_pooling_splits_add_nothing_up_so_they_are_exact(tiny_shards):
    x = np.random.default_rng(3).standard_normal((6, 3, 8, 8)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        zg.set_num_threads(n)
        t = zg.Tensor(x, requires_grad=True)
        y = F.max_pool2d(F.relu(t), 2)
        (y * y).sum().backward()
        results.append((y.data.tobytes(), t.grad.tobytes()))
    assert results[0] == results[1] == results[2]


def test_shards_cover_the_batch_in_order():
    old = zg.get_num_threads()
    try:
        zg.set_num_threads(3)
        shards = threads.batch_shards(10, 10 * threads.MIN_SHARD_SIZE)
        assert shards == [slice(0, 3), slice(3, 6), slice(6, 10)]
        assert threads.batch_shards(10, threads.MIN_SHARD_SIZE) == [slice(0, 10)]  # too little work to split
        assert threads.batch_shards(0, 0) == [slice(0, 0)]
    finally:
        zg.set_num_threads(old)


# Linear splits its products along an output axis, the one that lets each thread read a part of the larger operand:
# x (4, 12) @ w (3, 12).T by rows of x, and its gradients by columns of w and of x; w (20, 12) by rows of w forward,
# and the weight's gradient by rows of g.T. Between them, every way of splitting each product.
LINEAR_SHAPES = [((4, 12), (3, 12)), ((4, 12), (20, 12))]


@pytest.mark.parametrize("x_shape, w_shape", LINEAR_SHAPES)
@pytest.mark.parametrize("n_threads", [2, 3])
def test_linear_gradients_along_every_split_in_float64(tiny_shards, x_shape, w_shape, n_threads):
    zg.set_num_threads(n_threads)
    rng = np.random.default_rng(4)
    x, w = (zg.Tensor(rng.standard_normal(s), requires_grad=True) for s in (x_shape, w_shape))
    b = zg.Tensor(rng.standard_normal(w_shape[0]), requires_grad=True)
    g = np.empty((x_shape[0], w_shape[0]))
    sides = [zmath._split(x.data, w.data, 0, 0)[0], zmath._split(g, w.data, 0, 1)[0], zmath._split(g, x.data, 1, 1)[0]]
    assert sides == ([0, 1, 1] if w_shape[0] == 3 else [1, 1, 0])  # forward, input gradient, weight gradient
    assert gradcheck(F.linear, x, w, b)


@pytest.mark.parametrize("x_shape, w_shape", LINEAR_SHAPES)
def test_linear_splits_match_one_thread(tiny_shards, x_shape, w_shape):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape, (w_shape[0],))]
    g = rng.standard_normal((x_shape[0], w_shape[0])).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        zg.set_num_threads(n)
        x, w, b = (zg.Tensor(a, requires_grad=True) for a in arrays)
        out = F.linear(x, w, b)
        (out * zg.Tensor(g)).sum().backward()
        results.append([out.data, x.grad, w.grad, b.grad])
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)


def test_a_small_output_of_large_operands_is_split_along_the_inner_axis(tiny_shards, monkeypatch):
    """x (4, 40) @ w (3, 40).T: the output (12 numbers, 4 times over) is smaller than either operand, so each thread
    multiplies a part of the 40 columns and the partial products are added in order: within float32 rounding of one
    thread's result, bit-identical run after run, and its gradients right in float64 (SimpleConvNet's hidden layer,
    (100, 4320) @ (4320, 100), takes this path at two threads)."""
    calls = []
    inner = zmath.Linear._forward_inner_split
    monkeypatch.setattr(zmath.Linear, "_forward_inner_split",
                        staticmethod(lambda *args: calls.append(1) or inner(*args)))
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((4, 40), (3, 40), (3,))]
    zg.set_num_threads(1)
    one = F.linear(*(zg.Tensor(a) for a in arrays)).data
    assert not calls
    for n in (2, 3):
        zg.set_num_threads(n)
        assert len(threads.batch_shards(40, 280)) == n
        first, second = (F.linear(*(zg.Tensor(a) for a in arrays)).data for _ in range(2))
        np.testing.assert_allclose(first, one, rtol=1e-5, atol=1e-6)
        assert first.tobytes() == second.tobytes()
        x, w, b = (zg.Tensor(a.astype(np.float64), requires_grad=True) for a in arrays)
        assert gradcheck(F.linear, x, w, b)
    assert len(calls) >= 4
    ref = arrays[0].astype(np.float64) @ arrays[1].astype(np.float64).T + arrays[2]
    np.testing.assert_allclose(one, ref, rtol=1e-5, atol=1e-5)


def test_adam_updates_in_parts_exactly_as_in_one(tiny_shards):
    """Adam updates a large parameter in parts, one per thread: elementwise, so bit-identical at every thread count
    (a gradient that is a strided view takes the whole-array path, with the same result)."""
    rng = np.random.default_rng(6)
    start = rng.standard_normal((6, 5)).astype(np.float32)
    grads = [rng.standard_normal((6, 5)).astype(np.float32) for _ in range(3)]
    strided = rng.standard_normal((5, 6)).astype(np.float32)
    finals = []
    for n in (1, 2, 3):
        zg.set_num_threads(n)
        p, q = zg.Tensor(start.copy(), requires_grad=True), zg.Tensor(start.copy(), requires_grad=True)
        opt = zg.optim.Adam([{"params": [p], "weight_decay": 0.01}, {"params": [q]}], lr=0.1)
        for g in grads:
            p.grad, q.grad = g, strided.T  # q's gradient is not contiguous
            opt.step()
        finals.append((p.data.tobytes(), q.data.tobytes(), opt.state[p]["exp_avg_sq"].tobytes()))
    assert finals[0] == finals[1] == finals[2]
    assert finals[0][0] != start.tobytes()


# Linear with the ReLU after it as one node (functional.math.linear_relu, what nn.Sequential and TwoLayerNet run):
# the same bits as the two nodes, on every path: one thread (one product), the output split both ways and the inner
# split, each with and without a bias, and with the input's gradient needed or not.
@pytest.mark.parametrize("x_shape, w_shape", LINEAR_SHAPES + [((4, 40), (3, 40))])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_grad", [True, False])
def test_linear_relu_gives_the_bits_of_linear_then_relu(tiny_shards, x_shape, w_shape, n_threads, bias, input_grad):
    zg.set_num_threads(n_threads)
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape, (w_shape[0],))]
    g = rng.standard_normal((x_shape[0], w_shape[0])).astype(np.float32)
    results = []
    for fused in (True, False):
        x = zg.Tensor(arrays[0], requires_grad=input_grad)
        w, b = (zg.Tensor(a, requires_grad=True) for a in arrays[1:])
        args = (x, w, b) if bias else (x, w)
        out = zmath.linear_relu(*args) if fused else F.relu(F.linear(*args))
        assert (type(out._ctx).__name__, out._ctx.params.get("relu")) == (("Linear", True) if fused else ("ReLU", None))
        (out * zg.Tensor(g)).sum().backward()
        results.append([out.data, w.grad] + ([x.grad] if input_grad else []) + ([b.grad] if bias else []))
    assert (results[0][0] == 0).any() and (results[0][0] > 0).any()  # the ReLU cuts some outputs, keeps others
    for a, c in zip(*results):
        assert a.tobytes() == c.tobytes()


@pytest.mark.parametrize("n_threads", [1, 2])
def test_linear_relu_on_3d_input_and_a_frozen_weight_gives_the_bits_of_linear_then_relu(tiny_shards, n_threads):
    """A (batch, tokens, features) input (one product, its bias and ReLU over shards of the batch), and a weight
    that needs no gradient (only the input's and the bias's are computed)."""
    zg.set_num_threads(n_threads)
    rng = np.random.default_rng(10)
    xa, wa, ba = (rng.standard_normal(s).astype(np.float32) for s in ((6, 5, 40), (7, 40), (7,)))
    g = zg.Tensor(rng.standard_normal((6, 5, 7)).astype(np.float32))
    results = []
    for fused in (True, False):
        x, w, b = zg.Tensor(xa, requires_grad=True), zg.Tensor(wa), zg.Tensor(ba, requires_grad=True)
        out = zmath.linear_relu(x, w, b) if fused else F.relu(F.linear(x, w, b))
        (out * g).sum().backward()
        assert w.grad is None
        results.append([out.data, x.grad, b.grad])
    assert results[0][0].shape == (6, 5, 7) and (results[0][0] == 0).any() and (results[0][0] > 0).any()
    for a, c in zip(*results):
        assert a.tobytes() == c.tobytes()


@pytest.mark.parametrize("x_shape, w_shape", LINEAR_SHAPES + [((4, 40), (3, 40))])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_linear_relu_gradients_in_float64(tiny_shards, x_shape, w_shape, n_threads):
    zg.set_num_threads(n_threads)
    rng = np.random.default_rng(9)
    x, w = (zg.Tensor(rng.standard_normal(s), requires_grad=True) for s in (x_shape, w_shape))
    b = zg.Tensor(rng.standard_normal(w_shape[0]), requires_grad=True)
    result = gradcheck(zmath.linear_relu, x, w, b)
    assert result.ok and result.max_abs_error < 1e-6
