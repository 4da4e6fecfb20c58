"""Half precision, the book's chapter 8.3.4: its DeepConvNet's two accuracies, float16 model files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import BOOK_DATA

from zerograd.cli import main
from zerograd.datasets import load_mnist
from zerograd.io import load_book_pickle, load_model_file
from zerograd.models import DeepConvNet, load_model
from zerograd.models.book import load_book_deep_cnn
from zerograd.training import predict_logits

PICKLE = BOOK_DATA / "deep_convnet_params.pkl"
# What the book's ch08/half_float_network.py prints for its deep_convnet_params.pkl on the 10,000 MNIST test
# images (sampled = 10000: all of them), measured by running the book's unmodified script: first in float64,
# then with the images and every parameter rounded to float16 (written back into the float64 arrays: the values
# are half precision, the arithmetic stays float64).
BOOK_FLOAT64 = 0.9797
BOOK_FLOAT16 = 0.9798


def evaluate(capsys, *argv):
    assert main(["evaluate", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The book's pickle as a float32 and as a float16 model file."""
    folder = tmp_path_factory.mktemp("half")
    paths = {dtype: folder / f"deep-{dtype}.safetensors" for dtype in ("float32", "float16")}
    for dtype, path in paths.items():
        assert main(["convert", str(PICKLE), "--arch", "deep-cnn", "--dtype", dtype, "--out", str(path)]) == 0
    return paths


def test_convert_float16_halves_the_file_and_loads_back(converted):
    sizes = {dtype: path.stat().st_size for dtype, path in converted.items()}
    headers = {dtype: 8 + int.from_bytes(path.read_bytes()[:8], "little") for dtype, path in converted.items()}
    assert 2 * (sizes["float16"] - headers["float16"]) == sizes["float32"] - headers["float32"]  # the tensors' bytes
    assert 0.5 < sizes["float16"] / sizes["float32"] < 0.51
    arrays32, _ = load_model_file(converted["float32"])
    arrays16, _ = load_model_file(converted["float16"])
    assert {a.dtype for a in arrays16.values()} == {np.dtype(np.float16)}
    assert all(np.array_equal(arrays16[k], a.astype(np.float16)) for k, a in arrays32.items())
    from_pickle, _ = load_model(PICKLE, arch="deep-cnn")  # the float32 file holds the pickle's weights as loaded
    assert all(np.array_equal(arrays32[k], a) for k, a in from_pickle.state_dict().items())
    model, meta = load_model(converted["float16"])  # a usable model: float32 arithmetic on the float16 values
    assert meta["dtype"] == "float16" and load_model(converted["float32"])[1]["dtype"] == "float32"
    for name, a in model.state_dict().items():
        assert a.dtype == np.float32 and np.array_equal(a, arrays16[name].astype(np.float32)), name


def test_the_books_two_accuracies(capsys, converted):
    default = evaluate(capsys, PICKLE, "--arch", "deep-cnn")
    assert (default["accuracy"], default["dtype"]) == (BOOK_FLOAT64, "float32")
    half = evaluate(capsys, converted["float32"], "--dtype", "float16")
    assert (half["accuracy"], half["correct"], half["dtype"]) == (BOOK_FLOAT16, 9798, "float16")
    # the float16 file evaluates at its own precision: the same result as rounding the float32 file
    from_file = evaluate(capsys, converted["float16"])
    assert {**from_file, "model": None} == {**half, "model": None}


def test_float32_arithmetic_predicts_what_the_books_float64_does():
    """The book rounds its float64 arrays to float16 and computes in float64; zerograd rounds its float32 weights
    and computes in float32: on these images every prediction is the same and the scores differ by < 1e-4."""
    _, (x, _) = load_mnist(normalize=True, flatten=False)
    x16 = x[:2000].astype(np.float16)
    rounded = {k: v.astype(np.float16).astype(np.float64) for k, v in load_book_pickle(PICKLE).items()}
    book = load_book_deep_cnn(DeepConvNet().double(), rounded).eval()  # the book's values, float64 arithmetic
    book_scores = predict_logits(book, x16.astype(np.float64), 500)
    ours, _ = load_model(PICKLE, arch="deep-cnn")
    ours.to(np.float16).to(np.float32)
    scores = predict_logits(ours, x16.astype(np.float32), 500)
    assert scores.dtype == np.float32 and book_scores.dtype == np.float64
    assert np.array_equal(scores.argmax(axis=1), book_scores.argmax(axis=1))
    np.testing.assert_allclose(scores, book_scores, atol=1e-4)
