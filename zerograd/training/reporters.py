"""Progress reporting for fit: silent by default (the library never prints), a line per epoch, a tqdm bar,
TensorBoard scalars; Reporters passes each call to several of them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from ..errors import ZerogradError
from ..utils.tensorboard import SummaryWriter, require_tensorboard
from .history import EpochRecord

__all__ = ["LineReporter", "Reporter", "Reporters", "TensorBoardReporter", "TqdmReporter", "default_reporter"]


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


class Reporters(Reporter):
    """Several reporters as one: every call goes to each of them in turn (a progress bar and TensorBoard, say)."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def start_epoch(self, epoch: int, total_epochs: int, batches: int) -> None:
        for r in self.reporters:
            r.start_epoch(epoch, total_epochs, batches)

    def batch(self, loss: float, accuracy: float) -> None:
        for r in self.reporters:
            r.batch(loss, accuracy)

    def end_epoch(self, record: EpochRecord) -> None:
        for r in self.reporters:
            r.end_epoch(record)

    def close(self) -> None:
        for r in self.reporters:
            r.close()


class TensorBoardReporter(Reporter):
    """Every epoch's metrics as TensorBoard scalars in `log_dir`, global step = epoch (needs zerograd[tensorboard]).

    Tags: loss/train, accuracy/train (the running values over the epoch's batches), loss/test, accuracy/test
    (when there is test data) and lr (the learning rate the epoch trained with). A resumed run writes into the
    same folder and goes on from the epoch it resumes at: events a killed run left at or after it are purged.
    """

    TAGS = {"loss/train": "loss", "accuracy/train": "train_accuracy", "loss/test": "test_loss",
            "accuracy/test": "test_accuracy", "lr": "lr"}

    def __init__(self, log_dir: str | Path) -> None:
        require_tensorboard()  # a missing extra fails before the run starts
        self.log_dir, self.writer = str(log_dir), None

    def start_epoch(self, epoch: int, total_epochs: int, batches: int) -> None:
        if self.writer is None:  # opened at the first epoch trained: a resumed run purges from there on
            self.writer = SummaryWriter(self.log_dir, purge_step=epoch if epoch > 1 else None)

    def end_epoch(self, record: EpochRecord) -> None:
        for tag, field in self.TAGS.items():
            value = getattr(record, field)
            if value is not None:
                self.writer.add_scalar(tag, value, record.epoch)
        self.writer.flush()  # an epoch takes seconds to minutes: show it in TensorBoard now

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


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
