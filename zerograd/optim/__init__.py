"""Optimizers and learning-rate schedules (`zerograd.optim`, as torch.optim)."""

from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from .optimizer import SGD, AdaGrad, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = [
    "SGD", "AdaGrad", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "RMSprop",
    "StepLR", "lr_scheduler",
]
