"""The bundled MNIST (book-compatible load_mnist), folders of IDX files, and load_dataset."""

import gzip
import os

import numpy as np
import pytest

import zerograd.datasets as zd
from zerograd.datasets import mnist
from zerograd.datasets.idx import idx_bytes, write_idx
from zerograd.errors import DataError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def raw_mnist():
    return zd.load_mnist(normalize=False, flatten=False)


def test_bundled_mnist_facts(raw_mnist):
    (x_train, t_train), (x_test, t_test) = raw_mnist
    assert x_train.shape == (60000, 1, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 1, 28, 28) and x_test.dtype == np.uint8
    assert t_train.shape == (60000,) and t_train.dtype == np.int64
    assert t_test.shape == (10000,) and t_test.dtype == np.int64
    assert np.bincount(t_train).tolist() == TRAIN_COUNTS
    assert np.bincount(t_test).tolist() == TEST_COUNTS
    assert t_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x_train.min() == 0 and x_train.max() == 255


def test_bundled_files_match_the_sha256_table():
    for stem, expected in zd.DATASETS["mnist"].sha256.items():
        assert zd.idx_sha256(mnist.BUNDLED_DIR / f"{stem}.gz") == expected


def test_book_defaults_normalize_and_flatten(raw_mnist):
    (x_train, t_train), (x_test, t_test) = zd.load_mnist()
    assert x_train.shape == (60000, 784) and x_train.dtype == np.float32
    assert x_test.shape == (10000, 784) and x_test.dtype == np.float32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # Same values as the book's x.astype(np.float32) / 255.0
    expected = raw_mnist[1][0].reshape(10000, 784).astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(x_test, expected)
    np.testing.assert_array_equal(t_train, raw_mnist[0][1])


def test_one_hot_labels(raw_mnist):
    (_, t_train), (_, t_test) = zd.load_mnist(one_hot_label=True)
    assert t_train.shape == (60000, 10) and t_train.dtype == np.float32
    assert t_test.shape == (10000, 10)
    assert t_train.sum(axis=0).tolist() == TRAIN_COUNTS
    np.testing.assert_array_equal(t_train.argmax(axis=1), raw_mnist[0][1])
    assert t_train[0].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_each_call_returns_fresh_writable_arrays_and_does_not_decode_again(monkeypatch):
    (x1, t1), _ = zd.load_mnist(normalize=False)
    x1[:] = 7
    t1[:] = 3

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cached MNIST should not be decoded again")

    monkeypatch.setattr(mnist, "read_idx", no_decoding)
    (x2, t2), _ = zd.load_mnist(normalize=False)
    assert x2.flags.writeable and t2.flags.writeable
    assert t2[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x2.max() == 255


def _mnist_copy_with_corrupted_test_labels(folder):
    # The three unchanged files are symlinks, so their decoded arrays come from the cache (fast).
    for stem in mnist.FILE_STEMS[:3]:
        os.symlink(mnist.BUNDLED_DIR / f"{stem}.gz", folder / f"{stem}.gz")
    labels = bytearray(gzip.decompress((mnist.BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[8] = (labels[8] + 1) % 10  # one wrong label: the array would look perfectly plausible
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(bytes(labels)))
    return bad


def test_corrupted_copy_is_detected(tmp_path):
    bad = _mnist_copy_with_corrupted_test_labels(tmp_path)
    # Unverified, the damage is invisible ...
    (_, _), (_, t_test) = zd.load_idx_folder(tmp_path)
    assert t_test[0] != 7
    # ... which is why the table is checked.
    with pytest.raises(DataError) as e:
        zd.load_idx_folder(tmp_path, sha256=zd.DATASETS["mnist"].sha256)
    message = str(e.value)
    assert str(bad) in message and "fails its checksum" in message
    assert "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2" in message


def test_load_mnist_reports_a_damaged_installation(tmp_path, monkeypatch):
    _mnist_copy_with_corrupted_test_labels(tmp_path)
    monkeypatch.setattr(mnist, "BUNDLED_DIR", tmp_path)
    with pytest.raises(DataError, match=r"the MNIST copy shipped with zerograd is damaged .*reinstall zerograd"):
        zd.load_mnist()
    zd.load_mnist(verify=False)  # the cheap option skips the check


def _synthetic_folder(folder, gz=True):
    x_train = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(4, 2, 3) * 10
    t_train = np.array([0, 2, 1, 2], dtype=np.uint8)
    x_test = np.full((2, 2, 3), 255, dtype=np.uint8)
    t_test = np.array([1, 0], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    for stem, array in zip(mnist.FILE_STEMS, (x_train, t_train, x_test, t_test)):
        write_idx(folder / f"{stem}{suffix}", array)
    return x_train, t_train, x_test, t_test


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_folder_exact_contents(tmp_path, gz):
    x_train, t_train, x_test, t_test = _synthetic_folder(tmp_path, gz)
    (xa, ta), (xb, tb) = zd.load_idx_folder(tmp_path, normalize=False)
    np.testing.assert_array_equal(xa, x_train.reshape(4, 6))
    np.testing.assert_array_equal(xb, x_test.reshape(2, 6))
    assert ta.dtype == np.int64 and ta.tolist() == [0, 2, 1, 2] and tb.tolist() == [1, 0]

    (xa, ta), (xb, _) = zd.load_idx_folder(tmp_path, flatten=False, one_hot_label=True)
    assert xa.shape == (4, 1, 2, 3) and xa.dtype == np.float32
    np.testing.assert_allclose(xa[1, 0, 0], [60 / 255, 70 / 255, 80 / 255], rtol=1e-6)
    assert xb.max() == 1.0
    # three classes: the largest label in either split + 1
    assert ta.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]


def test_mixed_raw_and_gz_and_gz_preferred(tmp_path):
    _synthetic_folder(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 0], dtype=np.uint8))
    (_, _), (_, t_test) = zd.load_idx_folder(tmp_path)
    assert t_test.tolist() == [0, 0]


def test_folder_missing_files_lists_them(tmp_path):
    _synthetic_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        zd.load_idx_folder(tmp_path)
    message = str(e.value)
    assert f"dataset folder {tmp_path} lacks train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" in message
    assert "holds the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, " in message


def test_folder_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match=r"dataset folder .*nowhere does not exist"):
        zd.load_idx_folder(tmp_path / "nowhere")


