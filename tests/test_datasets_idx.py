"""IDX reading and writing: exact bytes, every dtype, gzip by magic bytes, and every kind of bad file."""

import ast
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.datasets as zd
from zerograd.datasets.idx import IDX_DTYPES, idx_bytes, parse_idx, read_idx, write_idx
from zerograd.errors import DataError


def test_reads_hand_made_bytes_big_endian():
    # 0x0B int16, rank 2, dims (2, 3), values written big-endian by hand
    header = bytes([0, 0, 0x0B, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    values = [1, -2, 300, -32768, 32767, 0]
    data = header + b"".join(v.to_bytes(2, "big", signed=True) for v in values)
    array = parse_idx(data)
    assert array.shape == (2, 3)
    assert array.dtype == np.int16 and array.dtype.isnative
    assert array.tolist() == [[1, -2, 300], [-32768, 32767, 0]]
    assert array.flags.writeable


def test_writer_produces_the_documented_layout():
    array = np.array([[1.5, -2.0]], dtype=np.float32)
    data = idx_bytes(array)
    assert data[:4] == bytes([0, 0, 0x0D, 2])
    assert data[4:12] == bytes([0, 0, 0, 1, 0, 0, 0, 2])
    assert data[12:] == np.array([1.5, -2.0], dtype=">f4").tobytes()


@pytest.mark.parametrize("code,dtype", [(c, d.newbyteorder("=")) for c, d in IDX_DTYPES.items()])
def test_round_trip_every_dtype_raw_and_gzip(tmp_path, code, dtype):
    if dtype.kind == "f":
        array = np.array([[0.0, -1.25, 3.5e3], [np.inf, -0.0, 1e-3]], dtype=dtype)
    else:
        info = np.iinfo(dtype)
        array = np.array([[info.min, -1 if info.min else 0, 0], [1, 7, info.max]], dtype=dtype)
    raw = write_idx(tmp_path / "a.idx", array)
    gz = write_idx(tmp_path / "a.idx.gz", array)
    assert raw.read_bytes()[2] == code
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    for path in (raw, gz):
        back = read_idx(path)
        assert back.dtype == dtype and back.dtype.isnative
        np.testing.assert_array_equal(back, array)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
))
def test_round_trip_property(array):
    back = parse_idx(idx_bytes(array))
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_plain = tmp_path / "labels-idx2-ubyte"  # gzip content, no .gz
    gz_named_plain.write_bytes(gzip.compress(idx_bytes(array)))
    plain_named_gz = tmp_path / "labels-idx2-ubyte.gz"  # raw content, .gz name
    plain_named_gz.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(gz_named_plain), array)
    np.testing.assert_array_equal(read_idx(plain_named_gz), array)


def test_write_gzip_is_reproducible_and_compress_flag_overrides_name(tmp_path):
    array = np.arange(100, dtype=np.int32)
    a = write_idx(tmp_path / "a.gz", array).read_bytes()
    b = write_idx(tmp_path / "b.gz", array).read_bytes()
    assert a == b  # mtime=0 in the gzip header
    plain = write_idx(tmp_path / "c.gz", array, compress=False).read_bytes()
    assert plain == idx_bytes(array)
    assert write_idx(tmp_path / "d", array, compress=True).read_bytes()[:2] == b"\x1f\x8b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz", "b.gz", "c.gz", "d"]  # no temp files left


def test_idx_sha256_is_of_decompressed_content(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    expected = hashlib.sha256(idx_bytes(array)).hexdigest()
    assert zd.idx_sha256(write_idx(tmp_path / "x", array)) == expected
    assert zd.idx_sha256(write_idx(tmp_path / "x.gz", array)) == expected
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz", sha256=expected.upper()), array)


def test_missing_file(tmp_path):
    path = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(DataError, match=r"nope-idx1-ubyte does not exist"):
        read_idx(path)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match=r"is a folder, not an IDX file"):
        read_idx(tmp_path)


def test_truncated_data(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((2, 3, 3), np.uint8))[:-1])
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert str(path) in str(e.value)
    assert "truncated: dimensions (2, 3, 3) of uint8 need 34 bytes but the file has 33" in str(e.value)


def test_truncated_header(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(DataError, match=r"truncated: its header announces 3 dimensions \(16 header bytes\) "
                                        r"but the file has only 8"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=r"truncated: it has 2 bytes"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    full = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match=r"cut.gz is a damaged gzip file .*truncated"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00\x00")
    with pytest.raises(DataError, match=r"long has 2 bytes after the data"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(DataError, match=r"picture.png is not an IDX file: it starts with bytes 89 50 4e 47"):
        read_idx(path)


def test_unknown_dtype_code(tmp_path):
    path = tmp_path / "weird"
    path.write_bytes(bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(DataError, match=r"weird has unknown dtype code 0x0A; known codes are 0x08 \(uint8\)"):
        read_idx(path)


def test_checksum_mismatch_names_file_and_both_digests(tmp_path):
    path = write_idx(tmp_path / "t-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
    wrong = "0" * 64
    actual = zd.idx_sha256(path)
    with pytest.raises(DataError) as e:
        read_idx(path, sha256=wrong)
    message = str(e.value)
    assert str(path) in message and actual in message and wrong in message
    assert "fails its checksum" in message


def test_write_rejects_unsupported_dtype_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"cannot store dtype int64 .*astype\(np.int32\)"):
        write_idx(tmp_path / "x", np.arange(3))
    with pytest.raises(DataError, match=r"folder .*missing does not exist"):
        write_idx(tmp_path / "missing" / "x", np.arange(3, dtype=np.int32))


def test_datasets_package_imports_only_numpy_errors_and_stdlib():
    # Lower layers never import higher ones: the datasets package must work without zerograd.tensor.
    package = Path(zd.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("zerograd"):
                    # only the ground beneath it: zerograd.io (crash-safe writes, a file lock, opening images with
                    # Pillow imported lazily), zerograd.random (manual_seed's Generator), zerograd.threads (the
                    # worker pool) and zerograd.errors, all NumPy and the standard library
                    ground = ("zerograd.datasets", "zerograd.io", "zerograd.random", "zerograd.threads",
                              "zerograd.errors")
                    assert name in ground or name.startswith(tuple(f"{g}." for g in ground)), (source.name, name)


def test_huge_dimensions_do_not_overflow(tmp_path):
    path = tmp_path / "huge"
    # (2**32-1)**3 elements: an int64 product would wrap around; the file must be called truncated.
    path.write_bytes(bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3 + bytes(10))
    with pytest.raises(DataError, match=r"huge is truncated: dimensions \(4294967295, 4294967295, 4294967295\)"):
        read_idx(path)
