"""relu, leaky_relu, sigmoid, tanh, softmax, log_softmax (zerograd/functional/activation.py)."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.functional as F
from zerograd import Tensor, gradcheck

SETTINGS = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
shapes_1d_up = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


BOUNDED = st.floats(-5, 5)


def arrays(shape, elements=BOUNDED):
    return hnp.arrays(np.float64, shape, elements=elements)


away_from_zero = st.one_of(st.floats(-5, -0.1), st.floats(0.1, 5))


def check(fn, *inputs):
    assert gradcheck(fn, *inputs).max_abs_error < 1e-6


def _np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@SETTINGS
@given(data=st.data(), shape=shapes)
def test_relu(data, shape):
    a = data.draw(arrays(shape, away_from_zero))
    np.testing.assert_array_equal(F.relu(Tensor(a)).data, np.maximum(a, 0))
    np.testing.assert_array_equal(Tensor(a).relu().data, np.maximum(a, 0))
    check(F.relu, a)


def test_relu_values_and_gradient():
    x = Tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_relu_of_infinities_and_nan():
    y = F.relu(Tensor(np.array([-np.inf, np.inf, np.nan])))
    assert y.data[0] == 0.0 and y.data[1] == np.inf and np.isnan(y.data[2])


@pytest.mark.parametrize("slope", [0.01, 0.2])
@SETTINGS
@given(data=st.data(), shape=shapes)
def test_leaky_relu(slope, data, shape):
    a = data.draw(arrays(shape, away_from_zero))
    np.testing.assert_allclose(F.leaky_relu(Tensor(a), slope).data, np.where(a > 0, a, slope * a), rtol=1e-12)
    check(lambda x: F.leaky_relu(x, negative_slope=slope), a)


def test_leaky_relu_default_slope_and_dtype():
    y = F.leaky_relu(Tensor([-100.0, 2.0]))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, [-1.0, 2.0])


@SETTINGS
@given(data=st.data(), shape=shapes)
def test_sigmoid(data, shape):
    a = data.draw(arrays(shape))
    np.testing.assert_allclose(F.sigmoid(Tensor(a)).data, 1 / (1 + np.exp(-a)), rtol=1e-12)
    check(F.sigmoid, a)


def test_sigmoid_large_inputs_no_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        y = F.sigmoid(Tensor(np.array([-1000.0, 0.0, 1000.0]), requires_grad=True))
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 1.0])
    assert F.sigmoid(Tensor([-1000.0], dtype=np.float32)).dtype == np.float32
    x = Tensor(np.array([0.0]), requires_grad=True)
    F.sigmoid(x).sum().backward()
    np.testing.assert_allclose(x.grad, [0.25])


@SETTINGS
@given(data=st.data(), shape=shapes)
def test_tanh(data, shape):
    a = data.draw(arrays(shape))
    np.testing.assert_allclose(F.tanh(Tensor(a)).data, np.tanh(a), rtol=1e-12)
    np.testing.assert_allclose(Tensor(a).tanh().data, np.tanh(a), rtol=1e-12)
    check(F.tanh, a)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@SETTINGS
@given(data=st.data(), shape=shapes_1d_up)
def test_softmax_family(name, data, shape):
    a = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    expected = _np_softmax(a, axis)
    if name == "log_softmax":
        expected = np.log(expected)
    out = getattr(F, name)(Tensor(a), axis=axis)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    check(lambda x: getattr(F, name)(x, axis=axis), a)


def test_softmax_values():
    y = F.softmax(Tensor(np.array([[0.3, 2.9, 4.0]])))  # the book's example
    np.testing.assert_allclose(y.data, [[0.01821127, 0.24519181, 0.73659691]], rtol=1e-6)
    assert y.data.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(Tensor(np.zeros((2, 4))).softmax(axis=0).data, np.full((2, 4), 0.5))


def test_softmax_and_log_softmax_are_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [1010.0, 1000.0, 990.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = F.softmax(Tensor(logits)).data
        logp = F.log_softmax(Tensor(logits)).data
    assert np.isfinite(p).all() and np.isfinite(logp).all()
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(logp[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(p[1], _np_softmax(np.array([20.0, 10.0, 0.0]), 0))
    check(F.log_softmax, logits)
    check(F.softmax, logits)
    lp32 = F.log_softmax(Tensor([[1000.0, 0.0]])).data  # float32 too
    assert lp32.dtype == np.float32 and np.isfinite(lp32).all()
