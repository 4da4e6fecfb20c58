"""Loss modules, as torch.nn: each holds its `reduction` ("mean", "sum" or "none") and calls zerograd.functional."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..errors import ZerogradError
from ..tensor import Tensor
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ZerogradError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) against labels (N,) or class probabilities (N, C)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """(N, C) logits, (N,) labels -> loss (0-d, or (N,) with reduction='none')."""
        return F.cross_entropy(input, target, reduction=self.reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) (e.g. from LogSoftmax) at labels (N,)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """(N, C) log-probabilities, (N,) labels -> loss (0-d, or (N,) with reduction='none')."""
        return F.nll_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Squared error (input - target)**2 of same-shaped tensors."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Any shape, same for both -> loss (0-d, or input's shape with reduction='none')."""
        return F.mse_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in (0, 1) (e.g. from Sigmoid) against targets in [0, 1]."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Any shape, same for both -> loss (0-d, or input's shape with reduction='none')."""
        return F.binary_cross_entropy(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross-entropy in one stable step, from logits."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Any shape, same for both -> loss (0-d, or input's shape with reduction='none')."""
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)
