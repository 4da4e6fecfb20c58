"""Arithmetic, elementwise math, reductions and linear (zerograd/functional/math.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.functional as F
from zerograd import ShapeError, Tensor, gradcheck

SETTINGS = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
pair_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
bounded = st.floats(-3, 3)
away_from_zero = st.one_of(st.floats(-3, -0.2), st.floats(0.2, 3))
positive = st.floats(0.2, 3)


def arrays(shape, elements=bounded):
    return hnp.arrays(np.float64, shape, elements=elements)


def check(fn, *inputs):
    result = gradcheck(fn, *inputs)
    assert result.ok and result.max_abs_error < 1e-5


# --- binary arithmetic with broadcasting -----------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add, bounded),
    "sub": (lambda a, b: a - b, np.subtract, bounded),
    "mul": (lambda a, b: a * b, np.multiply, bounded),
    "div": (lambda a, b: a / b, np.divide, away_from_zero),
    "pow": (lambda a, b: a**b, np.power, positive),
}


@pytest.mark.parametrize("name", BINARY)
@SETTINGS
@given(data=st.data(), shapes=pair_shapes)
def test_binary_ops_broadcast(name, data, shapes):
    op, ref, second = BINARY[name]
    first = positive if name == "pow" else bounded
    a = data.draw(arrays(shapes.input_shapes[0], first))
    b = data.draw(arrays(shapes.input_shapes[1], second))
    out = op(Tensor(a), Tensor(b))
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, ref(a, b), rtol=1e-12)
    check(op, a, b)


@pytest.mark.parametrize(
    "op, expected",
    [
        (lambda x: 2 - x, [1.0, 0.0, -2.0]),
        (lambda x: x - 2, [-1.0, 0.0, 2.0]),
        (lambda x: 1 / x, [1.0, 0.5, 0.25]),
        (lambda x: x / 4, [0.25, 0.5, 1.0]),
        (lambda x: 3 * x, [3.0, 6.0, 12.0]),
        (lambda x: x * 3, [3.0, 6.0, 12.0]),
        (lambda x: 1 + x, [2.0, 3.0, 5.0]),
        (lambda x: x + 1.5, [2.5, 3.5, 5.5]),
        (lambda x: -x, [-1.0, -2.0, -4.0]),
        (lambda x: x**2, [1.0, 4.0, 16.0]),
        (lambda x: 2**x, [2.0, 4.0, 16.0]),
        (lambda x: x**0.5, [1.0, np.sqrt(2), 2.0]),
    ],
)
def test_python_scalars_on_both_sides(op, expected):
    x = Tensor([1.0, 2.0, 4.0])
    y = op(x)
    assert y.dtype == np.float32  # a Python number does not promote float32 to float64
    np.testing.assert_allclose(y.data, expected, rtol=1e-6)
    check(op, np.array([1.0, 2.0, 4.0]))


def test_scalar_gradients_by_hand():
    x = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    (1 / x).sum().backward()
    np.testing.assert_allclose(x.grad, [-1.0, -0.25, -0.0625])
    x.grad = None
    (2**x).sum().backward()
    np.testing.assert_allclose(x.grad, np.log(2) * np.array([2.0, 4.0, 16.0]))
    x.grad = None
    (x**3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 12.0, 48.0])


def test_numpy_array_on_the_left():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([10.0, 20.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [10.0, 20.0])


def test_integer_tensor_with_float_scalar_is_not_truncated():
    np.testing.assert_allclose((Tensor([1, 2]) * 0.5).data, [0.5, 1.0])
    np.testing.assert_allclose((Tensor([1, 2]) + 1.5).data, [2.5, 3.5])
    assert (Tensor([1, 2]) * 2).dtype.kind == "i"


def test_neg():
    check(lambda a: -a, np.array([[1.0, -2.0]]))
    np.testing.assert_array_equal(F.neg(Tensor([1.0, -2.0])).data, [-1.0, 2.0])


def test_pow_with_negative_base_and_tensor_exponent_has_zero_exponent_gradient():
    a = Tensor(np.array([-2.0]), requires_grad=True)
    b = Tensor(np.array([3.0]), requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad, [12.0])
    np.testing.assert_allclose(b.grad, [0.0])


# --- matmul ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((2, 3), (3, 4)),  # 2-D
        ((5, 2, 3), (5, 3, 4)),  # batched
        ((5, 2, 3), (3, 4)),  # batch broadcast on the left
        ((3,), (3, 4)),  # 1-D on the left
        ((2, 3), (3,)),  # 1-D on the right
        ((3,), (3,)),  # dot product
        ((3,), (5, 3, 4)),  # 1-D with a batch
        ((5, 2, 3), (3,)),
        ((2, 1, 2, 3), (4, 3, 2)),  # batch dimensions broadcast both ways
    ],
)
def test_matmul(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    out = Tensor(a) @ Tensor(b)
    np.testing.assert_allclose(out.data, a @ b, rtol=1e-12)
    assert out.shape == np.matmul(a, b).shape
    check(lambda x, y: x @ y, a, b)
    check(F.matmul, a, b)
    check(lambda x, y: x.matmul(y), a, b)


@SETTINGS
@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), batch=st.integers(0, 3), data=st.data())
def test_matmul_random_sizes(n, k, m, batch, data):
    prefix = (batch,) if batch else ()
    a = data.draw(arrays(prefix + (n, k)))
    b = data.draw(arrays((k, m)))
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b, rtol=1e-12, atol=1e-12)
    check(lambda x, y: x @ y, a, b)


def test_matmul_with_numpy_on_the_left():
    w = Tensor(np.eye(2) * 3, requires_grad=True)
    y = np.ones((1, 2)) @ w
    np.testing.assert_array_equal(y.data, [[3.0, 3.0]])
    y.sum().backward()
    np.testing.assert_array_equal(w.grad, np.ones((2, 2)))


def test_matmul_shape_error():
    with pytest.raises(ShapeError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


# --- elementwise functions -------------------------------------------------------------------
UNARY = {
    "exp": (F.exp, np.exp, bounded),
    "log": (F.log, np.log, positive),
    "sqrt": (F.sqrt, np.sqrt, positive),
    "abs": (F.abs, np.abs, away_from_zero),
}


@pytest.mark.parametrize("name", UNARY)
@SETTINGS
@given(data=st.data(), shape=small_shapes)
def test_unary(name, data, shape):
    op, ref, elements = UNARY[name]
    a = data.draw(arrays(shape, elements))
    np.testing.assert_allclose(op(Tensor(a)).data, ref(a), rtol=1e-12)
    np.testing.assert_allclose(getattr(Tensor(a), name)().data, ref(a), rtol=1e-12)
    check(op, a)


def test_abs_gradient_is_sign():
    x = Tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])


@SETTINGS
@given(data=st.data(), shape=small_shapes)
def test_clip(data, shape):
    # values at least 0.1 away from the bounds -1 and 1: the gradient is 1 inside, 0 outside
    a = data.draw(arrays(shape, st.one_of(st.floats(-3, -1.1), st.floats(-0.9, 0.9), st.floats(1.1, 3))))
    np.testing.assert_array_equal(F.clip(Tensor(a), -1, 1).data, np.clip(a, -1, 1))
    check(lambda x: F.clip(x, -1, 1), a)
    check(lambda x: x.clip(min=-1), a)
    check(lambda x: x.clip(max=1), a)
    x = Tensor(a, requires_grad=True)
    F.clip(x, -1, 1).sum().backward()
    np.testing.assert_array_equal(x.grad, (np.abs(a) < 1).astype(float))


def test_nan_and_inf_propagate():
    with np.errstate(all="ignore"):
        assert F.log(Tensor(np.array([0.0]))).data[0] == -np.inf
        assert np.isnan(F.log(Tensor(np.array([-1.0]))).data[0])
        assert np.isnan(F.sqrt(Tensor(np.array([-1.0]))).data[0])
        assert F.exp(Tensor([1000.0])).data[0] == np.inf
        assert np.isnan((Tensor([np.inf]) - Tensor([np.inf])).data[0])
        assert np.isnan(Tensor([np.nan]).sum().item())
        assert Tensor([1.0, np.inf]).max().item() == np.inf


# --- reductions ------------------------------------------------------------------------------
@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        axis = tuple(ax - ndim if draw(st.booleans()) else ax for ax in axes)  # some negative
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean"])
@SETTINGS
@given(data=st.data(), spec=shape_and_axis())
def test_sum_mean(name, data, spec):
    shape, axis, keepdims = spec
    a = data.draw(arrays(shape))
    out = getattr(F, name)(Tensor(a), axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), a)


@pytest.mark.parametrize("name", ["max", "min"])
@SETTINGS
@given(data=st.data(), spec=shape_and_axis())
def test_max_min_without_ties(name, data, spec):
    shape, axis, keepdims = spec
    size = int(np.prod(shape))
    order = data.draw(st.permutations(range(size)))
    a = np.array(order, dtype=np.float64).reshape(shape) * 0.5 - size / 4  # distinct, 0.5 apart
    out = getattr(F, name)(Tensor(a), axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(out.data, getattr(np, name)(a, axis=axis, keepdims=keepdims))
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), a)


def test_reduction_values_by_hand():
    a = Tensor(np.arange(6.0).reshape(2, 3))
    assert a.sum().item() == 15.0
    np.testing.assert_array_equal(a.sum(axis=0).data, [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(a.mean(axis=-1, keepdims=True).data, [[1.0], [4.0]])
    np.testing.assert_array_equal(a.max(axis=1).data, [2.0, 5.0])
    np.testing.assert_array_equal(a.min(axis=(0, 1)).data, 0.0)
    assert Tensor([1.0, 2.0, 3.0]).mean().item() == pytest.approx(2.0)


def test_max_ties_share_gradient():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


def test_mean_gradient_is_one_over_count():
    x = Tensor(np.ones((2, 5)), requires_grad=True)
    x.mean(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, np.full((2, 5), 0.2))


# --- linear ----------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape", [(4, 3), (3,), (2, 5, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear(x_shape, with_bias):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal((2, 3)), rng.standard_normal(2)
    expected = x @ w.T + (b if with_bias else 0)
    if with_bias:
        out = F.linear(Tensor(x), Tensor(w), Tensor(b))
        check(F.linear, x, w, b)
    else:
        out = F.linear(Tensor(x), Tensor(w))
        check(F.linear, x, w)
    assert out.shape == x_shape[:-1] + (2,)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


@SETTINGS
@given(n=st.integers(1, 4), i=st.integers(1, 4), o=st.integers(1, 4), data=st.data())
def test_linear_random_sizes(n, i, o, data):
    x, w, b = data.draw(arrays((n, i))), data.draw(arrays((o, i))), data.draw(arrays((o,)))
    np.testing.assert_allclose(F.linear(Tensor(x), Tensor(w), Tensor(b)).data, x @ w.T + b, atol=1e-12)
    check(F.linear, x, w, b)


def test_linear_shape_error():
    with pytest.raises(ShapeError, match=r"linear.*\(4, 3\).*\(2, 5\)"):
        F.linear(Tensor(np.ones((4, 3))), Tensor(np.ones((2, 5))))


def test_pytorch_dim_and_keepdim_names_are_accepted():
    import zerograd.functional as F

    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.array_equal(F.sum(x, dim=1, keepdim=True).data, [[3], [12]])
    assert np.array_equal(x.max(dim=0).values.data, [3, 4, 5])  # with dim, (values, indices) as in PyTorch
    assert np.allclose(F.softmax(x, dim=0).data.sum(axis=0), 1)
    assert F.cat([x, x], dim=1).shape == (2, 6) and F.stack([x, x], dim=1).shape == (2, 2, 3)


def test_numpy_scalars_keep_float32():
    x = Tensor(np.ones(3, dtype=np.float32))
    assert (x + np.int64(1)).dtype == np.float32
    assert (x / np.float64(2)).dtype == np.float32
    assert (np.float64(2) * x).dtype == np.float32
