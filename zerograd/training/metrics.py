"""Evaluation: a model's logits on a dataset, its accuracy, loss, per-class accuracy and confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ShapeError
from ..tensor import Tensor, no_grad

__all__ = ["confusion_matrix", "evaluate", "predict_logits"]


def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Model outputs (N, C) for inputs x (N, ...) in eval mode, batch by batch, without a graph."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outs = [model(Tensor(x[i : i + batch_size])).data for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=np.float32)


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true label, column = predicted label."""
    return np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def evaluate(model: nn.Module, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> dict[str, Any]:
    """Accuracy, loss, per-class accuracy and confusion matrix of `model` on inputs x and labels t (N,)."""
    labels = np.asarray(t).argmax(axis=1) if np.asarray(t).ndim == 2 else np.asarray(t, dtype=np.int64)
    logits = predict_logits(model, x, batch_size)
    predicted = logits.argmax(axis=1)
    num_classes = logits.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ShapeError(
            f"labels run from {labels.min()} to {labels.max()} but the model has {num_classes} classes: "
            "evaluate it on data with the classes it was trained on"
        )
    matrix = confusion_matrix(predicted, labels, num_classes)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    correct = int((predicted == labels).sum())
    loss = float(F.cross_entropy(Tensor(logits), labels).item()) if len(labels) else float("nan")
    return {
        "accuracy": correct / max(len(labels), 1),
        "correct": correct,
        "total": int(len(labels)),
        "loss": loss,
        "per_class_accuracy": [float(a) for a in per_class],
        "confusion_matrix": matrix.tolist(),
        "predictions": predicted,
    }
