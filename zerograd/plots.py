"""Figures as image files: learning curves, confusion matrices and the book's chapter-6 figures.

Every function draws on its own matplotlib Figure with the Agg canvas (no pyplot, no global state,
no window), writes `path` and returns it. The format follows the file extension (.png, .svg, .pdf,
...); a path without a known extension gets PNG. matplotlib is an optional extra, imported only
when a figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ZerogradError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_MARKERS = ("o", "s", "^", "D", "v", "x")
_LINESTYLES = ("-", "--", ":", "-.")


def _figure(width: float, height: float) -> Figure:
    """A new Figure drawn by Agg, detached from pyplot."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ZerogradError('plotting needs matplotlib: pip install "zerograd[plot]"') from err
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise ZerogradError(f"cannot write the figure {path}: the folder {path.parent} does not exist; create it first")
    suffix = path.suffix.lower().lstrip(".")
    fmt = suffix if suffix in fig.canvas.get_supported_filetypes() else "png"
    try:
        fig.savefig(path, format=fmt)
    except OSError as err:
        raise ZerogradError(f"cannot write the figure {path}: {err.strerror or err}") from err
    return path


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _line_style(i: int, n_points: int) -> dict[str, Any]:
    # markers and dashes tell the curves apart in grey print too; ten marks per curve are enough
    return {
        "marker": _MARKERS[i % len(_MARKERS)],
        "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
        "markevery": max(1, n_points // 10),
        "markersize": 4,
    }


# --- training runs ---------------------------------------------------------------------------------
def plot_history(history: Any, path: str | Path, title: str | None = None) -> Path:
    """Learning curves of a zerograd.training.History: loss (left) and train/test accuracy (right) per epoch."""
    records = list(getattr(history, "records", []))
    if not records:
        raise ZerogradError("plot_history: the history has no epochs to draw (train for at least one epoch)")
    epochs = [r.epoch for r in records]
    marker = "o" if len(records) <= 30 else None
    fig = _figure(10, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [r.loss for r in records], marker=marker, label="train")
    if any(r.test_loss is not None for r in records):
        loss_ax.plot(epochs, [np.nan if r.test_loss is None else r.test_loss for r in records],
                     marker=marker, linestyle="--", label="test")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.plot(epochs, [r.train_accuracy for r in records], marker=marker, label="train")
    if any(r.test_accuracy is not None for r in records):
        acc_ax.plot(epochs, [np.nan if r.test_accuracy is None else r.test_accuracy for r in records],
                    marker=marker, linestyle="--", label="test")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    from matplotlib.ticker import MaxNLocator

    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(
    matrix: np.ndarray, path: str | Path, class_names: Sequence[str] | None = None, title: str | None = None
) -> Path:
    """Confusion matrix (C, C) of counts, rows true and columns predicted, each cell annotated."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ZerogradError(f"plot_confusion_matrix needs a square (C, C) matrix of counts, got shape {matrix.shape}")
    c = matrix.shape[0]
    names = [str(i) for i in range(c)] if class_names is None else [str(n) for n in class_names]
    if len(names) != c:
        raise ZerogradError(f"plot_confusion_matrix: {len(names)} class names for a {c}x{c} matrix")
    side = max(4.0, 0.55 * c + 2)
    fig = _figure(side + 1, side)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set(xticks=range(c), yticks=range(c), xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    long_names = max(map(len, names)) > 3
    ax.set_xticklabels(names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticklabels(names)
    if c <= 30:  # beyond that the numbers are too small to read
        threshold = matrix.max() / 2 if matrix.size else 0
        fontsize = 9 if c <= 12 else 6
        for i in range(c):
            for j in range(c):
                value = matrix[i, j]
                text = f"{value:d}" if np.issubdtype(matrix.dtype, np.integer) else f"{value:.2g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="white" if value > threshold else "black")
    return _save(fig, path)


# --- chapter 6 ---------------------------------------------------------------------------------------
def _book_objective(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # the book's f(x, y) = x**2 / 20 + y**2 (kept here too: plots depends on numpy and matplotlib only)
    return x * x / 20.0 + y * y


def plot_optimizer_paths(
    paths: Mapping[str, np.ndarray],
    path: str | Path,
    objective: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    limits: float = 10.0,
) -> Path:
    """One panel per optimizer: its path (steps + 1, 2) over contours of x**2/20 + y**2 (the book's 6-8)."""
    if not paths:
        raise ZerogradError("plot_optimizer_paths: no paths to draw")
    for name, p in paths.items():
        if np.ndim(p) != 2 or np.shape(p)[1] != 2:
            raise ZerogradError(
                f"plot_optimizer_paths: the path of {name!r} must be (steps + 1, 2), got shape {np.shape(p)}"
            )
    f = objective or _book_objective
    grid = np.linspace(-limits, limits, 401)
    gx, gy = np.meshgrid(grid, grid)
    gz = f(gx, gy)
    levels = np.quantile(gz, [0.01, 0.03, 0.07, 0.13, 0.22, 0.35]) if objective else [0.5, 1, 2, 3.5, 5, 7]
    rows, cols = _grid(len(paths), 2 if len(paths) <= 4 else 3)
    fig = _figure(4.2 * cols, 4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, p) in zip(axes, paths.items()):
        p = np.asarray(p)
        ax.contour(gx, gy, gz, levels=levels, cmap="viridis", linewidths=0.8)
        ax.plot(p[:, 0], p[:, 1], "o-", color="red", markersize=3, linewidth=1)
        ax.plot(0, 0, "+", color="black", markersize=10)
        ax.set(xlim=(-limits, limits), ylim=(-limits, limits), xlabel="x", ylabel="y", title=name)
    for ax in axes[len(paths):]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_activation_histograms(
    activations: Sequence[np.ndarray],
    path: str | Path,
    bins: int = 30,
    value_range: tuple[float, float] | None = None,
    title: str | None = None,
) -> Path:
    """One histogram per layer of activations (any shape each), on a shared axis (the book's 6-10 to 6-14).

    The range is (0, 1) when every value lies there (sigmoid, as in the book), else the values'
    overall minimum to maximum; `value_range` sets it.
    """
    if len(activations) == 0:
        raise ZerogradError("plot_activation_histograms: no layers to draw")
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in activations]
    if value_range is None:
        finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        value_range = (0.0, 1.0) if low >= 0 and high <= 1 else (low, high if high > low else low + 1)
    rows, cols = _grid(len(arrays), 5)
    fig = _figure(2.6 * cols, 2.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
    for i, (ax, a) in enumerate(zip(axes, arrays)):
        ax.hist(a[np.isfinite(a)], bins=bins, range=value_range)
        ax.set_title(f"{i + 1}-layer")
        ax.set_xlim(value_range)
    for ax in axes[len(arrays):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _draw_curves(ax: Axes, curves: Mapping[str, Sequence[float]]) -> None:
    for i, (label, values) in enumerate(curves.items()):
        values = list(values)
        ax.plot(range(1, len(values) + 1), values, label=label, **_line_style(i, len(values)))


def plot_accuracy_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str = "",
    xlabel: str = "epochs",
    ylabel: str = "accuracy",
) -> Path:
    """One line per named curve (values per epoch, epoch 1 first), e.g. train vs test or BN vs no BN."""
    if not curves or all(len(v) == 0 for v in curves.values()):
        raise ZerogradError("plot_accuracy_curves: no values to draw")
    fig = _figure(6, 4.5)
    ax = fig.subplots()
    _draw_curves(ax, curves)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_accuracy_grid(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    title: str = "",
    max_cols: int = 4,
) -> Path:
    """A grid of accuracy panels, each {label: values per epoch}, e.g. BN vs no BN per weight scale (6-19)."""
    if not panels:
        raise ZerogradError("plot_accuracy_grid: no panels to draw")
    rows, cols = _grid(len(panels), max_cols)
    fig = _figure(3 * cols, 2.6 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax, (name, curves) in zip(axes, panels.items()):
        _draw_curves(ax, curves)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(loc="lower right", fontsize=7)
    fig.supxlabel("epochs")
    fig.supylabel("accuracy")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_random_search(
    trials: Sequence[Mapping[str, Any]], path: str | Path, top: int = 20, kind: str = "curves"
) -> Path:
    """Results of random_search: the best `top` trials' curves (the book's 6-24) or, kind="scatter", all.

    "curves": a panel per trial, validation accuracy solid and training accuracy dashed per epoch.
    "scatter": every trial at (lr, weight decay) on log axes, coloured by validation accuracy.
    """
    if not trials:
        raise ZerogradError("plot_random_search: no trials to draw")
    ranked = sorted(trials, key=lambda r: r["val_accuracy"], reverse=True)
    if kind == "scatter":
        fig = _figure(6, 4.8)
        ax = fig.subplots()
        points = ax.scatter([r["lr"] for r in ranked], [r["weight_decay"] for r in ranked],
                            c=[r["val_accuracy"] for r in ranked], cmap="viridis", vmin=0, vmax=1,
                            edgecolors="black", linewidths=0.3)
        fig.colorbar(points, ax=ax, label="validation accuracy")
        ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="weight decay",
               title=f"random search: {len(ranked)} trials")
        return _save(fig, path)
    if kind != "curves":
        raise ZerogradError(f"plot_random_search: kind must be 'curves' or 'scatter', got {kind!r}")
    best = ranked[: max(1, top)]
    missing = [k for k in ("val_accuracies", "train_accuracies") if k not in best[0]]
    if missing:
        raise ZerogradError(f"plot_random_search: the trials have no {' or '.join(missing)}; use kind='scatter'")
    rows, cols = _grid(len(best), 5)
    fig = _figure(2.6 * cols, 2.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)).ravel()
    for i, (ax, r) in enumerate(zip(axes, best)):
        epochs = range(1, len(r["val_accuracies"]) + 1)
        ax.plot(epochs, r["val_accuracies"], label="validation")
        ax.plot(epochs, r["train_accuracies"], linestyle="--", label="train")
        ax.set_title(f"Best-{i + 1}: val {r['val_accuracy']:.2f}\nlr {r['lr']:.1e}, wd {r['weight_decay']:.1e}",
                     fontsize=8)
        ax.set_ylim(0, 1.02)
    for ax in axes[len(best):]:
        ax.set_visible(False)
    axes[0].legend(loc="lower right", fontsize=7)
    return _save(fig, path)


# --- chapters 7-8: looking inside a CNN -------------------------------------------------------------
def _image_grid(fig: Any, images: Sequence[np.ndarray], titles: Sequence[str], rows: int, cols: int,
                cmap: str = "gray") -> None:
    """Draws 2-D images on rows x cols subplots of a figure (or subfigure), no axes, each with its title."""
    axes = fig.subplots(rows, cols, squeeze=False)
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        ax.set_axis_off()
        if k < len(images):
            ax.imshow(images[k], cmap=cmap, interpolation="nearest")
            if titles[k]:
                ax.set_title(titles[k], fontsize=8)


def first_conv(model: Any, flag: str) -> Any:
    """The model's first Conv2d layer, or a ZerogradError saying that `flag` (what asked) needs a CNN."""
    from . import nn

    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            return layer
    raise ZerogradError(f"{flag} draws convolution filters: the model has no Conv2d layer (use a CNN, "
                        "e.g. pretrained:simple-cnn or a model trained with --model simple-cnn)")


def _filters_of(weight: Any) -> np.ndarray:
    w = np.asarray(getattr(weight, "data", weight))
    if w.ndim != 4:
        raise ZerogradError(f"plot_filters needs convolution weights (out, in, kh, kw), got shape {w.shape}")
    return w[:, 0]  # the first input channel of each filter (the only one for grey digits)


def plot_filters(weight: Any, path: str | Path, before: Any = None, max_cols: int = 10,
                 title: str | None = None) -> Path:
    """The filters of a convolution weight (out, in, kh, kw) as small grey images (channel 0 of each).

    With `before` (the same layer's weight at initialisation), two blocks: before training above,
    after below, as the book's figure 7-24.
    """
    blocks = [("before training", _filters_of(before)), ("after training", _filters_of(weight))] \
        if before is not None else [(title or "filters", _filters_of(weight))]
    n = len(blocks[-1][1])
    rows, cols = _grid(n, max_cols)
    fig = _figure(cols * 0.9, (rows * len(blocks)) * 0.9 + 0.4 * len(blocks))
    subfigs = fig.subfigures(len(blocks), 1, squeeze=False)[:, 0]
    for sub, (name, filters) in zip(subfigs, blocks):
        sub.suptitle(name, fontsize=10)
        _image_grid(sub, list(filters), [""] * len(filters), rows, cols, cmap="gray_r")
    return _save(fig, path)


def plot_feature_maps(model: Any, image: np.ndarray, path: str | Path, max_maps: int = 16) -> Path:
    """One input image (C, H, W) and the maps each Conv2d of `model` makes of it (after its ReLU, if any).

    One row per convolution, at most `max_maps` channels each.
    """
    from . import nn
    from .tensor import Tensor, no_grad

    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ZerogradError(f"plot_feature_maps needs one image (C, H, W) or (H, W), got shape {x.shape}")
    layers = list(getattr(model, "_modules", {}).values())
    if not any(isinstance(m, nn.Conv2d) for m in layers):
        raise ZerogradError("plot_feature_maps needs a Sequential model with Conv2d layers (simple-cnn, deep-cnn)")
    maps: list[tuple[str, np.ndarray]] = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            h = Tensor(x[None])
            for i, layer in enumerate(layers):
                h = layer(h)
                if isinstance(layer, nn.Conv2d):
                    maps.append((f"conv {len(maps) + 1}: {layer.out_channels} maps", h.data[0]))
                elif isinstance(layer, nn.ReLU) and maps and isinstance(layers[i - 1], (nn.Conv2d, nn.BatchNorm2d)):
                    maps[-1] = (maps[-1][0] + " (after ReLU)", h.data[0])
                if h.ndim != 4:
                    break
    finally:
        model.train(was_training)
    cols = min(max_maps, max(len(m) for _, m in maps)) + 1
    fig = _figure(cols * 0.9, len(maps) * 1.1 + 0.3)
    axes = fig.subplots(len(maps), cols, squeeze=False)
    for row, (name, stack) in enumerate(maps):
        axes[row][0].imshow(x[0], cmap="gray_r", interpolation="nearest")
        axes[row][0].set_title("input" if row == 0 else "", fontsize=8)
        axes[row][1].set_title(name, fontsize=8, loc="left")
        for col in range(cols):
            axes[row][col].set_axis_off()
            if 0 < col <= min(len(stack), max_maps):
                axes[row][col].imshow(stack[col - 1], cmap="viridis", interpolation="nearest")
    return _save(fig, path)


def plot_misclassified(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: str | Path,
                       max_images: int = 40, max_cols: int = 10) -> Path:
    """The test images whose prediction is wrong, each titled "predicted (true)" (the book's figure 8-4)."""
    images, labels, predicted = np.asarray(images), np.asarray(labels), np.asarray(predicted)
    if not len(images) == len(labels) == len(predicted):
        raise ZerogradError(f"plot_misclassified: {len(images)} images, {len(labels)} labels and "
                            f"{len(predicted)} predictions must be as many")
    wrong = np.flatnonzero(labels != predicted)[:max_images]
    if len(wrong) == 0:
        raise ZerogradError("plot_misclassified: every image is classified correctly, there is nothing to draw")
    pictures = [images[i].reshape(images[i].shape[-2:]) if images[i].ndim > 1 else
                images[i].reshape(int(math.isqrt(images[i].size)), -1) for i in wrong]
    rows, cols = _grid(len(wrong), max_cols)
    fig = _figure(cols * 1.0, rows * 1.15 + 0.4)
    fig.suptitle(f"misclassified: predicted (true), {len(wrong)} of {int((labels != predicted).sum())} shown",
                 fontsize=10)
    _image_grid(fig, pictures, [f"{predicted[i]} ({labels[i]})" for i in wrong], rows, cols, cmap="gray_r")
    return _save(fig, path)
