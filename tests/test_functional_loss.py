"""mse_loss, cross_entropy, nll_loss, binary cross-entropy (zerograd/functional/loss.py)."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.functional as F
from zerograd import ShapeError, Tensor, gradcheck

SETTINGS = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


BOUNDED = st.floats(-5, 5)


def arrays(shape, elements=BOUNDED):
    return hnp.arrays(np.float64, shape, elements=elements)


def check(fn, *inputs):
    assert gradcheck(fn, *inputs).max_abs_error < 1e-6


def _np_log_softmax(x):
    s = x - x.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


@st.composite
def logits_and_labels(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(arrays((n, c)))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return logits, labels


# --- mse_loss --------------------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), shape=shapes)
def test_mse_loss(data, shape):
    y, t = data.draw(arrays(shape)), data.draw(arrays(shape))
    assert F.mse_loss(Tensor(y), t).item() == pytest.approx(np.mean((y - t) ** 2), rel=1e-12, abs=1e-12)
    check(lambda p: F.mse_loss(p, t), y)


def test_mse_loss_values():
    y = Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    loss = F.mse_loss(y, [1.0, 0.0, 1.0])  # mean of 0, 4, 9
    assert loss.item() == pytest.approx(13 / 3)
    loss.backward()
    np.testing.assert_allclose(y.grad, [0.0, 4 / 3, 2.0])
    assert F.mse_loss(Tensor([1.0]), np.array([0.0])).dtype == np.float32


# --- cross_entropy and nll_loss --------------------------------------------------------------
@SETTINGS
@given(case=logits_and_labels())
def test_cross_entropy_integer_labels(case):
    logits, labels = case
    expected = -_np_log_softmax(logits)[np.arange(len(labels)), labels].mean()
    assert F.cross_entropy(Tensor(logits), labels).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    check(F.cross_entropy, logits, labels)


@SETTINGS
@given(case=logits_and_labels())
def test_cross_entropy_one_hot_equals_labels(case):
    logits, labels = case
    onehot = np.eye(logits.shape[1])[labels]
    x1 = Tensor(logits, requires_grad=True)
    x2 = Tensor(logits, requires_grad=True)
    l1, l2 = F.cross_entropy(x1, labels), F.cross_entropy(x2, onehot)
    assert l1.item() == pytest.approx(l2.item(), rel=1e-12, abs=1e-12)
    l1.backward()
    l2.backward()
    np.testing.assert_allclose(x1.grad, x2.grad, atol=1e-12)
    np.testing.assert_allclose(x1.grad, (np.exp(_np_log_softmax(logits)) - onehot) / len(labels), atol=1e-12)


@SETTINGS
@given(data=st.data(), n=st.integers(1, 4), c=st.integers(1, 4))
def test_cross_entropy_soft_targets(data, n, c):
    logits = data.draw(arrays((n, c)))
    target = data.draw(arrays((n, c), st.floats(0, 1)))
    expected = -(target * _np_log_softmax(logits)).sum() / n
    assert F.cross_entropy(Tensor(logits), target).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    check(lambda x: F.cross_entropy(x, target), logits)


def test_cross_entropy_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, 0.0], [0.0, 1000.0, -1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = Tensor(logits, requires_grad=True)
        loss = F.cross_entropy(x, [1, 1])  # row 0 misses by 1000, row 1 is right
        loss.backward()
    assert loss.item() == pytest.approx(500.0)
    np.testing.assert_allclose(x.grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    loss32 = F.cross_entropy(Tensor([[1000.0, 0.0]]), [0])
    assert loss32.dtype == np.float32 and loss32.item() == 0.0


def test_cross_entropy_book_example():
    # chapter 4: t = 2, y = softmax output; here from logits whose softmax is that y
    y = np.array([[0.1, 0.05, 0.6, 0.0001, 0.05, 0.1, 0.0001, 0.1, 0.0, 0.0]])
    y = y + 1e-12  # avoid log(0) for the logits
    loss = F.cross_entropy(Tensor(np.log(y)), [2])
    assert loss.item() == pytest.approx(-np.log(0.6 / y.sum()), rel=1e-9)


def test_cross_entropy_label_tensor_and_list():
    logits = np.array([[2.0, 1.0], [0.0, 3.0]])
    a = F.cross_entropy(Tensor(logits), Tensor(np.array([0, 1]))).item()
    b = F.cross_entropy(Tensor(logits), [0, 1]).item()
    assert a == b


@pytest.mark.parametrize(
    "logits_shape, target, match",
    [
        ((3,), np.array([0]), r"\(N, C\).*\(3,\)"),
        ((2, 3), np.array([0, 1, 2]), "2 rows of logits but 3 labels"),
        ((2, 3), np.array([0, 3]), r"0\.\.2.*0\.\.3"),
        ((2, 3), np.array([-1, 0]), r"0\.\.2"),
        ((2, 3), np.ones((2, 4)), r"\(2, 4\).*\(2,\).*\(2, 3\)"),
    ],
)
def test_cross_entropy_bad_input(logits_shape, target, match):
    with pytest.raises(ShapeError, match=match):
        F.cross_entropy(Tensor(np.zeros(logits_shape)), target)


@SETTINGS
@given(case=logits_and_labels())
def test_nll_loss(case):
    logits, labels = case
    logp = _np_log_softmax(logits)
    assert F.nll_loss(Tensor(logp), labels).item() == pytest.approx(-logp[np.arange(len(labels)), labels].mean())
    check(F.nll_loss, logp, labels)
    fused = F.cross_entropy(Tensor(logits), labels).item()
    composed = F.nll_loss(F.log_softmax(Tensor(logits)), labels).item()
    assert composed == pytest.approx(fused, rel=1e-12, abs=1e-12)
    check(lambda x: F.nll_loss(F.log_softmax(x), labels), logits)


def test_nll_loss_gradient():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    F.nll_loss(x, [2, 0]).backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0, -0.5], [-0.5, 0.0, 0.0]])


# --- binary cross-entropy --------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), shape=shapes)
def test_binary_cross_entropy(data, shape):
    p = data.draw(arrays(shape, st.floats(0.05, 0.95)))
    t = data.draw(arrays(shape, st.floats(0, 1)))
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert F.binary_cross_entropy(Tensor(p), t).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    check(lambda x: F.binary_cross_entropy(x, t), p)


def test_binary_cross_entropy_values_and_clamp():
    assert F.binary_cross_entropy(Tensor(np.array([0.5])), [1.0]).item() == pytest.approx(np.log(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        worst = F.binary_cross_entropy(Tensor(np.array([0.0, 1.0])), [1.0, 0.0])
    assert worst.item() == 100.0  # log clamped at -100, as in PyTorch
    p = Tensor(np.array([0.25]), requires_grad=True)
    F.binary_cross_entropy(p, [1.0]).backward()
    np.testing.assert_allclose(p.grad, [-4.0])  # -1/p


@SETTINGS
@given(data=st.data(), shape=shapes)
def test_binary_cross_entropy_with_logits(data, shape):
    x = data.draw(arrays(shape))
    t = data.draw(arrays(shape, st.floats(0, 1)))
    p = 1 / (1 + np.exp(-x))
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    got = F.binary_cross_entropy_with_logits(Tensor(x), t).item()
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    via_sigmoid = F.binary_cross_entropy(F.sigmoid(Tensor(x)), t).item()
    assert got == pytest.approx(via_sigmoid, rel=1e-9, abs=1e-12)
    check(lambda z: F.binary_cross_entropy_with_logits(z, t), x)


def test_binary_cross_entropy_with_logits_is_stable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = Tensor(np.array([-1000.0, 1000.0]), requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(x, [1.0, 1.0])
        loss.backward()
    assert loss.item() == pytest.approx(500.0)  # (1000 + 0) / 2
    np.testing.assert_allclose(x.grad, [-0.5, 0.0])


@pytest.mark.parametrize("fn", [F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_binary_cross_entropy_shape_mismatch(fn):
    with pytest.raises(ShapeError, match=r"\(3,\).*\(3, 1\)"):
        fn(Tensor(np.full(3, 0.5)), np.ones((3, 1)))


@pytest.mark.parametrize("shape", [(1, 3), (3, 1), (1, 1), (4, 5)])
@pytest.mark.parametrize("onehot", [False, True])
def test_cross_entropy_leaves_its_input_alone(shape, onehot):
    # it works on the logits transposed to (C, N); with N = 1 or C = 1 a transpose is still contiguous,
    # and changing it in place would change the caller's array
    logits = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    labels = np.zeros(shape[0], dtype=np.int64)
    target = np.eye(shape[1], dtype=np.float32)[labels] if onehot else labels
    x = Tensor(logits.copy(), requires_grad=True)
    F.cross_entropy(x, target).backward()
    np.testing.assert_array_equal(x.data, logits)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    expected[np.arange(shape[0]), labels] -= 1
    np.testing.assert_allclose(x.grad, expected / shape[0], rtol=1e-5, atol=1e-7)