def test_labels_and_images_that_do_not_belong_together(tmp_path):
    _synthetic_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([1, 2, 3], dtype=np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz holds 3 labels but its images file holds 4"):
        zd.load_idx_folder(tmp_path)


def test_normalize_needs_uint8_pixels(tmp_path):
    _synthetic_folder(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 2, 3), np.int16))
    with pytest.raises(DataError, match=r"holds int16 pixels; .*pass normalize=False"):
        zd.load_idx_folder(tmp_path)
    (x, _), _ = zd.load_idx_folder(tmp_path, normalize=False)
    assert x.dtype == np.int16


def test_replaced_file_is_reread(tmp_path):
    _synthetic_folder(tmp_path)
    assert zd.load_idx_folder(tmp_path)[1][1].tolist() == [1, 0]
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.array([2, 2, 2], dtype=np.uint8))))
    os.utime(path, ns=(1, 1))  # a different stamp even on coarse-mtime file systems
    x_test = np.zeros((3, 2, 3), np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x_test)
    assert zd.load_idx_folder(tmp_path)[1][1].tolist() == [2, 2, 2]


def test_load_dataset_by_name_and_by_folder(tmp_path):
    (x, t), _ = zd.load_dataset("MNIST", normalize=False)
    assert x.shape == (60000, 784) and t[:3].tolist() == [5, 0, 4]
    _synthetic_folder(tmp_path)
    for where in (tmp_path, str(tmp_path)):
        (_, t_train), _ = zd.load_dataset(where, normalize=False)
        assert t_train.tolist() == [0, 2, 1, 2]


def test_load_dataset_unknown_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"'cifar' is neither a known dataset \(mnist, fashion-mnist, kmnist\) "
                                        r"nor an existing folder"):
        zd.load_dataset("cifar")


def test_load_dataset_without_download_says_what_to_fetch(tmp_path):
    with pytest.raises(DataError) as e:
        zd.load_dataset("fashion_mnist", root=tmp_path, download=False)
    message = str(e.value)
    folder = tmp_path / "fashion-mnist"
    assert f"dataset folder {folder} does not exist" in message
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz" in message
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz" in message
    assert f"into the folder {folder}" in message


def test_named_dataset_found_in_the_cache_is_loaded_without_network(tmp_path, monkeypatch):
    folder = tmp_path / "kmnist"
    folder.mkdir()
    _synthetic_folder(folder)
    table = {f"{stem}.gz": zd.file_digest(folder / f"{stem}.gz", "md5") for stem in mnist.FILE_STEMS}
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    monkeypatch.setenv("ZEROGRAD_MIRROR", "http://127.0.0.1:9/")  # a refused port: fails loudly if contacted
    (x, t), _ = zd.load_dataset("kmnist", normalize=False, checksums=table, one_hot_label=True)
    assert x.shape == (4, 6)
    assert t.shape == (4, 10)  # KMNIST has ten classes, whatever labels the files hold
    # the published table does not match these synthetic files: detected, and the fix is named
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz fails its checksum: its MD5 is .* delete it"):
        zd.load_dataset("kmnist", download=True)


def test_dataset_table():
    assert set(zd.DATASETS) == {"mnist", "fashion-mnist", "kmnist"}
    for info in zd.DATASETS.values():
        assert len(info.classes) == 10
        assert set(info.gz_checksums) == {f"{stem}.gz" for stem in mnist.FILE_STEMS}
    assert zd.DATASETS["fashion-mnist"].gz_checksums["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert zd.DATASETS["kmnist"].gz_checksums["t10k-labels-idx1-ubyte.gz"] == "7320c461ea6c1c855c0b718fb2a4b134"
    assert zd.download_dataset("mnist") == mnist.BUNDLED_DIR
