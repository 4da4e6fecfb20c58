"""`zerograd.utils.data`, as torch.utils.data: the loaders of zerograd.datasets, speaking Tensors.

TensorDataset here accepts Tensors as well as arrays, and DataLoader yields Tensors when its dataset
holds Tensors (this TensorDataset built from Tensors, or any Dataset whose samples contain Tensors);
over arrays it yields arrays, as zerograd.datasets.DataLoader does. Batching, shuffling and
seeding are zerograd.datasets' own: this module only converts at the edges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..datasets import loader as _loader
from ..datasets.loader import Dataset, Subset, random_split
from ..tensor import Tensor

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class TensorDataset(_loader.TensorDataset):
    """Samples made of rows of equally long tensors or arrays: dataset[i] == (a[i], b[i], ...)."""

    def __init__(self, *tensors: Any) -> None:
        super().__init__(*(_array(t) for t in tensors))
        self.holds_tensors = any(isinstance(t, Tensor) for t in tensors)

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        """The whole columns, as torch's TensorDataset.tensors (sharing memory)."""
        return tuple(Tensor(a) for a in self.arrays)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        row = super().__getitem__(index)
        return tuple(Tensor(np.asarray(a)) for a in row) if self.holds_tensors else row


def _holds_tensors(dataset: Any) -> bool:
    """Whether a dataset hands out Tensors: its own flag, else a look at its first sample."""
    flag = getattr(dataset, "holds_tensors", None)
    if flag is None and isinstance(dataset, Subset):
        return _holds_tensors(dataset.dataset)
    if flag is not None:
        return bool(flag)
    if len(dataset) == 0:
        return False
    sample = dataset[0]
    return any(isinstance(x, Tensor) for x in (sample if isinstance(sample, (tuple, list)) else (sample,)))


class DataLoader(_loader.DataLoader):
    """zerograd.datasets.DataLoader that yields tuples of Tensors when the dataset holds Tensors.

    Takes the same arguments (batch_size, shuffle, drop_last, generator, seed, transform); an
    unseeded shuffling loader draws its order from zerograd's default generator (manual_seed).
    """

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        wrap = _holds_tensors(self.dataset)
        for batch in super().__iter__():
            yield tuple(Tensor._wrap(a) for a in batch) if wrap else batch
