"""The training loop: fit, evaluate, history, checkpoints and progress reporting.

The library stays quiet: `fit` reports through an optional `reporter` (the CLI passes a tqdm bar on
a terminal, one line per epoch otherwise). A checkpoint written after every epoch holds the model,
the optimizer, the scheduler, every random generator and the history, so `resume` continues
exactly where an uninterrupted run with the same seed would be.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from . import functional as F
from . import nn
from ._atomic import atomic_open
from .datasets import DataLoader, TensorDataset
from .errors import ModelFileError, ShapeError, ZerogradError
from .io import load_model_file, save_model_file
from .models import CHECKPOINT_MODEL_PREFIX, check_config_fits, checkpoint_model_state
from .tensor import Tensor, no_grad


class TrainingDiverged(ZerogradError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    def __init__(self, what: str, checkpoint: str | Path | None, epoch: int) -> None:
        kept = f"; the last good checkpoint is {checkpoint}" if checkpoint and epoch > 1 else ""
        super().__init__(f"{what}: lower the learning rate (--lr) or add batch normalisation{kept}")


# --- evaluation --------------------------------------------------------------------------------
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


# --- history -----------------------------------------------------------------------------------
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
        _atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2))

    def save_csv(self, path: str | Path) -> None:
        names = list(EpochRecord.__dataclass_fields__)
        with atomic_open(path, "w", newline="") as f:  # never a half-written file, even if killed
            writer = csv.writer(f)
            writer.writerow(names)
            for r in self.records:
                writer.writerow([getattr(r, n) for n in names])


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as f:  # temp file, fsync, rename, fsync the folder
        f.write(text)


# --- progress reporting --------------------------------------------------------------------------
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


# --- sharing a run among processes ----------------------------------------------------------------
class Parallel:
    """Hooks through which fit shares one run among several processes; this base class is one process.

    zerograd.distributed.DistributedDataParallel implements them over MPI. fit's loader then yields
    each process's share of every batch (possibly empty for a small last batch).
    """

    def start(self) -> None:
        """Before the first step (after any resume): make every process's model identical."""

    def sync_gradients(self, count: int) -> None:
        """After backward: combine this process's gradients of `count` samples with the other processes'."""

    def end_epoch(self, sums: list[float]) -> list[float]:
        """After an epoch's last step, before evaluation: `sums` added over processes (and shared statistics)."""
        return sums


# --- checkpoints ---------------------------------------------------------------------------------
def _split_arrays(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able copy of obj with every array moved into `arrays` under a dotted key."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, f"{prefix}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join_arrays(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj


def _int_keys(obj: Any) -> Any:
    """JSON turned integer keys (optimizer state by parameter index) into strings: turn them back."""
    if isinstance(obj, dict):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): _int_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_int_keys(v) for v in obj]
    return obj


def _generators(model: nn.Module, loader: DataLoader) -> dict[str, np.random.Generator]:
    gens = {"loader": loader.generator}
    transform_generator = getattr(loader.transform, "generator", None)
    if isinstance(transform_generator, np.random.Generator):
        gens["transform"] = transform_generator
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                gens[f"{name or 'model'}.{attr}"] = value
    return gens


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: Any, scheduler: Any, loader: DataLoader,
                    history: History, epoch: int, iteration: int, settings: dict[str, Any]) -> None:
    """Writes everything needed to resume training after `epoch`, atomically."""
    arrays = {f"{CHECKPOINT_MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
    state = {
        "kind": "checkpoint",
        "config": getattr(model, "config", None),
        "epoch": epoch,
        "iteration": iteration,
        "history": history.to_dict(),
        "settings": settings,
        "optimizer": _split_arrays(optimizer.state_dict(), "optim", arrays),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "generators": {k: g.bit_generator.state for k, g in _generators(model, loader).items()},
    }
    save_model_file(path, arrays, state)


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(model state_dict, everything else) from a checkpoint written by fit."""
    arrays, meta = load_model_file(path)
    if meta.get("kind") != "checkpoint":
        raise ZerogradError(
            f"{path} is a model file, not a training checkpoint: "
            "resume from a *.checkpoint.safetensors file"
        )
    model_state = checkpoint_model_state(arrays)
    missing = [k for k in ("config", "epoch", "iteration", "history", "settings", "optimizer", "generators")
               if k not in meta]
    if missing or not isinstance(meta["config"], dict):
        raise ModelFileError(f"{path} is a damaged training checkpoint (missing {', '.join(missing) or 'config'}); "
                             "start the run again without --resume")
    check_config_fits(meta["config"], model_state, str(path))  # before anything builds the network
    try:
        meta["optimizer"] = _int_keys(_join_arrays(meta["optimizer"], arrays))
    except (KeyError, TypeError, RecursionError) as exc:  # a hand-edited or damaged header
        raise ModelFileError(f"{path} is a damaged training checkpoint (optimizer state: {exc!r}); "
                             "start the run again without --resume") from exc
    return model_state, meta


# --- the loop ------------------------------------------------------------------------------------
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

    train_data is (x (N, ...), t (N,)) or a DataLoader; test_data (x, t) is evaluated after every
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
        loader = DataLoader(TensorDataset(*train_data), batch_size=batch_size, shuffle=True, seed=seed,
                            transform=transform)
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
            generators = _generators(model, loader)
            for name, g_state in meta["generators"].items():
                if name in generators:
                    generators[name].bit_generator.state = g_state
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


def train_seconds(history: History) -> float:
    """Total seconds spent in training epochs (evaluation included)."""
    return float(sum(r.seconds for r in history.records))

