"""Fuzzing the IDX reader (raw and gzip): every bad file gives DataError, quickly, with bounded memory."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from _fuzz import clean, fuzz, peak_bytes
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zerograd.datasets import read_idx, write_idx
from zerograd.datasets.idx import IDX_DTYPES, idx_bytes, parse_idx
from zerograd.errors import DataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
# A small valid file: 3 images of 4x5 bytes, as MNIST's train-images (dtype 0x08, rank 3).
SMALL = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for every example of this module (a new one per example costs more than the test)."""
    return tmp_path_factory.mktemp("idx")


def _read(path: Path, data: bytes) -> np.ndarray | DataError:
    path.unlink(missing_ok=True)  # a new file is quicker to write than a truncated one
    path.write_bytes(data)
    return clean("idx", read_idx, path, error=DataError)


@fuzz(50)
@given(array=hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)),
       compress=st.booleans())
def test_valid_files_round_trip(folder, array, compress):
    path = folder / ("a.gz" if compress else "a")
    write_idx(path, array)
    back = clean("idx", read_idx, path, error=DataError)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array, equal_nan=True)


@pytest.mark.parametrize("compress", [False, True])
def test_every_truncation_is_refused(tmp_path, compress):
    whole = idx_bytes(SMALL)
    if compress:
        whole = gzip.compress(whole, mtime=0)
    for n in range(len(whole)):
        result = _read(tmp_path / "cut", whole[:n])
        assert isinstance(result, DataError), n


@fuzz(200)
@given(data=st.data(), compress=st.booleans())
def test_bit_flips_give_an_array_or_data_error(folder, data, compress):
    whole = bytearray(idx_bytes(SMALL))
    if compress:
        whole = bytearray(gzip.compress(bytes(whole), mtime=0))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(whole) - 1))
        whole[i] ^= 1 << data.draw(st.integers(0, 7))
    result = _read(folder / "flipped", bytes(whole))
    if isinstance(result, np.ndarray):  # a flip in the pixels (or the gzip header's name/time fields)
        assert result.shape == SMALL.shape


@fuzz(300)
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw):
    result = clean("idx", parse_idx, raw, "random", error=DataError)
    if isinstance(result, np.ndarray):
        assert idx_bytes(result) == raw  # only a self-consistent IDX file can parse


@fuzz(150)
@given(code=st.sampled_from(sorted(IDX_DTYPES)), dims=st.lists(st.integers(0, 2**32 - 1), max_size=6),
       payload=st.integers(0, 64))
def test_headers_that_lie_about_the_size(folder, code, dims, payload):
    data = bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes() + bytes(payload)
    itemsize = IDX_DTYPES[code].itemsize
    expected = 4 + 4 * len(dims) + math.prod(dims) * itemsize
    # An empty array whose other dimensions overflow NumPy's sizes (found by this test) is refused too.
    describable = math.prod(d for d in dims if d) * itemsize <= np.iinfo(np.intp).max
    path = folder / "lying"
    for blob in (data, gzip.compress(data, mtime=0)):
        result = _read(path, blob)
        assert isinstance(result, DataError) == (expected != len(data) or not describable)


def test_a_header_claiming_10_to_the_12_elements_allocates_nothing(tmp_path):
    # 10**12 bytes announced (10**6 x 10**6), 1 KB present: refused without allocating the announced size.
    data = bytes([0, 0, 0x08, 2]) + np.asarray([10**6, 10**6], dtype=">u4").tobytes() + bytes(1024)
    for name, blob in (("raw", data), ("gz", gzip.compress(data, mtime=0))):
        (tmp_path / name).write_bytes(blob)
        result, peak = peak_bytes(read_idx, tmp_path / name)
        assert isinstance(result, DataError), name
        assert "truncated" in str(result) or "more than its" in str(result)
        assert peak < 1_000_000, (name, peak)


def _gzip_bomb(header: bytes, zeros: int) -> bytes:
    """gzip of header + `zeros` zero bytes, compressed in pieces (the test never holds the inflated data)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    chunk = bytes(1 << 20)
    parts = [compressor.compress(header)]
    for _ in range(zeros // len(chunk)):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_stops_at_the_announced_size(tmp_path):
    # 10 bytes announced, 32 MB of zeros inflating behind them: refused after inflating ~11 bytes.
    path = tmp_path / "bomb.gz"
    path.write_bytes(_gzip_bomb(bytes([0, 0, 0x08, 1]) + np.asarray([10], dtype=">u4").tobytes(), 32 << 20))
    assert path.stat().st_size < 200_000
    result, peak = peak_bytes(read_idx, path)
    assert isinstance(result, DataError) and "more data than its header" in str(result)
    assert peak < 2 * path.stat().st_size + 1_000_000, peak


def test_gzip_bomb_announcing_its_whole_size_is_refused_before_inflating(tmp_path):
    # 32 MB of zeros fit in 32 KB (DEFLATE's ratio is at most ~1032); a header announcing 10 times
    # that in such a file cannot be true and is refused before anything is inflated.
    header = bytes([0, 0, 0x08, 1]) + np.asarray([320 << 20], dtype=">u4").tobytes()
    path = tmp_path / "bomb.gz"
    path.write_bytes(_gzip_bomb(header, 32 << 20))
    result, peak = peak_bytes(read_idx, path)
    assert isinstance(result, DataError) and "more than its" in str(result)
    assert peak < 2 * path.stat().st_size + 1_000_000, peak
