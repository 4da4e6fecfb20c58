"""The book's CNNs (chapters 7-8): architectures, the book's trained pickles, pretrained models, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import BOOK_DATA

import zerograd as zg
from zerograd import Tensor, nn
from zerograd.cli import main
from zerograd.datasets import load_mnist, write_idx
from zerograd.errors import ModelFileError, ZerogradError
from zerograd.io import load_book_pickle
from zerograd.models import (
    DeepConvNet,
    SimpleConvNet,
    build_model,
    list_pretrained,
    load_model,
    load_pretrained,
)
from zerograd.training import evaluate

# What the book's own code (ch07/simple_convnet.py and ch08/deep_convnet.py, float64, its im2col, pooling,
# flatten order and inference-time dropout scaling) computes for its pickles on the 10,000 MNIST test images.
# Measured here by running the book's code on these files; a float32 difference would show up as a miscount.
BOOK_SIMPLE_CORRECT = 9600
BOOK_DEEP_CORRECT = 9797


@pytest.fixture(scope="module")
def test_set():
    _, (x, t) = load_mnist(normalize=True, flatten=False)
    return x, t


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simple_cnn_is_the_books_simple_convnet():
    model = SimpleConvNet(seed=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    conv = model[0]
    assert (conv.weight.shape, conv.stride, conv.padding) == ((30, 1, 5, 5), (1, 1), (0, 0))
    assert (model[2].kernel_size, model[2].stride) == ((2, 2), (2, 2))
    assert model[4].weight.shape == (100, 4320) and model[6].weight.shape == (10, 100)
    assert model(Tensor(np.zeros((3, 1, 28, 28), dtype=np.float32))).shape == (3, 10)
    book = load_book_pickle(BOOK_DATA / "simple_convnet_params.pkl")
    ours = [p.shape for p in model.parameters()]
    theirs = [book[k].shape if k[0] == "b" or k == "W1" else book[k].T.shape
              for k in ("W1", "b1", "W2", "b2", "W3", "b3")]
    assert ours == theirs


def test_deep_cnn_is_the_books_deep_convnet():
    model = DeepConvNet(seed=0)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64]
    assert [c.padding[0] for c in convs] == [1, 1, 1, 2, 1, 1]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model) == 3
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [lin.weight.shape for lin in linears] == [(50, 1024), (10, 50)]
    dropouts = [m for m in model if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.5, 0.5] and isinstance(model[-1], nn.Dropout)
    assert model(Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape == (2, 10)
    with_bn = DeepConvNet(batchnorm=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn) == 6


def test_cnns_size_themselves_to_the_input_and_rebuild_from_config():
    model = SimpleConvNet((3, 16, 12), num_classes=4)
    assert model[4].weight.shape == (100, 30 * 6 * 4)
    assert model(Tensor(np.zeros((2, 3, 16, 12), dtype=np.float32))).shape == (2, 4)
    rebuilt = build_model(model.config)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]
    deep = DeepConvNet((1, 14, 14), num_classes=3)
    assert deep(Tensor(np.zeros((1, 1, 14, 14), dtype=np.float32))).shape == (1, 3)
    assert build_model(deep.config).config == deep.config
    with pytest.raises(ZerogradError, match="at least 6x6"):
        SimpleConvNet((1, 4, 4))


def test_same_seed_same_weights():
    a, b = DeepConvNet(seed=3), DeepConvNet(seed=3)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(SimpleConvNet(seed=1)[0].weight.data, SimpleConvNet(seed=2)[0].weight.data)


def test_the_books_simple_convnet_pickle_gives_the_books_accuracy(test_set):
    x, t = test_set
    model, _ = load_model(BOOK_DATA / "simple_convnet_params.pkl", arch="simple-cnn")
    assert evaluate(model, x, t, batch_size=500)["correct"] == BOOK_SIMPLE_CORRECT


def test_the_books_deep_convnet_outputs_are_the_books(test_set):
    # the book's forward pass written out in float64 NumPy: its dropout multiplies by 0.5 at inference
    x, _ = test_set
    x = x[:200].astype(np.float64)
    p = load_book_pickle(BOOK_DATA / "deep_convnet_params.pkl")

    def conv(h, w, b, pad):
        return np.maximum(zg.functional.conv2d(Tensor(h), Tensor(w), Tensor(b), padding=pad).data, 0)

    def pool(h):
        n, c, hh, ww = h.shape
        return h[:, :, : hh // 2 * 2, : ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))

    h = x
    for i, pad in zip(range(1, 7), (1, 1, 1, 2, 1, 1)):
        h = conv(h, p[f"W{i}"], p[f"b{i}"], pad)
        if i % 2 == 0:
            h = pool(h)
    h = np.maximum(h.reshape(len(h), -1) @ p["W7"] + p["b7"], 0) * 0.5
    book_scores = (h @ p["W8"] + p["b8"]) * 0.5
    model, _ = load_model(BOOK_DATA / "deep_convnet_params.pkl", arch="deep-cnn")
    with zg.no_grad():
        ours = model(Tensor(x.astype(np.float32))).data
    np.testing.assert_allclose(ours, book_scores, atol=2e-4, rtol=1e-4)
    assert np.array_equal(ours.argmax(axis=1), book_scores.argmax(axis=1))


def test_cli_evaluates_and_converts_the_books_deep_convnet(capsys, tmp_path):
    code, out, _ = run(capsys, "evaluate", str(BOOK_DATA / "deep_convnet_params.pkl"), "--arch", "deep-cnn")
    assert code == 0 and out.splitlines()[0] == f"accuracy: {BOOK_DEEP_CORRECT / 10000:.4f} ({BOOK_DEEP_CORRECT}/10000)"
    converted = tmp_path / "deep.safetensors"
    code, out, _ = run(capsys, "convert", str(BOOK_DATA / "deep_convnet_params.pkl"), "--arch", "deep-cnn",
                       "--out", str(converted))
    assert code == 0 and out.strip() == f"model written to {converted}"
    from_pickle, _ = load_model(BOOK_DATA / "deep_convnet_params.pkl", arch="deep-cnn")
    from_file, meta = load_model(converted)
    assert meta["config"]["arch"] == "deep-cnn" and meta["training"]["converted_from"] == "deep_convnet_params.pkl"
    for (name, a), (_, b) in zip(from_pickle.state_dict().items(), from_file.state_dict().items()):
        assert np.array_equal(a, b), name


@pytest.mark.parametrize(
    "pickle, arch, correct",
    [("sample_weight.pkl", "book-ch3", 9352), ("simple_convnet_params.pkl", "simple-cnn", BOOK_SIMPLE_CORRECT)],
)
def test_converted_pickles_evaluate_without_arch(capsys, tmp_path, pickle, arch, correct):
    out_file = tmp_path / "model.safetensors"
    assert run(capsys, "convert", str(BOOK_DATA / pickle), "--arch", arch, "--out", str(out_file))[0] == 0
    code, out, _ = run(capsys, "evaluate", str(out_file), "--json")
    assert code == 0 and json.loads(out)["correct"] == correct


def test_convert_refuses_the_wrong_arch(capsys, tmp_path):
    code, out, err = run(capsys, "convert", str(BOOK_DATA / "sample_weight.pkl"), "--arch", "simple-cnn",
                         "--out", str(tmp_path / "m.safetensors"))
    assert code == 1 and out == "" and "is this the right --arch?" in err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("name, at_least", [("simple-cnn", 0.989), ("deep-cnn", 0.993), ("mlp", 0.98)])
def test_pretrained_models_reach_their_accuracy(capsys, name, at_least):
    code, out, _ = run(capsys, "evaluate", f"pretrained:{name}", "--json")
    result = json.loads(out)
    assert code == 0 and result["accuracy"] >= at_least
    _, meta = load_model(f"pretrained:{name}")
    assert meta["training"]["results"]["test_accuracy"] == result["accuracy"]  # what the README records
    model = load_pretrained(name)
    assert not model.training


def test_list_and_unknown_pretrained():
    assert list_pretrained() == ["book-ch3", "mlp", "simple-cnn", "deep-cnn"]
    with pytest.raises(ModelFileError, match="available: book-ch3, mlp, simple-cnn, deep-cnn"):
        load_pretrained("resnet")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """An MNIST-format folder of 14x14 images in 3 classes (a horizontal, a vertical, a diagonal bar)."""
    folder = tmp_path_factory.mktemp("bars")
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("t10k", 60)):
        labels = np.arange(n) % 3
        images = rng.integers(0, 40, (n, 14, 14)).astype(np.uint8)
        for img, label in zip(images, labels):
            k = rng.integers(2, 12)
            if label == 0:
                img[k, 2:12] = 255
            elif label == 1:
                img[2:12, k] = 255
            else:
                np.fill_diagonal(img[1:13, 1:13], 255)
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8))
    return folder


@pytest.mark.parametrize("model_flags", [["--model", "simple-cnn", "--batchnorm", "--augment"],
                                         ["--model", "deep-cnn", "--epochs", "6"]])
def test_train_cnns_on_a_folder_sizes_them_to_the_data(capsys, tmp_path, tiny_folder, model_flags):
    out_file = tmp_path / "cnn.safetensors"
    argv = ["train", "--data", str(tiny_folder), "--epochs", "4", "--batch-size", "30", "--out", str(out_file),
            "--json", "--quiet", "--plot", str(tmp_path / "curves.png"),
            "--plot-filters", str(tmp_path / "filters.png"), *model_flags]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    result = json.loads(out)
    assert result["test_accuracy"] >= 0.9
    model, meta = load_model(out_file)
    assert meta["config"]["input_shape"] == [1, 14, 14] and meta["config"]["num_classes"] == 3
    assert meta["training"]["settings"]["batch_size"] == 30
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "filters.png").stat().st_size > 0
    if "--batchnorm" in model_flags:
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if "deep-cnn" in model_flags:  # the book's dropout, and augmentation by default
        settings = meta["training"]["settings"]
        assert (settings["dropout"], settings["augment"], settings["batch_size"]) == (0.5, True, 30)


def test_train_cnn_defaults(capsys, tmp_path, tiny_folder):
    out_file = tmp_path / "a.safetensors"
    code, out, err = run(capsys, "train", "--model", "simple-cnn", "--data", str(tiny_folder), "--epochs", "2",
                         "--out", str(out_file), "--quiet")
    assert code == 0, err
    settings = load_model(out_file)[1]["training"]["settings"]
    assert (settings["batch_size"], settings["optimizer"], settings["lr"]) == (100, "adam", None)
    assert (settings["model"], settings["dropout"], settings["hidden"]) == ("simple-cnn", 0.0, None)
    assert settings["augment"] is False
    # --resume of the finished run's checkpoint: nothing left to train, the same weights are written again
    checkpoint = tmp_path / "a.checkpoint.safetensors"
    before = load_model(out_file)[0].state_dict()
    assert run(capsys, "train", "--resume", str(checkpoint), "--quiet")[0] == 0
    after = load_model(out_file)[0].state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_cnn_training_resumes_exactly(tmp_path, tiny_folder):
    from zerograd.datasets import load_idx_folder
    from zerograd.training import fit

    (x, t), (xt, tt) = load_idx_folder(tiny_folder, flatten=False)

    def run_fit(epochs, resume=None, checkpoint=None):
        model = DeepConvNet((1, 14, 14), 3, batchnorm=True, seed=0)  # dropout, batch-norm buffers, Adam state
        opt = zg.optim.Adam(model.parameters(), lr=1e-3)
        fit(model, opt, (x, t), (xt, tt), epochs=epochs, batch_size=50, seed=1, checkpoint=checkpoint,
            resume=resume)
        return model.state_dict()

    checkpoint = tmp_path / "run.checkpoint.safetensors"
    run_fit(2, checkpoint=checkpoint)
    resumed = run_fit(3, resume=checkpoint)
    straight = run_fit(3)
    assert all(np.array_equal(resumed[k], straight[k]) for k in straight)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "simple-cnn", "--hidden", "64"], "--hidden"),
        (["train", "--model", "deep-cnn", "--activation", "tanh"], "--activation"),
        (["train", "--model", "simple-cnn", "--dropout", "0.3"], "--dropout"),
        (["evaluate", "pretrained:book-ch3", "--plot-filters", "f.png"], "no Conv2d layer"),
        (["evaluate", "{book}", "--arch", "deep-cnn"], "missing W4, b4"),
    ],
)
def test_cnn_flag_errors_are_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(book=BOOK_DATA / "sample_weight.pkl") for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and message in err


def test_evaluate_draws_errors_filters_and_feature_maps(capsys, tmp_path):
    paths = {flag: tmp_path / f"{flag}.png" for flag in ("errors", "filters", "features")}
    code, out, err = run(capsys, "evaluate", str(BOOK_DATA / "simple_convnet_params.pkl"), "--arch", "simple-cnn",
                         "--plot-errors", str(paths["errors"]), "--plot-filters", str(paths["filters"]),
                         "--plot-features", str(paths["features"]))
    assert code == 0, err
    for flag, path in paths.items():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", flag
    assert f"misclassified digits plot: {paths['errors']}" in out


def test_predict_reads_a_digit_with_a_cnn(capsys, tmp_path, test_set):
    from PIL import Image

    x, t = test_set
    paths = []
    for i in range(10):
        path = tmp_path / f"{i}.png"
        Image.fromarray((x[i, 0] * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    code, out, err = run(capsys, "predict", "pretrained:simple-cnn", *paths, "--json")
    assert code == 0, err
    assert [r["label"] for r in json.loads(out)] == t[:10].tolist()
