"""Shared test fixtures: the test data shipped in tests/data (the repository tests on its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"
BOOK_DATA = TEST_DATA / "book"  # the book's pickles (MIT licence, see tests/data/book/README.md)
MNIST_DATA = ROOT / "zerograd" / "datasets" / "data"  # the bundled MNIST IDX files


@pytest.fixture(scope="session")
def book_weights() -> Path:
    """The book's chapter-3 sample_weight.pkl."""
    return BOOK_DATA / "sample_weight.pkl"
