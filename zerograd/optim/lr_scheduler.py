"""Learning-rate schedules, as torch.optim.lr_scheduler: call `scheduler.step()` once per epoch.

Each schedule sets `group["lr"]` of its optimizer from a closed form in the epoch count, starting
from the group's learning rate when the schedule was made (kept as group["initial_lr"]), so a resumed
run gets exactly the same rates. A manual change to group["lr"] lasts until the next step().
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from ..errors import ZerogradError
from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define `lr_at(base_lr, epoch)`; the constructor applies epoch 0."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ZerogradError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self._last_lr: list[float] = []
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        """The learning rate at `epoch` for a group that started at `base_lr`."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """Learning rates of the groups at the current epoch."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        """Advances one epoch and sets each group's lr."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step() set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (epoch count, base rates, settings), copied."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a state from state_dict() and sets the optimizer's rates to those of the saved epoch."""
        if not isinstance(state_dict, Mapping) or "last_epoch" not in state_dict:
            raise ZerogradError(f"{type(self).__name__}.load_state_dict needs the dict made by state_dict()")
        if len(state_dict.get("base_lrs", [])) != len(self.optimizer.param_groups):
            raise ZerogradError(
                f"{type(self).__name__}.load_state_dict: the state has {len(state_dict.get('base_lrs', []))} "
                f"learning rates, the optimizer has {len(self.optimizer.param_groups)} parameter groups"
            )
        self.__dict__.update(copy.deepcopy(dict(state_dict)))
        # constructing this scheduler reset the rates to epoch 0: put back those of the saved epoch
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): multiplied by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if not isinstance(step_size, int) or step_size < 1:
            raise ZerogradError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: base_lr at 0, eta_min at T_max.

    Past T_max the cosine continues (rising again), as PyTorch's closed form does.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max < 1:
            raise ZerogradError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
