"""zerograd.utils.data: TensorDataset over Tensors, DataLoader yielding Tensors, Subset and random_split."""

from __future__ import annotations

import numpy as np
import pytest

import zerograd as zg
from zerograd.datasets import DataLoader as ArrayLoader
from zerograd.errors import ZerogradError
from zerograd.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split


def test_tensor_dataset_of_tensors_yields_tensors():
    x, t = zg.arange(20, dtype=zg.float32).view(10, 2), zg.arange(10)
    ds = TensorDataset(x, t)
    xi, ti = ds[3]
    assert isinstance(xi, zg.Tensor) and xi.tolist() == [6.0, 7.0] and ti.item() == 3
    assert len(ds) == 10 and ds.tensors[1].tolist() == list(range(10))
    batches = list(DataLoader(ds, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    xb, tb = batches[1]
    assert isinstance(xb, zg.Tensor) and isinstance(tb, zg.Tensor) and not xb.requires_grad
    assert xb.dtype == zg.float32 and tb.dtype == zg.int64 and tb.tolist() == [4, 5, 6, 7]
    assert xb.tolist() == x.data[4:8].tolist()


def test_arrays_stay_arrays_and_mixed_inputs_give_tensors():
    x, t = np.ones((6, 2), np.float32), np.arange(6)
    (xb, tb), *_ = DataLoader(TensorDataset(x, t), batch_size=3)
    assert type(xb) is np.ndarray and type(tb) is np.ndarray
    (xb, tb), *_ = DataLoader(TensorDataset(zg.tensor(x), t), batch_size=3)
    assert isinstance(xb, zg.Tensor) and isinstance(tb, zg.Tensor)


def test_custom_dataset_returning_tensors():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return zg.tensor([float(i)]), zg.tensor(i * i)

    xb, tb = next(iter(DataLoader(Squares(), batch_size=5)))
    assert isinstance(xb, zg.Tensor) and xb.shape == (5, 1) and tb.tolist() == [0, 1, 4, 9, 16]


def test_shuffling_is_seeded_like_the_array_loader():
    ds = TensorDataset(zg.arange(50))
    ours = [b[0].tolist() for b in DataLoader(ds, batch_size=10, shuffle=True, seed=3)]
    arrays = [b[0].tolist() for b in ArrayLoader(TensorDataset(np.arange(50)), batch_size=10, shuffle=True, seed=3)]
    assert ours == arrays and sorted(sum(ours, [])) == list(range(50))
    g = zg.Generator().manual_seed(3)
    assert [b[0].tolist() for b in DataLoader(ds, batch_size=10, shuffle=True, generator=g)] == ours


def test_random_split_is_disjoint_complete_and_seeded():
    ds = TensorDataset(zg.arange(10) * 10)
    a, b = random_split(ds, [7, 3], generator=zg.Generator().manual_seed(0))
    assert isinstance(a, Subset) and len(a) == 7 and len(b) == 3
    seen = sorted(int(a[i][0].item()) for i in range(7)) + sorted(int(b[i][0].item()) for i in range(3))
    assert sorted(seen) == list(range(0, 100, 10))
    again = random_split(ds, [7, 3], generator=zg.Generator().manual_seed(0))
    assert again[0].indices.tolist() == a.indices.tolist()
    # fractions, as PyTorch: floor of each share, the remainder dealt round-robin
    assert [len(s) for s in random_split(ds, [0.45, 0.45, 0.1])] == [5, 4, 1]
    (xb,) = next(iter(DataLoader(b, batch_size=3)))  # a Subset batches through its dataset's get_batch
    assert isinstance(xb, zg.Tensor) and sorted(xb.tolist()) == sorted(b[i][0].item() for i in range(3))
    with pytest.raises(ZerogradError, match="adding up"):
        random_split(ds, [5, 4])


def test_subset_of_a_dataset_without_get_batch():
    class Plain(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.array([i, i])

    sub = Subset(Plain(), [3, 1])
    assert not hasattr(sub, "get_batch")
    (batch,) = next(iter(DataLoader(sub, batch_size=2)))
    assert batch.tolist() == [[3, 3], [1, 1]]
