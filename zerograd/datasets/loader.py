"""Dataset, TensorDataset and DataLoader with PyTorch's names, yielding NumPy batches.

Batches are plain NumPy arrays (float data as float32); the training loop wraps them in Tensors, which
keeps this package independent of zerograd.tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

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


class DataLoader:
    """Iterates over a dataset in batches of tuples of NumPy arrays, optionally shuffled anew each epoch.

    `generator` (a numpy Generator) or `seed` (an int) makes shuffling reproducible: the same seed
    gives the same sequence of epochs; without either, the order comes from zerograd's default
    generator (see zerograd.manual_seed). `transform` maps the first array of each batch (the inputs,
    e.g. (N,784) or (N,1,28,28)) to new inputs, e.g. an augmentation from zerograd.datasets.augment.
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
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        # neither: shuffle from zerograd's default generator, so zerograd.manual_seed repeats the order
        self.generator = generator if generator is not None else _rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.dataset)
        # Only the index permutation is new each epoch; the data are gathered batch by batch.
        order = self.generator.permutation(n) if self.shuffle else None
        get_batch = getattr(self.dataset, "get_batch", None)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, n)
            if get_batch is not None:
                index = order[start:end] if order is not None else slice(start, end)
                # A slice gives views into the dataset: copy so that a caller's in-place edit stays local.
                batch = as_batch(get_batch(index), copy=isinstance(index, slice))
            else:
                indices = order[start:end] if order is not None else range(start, end)
                batch = collate([self.dataset[int(i)] for i in indices])
            if self.transform is not None:
                batch = (np.asarray(self.transform(batch[0])), *batch[1:])
            yield batch


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
