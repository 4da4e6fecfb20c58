"""Numerical differentiation, the book's chapter 4 (zerograd/numerical.py), and gradcheck."""

import numpy as np
import pytest

import zerograd
from zerograd import Function, Tensor
from zerograd.numerical import (
    GradcheckError,
    GradcheckResult,
    gradcheck,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
)


def function_1(x):
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


# --- numerical_diff --------------------------------------------------------------------------
def test_numerical_diff_matches_the_book():
    assert abs(numerical_diff(function_1, 5) - 0.2) < 1e-8
    assert numerical_diff(function_1, 5) == pytest.approx(0.1999999999990898, rel=1e-12)
    assert abs(numerical_diff(function_1, 10) - 0.3) < 1e-8
    assert numerical_diff(function_1, 10) == pytest.approx(0.2999999999986347, rel=1e-12)


def test_numerical_diff_is_central_with_h_1e_4():
    calls = []

    def f(x):
        calls.append(x)
        return x

    numerical_diff(f, 1.0)
    assert calls == [pytest.approx(1.0001, abs=1e-15), pytest.approx(0.9999, abs=1e-15)]


def test_the_two_mistakes_the_book_warns_about():
    x, h = 5.0, 1e-4
    forgot_the_2h = (function_1(x + h) - function_1(x - h)) / 2  # "(f(x+h) - f(x-h)) / 2"
    assert forgot_the_2h == pytest.approx(2e-5, rel=1e-9)  # tiny and wrong: 0.2 * h
    tiny_h = 1e-50
    assert (function_1(x + tiny_h) - function_1(x)) / tiny_h == 0.0  # 5 + 1e-50 rounds to 5
    assert np.float32(1e-50) == 0.0


# --- numerical_gradient ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "point, expected", [((3.0, 4.0), (6.0, 8.0)), ((0.0, 2.0), (0.0, 4.0)), ((3.0, 0.0), (6.0, 0.0))]
)
def test_numerical_gradient_book_points(point, expected):
    grad = numerical_gradient(function_2, np.array(point))
    assert grad.shape == (2,)
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_numerical_gradient_of_a_matrix():
    w = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    np.testing.assert_allclose(numerical_gradient(lambda a: np.sum(a**3), w), 3 * w**2, rtol=1e-7, atol=1e-7)


def test_numerical_gradient_over_a_list_of_parameters():
    w1, b1 = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
    params = [w1, b1]

    def loss(_):  # like the book's loss_W: ignores its argument, reads the parameters
        return np.sum(w1**2) + 3 * np.sum(b1)

    grads = numerical_gradient(loss, params)
    assert isinstance(grads, list) and len(grads) == 2
    np.testing.assert_allclose(grads[0], 2 * w1, atol=1e-7)
    np.testing.assert_allclose(grads[1], [3.0, 3.0], atol=1e-7)


def test_numerical_gradient_perturbs_in_place_and_restores():
    x = np.array([3.0, 4.0])
    before = x.copy()
    seen = []

    def f(arg):
        assert arg is x  # the very array, perturbed in place
        seen.append(arg.copy())
        return function_2(arg)

    numerical_gradient(f, x)
    assert any(not np.array_equal(s, before) for s in seen)
    np.testing.assert_array_equal(seen[0], [3.0001, 4.0])
    np.testing.assert_array_equal(x, before)  # bit for bit


def test_numerical_gradient_keeps_float32():
    assert numerical_gradient(function_2, np.array([3.0, 4.0], np.float32)).dtype == np.float32


def test_numerical_gradient_refuses_integer_and_non_contiguous_arrays():
    with pytest.raises(TypeError, match="floating-point"):
        numerical_gradient(function_2, np.array([3, 4]))
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda a: a.sum(), np.ones((3, 4)).T)


# --- gradient_descent ------------------------------------------------------------------------
def test_gradient_descent_finds_the_minimum():
    init = np.array([-3.0, 4.0])
    x = gradient_descent(function_2, init, lr=0.1, step_num=100)
    assert np.abs(x).max() < 1e-8
    np.testing.assert_allclose(x, [-6.11110793e-10, 8.14814391e-10], rtol=1e-6)  # the book's output
    np.testing.assert_array_equal(init, [-3.0, 4.0])  # not modified


def test_gradient_descent_learning_rate_too_large_diverges():
    x = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=10.0, step_num=100)
    np.testing.assert_allclose(x, [-2.58983747e13, -1.29524862e12], rtol=1e-6)  # the book's output
    assert np.abs(x).max() > 1e12


def test_gradient_descent_learning_rate_too_small_barely_moves():
    x = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=1e-10, step_num=100)
    np.testing.assert_allclose(x, [-2.99999994, 3.99999992], rtol=1e-8)  # the book's output


def test_gradient_descent_history():
    x, history = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=20, return_history=True)
    assert history.shape == (20, 2)
    np.testing.assert_array_equal(history[0], [-3.0, 4.0])
    np.testing.assert_allclose(history[1], [-2.4, 3.2], rtol=1e-8)  # x - 0.1 * 2x
    assert np.all(np.diff(np.linalg.norm(history, axis=1)) < 0)
    np.testing.assert_allclose(x, 0.8**20 * np.array([-3.0, 4.0]), rtol=1e-6)


# --- gradcheck -------------------------------------------------------------------------------
class GoodSquare(Function):
    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        return 2 * self.a * g


class WrongSquare(GoodSquare):
    def backward(self, g):
        return self.a * g  # forgot the 2


def test_gradcheck_passes_a_correct_backward():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    result = gradcheck(GoodSquare.apply, x)
    assert isinstance(result, GradcheckResult)
    assert result.ok and bool(result)
    assert result.max_abs_error < 1e-7 and len(result.errors) == 1
    assert zerograd.gradcheck is gradcheck


def test_gradcheck_catches_a_wrong_backward():
    x = np.array([1.0, -2.0, 3.0])
    with pytest.raises(GradcheckError, match="max abs error"):
        gradcheck(WrongSquare.apply, x)
    result = gradcheck(WrongSquare.apply, x, raise_exception=False)
    assert result.ok is False and not result
    assert result.max_abs_error > 0.5
    assert result.max_rel_error == pytest.approx(0.5, rel=1e-4)  # half of the true gradient
    assert issubclass(GradcheckError, AssertionError)


def test_gradcheck_checks_every_float_input_and_skips_integers():
    logits = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    labels = np.array([2, 0])
    result = gradcheck(lambda x, t: zerograd.functional.cross_entropy(x, t), logits, labels)
    assert result.ok and len(result.errors) == 1

    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    result = gradcheck(lambda x, y: WrongSquare.apply(x) * y, a, b, raise_exception=False)
    assert not result.ok and len(result.errors) == 2
    assert result.errors[1] < 1e-7 < result.errors[0]  # only the first input's gradient is wrong


def test_gradcheck_runs_in_float64_from_float32_input():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x * x

    assert gradcheck(fn, Tensor([1.0, 2.0])).ok
    assert set(seen) == {np.dtype(np.float64)}


def test_gradcheck_non_scalar_output_and_tolerances():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    assert gradcheck(lambda t: t.exp() * 3, x).ok
    # an error of 1e-3 passes a loose tolerance and fails a tight one
    class Off(GoodSquare):
        def backward(self, g):
            return (2 * self.a + 1e-3) * g

    assert gradcheck(Off.apply, x, atol=1e-2, rtol=0).ok
    assert not gradcheck(Off.apply, x, atol=1e-5, rtol=0, raise_exception=False).ok
