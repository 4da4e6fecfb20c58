"""PyTorch's `torch.utils` path: `zerograd.utils.data` holds Dataset, TensorDataset, DataLoader, random_split."""

from . import data

__all__ = ["data"]
