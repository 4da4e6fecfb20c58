"""Dataset, TensorDataset and DataLoader with PyTorch's names, yielding NumPy batches.

Batches are plain NumPy arrays (float data as float32); the training loop wraps them in Tensors, which
keeps this package independent of zerograd.tensor. With num_workers >= 1, DataLoader prepares the
batches of the current epoch in background threads, in order, so that they are the same as without.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from zerograd.errors import ShapeError, ZerogradError
from zerograd.random import rng as _rng

Batch = tuple[np.ndarray, ...]


class Dataset:
    """A sized collection of samples: dataset[i] is a tuple of arrays (or one array), len(dataset) their count.

    A subclass may also define get_batch(indices) -> tuple of arrays with a leading batch axis, which
    DataLoader then uses instead of fetching samples one by one.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples made of rows of equally long arrays: dataset[i] == (a[i], b[i], ...)."""

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ZerogradError("TensorDataset needs at least one array, e.g. TensorDataset(x_train, t_train)")
        self.arrays: tuple[np.ndarray, ...] = tuple(np.asarray(a) for a in arrays)
        for k, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise ShapeError(f"TensorDataset array {k} is a scalar; each array needs a leading sample axis")
        lengths = [a.shape[0] for a in self.arrays]
        if len(set(lengths)) > 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ShapeError(
                f"TensorDataset arrays have different numbers of samples (shapes {shapes}); "
                "every array needs the same length along axis 0"
            )

    def __getitem__(self, index: int) -> Batch:
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def get_batch(self, indices: np.ndarray | slice) -> Batch:
        """Rows `indices` (index array or slice) of every array; a slice gives views, an index array copies."""
        return tuple(a[indices] for a in self.arrays)


def as_batch(arrays: Iterable[Any], copy: bool = False) -> Batch:
    """Arrays with a leading batch axis (N, ...) as a batch: float data as float32, every array copied when `copy`."""
    # The library computes in float32; float64 (or float16) data would silently promote whole models.
    return tuple(a.astype(np.float32 if a.dtype.kind == "f" else a.dtype, copy=copy) for a in map(np.asarray, arrays))


def collate(samples: Sequence[Any]) -> Batch:
    """Samples (tuples of arrays, or single arrays) stacked field by field into a batch (N, ...), as `as_batch`."""
    if not isinstance(samples[0], (tuple, list)):
        samples = [(s,) for s in samples]
    return as_batch(np.stack([np.asarray(s[k]) for s in samples]) for k in range(len(samples[0])))


class EpochPlan(NamedTuple):
    """What an epoch's batches are cut from, drawn when the epoch starts: its order and the dataset's size."""

    order: np.ndarray | None  # the shuffled sample order, None: in sequence
    size: int
    batches: int
    get_batch: Callable[[Any], Any] | None


def _count(value: Any) -> int | None:
    """`value` as an int if it is a whole number (not a bool), else None."""
    return None if isinstance(value, bool) or not isinstance(value, (int, np.integer)) else int(value)


class DataLoader:
    """Iterates over a dataset in batches of tuples of NumPy arrays, optionally shuffled anew each epoch.

    `generator` (a numpy Generator) or `seed` (an int) makes shuffling reproducible: the same seed
    gives the same sequence of epochs; without either, the order comes from zerograd's default
    generator (see zerograd.manual_seed). `transform` maps the first array of each batch (the inputs,
    e.g. (N,784) or (N,1,28,28)) to new inputs, e.g. an augmentation from zerograd.datasets.augment.

    `num_workers=0` (the default) prepares each batch when it is asked for. `num_workers >= 1` prepares
    up to `prefetch_factor` (default 2) batches per worker ahead, so that reading, collating and the
    transform overlap with the training step. The workers are threads, not processes as in PyTorch:
    NumPy releases the GIL in most of that work, and threads share the dataset without copying it and
    keep every random draw in this process, in order. The batches, and the random generators' states
    at the end of every epoch, are exactly those of num_workers=0 with the same seed: the sample order is
    drawn when the epoch starts, the transform runs on one batch at a time in batch order, and no batch
    of the next epoch is prepared before it starts. An epoch left early (break, an exception, the
    iterator dropped) stops its threads and puts `transform.generator` back to where the batches
    handed out left it. What that cannot cover: with num_workers >= 1 the transform and the dataset's
    reads run in another thread (with several workers, reads run concurrently and out of order), so they
    must not draw from a generator the training step draws from too (zerograd's default generator, which
    an unseeded Dropout uses), nor keep random state other than `transform.generator` if an epoch can
    end early, and the transform must return a new array for each batch rather than reuse a buffer.
    """

    def __init__(
        self,
        dataset: Dataset | Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        *,
        generator: np.random.Generator | None = None,
        seed: int | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        num_workers: int = 0,
        prefetch_factor: int | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ZerogradError(f"DataLoader batch_size must be a positive integer, got {batch_size!r}")
        if generator is not None and seed is not None:
            raise ZerogradError("DataLoader takes generator or seed, not both: pass one of them")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise ZerogradError(
                f"DataLoader generator must be a numpy Generator (np.random.default_rng(...)), got "
                f"{type(generator).__name__}; pass an int as seed= instead"
            )
        workers = _count(num_workers)
        if workers is None or workers < 0:
            raise ZerogradError(
                f"DataLoader num_workers must be a whole number >= 0 (0: batches prepared when asked for, "
                f"1 or more: background threads), got {num_workers!r}"
            )
        if workers == 0 and prefetch_factor is not None:
            # as PyTorch: prefetching is what the workers do, so without workers the setting would do nothing
            raise ZerogradError(
                f"DataLoader prefetch_factor={prefetch_factor!r} needs background workers: pass num_workers=1 "
                "(or more) with it, or leave prefetch_factor out"
            )
        depth = _count(2 if prefetch_factor is None else prefetch_factor)
        if depth is None or depth < 1:
            raise ZerogradError(
                f"DataLoader prefetch_factor must be a whole number >= 1 (batches prepared ahead per worker), "
                f"got {prefetch_factor!r}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        # neither: shuffle from zerograd's default generator, so zerograd.manual_seed repeats the order
        self.generator = generator if generator is not None else _rng(seed)
        self.num_workers = workers
        self.prefetch_factor = depth if workers else None

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        if self.num_workers:
            return _PrefetchIterator(self)
        return self._batches()

    def _batches(self) -> Iterator[Batch]:
        """The epoch's batches, each prepared when it is asked for (num_workers=0)."""
        epoch = self._start_epoch()
        for index in range(epoch.batches):
            yield self._finish(epoch, index, self._fetch(epoch, index))

    def _start_epoch(self) -> EpochPlan:
        """Draws the epoch's order (the one draw from self.generator); called in the consumer's thread."""
        n = len(self.dataset)
        # Only the index permutation is new each epoch; the data are gathered batch by batch.
        order = self.generator.permutation(n) if self.shuffle else None
        return EpochPlan(order, n, len(self), getattr(self.dataset, "get_batch", None))

    def _fetch(self, epoch: EpochPlan, index: int) -> Batch:
        """Batch `index` of the epoch read from the dataset and collated; draws no random numbers of its own."""
        start = index * self.batch_size
        end = min(start + self.batch_size, epoch.size)
        if epoch.get_batch is not None:
            rows = epoch.order[start:end] if epoch.order is not None else slice(start, end)
            # A slice gives views into the dataset: copy so that a caller's in-place edit stays local.
            return as_batch(epoch.get_batch(rows), copy=isinstance(rows, slice))
        indices = epoch.order[start:end] if epoch.order is not None else range(start, end)
        return collate([self.dataset[int(i)] for i in indices])

    def _finish(self, epoch: EpochPlan, index: int, batch: Batch) -> Batch:
        """The fetched batch `index` transformed; runs for one batch at a time, in batch order."""
        if self.transform is not None:
            batch = (np.asarray(self.transform(batch[0])), *batch[1:])
        return batch


