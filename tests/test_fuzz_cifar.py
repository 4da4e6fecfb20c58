"""Fuzzing CIFAR-10's reader (random records, truncations, meta text, damaged archives): the right arrays or a
one-line DataError, never another exception; and the transforms' arguments: valid ones give outputs of the
documented shape, invalid ones a one-line ValueError or TypeError."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _fuzz import clean, fuzz
from hypothesis import given
from hypothesis import strategies as st

import zerograd
import zerograd.transforms as T
from zerograd.datasets import CIFARArrays, load_cifar10
from zerograd.datasets.cifar import ARCHIVE, FOLDER, RECORD
from zerograd.errors import DataError

META = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]) + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for every example of a test (a new one per example costs more than the test)."""
    return tmp_path_factory.mktemp("cifar")


def _decoded(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """What a batch file of whole records holds, decoded independently of the reader."""
    raw = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def _check(result, train: bytes, test: bytes, meta: str) -> None:
    """`result` is CIFAR-10's arrays exactly when the files are valid, else a DataError."""
    classes = [line.strip() for line in meta.splitlines() if line.strip()]
    valid = (0 < len(classes) <= 256 and all(len(d) and len(d) % RECORD == 0 and max(d[::RECORD]) < len(classes)
                                              for d in (train, test)))
    if not valid:
        assert isinstance(result, DataError), result
        return
    assert isinstance(result, CIFARArrays), result
    for (x, y), data in ((result.train, train), (result.test, test)):
        expected_x, expected_y = _decoded(data)
        assert x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x, expected_x)
        np.testing.assert_array_equal(y, expected_y)
    assert result.classes == classes


def _write(root: Path, train: bytes, test: bytes, meta: bytes) -> None:
    batches = root / FOLDER
    batches.mkdir(exist_ok=True)
    (batches / "data_batch_1.bin").write_bytes(train)
    (batches / "test_batch.bin").write_bytes(test)
    (batches / "batches.meta.txt").write_bytes(meta)


def _records(draw, labels: st.SearchStrategy[int]) -> bytes:
    n = draw(st.integers(1, 3))
    return b"".join(bytes([draw(labels)]) + draw(st.binary(min_size=3072, max_size=3072)) for _ in range(n))


@st.composite
def batch_files(draw):
    """A batch file: whole records with labels mostly in range, or any bytes of about a record's length."""
    if draw(st.booleans()):
        return _records(draw, st.integers(0, 12))
    return draw(st.binary(max_size=2 * RECORD + 2))


META_TEXT = st.one_of(st.just(META), st.text(max_size=60), st.lists(st.sampled_from(["cat", "", " ", "dog"]),
                                                                      max_size=12).map("\n".join))


@fuzz(150)
@given(train=batch_files(), test=batch_files(), meta=META_TEXT)
def test_random_files_read_exactly_or_refused(folder, train, test, meta):
    _write(folder, train, test, meta.encode())
    _check(clean("cifar", load_cifar10, folder, error=DataError), train, test, meta)


@fuzz(80)
@given(data=st.data())
def test_truncations_refused_unless_whole_records(folder, data):
    whole = _records(data.draw, st.integers(0, 9))
    cut = data.draw(st.integers(0, len(whole)))
    _write(folder, whole[:cut], whole, META.encode())
    _check(clean("cifar", load_cifar10, folder, error=DataError), whole[:cut], whole, META)


@fuzz(40)
@given(meta=st.binary(max_size=40))
def test_meta_bytes(folder, meta):
    record = bytes(RECORD)
    _write(folder, record, record, meta)
    result = clean("cifar", load_cifar10, folder, error=DataError)
    try:
        text = meta.decode("utf-8")
    except UnicodeDecodeError:
        assert isinstance(result, DataError)
        return
    _check(result, record, record, text)


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


VALID_TAR = _tar_gz({f"{FOLDER}/data_batch_1.bin": bytes(RECORD), f"{FOLDER}/test_batch.bin": bytes(RECORD),
                     f"{FOLDER}/batches.meta.txt": META.encode()})


@fuzz(150)
@given(data=st.data())
def test_damaged_archives_refused(folder, data):
    """A tar with bytes overwritten (headers, sizes, names, types), gzipped or not: the arrays or a DataError."""
    tar = bytearray(VALID_TAR)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(tar) - 1))
        tar[position:position + 4] = data.draw(st.binary(min_size=1, max_size=4))
    archive = gzip.compress(bytes(tar), mtime=0) if data.draw(st.booleans()) else bytes(tar)
    root = Path(tempfile.mkdtemp(dir=folder))
    try:
        (root / ARCHIVE).write_bytes(archive)
        result = clean("cifar-archive", load_cifar10, root, error=DataError)
        assert isinstance(result, (CIFARArrays, DataError))
        left = {p.name for p in root.iterdir()}
        assert left == {ARCHIVE, FOLDER} if isinstance(result, CIFARArrays) else left <= {ARCHIVE, FOLDER}
    finally:
        shutil.rmtree(root)


# ---- the transforms' arguments -----------------------------------------------------------------------------

ARGUMENT = st.one_of(st.integers(-3, 12), st.floats(-2, 40), st.just(float("nan")), st.none(), st.booleans(),
                     st.text(max_size=2), st.lists(st.integers(-2, 12), max_size=5),
                     st.tuples(st.integers(-2, 12), st.integers(-2, 12)))


def _whole(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _size(value) -> tuple[int, int] | None:
    """(h, w) of a valid size argument, else None."""
    if _whole(value, 1):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) in (1, 2) and all(_whole(v, 1) for v in value):
        return value[0], value[-1]
    return None


IMAGE = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.booleans())


