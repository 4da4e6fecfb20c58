"""The IDX file format of MNIST and its relatives: reading, writing and content checksums.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a dtype code, the rank, one big-endian
uint32 per dimension, then the data in big-endian C order. Files may be gzip-compressed; the reader
detects that from the gzip magic bytes, never from the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from zerograd.errors import DataError
from zerograd.io.atomic import atomic_write_bytes

PathLike = str | os.PathLike[str]

# Big-endian on disk; callers get native order (see read_idx).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DEFLATE_RATIO = 1032  # DEFLATE's largest expansion: a 258-byte match coded in about 2 bits


def _read_bytes(path: Path) -> bytes:
    """Raw bytes of the file at `path`, or DataError if it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"IDX file {path} does not exist: check the path, or download the file into that folder"
        ) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an IDX file: pass the path of the file itself") from None
    except OSError as e:
        raise DataError(f"cannot read IDX file {path}: {e.strerror or e}; check its permissions") from e


def _announced_size(head: bytes) -> int | None:
    """Total bytes (header + data) that an IDX header announces, or None if `head` is no complete header."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
        return None
    header_size = 4 + 4 * head[3]
    if len(head) < header_size:
        return None
    shape = np.frombuffer(head, dtype=">u4", count=head[3], offset=4)
    # math.prod on Python ints: a damaged header with huge dimensions must not overflow into a plausible size.
    return header_size + math.prod(int(d) for d in shape) * IDX_DTYPES[head[2]].itemsize


def _gunzip(raw: bytes, path: Path) -> bytes:
    """Decompressed content of gzip bytes `raw`, inflating no more than the IDX header inside announces."""
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
        head = f.read(4)
        if len(head) == 4:
            head += f.read(4 * head[3])
        size = _announced_size(head)
        if size is None:  # not an IDX header: parse_idx explains what is wrong with these bytes
            return head
        # DEFLATE expands a byte into at most ~1032: a header announcing more than that cannot be
        # true, so refuse it before inflating anything (a gzip bomb would otherwise fill memory).
        if size > MAX_DEFLATE_RATIO * len(raw) + len(head):
            raise DataError(
                f"IDX file {path} announces {size} bytes of data, more than its {len(raw)} compressed "
                "bytes can hold; the file is damaged or malicious: delete it and download it again"
            )
        data = head + f.read(size - len(head))
        # One byte beyond the announced size tells extra data apart from a complete file, and reaching
        # the end checks the gzip CRC; the extra byte never grows to more than one.
        if f.read(1):
            raise DataError(
                f"IDX file {path} holds more data than its header's dimensions describe; "
                "the file is damaged or its header is wrong"
            )
        return data


def read_idx_bytes(path: PathLike) -> bytes:
    """Decompressed content of an IDX file (gzip detected by its magic bytes), as bytes."""
    path = Path(path)
    raw = _read_bytes(path)
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return _gunzip(raw, path)
    except (EOFError, OSError, zlib.error) as e:
        # EOFError: the gzip stream stops early (an interrupted copy or download).
        raise DataError(
            f"IDX file {path} is a damaged gzip file ({e}); it is probably truncated: "
            "delete it and download or copy it again"
        ) from e


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Array (any rank, native byte order) from the decompressed bytes of an IDX file; `name` is for messages."""
    if len(data) < 4:
        raise DataError(
            f"IDX file {name} is truncated: it has {len(data)} bytes, fewer than the 4-byte magic number"
        )
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{name} is not an IDX file: it starts with bytes {data[:4].hex(' ')} "
            "but an IDX magic number starts with two zero bytes"
        )
    code, rank = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({IDX_DTYPES[c].name})" for c in IDX_DTYPES)
        raise DataError(f"IDX file {name} has unknown dtype code 0x{code:02X}; known codes are {known}")
    header_size = 4 + 4 * rank
    if len(data) < header_size:
        raise DataError(
            f"IDX file {name} is truncated: its header announces {rank} dimensions "
            f"({header_size} header bytes) but the file has only {len(data)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=rank, offset=4))
    dtype = IDX_DTYPES[code]
    expected = _announced_size(data[:header_size])
    if len(data) < expected:
        raise DataError(
            f"IDX file {name} is truncated: dimensions {shape} of {dtype.name} need {expected} bytes "
            f"but the file has {len(data)}; delete it and download or copy it again"
        )
    if len(data) > expected:
        # Extra bytes mean the header does not describe the data: refuse rather than guess.
        raise DataError(
            f"IDX file {name} has {len(data) - expected} bytes after the data that dimensions {shape} "
            f"of {dtype.name} describe; the file is damaged or its header is wrong"
        )
    if math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max:
        # An empty array (one dimension 0) whose other dimensions NumPy cannot even describe.
        raise DataError(f"IDX file {name} has dimensions {shape} too large for any array; the header is damaged")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    # astype always copies: the result is writable and owns its memory (not a view of `data`).
    return array.astype(dtype.newbyteorder("="))


def _check_sha256(data: bytes, expected: str, name: str) -> None:
    """Raise DataError unless SHA-256 of `data` equals `expected` (hex)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected.lower():
        raise DataError(
            f"IDX file {name} fails its checksum: the SHA-256 of its decompressed content is {actual}, "
            f"expected {expected.lower()}; the file is corrupted or not the expected one: "
            "delete it and download or copy it again"
        )


def read_idx(path: PathLike, *, sha256: str | None = None) -> np.ndarray:
    """Array stored in an IDX file (gzip or raw), shape as in its header.

    Checks `sha256` of the decompressed content if given.
    """
    path = Path(path)
    data = read_idx_bytes(path)
    if sha256 is not None:
        _check_sha256(data, sha256, str(path))
    return parse_idx(data, str(path))


def idx_sha256(path: PathLike) -> str:
    """Hex SHA-256 of an IDX file's decompressed content (the same for its .gz and raw forms)."""
    return hashlib.sha256(read_idx_bytes(path)).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX encoding of `array` (any rank up to 255; dtype uint8/int8/int16/int32/float32/float64)."""
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        supported = ", ".join(dt.name for dt in IDX_DTYPES.values())
        raise DataError(
            f"cannot store dtype {array.dtype} in an IDX file; it holds only {supported}: "
            "convert first, e.g. array.astype(np.int32) or array.astype(np.float32)"
        )
    if array.ndim > 255:
        raise DataError(f"cannot store an array of rank {array.ndim} in an IDX file: the rank must be at most 255")
    if any(d > 0xFFFFFFFF for d in array.shape):
        raise DataError(f"cannot store shape {array.shape} in an IDX file: each dimension must be below 2**32")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file (gzip-compressed when `compress`); returns the path.

    `compress` defaults to whether the name ends in .gz.
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    data = idx_bytes(array)
    if compress:
        # mtime=0 makes the bytes reproducible, so a .gz checksum does not change from run to run.
        data = gzip.compress(data, compresslevel=9, mtime=0)
    if not path.parent.is_dir():
        raise DataError(f"cannot write IDX file {path}: folder {path.parent} does not exist; create it first")
    # Temp file, fsync, rename, fsync the folder: a crash never leaves a half-written file under the final name.
    atomic_write_bytes(path, data)
    return path
