"""`zerograd evaluate`: accuracy, loss, per-class accuracy and confusion matrix of a model on a test set."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from ..errors import ZerogradError
from ..models import check_input, load_model
from ..training import evaluate
from ..training.data import load_test_data
from .common import ARCH_HELP, DATA_HELP, MODEL_HELP, add_debug

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Registers `evaluate` and its flags."""
    e = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a model",
                       description="Evaluate a model on a test set.")
    e.add_argument("model", help=MODEL_HELP)
    e.add_argument("--arch", default=None, help=ARCH_HELP)
    e.add_argument("--data", default="mnist", help=DATA_HELP)
    e.add_argument("--skip-bad-images", action="store_true",
                   help="skip unreadable images of a folder (and count them) instead of refusing the folder")
    e.add_argument("--batch-size", type=int, default=1000, help="images per forward pass (1 = one at a time)")
    e.add_argument("--dtype", choices=("float16", "float32"), default=None,
                   help="precision of the weights and the test images: float16 rounds both to half precision and "
                        "computes with those values in float32 (the book's chapter 8.3.4); default: float16 for a "
                        "model file that stores float16 weights (convert --dtype float16), else float32")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--plot", default=None, metavar="PATH", help="save the confusion matrix as PNG")
    e.add_argument("--plot-errors", default=None, metavar="PATH",
                   help="save the misclassified test digits, with predicted and true labels, as PNG")
    e.add_argument("--plot-filters", default=None, metavar="PATH", help="save the first convolution's filters (CNNs)")
    e.add_argument("--plot-features", default=None, metavar="PATH",
                   help="save the feature maps of the first test image through each convolution (CNNs)")
    add_debug(e)


def run(args: argparse.Namespace) -> int:
    """Evaluates args.model on the test split of args.data; prints the results and writes the plots asked for."""
    if args.batch_size < 1:
        raise ZerogradError("--batch-size must be at least 1")
    model, meta = load_model(args.model, args.arch)
    x, t, classes, skipped = load_test_data(args.data, meta.get("data"), skip_bad_images=args.skip_bad_images)
    check_input(model, x, args.data)
    dtype = args.dtype or ("float16" if meta.get("dtype") == "float16" else "float32")
    if dtype == "float16":  # as the book's half_float_network.py: the values rounded, the arithmetic wider
        model.to(np.float16).to(np.float32)
        x = x.astype(np.float16).astype(np.float32)
    result = evaluate(model, x, t, batch_size=args.batch_size)
    predictions = result.pop("predictions")
    count = len(result["per_class_accuracy"])
    names = classes if len(classes) == count else [str(i) for i in range(count)]
    result.update(model=str(args.model), data=str(args.data), classes=names, dtype=dtype)
    if skipped:
        result["skipped_images"] = skipped
    _plot(args, model, x, t, predictions, np.array(result["confusion_matrix"]))
    if args.json:
        print(json.dumps(result))
        return 0
    if skipped:
        print(f"skipped {skipped} unreadable images (--skip-bad-images)")
    print(f"accuracy: {result['accuracy']:.4f} ({result['correct']}/{result['total']})")
    print(f"loss: {result['loss']:.4f}")
    if dtype == "float16":
        print("precision: float16 (weights and images rounded to half precision)")
    print("per-class accuracy: " + "  ".join(f"{name}:{a:.3f}" for name, a in zip(names, result["per_class_accuracy"])))
    matrix = result["confusion_matrix"]
    width = max(len(str(v)) for row in matrix for v in row) + 1
    print("confusion matrix (rows: true label, columns: predicted):")
    print("     " + "".join(f"{j:>{width}}" for j in range(len(matrix))))
    for i, row in enumerate(matrix):
        print(f"  {i:>2} " + "".join(f"{v:>{width}}" for v in row))
    for flag, path in (("confusion matrix", args.plot), ("misclassified digits", args.plot_errors),
                       ("filters", args.plot_filters), ("feature maps", args.plot_features)):
        if path:
            print(f"{flag} plot: {path}")
    return 0


def _plot(args: argparse.Namespace, model: Any, x: np.ndarray, t: np.ndarray, predictions: np.ndarray,
          matrix: np.ndarray) -> None:
    from .. import plots

    if args.plot:
        plots.plot_confusion_matrix(matrix, args.plot)
    if args.plot_errors:
        plots.plot_misclassified(x, t, predictions, args.plot_errors)
    if args.plot_filters:
        plots.plot_filters(plots.first_conv(model, "--plot-filters").weight, args.plot_filters)
    if args.plot_features:
        plots.first_conv(model, "--plot-features")
        plots.plot_feature_maps(model, x[0], args.plot_features)
