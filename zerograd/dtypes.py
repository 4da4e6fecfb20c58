"""dtype names as in PyTorch (`zerograd.float32`, ...): NumPy dtypes, so `x.dtype == zerograd.float32` holds."""

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 - torch.float is float32 too
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)  # noqa: A001 - torch.int is int32 too
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001

__all__ = [
    "bool", "double", "float", "float16", "float32", "float64", "half", "int", "int8", "int16", "int32", "int64",
    "long", "short", "uint8",
]
