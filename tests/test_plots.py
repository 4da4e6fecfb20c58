"""Figures are written as real, non-blank images at the path asked for, without touching pyplot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zerograd import experiments as E
from zerograd import plots as P
from zerograd.errors import ZerogradError
from zerograd.training import EpochRecord, History

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path, min_width: int = 300, min_height: int = 200) -> np.ndarray:
    """Checks a valid, non-trivial PNG and returns its pixels (H, W, C)."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert width >= min_width and height >= min_height
    assert path.stat().st_size > 5_000
    # drawn, not blank: many distinct colours and a fair share of non-white pixels
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    assert (pixels.min(axis=2) < 200).mean() > 0.01
    return pixels


def _history(test: bool = True) -> History:
    return History([
        EpochRecord(epoch=i, iterations=100 * i, loss=1.0 / i, train_accuracy=0.6 + 0.03 * i,
                    test_loss=1.1 / i if test else None, test_accuracy=0.55 + 0.03 * i if test else None,
                    lr=0.1, seconds=1.0)
        for i in range(1, 11)
    ])


def test_plot_history_writes_learning_curves(tmp_path):
    out = P.plot_history(_history(), tmp_path / "curves.png", title="run")
    assert out == tmp_path / "curves.png"
    pixels = _assert_png(out, 800, 300)
    assert pixels.shape[1] > 2 * pixels.shape[0]  # two panels side by side
    _assert_png(P.plot_history(_history(test=False), tmp_path / "train-only.png"))
    with pytest.raises(ZerogradError, match="no epochs"):
        P.plot_history(History(), tmp_path / "empty.png")


def test_plot_confusion_matrix_annotates_counts(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 30, size=(10, 10))
    matrix[np.diag_indices(10)] = 950
    out = P.plot_confusion_matrix(matrix, tmp_path / "cm.png")
    _assert_png(out, 400, 400)
    named = P.plot_confusion_matrix(matrix[:3, :3], tmp_path / "cm3.png", class_names=["cat", "dog", "bird"])
    _assert_png(named)
    with pytest.raises(ZerogradError, match="square"):
        P.plot_confusion_matrix(np.zeros((3, 4), dtype=int), tmp_path / "bad.png")
    with pytest.raises(ZerogradError, match="class names"):
        P.plot_confusion_matrix(matrix, tmp_path / "bad.png", class_names=["a", "b"])


def test_plot_optimizer_paths_one_panel_each(tmp_path):
    paths = E.optimizer_paths()
    out = P.plot_optimizer_paths(paths, tmp_path / "paths.png")
    pixels = _assert_png(out, 600, 600)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 500  # the paths are drawn in red, as in the book
    _assert_png(P.plot_optimizer_paths({"SGD": paths["SGD"]}, tmp_path / "one.png"))
    with pytest.raises(ZerogradError, match="steps"):
        P.plot_optimizer_paths({"bad": np.zeros((5, 3))}, tmp_path / "bad.png")


def test_plot_activation_histograms_one_per_layer(tmp_path):
    rng = np.random.default_rng(0)
    sigmoid_like = [rng.uniform(0, 1, size=(100, 10)) for _ in range(5)]
    out = P.plot_activation_histograms(sigmoid_like, tmp_path / "sigmoid.png", title="std 1")
    pixels = _assert_png(out, 1000, 200)
    assert pixels.shape[1] > 3 * pixels.shape[0]  # one row of five, as in the book
    relu_like = [np.maximum(rng.standard_normal((100, 10)), 0), np.zeros((100, 10))]  # a dead layer too
    _assert_png(P.plot_activation_histograms(relu_like, tmp_path / "relu.png"))
    with pytest.raises(ZerogradError, match="no layers"):
        P.plot_activation_histograms([], tmp_path / "none.png")


def test_plot_accuracy_curves_and_grid(tmp_path):
    epochs = np.arange(1, 51)
    curves = {"train": list(1 - 0.9 * np.exp(-epochs / 10)), "test": list(0.75 - 0.65 * np.exp(-epochs / 10))}
    _assert_png(P.plot_accuracy_curves(curves, tmp_path / "overfit.png", title="overfitting"))
    panels = {f"std {s:.3g}": {"batchnorm": curves["train"], "no_batchnorm": curves["test"]}
              for s in E.BOOK_WEIGHT_SCALES[:6]}
    _assert_png(P.plot_accuracy_grid(panels, tmp_path / "grid.png", title="batch norm"), 800, 400)
    with pytest.raises(ZerogradError, match="no values"):
        P.plot_accuracy_curves({}, tmp_path / "none.png")
    with pytest.raises(ZerogradError, match="no panels"):
        P.plot_accuracy_grid({}, tmp_path / "none.png")


def test_plot_random_search_curves_and_scatter(tmp_path):
    rng = np.random.default_rng(0)
    trials = []
    for i in range(25):
        final = float(rng.uniform(0.1, 0.8))
        curve = list(np.linspace(0.1, final, 20))
        trials.append({"trial": i, "lr": float(10 ** rng.uniform(-6, -2)),
                       "weight_decay": float(10 ** rng.uniform(-8, -4)), "val_accuracy": final,
                       "train_accuracy": final + 0.05, "val_accuracies": curve,
                       "train_accuracies": [a + 0.05 for a in curve]})
    _assert_png(P.plot_random_search(trials, tmp_path / "best.png", top=10), 1000, 400)
    _assert_png(P.plot_random_search(trials, tmp_path / "scatter.png", kind="scatter"))
    finals_only = [{k: t[k] for k in ("lr", "weight_decay", "val_accuracy")} for t in trials]
    with pytest.raises(ZerogradError, match="scatter"):
        P.plot_random_search(finals_only, tmp_path / "bad.png")
    with pytest.raises(ZerogradError, match="kind"):
        P.plot_random_search(trials, tmp_path / "bad.png", kind="bars")


def test_format_follows_the_extension_and_defaults_to_png(tmp_path):
    curves = {"train": [0.2, 0.5, 0.7]}
    svg = P.plot_accuracy_curves(curves, tmp_path / "curves.svg")
    assert b"<svg" in svg.read_bytes()[:1000]
    bare = P.plot_accuracy_curves(curves, tmp_path / "curves")
    assert bare == tmp_path / "curves"
    assert bare.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ZerogradError, match="does not exist"):
        P.plot_accuracy_curves(curves, tmp_path / "missing" / "curves.png")


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ZerogradError, match=r'pip install "zerograd\[plot\]"'):
        P.plot_accuracy_curves({"a": [0.1]}, tmp_path / "x.png")


def test_importing_plots_loads_no_matplotlib_and_plotting_leaves_pyplot_alone():
    code = (
        "import sys, zerograd.plots as P, zerograd.experiments\n"
        "assert 'matplotlib' not in sys.modules, 'imported at module level'\n"
        "import tempfile, os\n"
        "P.plot_accuracy_curves({'a': [0.1, 0.2]}, os.path.join(tempfile.mkdtemp(), 'a.png'))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
