"""Shared test fixtures: where the project's shared data lives (../shared/data beside the clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZEROGRAD_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: the book's pickles and the MNIST originals. Missing data fails, never skips."""
    if not (SHARED_DATA / "book" / "sample_weight.pkl").is_file():
        pytest.fail(f"shared test data not found at {SHARED_DATA}: clone beside shared/ or set ZEROGRAD_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def book_weights(shared_data: Path) -> Path:
    return shared_data / "book" / "sample_weight.pkl"
