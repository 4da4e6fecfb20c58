"""A small MNIST-format folder for tests that run `zerograd train` in a child process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from zerograd.datasets import load_mnist, write_idx


def write_small_mnist(folder: Path, train: int, test: int) -> Path:
    """The first `train` and `test` bundled MNIST images and labels as the four raw IDX files in `folder`."""
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=False, flatten=False)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", x_train[:train, 0])
    write_idx(folder / "train-labels-idx1-ubyte", t_train[:train].astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", x_test[:test, 0])
    write_idx(folder / "t10k-labels-idx1-ubyte", t_test[:test].astype(np.uint8))
    return folder


def zerograd_command(*args: str) -> list[str]:
    """argv running the `zerograd` command with this interpreter."""
    return [sys.executable, "-m", "zerograd", *args]


def child_env() -> dict[str, str]:
    """Environment for child trainings: one BLAS thread (deterministic, and fair to the other cores)."""
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
