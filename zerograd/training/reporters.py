"""Progress reporting for fit: silent by default (the library never prints), a line per epoch, or a tqdm bar."""

from __future__ import annotations

import sys
from typing import TextIO

from ..errors import ZerogradError
from .history import EpochRecord

__all__ = ["LineReporter", "Reporter", "TqdmReporter", "default_reporter"]


class Reporter:
    """Receives progress from fit; the default does nothing (the library never prints)."""

    def start_epoch(self, epoch: int, total_epochs: int, batches: int) -> None: ...

    def batch(self, loss: float, accuracy: float) -> None: ...

    def end_epoch(self, record: EpochRecord) -> None: ...

    def close(self) -> None: ...


def _describe(record: EpochRecord, total_epochs: int) -> str:
    text = f"epoch {record.epoch}/{total_epochs}  loss {record.loss:.4f}  train acc {record.train_accuracy:.4f}"
    if record.test_accuracy is not None:
        text += f"  test acc {record.test_accuracy:.4f}"
    return text + f"  ({record.seconds:.1f}s)"


class LineReporter(Reporter):
    """One plain line per epoch, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = 0

    def start_epoch(self, epoch: int, total_epochs: int, batches: int) -> None:
        self.total = total_epochs

    def end_epoch(self, record: EpochRecord) -> None:
        print(_describe(record, self.total), file=self.stream, flush=True)


class TqdmReporter(Reporter):
    """A tqdm progress bar per epoch with live loss and accuracy (needs the tqdm extra)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError as err:
            raise ZerogradError('the progress bar needs tqdm: pip install "zerograd[progress]"') from err
        self._tqdm, self.stream, self.bar, self.total = tqdm, stream or sys.stderr, None, 0
        self._loss = self._acc = 0.0
        self._n = 0

    def start_epoch(self, epoch: int, total_epochs: int, batches: int) -> None:
        self.total = total_epochs
        self._loss = self._acc = 0.0
        self._n = 0
        self.bar = self._tqdm(total=batches, desc=f"epoch {epoch}/{total_epochs}", file=self.stream,
                              leave=True, dynamic_ncols=True, mininterval=0.2)

    def batch(self, loss: float, accuracy: float) -> None:
        self._n += 1
        self._loss += (loss - self._loss) / self._n
        self._acc += (accuracy - self._acc) / self._n
        self.bar.update(1)
        if self._n % 20 == 0:
            self.bar.set_postfix(loss=f"{self._loss:.4f}", acc=f"{self._acc:.4f}", refresh=False)

    def end_epoch(self, record: EpochRecord) -> None:
        postfix = {"loss": f"{record.loss:.4f}", "acc": f"{record.train_accuracy:.4f}"}
        if record.test_accuracy is not None:
            postfix["test_acc"] = f"{record.test_accuracy:.4f}"
        self.bar.set_postfix(postfix)
        self.bar.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def default_reporter(quiet: bool = False, stream: TextIO | None = None) -> Reporter:
    """Silent when quiet, a tqdm bar on a terminal (if tqdm is installed), else one line per epoch."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return Reporter()
    if stream.isatty():
        try:
            return TqdmReporter(stream)
        except ZerogradError:
            pass
    return LineReporter(stream)
