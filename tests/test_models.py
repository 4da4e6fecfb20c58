"""Ready-made networks: the book's chapter-3 weights, MLP configs, model files, chapters 4-5 training."""

from __future__ import annotations

import numpy as np
import pytest
from _graph import node_kinds

import zerograd as zg
from zerograd import optim
from zerograd.datasets import load_mnist
from zerograd.errors import ModelFileError, ZerogradError
from zerograd.models import MLP, TwoLayerNet, build_model, load_model, save_model
from zerograd.training import evaluate, fit


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(normalize=True, flatten=True)


def test_pretrained_book_ch3_reaches_the_books_accuracy_batched_and_one_at_a_time(mnist):
    _, (x, t) = mnist
    model, meta = load_model("pretrained:book-ch3")
    assert meta["config"] == {"arch": "book-ch3"}
    batched = evaluate(model, x, t, batch_size=100)
    assert (batched["correct"], batched["total"]) == (9352, 10000)
    single = evaluate(model, x, t, batch_size=1)
    assert single["correct"] == 9352
    assert np.array_equal(single["predictions"], batched["predictions"])


def test_book_pickle_with_arch_equals_the_shipped_weights(book_weights, mnist):
    _, (x, t) = mnist
    from_pickle, _ = load_model(book_weights, arch="book-ch3")
    shipped, _ = load_model("pretrained:book-ch3")
    for (name, a), (_, b) in zip(from_pickle.state_dict().items(), shipped.state_dict().items()):
        assert np.array_equal(a, b), name
    assert from_pickle[1].weight.shape == (50, 784)  # (out, in), transposed from the book's (in, out)


def test_book_pickle_needs_an_arch(book_weights):
    with pytest.raises(ModelFileError, match="--arch book-ch3"):
        load_model(book_weights)
    with pytest.raises(ZerogradError, match="unknown --arch"):
        load_model(book_weights, arch="book-ch9")


def test_mlp_layout_config_and_seed():
    model = MLP(784, (100, 50), 10, activation="sigmoid", dropout=0.5, batchnorm=True, seed=3)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "Sigmoid", "Dropout",
                     "Linear", "BatchNorm1d", "Sigmoid", "Dropout", "Linear"]
    assert model.config["init"] == "xavier"  # chapter 6: Xavier for sigmoid, He for ReLU
    assert MLP(seed=0).config["init"] == "he"
    assert model.num_parameters() == 784 * 100 + 100 + 200 + 100 * 50 + 50 + 100 + 50 * 10 + 10
    again = build_model(model.config)
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]
    same_seed = MLP(784, (100, 50), 10, activation="sigmoid", dropout=0.5, batchnorm=True, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), same_seed.state_dict().values()))
    with pytest.raises(ZerogradError, match="unknown activation"):
        MLP(activation="swish")


def test_model_file_round_trip_is_exact(tmp_path, mnist):
    _, (x, _) = mnist
    model = MLP(784, (32,), 10, batchnorm=True, seed=1)
    model.eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"note": "test"})
    loaded, meta = load_model(path)
    assert meta["config"] == model.config and meta["training"] == {"note": "test"}
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and np.array_equal(a, b)
    with zg.no_grad():
        assert np.array_equal(model(zg.Tensor(x[:50])).data, loaded(zg.Tensor(x[:50])).data)
    # any safetensors reader opens the weights
    from safetensors.numpy import load_file

    assert np.array_equal(load_file(str(path))["1.weight"], model.state_dict()["1.weight"])


def test_not_a_model_file(tmp_path):
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="notes.safetensors"):
        load_model(text)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")
    with pytest.raises(ModelFileError, match="unknown architecture"):
        build_model({"arch": "vgg16"})  # (resnet is one now)


# --- chapters 4 and 5: the two-layer network ------------------------------------------------------
def test_numerical_and_backprop_gradients_agree_in_float64(mnist):
    (x, t), _ = mnist
    net = TwoLayerNet(784, 50, 10, activation="sigmoid", weight_init_std=0.01, seed=0).double()
    x3, t3 = x[:3].astype(np.float64), t[:3]
    numeric = net.numerical_gradient(x3, t3)
    backprop = net.gradient(x3, t3)
    assert set(numeric) == set(backprop) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    for name in numeric:
        assert np.abs(numeric[name] - backprop[name]).mean() < 1e-7, name


def test_training_with_numerical_gradients_lowers_the_loss(mnist):
    (x, t), _ = mnist
    rng = np.random.default_rng(0)
    idx = rng.choice(len(x), 100, replace=False)
    x_small, t_small = x[idx][:, ::16].astype(np.float64), t[idx]  # every 16th pixel: 49 inputs
    net = TwoLayerNet(49, 5, 10, activation="sigmoid", weight_init_std=0.5, seed=0).double()
    losses = []
    for _ in range(15):
        losses.append(net.loss(x_small, t_small).item())
        grads = net.numerical_gradient(x_small, t_small)
        for name, p in net.named_parameters():
            p.data -= 1.0 * grads[name]
    assert losses[-1] < losses[0] - 0.2
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))


@pytest.mark.slow
def test_chapter5_backprop_training_reaches_097(mnist):
    """The book's train_neuralnet.py: 784-50-10 ReLU, init std 0.01, SGD lr 0.1, batch 100, 10,000 iterations.

    Measured here: seeds 0, 1, 2 end at 0.9708, 0.9732, 0.9709.
    """
    (x, t), (xt, tt) = mnist
    net = TwoLayerNet(784, 50, 10, activation="relu", weight_init_std=0.01, seed=1)
    history = fit(net, optim.SGD(net.parameters(), lr=0.1), (x, t), (xt, tt), iterations=10_000, batch_size=100,
                  seed=1)
    assert history[-1].iterations == 10_000
    assert history[-1].test_accuracy >= 0.97


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_two_layer_net_runs_fc1_and_a_relu_as_one_node_with_the_same_numbers(mnist, activation):
    (x, t), _ = mnist
    fused, apart = (TwoLayerNet(784, 30, 10, activation=activation, seed=3) for _ in range(2))
    act = apart.act
    object.__setattr__(act, "forward", act.forward)  # a forward on the instance: the layers run one by one
    node = {"relu": "ReLU", "sigmoid": "Sigmoid"}[activation]
    kinds = ["CrossEntropy", "Linear", "Linear + ReLU"] if activation == "relu" else ["CrossEntropy", "Linear",
                                                                                     "Linear", node]
    assert node_kinds(fused.loss(x[:4], t[:4])) == kinds
    assert node_kinds(apart.loss(x[:4], t[:4])) == ["CrossEntropy", "Linear", "Linear", node]
    opts = [optim.SGD(m.parameters(), lr=0.1) for m in (fused, apart)]
    for i in range(5):  # training: the same weights, bit for bit
        for model, opt in zip((fused, apart), opts):
            opt.zero_grad()
            model.loss(x[i * 50:(i + 1) * 50], t[i * 50:(i + 1) * 50]).backward()
            opt.step()
    for p, q in zip(fused.parameters(), apart.parameters()):
        assert p.data.tobytes() == q.data.tobytes()
