"""The training loop: fit a model with an optimizer over the epochs, evaluate, checkpoint and report.

The library stays quiet: `fit` reports through an optional `reporter` (the CLI passes a tqdm bar on
a terminal, one line per epoch otherwise). A checkpoint written after every epoch holds the model,
the optimizer, the scheduler, every random generator and the history, so `resume` continues
exactly where an uninterrupted run with the same seed would be.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import functional as F
from .. import nn
from ..datasets import DataLoader, TensorDataset
from ..distributed import Parallel
from ..errors import ModelFileError, ZerogradError
from ..tensor import Tensor
from .checkpoint import load_checkpoint, restore_generators, save_checkpoint
from .history import EpochRecord, History
from .metrics import evaluate
from .reporters import Reporter

__all__ = ["TrainingDiverged", "fit"]


class TrainingDiverged(ZerogradError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, what: str, checkpoint: str | Path | None, epoch: int) -> None:
        kept = f"; the last good checkpoint is {checkpoint}" if checkpoint and epoch > 1 else ""
        super().__init__(f"{what}: lower the learning rate (--lr) or add batch normalisation{kept}")


def fit(
    model: nn.Module,
    optimizer: Any,
    train_data: tuple[np.ndarray, np.ndarray] | DataLoader,
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    epochs: int | None = None,
    iterations: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    scheduler: Any = None,
    loss_fn: Callable[[Tensor, np.ndarray], Tensor] = F.cross_entropy,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    early_stopping: int | None = None,
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
    reporter: Reporter | None = None,
    settings: dict[str, Any] | None = None,
    parallel: Parallel | None = None,
) -> History:
    """Trains `model` with `optimizer` for `epochs` passes (or `iterations` batches) over train_data.

    train_data is (x (N, ...), t (N,)) or a DataLoader (with a `transform`, fit's own DataLoader prepares
    batches in a background thread, num_workers=1: the same batches); test_data (x, t) is evaluated after every
    epoch. `scheduler.step()` runs once per epoch. `early_stopping=k` stops after k epochs without a
    better test accuracy. With `checkpoint`, a checkpoint is written after every epoch; `resume`
    continues from one. A NaN or infinite loss raises TrainingDiverged. With `parallel` (see Parallel),
    the run is shared among processes: train_data is then this process's loader of shards.
    """
    if (epochs is None) == (iterations is None):
        raise ZerogradError("fit needs exactly one of epochs= or iterations=")
    if isinstance(train_data, DataLoader):
        loader = train_data
    else:
        # The transform (augmentation) is the costly part of a batch: a worker thread prepares the next ones
        # during the step; the batches and generator states are those of num_workers=0 (see DataLoader).
        loader = DataLoader(TensorDataset(*train_data), batch_size=batch_size, shuffle=True, seed=seed,
                            transform=transform, num_workers=1 if transform is not None else 0)
    batches = len(loader)
    total_epochs = epochs if epochs is not None else math.ceil(iterations / batches)
    total_iterations = iterations if iterations is not None else total_epochs * batches
    reporter = reporter or Reporter()
    history, start_epoch, iteration = History(), 0, 0
    settings = dict(settings or {})
    best, since_best = -1.0, 0

    if resume is not None:
        state, meta = load_checkpoint(resume)
        model.load_state_dict(state)
        try:  # a damaged or hand-edited header fails here in many ways: one clear error for all of them
            optimizer.load_state_dict(meta["optimizer"])
            if scheduler is not None and meta.get("scheduler") is not None:
                scheduler.load_state_dict(meta["scheduler"])
            restore_generators(model, loader, meta["generators"])
            history = History.from_dict(meta["history"])
            start_epoch, iteration = meta["epoch"], meta["iteration"]
            if not all(type(n) is int and n >= 0 for n in (start_epoch, iteration)):
                raise ValueError(f"epoch {start_epoch!r} and iteration {iteration!r} must be whole numbers")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise ModelFileError(f"{resume} is a damaged training checkpoint ({type(err).__name__}: {err}); "
                                 "start the run again without --resume") from err
        if history.stopped_early:  # the run had already ended: nothing left to train
            return history
        accs = [r.test_accuracy for r in history.records if r.test_accuracy is not None]
        if accs:
            best = max(accs)
            since_best = len(accs) - 1 - int(np.argmax(accs))
    if parallel is not None:
        parallel.start()

    model.train()
    try:
        for epoch in range(start_epoch + 1, total_epochs + 1):
            if iteration >= total_iterations:
                break
            start = time.perf_counter()
            reporter.start_epoch(epoch, total_epochs, min(batches, total_iterations - iteration))
            loss_sum, correct, seen, steps = 0.0, 0, 0, 0
            for x, t in loader:
                if parallel is not None and not len(t):
                    # this process's share of a small last batch is empty: it only joins the gradient exchange
                    optimizer.zero_grad()
                    parallel.sync_gradients(0)
                    optimizer.step()
                    iteration += 1
                    steps += 1
                    if iteration >= total_iterations:
                        break
                    continue
                logits = model(Tensor(x))
                loss = loss_fn(logits, t)
                loss_value = float(loss.data)
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"the loss became {loss_value} at epoch {epoch}, iteration {iteration + 1}", checkpoint, epoch
                    )
                optimizer.zero_grad()
                loss.backward()
                if parallel is not None:
                    parallel.sync_gradients(len(t))
                optimizer.step()
                iteration += 1
                steps += 1
                labels = t if t.ndim == 1 else t.argmax(axis=1)
                batch_correct = int((logits.data.argmax(axis=1) == labels).sum())
                loss_sum += loss_value * len(t)
                correct += batch_correct
                seen += len(t)
                reporter.batch(loss_value, batch_correct / len(t))
                if iteration >= total_iterations:
                    break
            if parallel is not None:  # the epoch's metrics over every process's samples
                loss_sum, correct, seen = parallel.end_epoch([loss_sum, correct, seen])
            test_loss = test_acc = None
            if test_data is not None:
                result = evaluate(model, test_data[0], test_data[1])
                test_loss, test_acc = result["loss"], result["accuracy"]
                if not math.isfinite(test_loss):  # weights blew up in the last step: don't checkpoint them
                    raise TrainingDiverged(f"the test loss became {test_loss} after epoch {epoch}", checkpoint, epoch)
            lr = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step()
            record = EpochRecord(epoch, iteration, loss_sum / max(seen, 1), correct / max(seen, 1),
                                 test_loss, test_acc, float(lr), time.perf_counter() - start)
            history.records.append(record)
            reporter.end_epoch(record)
            if test_acc is not None and early_stopping is not None:
                if test_acc > best:
                    best, since_best = test_acc, 0
                else:
                    since_best += 1
                    if since_best >= early_stopping:
                        history.stopped_early = True
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, loader, history, epoch, iteration, settings)
            if history.stopped_early:
                break
    finally:
        reporter.close()
    return history
