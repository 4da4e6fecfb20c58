"""A training run's history: one record per epoch, saved as JSON and CSV."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_open

__all__ = ["EpochRecord", "History", "train_seconds"]


@dataclass
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    iterations: int
    loss: float
    train_accuracy: float  # running accuracy over the epoch's batches, in train mode
    test_loss: float | None
    test_accuracy: float | None
    lr: float
    seconds: float


@dataclass
class History:
    """Per-epoch records of a training run, saved as JSON and CSV."""

    records: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> EpochRecord:
        return self.records[i]

    def column(self, name: str) -> list[Any]:
        """One metric across epochs, e.g. history.column("test_accuracy")."""
        return [getattr(r, name) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": [asdict(r) for r in self.records], "stopped_early": self.stopped_early}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls([EpochRecord(**r) for r in d.get("epochs", [])], bool(d.get("stopped_early", False)))

    def save_json(self, path: str | Path) -> None:
        with atomic_open(path, "w") as f:  # temp file, fsync, rename, fsync the folder
            f.write(json.dumps(self.to_dict(), indent=2))

    def save_csv(self, path: str | Path) -> None:
        names = list(EpochRecord.__dataclass_fields__)
        with atomic_open(path, "w", newline="") as f:  # never a half-written file, even if killed
            writer = csv.writer(f)
            writer.writerow(names)
            for r in self.records:
                writer.writerow([getattr(r, n) for n in names])



def train_seconds(history: History) -> float:
    """Total seconds spent in training epochs (evaluation included)."""
    return float(sum(r.seconds for r in history.records))