class _Prefetch:
    """What one epoch's worker threads share with its consumer: the batches made, and whose turn it is."""

    # The threads hold this and never the iterator, so dropping the iterator reaches its __del__, which stops them.

    def __init__(self, loader: DataLoader, epoch: EpochPlan, generator: np.random.Generator | None) -> None:
        self.loader = loader
        self.epoch = epoch
        self.generator = generator
        self.depth = loader.num_workers * loader.prefetch_factor  # batches taken up but not yet handed out
        self.cond = threading.Condition()
        self.claimed = 0  # the next batch a worker takes up
        self.turn = 0  # the next batch to be transformed: the transform's draws stay in batch order
        self.consumed = 0  # batches handed to the consumer
        self.ready: dict[int, tuple[Batch | None, BaseException | None, Any]] = {}
        self.stop = False  # the consumer left, or a batch failed: take up nothing more
        self.running = 0

    def work(self) -> None:
        """A worker thread: take up the next batch, fetch it, wait for its turn, transform it, hand it over."""
        try:
            while self._one_batch():
                pass
        finally:
            with self.cond:
                self.running -= 1
                self.cond.notify_all()

    def _one_batch(self) -> bool:
        """Prepares the next batch not yet taken up and hands it (or its error) over; False: nothing more to do."""
        with self.cond:
            while not self.stop and self.claimed < self.epoch.batches and self.claimed >= self.consumed + self.depth:
                self.cond.wait()
            if self.stop or self.claimed >= self.epoch.batches:
                return False
            index = self.claimed
            self.claimed += 1
        batch: Batch | None = None
        error: BaseException | None = None
        try:
            batch = self.loader._fetch(self.epoch, index)
        except BaseException as exc:  # re-raised in the consumer, at this batch
            error = exc
        with self.cond:
            while self.turn != index and not self.stop:
                self.cond.wait()
            if self.stop:
                return False
        # This thread alone holds the turn, so the transform (outside the lock, to overlap) runs in batch order.
        if error is None:
            try:
                batch = self.loader._finish(self.epoch, index, batch)
            except BaseException as exc:
                batch, error = None, exc
        state = self.generator.bit_generator.state if self.generator is not None else None
        with self.cond:
            self.ready[index] = (batch, error, state)
            self.turn += 1
            # As without workers: nothing after a failed batch is prepared, so the generators stop where it failed.
            self.stop = self.stop or error is not None
            self.cond.notify_all()
        return error is None


