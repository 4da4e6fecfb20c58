"""batch_norm (training and evaluation) and dropout (zerograd/functional/norm.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.functional as F
from zerograd import ShapeError, Tensor, gradcheck

SETTINGS = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


BOUNDED = st.floats(-3, 3)


def arrays(shape, elements=BOUNDED):
    return hnp.arrays(np.float64, shape, elements=elements)


def check(fn, *inputs, atol=1e-5):
    assert gradcheck(fn, *inputs, atol=atol).max_abs_error < 1e-5


def _np_batch_norm(x, mean, var, w, b, eps=1e-5):
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


@st.composite
def batch_inputs(draw):
    four_d = draw(st.booleans())
    n, c = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    shape = (n, c, draw(st.integers(1, 3)), draw(st.integers(1, 3))) if four_d else (n, c)
    # rows 2 apart plus noise of at most 0.5: every channel's variance stays well away from 0,
    # where batch norm is ill-conditioned
    rows = 2.0 * np.arange(n).reshape((n,) + (1,) * (len(shape) - 1))
    x = draw(arrays(shape, st.floats(-0.5, 0.5))) + rows
    w = draw(arrays((c,), st.floats(0.5, 2)))
    b = draw(arrays((c,)))
    return x, w, b


# --- batch_norm ------------------------------------------------------------------------------
@SETTINGS
@given(inputs=batch_inputs())
def test_batch_norm_training(inputs):
    x, w, b = inputs
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    out = F.batch_norm(Tensor(x), None, None, Tensor(w), Tensor(b), training=True)
    np.testing.assert_allclose(out.data, _np_batch_norm(x, x.mean(axes), x.var(axes), w, b), rtol=1e-10, atol=1e-10)
    check(lambda x_, w_, b_: F.batch_norm(x_, None, None, w_, b_, training=True), x, w, b)


@SETTINGS
@given(inputs=batch_inputs())
def test_batch_norm_eval(inputs):
    x, w, b = inputs
    c = w.shape[0]
    mean, var = np.linspace(-1, 1, c), np.linspace(0.5, 2, c)
    out = F.batch_norm(Tensor(x), mean.copy(), var.copy(), Tensor(w), Tensor(b), training=False)
    np.testing.assert_allclose(out.data, _np_batch_norm(x, mean, var, w, b), rtol=1e-12)
    check(lambda x_, w_, b_: F.batch_norm(x_, mean, var, w_, b_, training=False), x, w, b)


def test_batch_norm_training_normalises_each_channel():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 4, 4)) * np.array([1.0, 5.0, 0.1]).reshape(1, 3, 1, 1) + 7
    out = F.batch_norm(Tensor(x), None, None, Tensor(np.ones(3)), Tensor(np.zeros(3)), training=True).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # eps = 1e-5 shrinks it a little


def test_batch_norm_updates_running_statistics():
    x = np.array([[1.0, 10.0], [3.0, 30.0]])  # means (2, 20), biased vars (1, 100), unbiased (2, 200)
    running_mean, running_var = np.zeros(2), np.ones(2)
    F.batch_norm(Tensor(x), running_mean, running_var, Tensor(np.ones(2)), Tensor(np.zeros(2)),
                 training=True, momentum=0.1)
    np.testing.assert_allclose(running_mean, [0.2, 2.0])
    np.testing.assert_allclose(running_var, [0.9 + 0.2, 0.9 + 20.0])
    F.batch_norm(Tensor(x), running_mean, running_var, Tensor(np.ones(2)), Tensor(np.zeros(2)), training=False)
    np.testing.assert_allclose(running_mean, [0.2, 2.0])  # evaluation leaves them alone


def test_batch_norm_eval_uses_running_statistics():
    x = Tensor(np.array([[4.0], [6.0]]))
    out = F.batch_norm(x, np.array([2.0]), np.array([4.0]), Tensor(np.array([3.0])), Tensor(np.array([1.0])),
                       eps=0.0)
    np.testing.assert_allclose(out.data, [[4.0], [7.0]])  # (x - 2) / 2 * 3 + 1


def test_batch_norm_gradients_reach_weight_and_bias():
    x = Tensor(np.array([[1.0], [3.0]]))
    w = Tensor(np.array([2.0]), requires_grad=True)
    b = Tensor(np.array([0.5]), requires_grad=True)
    F.batch_norm(x, None, None, w, b, training=True, eps=0.0).backward(np.array([[1.0], [2.0]]))
    np.testing.assert_allclose(w.grad, [1.0])  # x_hat = (-1, 1): -1 * 1 + 1 * 2
    np.testing.assert_allclose(b.grad, [3.0])
    assert x.grad is None


def test_batch_norm_rejects_3d_input():
    with pytest.raises(ShapeError, match="batch_norm.*3 dimensions"):
        F.batch_norm(Tensor(np.ones((2, 3, 4))), None, None, Tensor(np.ones(3)), Tensor(np.zeros(3)))


# --- dropout ---------------------------------------------------------------------------------
def test_dropout_training_zeroes_and_scales():
    x = Tensor(np.ones((100, 100)))
    y = F.dropout(x, p=0.3, generator=np.random.default_rng(0)).data
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    assert abs(y.mean() - 1.0) < 0.03  # inverted dropout keeps the expectation


def test_dropout_gradient_is_the_mask():
    x = Tensor(np.arange(1.0, 7.0), requires_grad=True)
    y = F.dropout(x, 0.5, generator=np.random.default_rng(3))
    y.sum().backward()
    mask = y.data / x.data
    np.testing.assert_allclose(x.grad, mask)
    assert set(np.unique(mask)) <= {0.0, 2.0}
    check(lambda t: F.dropout(t, 0.5, generator=np.random.default_rng(3)), np.arange(1.0, 7.0))


def test_dropout_float32_stays_float32():
    assert F.dropout(Tensor(np.ones(4, np.float32)), 0.5, generator=np.random.default_rng(0)).dtype == np.float32


def test_dropout_is_reproducible_with_a_generator():
    x = Tensor(np.ones(50))
    a = F.dropout(x, 0.5, generator=np.random.default_rng(7)).data
    b = F.dropout(x, 0.5, generator=np.random.default_rng(7)).data
    np.testing.assert_array_equal(a, b)


def test_dropout_off_in_evaluation_and_for_p_zero():
    x = Tensor(np.arange(4.0))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(Tensor(np.ones(3)), p)