def _image(shape) -> np.ndarray:
    c, h, w, batch = shape
    x = np.arange(c * h * w, dtype=np.float32).reshape(c, h, w)
    return np.stack([x, x + 1]) if batch else x


def _call(name, make, image):
    """make() then the transform on `image`: the output, or the ValueError/TypeError either raised."""
    def run():
        return make()(image)
    return clean(name, run, error=(ValueError, TypeError))


@fuzz(300)
@given(size=ARGUMENT, max_size=st.one_of(st.none(), st.integers(-1, 30)), shape=IMAGE, antialias=st.booleans(),
       mode=st.sampled_from(["nearest", "nearest-exact", "bilinear", "bicubic"]))
def test_resize_arguments(size, max_size, shape, antialias, mode):
    image = _image(shape)
    out = _call("Resize", lambda: T.Resize(size, mode, max_size, antialias), image)
    pair = _size(size)
    single = _whole(size, 1) or (pair is not None and len(size) == 1)
    if pair is None or (max_size is not None and (not single or max_size <= pair[0])):
        assert isinstance(out, (ValueError, TypeError)), out
        return
    h, w = shape[1:3]
    if single:
        short, long = sorted((h, w))
        new_short, new_long = pair[0], int(pair[0] * long / short)
        if max_size is not None and new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
        pair = (new_long, new_short) if w <= h else (new_short, new_long)
    if min(pair) < 1:  # max_size left no pixel on the shorter side
        assert isinstance(out, ValueError) and "use a larger max_size" in str(out), out
        return
    assert out.shape == image.shape[:-2] + pair


@fuzz(300)
@given(size=ARGUMENT, padding=st.one_of(st.none(), ARGUMENT), pad_if_needed=st.booleans(), shape=IMAGE,
       mode=st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]),
       fill=st.one_of(st.floats(0, 1), st.tuples(st.floats(0, 1)), st.text(max_size=1)))
def test_random_crop_arguments(size, padding, pad_if_needed, shape, mode, fill):
    image = _image(shape)
    zerograd.manual_seed(0)
    out = _call("RandomCrop", lambda: T.RandomCrop(size, padding, pad_if_needed, fill, mode), image)
    pair = _size(size)
    if isinstance(padding, (list, tuple)):
        ltrb = (list(padding) * 4)[:4] if len(padding) in (1, 2) else list(padding)
        good_padding = len(padding) in (1, 2, 4) and all(_whole(p, 0) for p in padding)
    else:
        ltrb, good_padding = [padding] * 4, padding is None or _whole(padding, 0)
    if pair is None or not good_padding or mode == "wrap" or isinstance(fill, str):
        assert isinstance(out, (ValueError, TypeError)), out
        return
    h = shape[1] + (0 if padding is None else ltrb[1] + ltrb[3])
    w = shape[2] + (0 if padding is None else ltrb[0] + ltrb[2])
    if pad_if_needed:
        h, w = max(h, h + 2 * (pair[0] - h)), max(w, w + 2 * (pair[1] - w))
    if pair[0] > h or pair[1] > w:
        assert isinstance(out, ValueError) and "larger than the (padded) image" in str(out), out
        return
    assert out.shape == image.shape[:-2] + pair


@fuzz(200)
@given(degrees=ARGUMENT, expand=st.booleans(), shape=IMAGE, center=st.one_of(st.none(), ARGUMENT),
       p=st.one_of(st.floats(-1, 2), st.just(float("nan")), st.integers(-1, 2), st.text(max_size=1)))
def test_rotation_flip_and_crop_arguments(degrees, expand, shape, center, p):
    image = _image(shape)
    zerograd.manual_seed(0)
    out = _call("RandomRotation", lambda: T.RandomRotation(degrees, expand=expand, center=center), image)
    number = isinstance(degrees, (int, float)) and not isinstance(degrees, bool)
    good = (number and degrees >= 0) or (isinstance(degrees, (list, tuple)) and len(degrees) == 2
                                         and degrees[0] <= degrees[1])
    good_center = center is None or (isinstance(center, (list, tuple)) and len(center) == 2)
    if not (good and good_center):
        assert isinstance(out, (ValueError, TypeError)), out
    else:
        assert out.shape[:-2] == image.shape[:-2] and (expand or out.shape == image.shape)
    flip = _call("RandomHorizontalFlip", lambda: T.RandomHorizontalFlip(p), image)
    if isinstance(p, str) or not 0 <= p <= 1:
        assert isinstance(flip, (ValueError, TypeError)), flip
    else:
        assert flip.shape == image.shape
    crop = _call("CenterCrop", lambda: T.CenterCrop(degrees), image)
    pair = _size(degrees)
    assert isinstance(crop, (ValueError, TypeError)) if pair is None else crop.shape == image.shape[:-2] + pair


@fuzz(200)
@given(mean=ARGUMENT, std=ARGUMENT, shape=IMAGE)
def test_normalize_arguments(mean, std, shape):
    image = _image(shape)
    with np.errstate(over="ignore"):  # a std as small as 1e-38 sends values to infinity, as it should
        out = _call("Normalize", lambda: T.Normalize(mean, std), image)
    channels = shape[0]

    def values(v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return [v]
        return list(v) if isinstance(v, (list, tuple)) else None

    m, s = values(mean), values(std)
    # std must be non-zero in the images' float32 too (2e-293 is 0 there), as torchvision requires.
    ok = (m and s and all(len(v) in (1, channels) and np.all(np.isfinite(v)) for v in (m, s))
          and np.all(np.float32(s)))
    if not ok:
        assert isinstance(out, (ValueError, TypeError)), out
    else:
        mean, std = (np.asarray(v, np.float32).reshape(-1, 1, 1) for v in (m, s))
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(out, (image - mean) / std)
