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


def _labels(dtype: type) -> st.SearchStrategy:
    low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
    special = [v for v in (-1, 127, 255, 9_999, 10_000, 2**31 - 1) if low <= v <= high]
    return hnp.arrays(dtype, st.integers(0, 6), elements=st.integers(max(low, -3), 12) | st.sampled_from(special))


LABELS = st.sampled_from([np.uint8, np.int8, np.int16, np.int32]).flatmap(_labels)


@fuzz(100)
@given(train=LABELS, test=LABELS, one_hot=st.booleans(),
       images=st.sampled_from([(4, 3, 3), (5, 2, 2), (6,), (0, 3, 3), (4, 1)]))
def test_folders_whose_labels_lie(folder, train, test, one_hot, images):
    """Labels a damaged folder may hold (negative, huge, too few): data or DataError, memory bounded."""
    from zerograd.datasets import clear_cache, load_dataset

    data = folder / "dataset"
    data.mkdir(exist_ok=True)
    for stem, array in (("train-images-idx3-ubyte", np.zeros(images, np.uint8)), ("train-labels-idx1-ubyte", train),
                        ("t10k-images-idx3-ubyte", np.zeros(images, np.uint8)), ("t10k-labels-idx1-ubyte", test)):
        (data / stem).write_bytes(idx_bytes(array))  # not write_idx: its fsyncs would take most of the test
    clear_cache()  # the same paths hold new content within one second: do not trust the cache's stamps
    result, peak = peak_bytes(clean, "idx", load_dataset, data, True, True, one_hot, error=DataError)
    if not isinstance(result, DataError):
        (x, t), _ = result
        assert len(x) == len(t) and (t.min(initial=0) >= 0)
    assert peak < 2_000_000, peak  # a label of 2**31 - 1 must not size a one-hot matrix


@pytest.mark.parametrize("case", ["no training images", "a label of 2**31 - 1", "a negative label"])
def test_zerograd_train_on_a_damaged_folder_says_so_in_one_line(tmp_path, capsys, case):
    from zerograd.cli import main

    images, labels = np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 2, 3], np.int32)
    if case == "no training images":
        images, labels = images[:0], labels[:0]
    elif case == "a label of 2**31 - 1":
        labels[2] = 2**31 - 1
    else:
        labels[1] = -1
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                        ("t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8)),
                        ("t10k-labels-idx1-ubyte", np.array([0, 1], np.uint8))):
        write_idx(tmp_path / stem, array)
    code = main(["train", "--data", str(tmp_path), "--epochs", "1", "--out", str(tmp_path / "m.safetensors"),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("zerograd train: error: "), err
    assert {"no training images": "holds no training images", "a label of 2**31 - 1": "2,147,483,648 classes",
            "a negative label": "has a negative label (-1)"}[case] in err