class _PrefetchIterator:
    """One epoch of a DataLoader with num_workers >= 1: the batches, in order, made ahead by worker threads."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._shared: _Prefetch | None = None
        self._threads: list[threading.Thread] = []
        self._state: Any = None  # the transform generator's state after the batches handed out so far
        self._done = False

    def __iter__(self) -> _PrefetchIterator:
        return self

    def __next__(self) -> Batch:
        if self._done:
            raise StopIteration
        if self._shared is None:
            self._start()
        shared = self._shared
        with shared.cond:
            while shared.consumed not in shared.ready and shared.consumed < shared.epoch.batches and shared.running:
                shared.cond.wait()
            item = shared.ready.pop(shared.consumed, None)
            if item is not None:
                shared.consumed += 1
                shared.cond.notify_all()  # room for one more batch ahead
        if item is None:
            self.close()
            if shared.consumed < shared.epoch.batches:  # every path of a worker hands over its batch or an error
                raise RuntimeError(f"DataLoader worker threads ended before batch {shared.consumed}: a zerograd bug")
            raise StopIteration
        batch, error, state = item
        self._state = state
        if error is not None:
            self.close()
            raise error  # its traceback still starts in the worker, where it was raised
        return batch

    def _start(self) -> None:
        """Draws the epoch's order (consumer's thread, first batch, as without workers) and starts the workers."""
        loader = self._loader
        epoch = loader._start_epoch()
        generator = getattr(loader.transform, "generator", None)
        generator = generator if isinstance(generator, np.random.Generator) else None
        self._state = generator.bit_generator.state if generator is not None else None
        self._shared = shared = _Prefetch(loader, epoch, generator)
        count = min(loader.num_workers, epoch.batches)
        shared.running = count
        self._threads = [threading.Thread(target=shared.work, name=f"zerograd-DataLoader-worker-{k}", daemon=True)
                         for k in range(count)]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Ends the epoch: its threads stop; transform.generator goes back to where the batches handed out left it."""
        self._done = True
        shared = self._shared
        if shared is None:
            return
        self._shared = None
        with shared.cond:
            shared.stop = True
            shared.cond.notify_all()
        # Never join from a worker itself (the garbage collector may run __del__ in any thread), nor at interpreter
        # exit, when daemon threads are frozen: the threads then end on their own (they see stop) or with the process.
        if sys.is_finalizing() or threading.current_thread() in self._threads:
            return
        for thread in self._threads:
            thread.join()
        # Batches transformed ahead and never handed out drew numbers a run without workers would not have drawn.
        if shared.generator is not None and shared.turn > shared.consumed:
            shared.generator.bit_generator.state = self._state
        shared.ready.clear()

    def __del__(self) -> None:
        self.close()


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order: subset[i] == dataset[indices[i]]."""

    def __init__(self, dataset: Dataset | Any, indices: Any) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def __getattr__(self, name: str) -> Any:
        # get_batch only when the dataset has one, so DataLoader's check for it stays truthful
        dataset = self.__dict__.get("dataset")
        if name == "get_batch" and hasattr(dataset, "get_batch"):
            return lambda indices: dataset.get_batch(self.indices[indices])
        raise AttributeError(name)


def random_split(
    dataset: Dataset | Any, lengths: Any, generator: np.random.Generator | int | None = None
) -> list[Subset]:
    """Disjoint random Subsets of the given lengths (counts summing to len(dataset), or fractions summing to 1)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0):
        counts = [int(math.floor(n * f)) for f in lengths]
        for k in range(n - sum(counts)):  # the remainder goes round-robin, as in PyTorch
            counts[k % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
    if any(c < 0 for c in counts) or sum(counts) != n:
        raise ZerogradError(
            f"random_split: lengths {lengths} must be counts adding up to the dataset's {n} samples, "
            "or fractions adding up to 1"
        )
    order = _rng(generator).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
