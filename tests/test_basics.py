"""Tests for zerograd.basics against the book's own numbers (chapters 2-4)."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zerograd.basics import (
    AND,
    AND_PERCEPTRON,
    NAND,
    NAND_PERCEPTRON,
    OR,
    OR_PERCEPTRON,
    XOR,
    Perceptron,
    cross_entropy_error,
    fit_pca_whitening,
    fit_standardize,
    fit_zca_whitening,
    forward,
    identity_function,
    init_network,
    mean_squared_error,
    normalize,
    output_activation_for,
    predict,
    relu,
    sigmoid,
    softmax,
    softmax_naive,
    standardize,
    step_function,
    tanh,
    train_perceptron,
    whiten,
)
from zerograd.errors import ShapeError, ZerogradError

TRUTH_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
X1, X2 = TRUTH_INPUTS.T


# --- perceptrons -------------------------------------------------------------

@pytest.mark.parametrize("perceptron, sums", [
    (AND_PERCEPTRON, [-0.7, -0.2, -0.2, 0.3]),
    (NAND_PERCEPTRON, [0.7, 0.2, 0.2, -0.3]),
    (OR_PERCEPTRON, [-0.2, 0.3, 0.3, 0.8]),
])
def test_gate_weighted_sums_match_book(perceptron, sums):
    assert np.isclose(perceptron.weighted_sum(TRUTH_INPUTS), sums).all()
    for x, s in zip(TRUTH_INPUTS, sums):
        assert np.isclose(perceptron.weighted_sum(x), s)


@pytest.mark.parametrize("gate, outputs", [
    (AND, [0, 0, 0, 1]), (NAND, [1, 1, 1, 0]), (OR, [0, 1, 1, 1]), (XOR, [0, 1, 1, 0]),
])
def test_gate_truth_tables_one_at_a_time_and_batched(gate, outputs):
    assert [gate(a, b) for a, b in TRUTH_INPUTS] == outputs
    np.testing.assert_array_equal(gate(X1, X2), outputs)
    np.testing.assert_array_equal(gate(X1.reshape(2, 2), X2.reshape(2, 2)), np.reshape(outputs, (2, 2)))


def test_perceptron_rejects_wrong_number_of_inputs():
    with pytest.raises(ShapeError, match="3 weights"):
        Perceptron([1, 1, 1], 0)([1, 0])
    with pytest.raises(ShapeError, match="same shape"):
        AND([0, 1], [0, 1, 1])


def test_perceptron_copies_its_weights():
    w = np.array([0.5, 0.5], dtype=np.float32)
    p = Perceptron(w, -0.7)
    p.w += 1
    assert w.tolist() == [0.5, 0.5]


@pytest.mark.parametrize("targets", [[0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0]], ids=["AND", "OR", "NAND"])
def test_train_perceptron_learns_linearly_separable_gates(targets):
    result = train_perceptron(TRUTH_INPUTS, targets)
    assert result.converged
    assert result.mistakes_per_epoch[-1] == 0 and len(result.mistakes_per_epoch) == result.epochs
    np.testing.assert_array_equal(result.perceptron(TRUTH_INPUTS), targets)


def test_train_perceptron_keeps_its_bias_in_the_weights_dtype_on_every_numpy():
    # NumPy 1.x promoted np.float32 + Python float to float64: b became float64, training saw one answer and a
    # batch (adding b rounded to float32) another - AND "converged", then said 0 for (1, 1). Same on 1.x and 2.x.
    result = train_perceptron(TRUTH_INPUTS, [0, 0, 0, 1])
    p = result.perceptron
    assert result.converged and result.epochs == 6 and result.mistakes_per_epoch == [1, 3, 3, 2, 1, 0]
    assert p.w.dtype == np.float32 and type(p.b) is np.float32
    np.testing.assert_array_equal(p.w, np.array([0.2, 0.1], dtype=np.float32))
    assert p.b == np.float32(-0.2)
    np.testing.assert_array_equal(p(TRUTH_INPUTS), [0, 0, 0, 1])
    assert [int(p(x)) for x in TRUTH_INPUTS] == [0, 0, 0, 1]


def test_train_perceptron_reports_xor_does_not_converge():
    result = train_perceptron(TRUTH_INPUTS, [0, 1, 1, 0], max_epochs=50)
    assert not result.converged
    assert result.epochs == 50 and min(result.mistakes_per_epoch) > 0
    assert (result.perceptron(TRUTH_INPUTS) != [0, 1, 1, 0]).any()


def test_train_perceptron_rejects_bad_input():
    with pytest.raises(ShapeError):
        train_perceptron(TRUTH_INPUTS, [0, 1, 1])
    with pytest.raises(ZerogradError, match="0 or 1"):
        train_perceptron(TRUTH_INPUTS, [0, 2, 1, 0])
    with pytest.raises(ZerogradError, match="lr > 0"):
        train_perceptron(TRUTH_INPUTS, [0, 0, 0, 1], lr=0)


# --- activation functions --------------------------------------------------

def test_elementwise_activations():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(step_function(x), [0, 0, 1])
    np.testing.assert_allclose(sigmoid(x), [0.26894142, 0.5, 0.88079708])
    np.testing.assert_array_equal(relu(x), [0, 0, 2])
    np.testing.assert_array_equal(identity_function(x), x)
    np.testing.assert_allclose(tanh(x), np.tanh(x))
    batch = np.stack([x, -x])
    for f in (step_function, sigmoid, relu, identity_function, tanh):
        assert f(batch).shape == (2, 3)
        np.testing.assert_array_equal(f(batch)[0], f(x))


def test_activations_turn_ints_into_float32_and_keep_float64():
    for f in (step_function, sigmoid, relu, identity_function, tanh, softmax):
        assert f(np.array([1, 2, 3])).dtype == np.float32
        assert f([1.0, 2.0]).dtype == np.float32
        assert f(np.array([1.0, 2.0])).dtype == np.float64


def test_sigmoid_is_stable_for_large_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            np.testing.assert_array_equal(sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])
            assert sigmoid(np.float32(-1000)) == 0


def test_softmax_subtracts_max_where_naive_formula_gives_nan():
    a = np.array([1010.0, 1000.0, 990.0])
    expected = [9.99954600e-01, 4.53978686e-05, 2.06106005e-09]
    np.testing.assert_allclose(softmax(a), expected, rtol=1e-8)
    np.testing.assert_allclose(softmax(a.astype(np.float32)), expected, rtol=1e-6)
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(softmax_naive(a)).all()
    np.testing.assert_allclose(softmax_naive([0.3, 2.9, 4.0]), [0.01821127, 0.24519181, 0.73659691], rtol=1e-6)


def test_softmax_works_row_by_row_on_a_batch():
    batch = np.array([[0.3, 2.9, 4.0], [1010.0, 1000.0, 990.0]])
    np.testing.assert_allclose(softmax(batch), [softmax(row) for row in batch])
    with pytest.raises(ShapeError):
        softmax(3.0)


@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 8)),
              elements=st.floats(-50, 50)),
       st.floats(-100, 100))
def test_softmax_rows_sum_to_one_and_ignore_a_constant_shift(x, c):
    y = softmax(x)
    assert ((y >= 0) & (y <= 1)).all()
    np.testing.assert_allclose(y.sum(axis=-1), 1.0)
    np.testing.assert_allclose(softmax(x + c), y, atol=1e-12)


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-30, 30)))
def test_sigmoid_lies_strictly_between_zero_and_one(x):
    y = sigmoid(x)
    assert ((y > 0) & (y < 1)).all()
    np.testing.assert_allclose(sigmoid(-x), 1 - y, atol=1e-12)


@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(allow_nan=False, allow_infinity=False)))
def test_sigmoid_never_overflows(x):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = sigmoid(x)
    assert ((y >= 0) & (y <= 1)).all()


def test_output_activation_for_each_task():
    assert output_activation_for("regression") is identity_function
    assert output_activation_for("binary") is sigmoid
    assert output_activation_for("multiclass") is softmax
    with pytest.raises(ZerogradError, match="multiclass"):
        output_activation_for("classification")


# --- forward propagation -----------------------------------------------------

def test_forward_gives_the_books_output_for_one_sample_and_a_batch():
    network = init_network()
    book = [0.31682708, 0.69627909]
    y = forward(network, np.array([1.0, 0.5]))
    assert y.shape == (2,)
    np.testing.assert_allclose(y, book, rtol=1e-6)
    batch = forward(network, np.tile([1.0, 0.5], (4, 1)))
    assert batch.shape == (4, 2)
    np.testing.assert_allclose(batch, np.tile(book, (4, 1)), rtol=1e-6)


def test_forward_handles_any_number_of_layers_and_activations():
    network = {"W1": np.eye(2, dtype=np.float32), "b1": np.array([-1.0, 1.0], dtype=np.float32)}
    np.testing.assert_array_equal(forward(network, [0.5, 0.5], output_activation=relu), [0.0, 1.5])
    deep = {**init_network(), "W4": np.eye(2, dtype=np.float32), "b4": np.zeros(2, dtype=np.float32)}
    y = forward(deep, [1.0, 0.5], output_activation=softmax)
    np.testing.assert_allclose(y, softmax(sigmoid(forward(init_network(), [1.0, 0.5]))), rtol=1e-6)


def test_forward_rejects_bad_networks_and_inputs():
    network = init_network()
    with pytest.raises(ShapeError, match=r"x has shape \(3,\) but W1"):
        forward(network, [1.0, 0.5, 0.2])
    with pytest.raises(ShapeError, match="output of layer 1"):
        forward({**network, "W2": np.ones((2, 2))}, [1.0, 0.5])
    del network["b2"]
    with pytest.raises(ZerogradError, match="b2"):
        forward(network, [1.0, 0.5])
    with pytest.raises(ZerogradError, match="W1"):
        forward({}, [1.0, 0.5])
    with pytest.raises(ZerogradError, match=r"unexpected \['W5'\]"):
        forward({**init_network(), "W5": np.eye(2)}, [1.0, 0.5])


# --- the book's pretrained MNIST network ---------------------------------------

@pytest.fixture(scope="module")
def book_mnist(book_weights):
    from zerograd.datasets import load_mnist
    from zerograd.io import load_book_pickle

    network = load_book_pickle(book_weights)
    _, (images, labels) = load_mnist(normalize=False)
    return network, normalize(images), labels


def test_predict_reaches_the_books_accuracy_in_batches(book_mnist):
    network, x, t = book_mnist
    assert x.dtype == np.float32 and x.shape == (10000, 784) and x.max() == 1.0
    correct = 0
    for i in range(0, len(x), 100):
        y = predict(network, x[i:i + 100])
        assert y.shape == (100, 10)
        correct += int(np.sum(np.argmax(y, axis=1) == t[i:i + 100]))
    assert correct == 9352


def test_predict_reaches_the_books_accuracy_one_image_at_a_time(book_mnist):
    network, x, t = book_mnist
    correct = sum(int(np.argmax(predict(network, x[i])) == t[i]) for i in range(len(x)))
    assert correct == 9352


# --- loss functions ------------------------------------------------------------

T_BOOK = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
Y_GOOD = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
Y_BAD = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]


@pytest.mark.parametrize("y, mse, cee", [(Y_GOOD, 0.0975, 0.510825457), (Y_BAD, 0.5975, 2.302584092)])
def test_losses_match_book_for_one_hot_and_labels(y, mse, cee):
    assert np.isclose(mean_squared_error(y, T_BOOK), mse)
    assert np.isclose(cross_entropy_error(y, T_BOOK), cee)
    assert np.isclose(mean_squared_error(y, 2), mse)
    assert np.isclose(cross_entropy_error(y, 2), cee)
    assert np.isclose(cross_entropy_error(np.float32(y), T_BOOK), cee, rtol=1e-6)


def test_losses_average_over_the_batch():
    y = np.array([Y_GOOD, Y_BAD])
    t_one_hot = np.array([T_BOOK, T_BOOK])
    assert np.isclose(mean_squared_error(y, t_one_hot), (0.0975 + 0.5975) / 2)
    assert np.isclose(cross_entropy_error(y, t_one_hot), (0.510825457 + 2.302584092) / 2)
    assert np.isclose(cross_entropy_error(y, np.array([2, 7])), (0.510825457 + np.log(1 / (0.6 + 1e-7))) / 2)
    assert np.isfinite(cross_entropy_error([0.0, 1.0], [1, 0]))  # delta keeps log(0) away


def test_losses_reject_mismatched_targets():
    with pytest.raises(ShapeError, match="one-hot"):
        cross_entropy_error(np.array([Y_GOOD]), [[0, 1]])
    with pytest.raises(ShapeError, match="integer labels"):
        mean_squared_error(np.array([Y_GOOD, Y_BAD]), np.array([2.0, 7.0]))
    with pytest.raises(ZerogradError, match="0..9"):
        cross_entropy_error(np.array([Y_GOOD]), np.array([10]))


# --- preprocessing -------------------------------------------------------------

def test_normalize_maps_pixels_to_unit_interval():
    x = normalize(np.array([0, 51, 255], dtype=np.uint8))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [0.0, 0.2, 1.0])


def test_standardize_uses_training_statistics_and_survives_constant_pixels():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 3.0, size=(500, 4)).astype(np.float32)
    train[:, 3] = 0.0  # a pixel that is always black in training
    mean, std = fit_standardize(train)
    z = standardize(train, mean, std)
    np.testing.assert_allclose(z[:, :3].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, :3].std(axis=0), 1, atol=1e-5)
    test = np.array([[5.0, 5.0, 5.0, 1.0]], dtype=np.float32)
    z_test = standardize(test, mean, std)
    assert z_test.dtype == np.float32 and z_test[0, 3] == 1.0
    with pytest.raises(ShapeError, match="features"):
        standardize(test[:, :3], mean, std)
    with pytest.raises(ShapeError, match=r"\(N, D\)"):
        fit_standardize(train[0])


@pytest.fixture(scope="module")
def correlated_data():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(5, 5)) + 3 * np.eye(5)  # well conditioned, but clearly correlated
    train = rng.normal(size=(2000, 5)) @ mixing + rng.normal(size=5)
    test = rng.normal(size=(300, 5)) @ mixing
    return train, test


def _covariance(x):
    centred = x - x.mean(axis=0)
    return centred.T @ centred / len(x)


@pytest.mark.parametrize("fit", [fit_pca_whitening, fit_zca_whitening])
def test_whitened_training_data_has_identity_covariance(fit, correlated_data):
    train, test = correlated_data
    assert np.abs(_covariance(train) - np.eye(5)).max() > 1  # not white to start with
    mean, W = fit(train)
    white = whiten(train, mean, W)
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(_covariance(white), np.eye(5), atol=1e-4)
    assert whiten(test, mean, W).shape == test.shape


def test_pca_whitening_orders_components_by_decreasing_variance(correlated_data):
    train, _ = correlated_data
    mean, W = fit_pca_whitening(train, eps=0.0)
    # Column j is u_j / sqrt(lambda_j): unit directions scaled up more for smaller variances.
    scale = np.linalg.norm(W, axis=0)
    assert (np.diff(scale) > 0).all()
    projected = (train - mean) @ (W / scale)
    assert (np.diff(projected.var(axis=0)) < 0).all()


def test_zca_whitening_is_symmetric_and_stays_close_to_the_input(correlated_data):
    train, _ = correlated_data
    mean, W_zca = fit_zca_whitening(train)
    np.testing.assert_array_equal(W_zca, W_zca.T)
    zca = whiten(train, mean, W_zca)
    centred = train - mean
    for j in range(train.shape[1]):
        assert np.corrcoef(zca[:, j], centred[:, j])[0, 1] > 0.5
    pca = whiten(train, *fit_pca_whitening(train))
    assert np.linalg.norm(zca - centred) < np.linalg.norm(pca - centred)


def test_whitening_keeps_float32_and_checks_features(correlated_data):
    train, _ = correlated_data
    mean, W = fit_zca_whitening(train.astype(np.float32))
    assert mean.dtype == W.dtype == np.float32
    assert whiten(train.astype(np.float32), mean, W).dtype == np.float32
    with pytest.raises(ShapeError, match="features"):
        whiten(train[:, :4], mean, W)


def test_whitening_survives_constant_features():
    rng = np.random.default_rng(2)
    train = np.hstack([rng.normal(size=(200, 3)), np.zeros((200, 2))])  # like MNIST's always-black border
    for fit in (fit_pca_whitening, fit_zca_whitening):
        white = whiten(train, *fit(train))
        assert np.isfinite(white).all()
        np.testing.assert_allclose(np.sort(np.diag(_covariance(white)))[-3:], 1, atol=1e-4)
