"""CIFAR-10's binary version: small batch files written in its record format, read back exactly; the archive,
its safe extraction, the folder test, every refused file, and the download against a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import test_datasets_download as download_tests

import zerograd.datasets as zd
import zerograd.transforms as T
from zerograd.datasets.cifar import ARCHIVE, ARCHIVE_MD5, FOLDER, RECORD
from zerograd.errors import DataError, DownloadError

server = download_tests.server  # the local HTTP server of the MNIST download tests
dead_url = download_tests.dead_url  # an address where nothing listens
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
META = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"  # as shipped: a blank line at the end


def records(images: np.ndarray, labels) -> bytes:
    """CIFAR-10 records of uint8 images (N, 3, 32, 32): a label byte, then the red, green and blue planes."""
    return b"".join(bytes([label]) + image.tobytes() for image, label in zip(images, labels))


def batch(n: int, seed: int, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, n_classes, n)


def files(train_sizes=(3, 2), test_size=2, meta=META) -> tuple[dict[str, bytes], tuple, tuple]:
    """{file name: bytes} of a small CIFAR-10 folder, and the ((x, y) train, (x, y) test) it holds."""
    out, xs, ys = {}, [], []
    for k, n in enumerate(train_sizes, 1):
        x, y = batch(n, k)
        out[f"data_batch_{k}.bin"] = records(x, y)
        xs.append(x)
        ys.append(y)
    x_test, y_test = batch(test_size, 99)
    out["test_batch.bin"] = records(x_test, y_test)
    out["batches.meta.txt"] = meta.encode()
    return out, (np.concatenate(xs), np.concatenate(ys)), (x_test, y_test)


def write_folder(root: Path, content: dict[str, bytes]) -> Path:
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in content.items():
        (folder / name).write_bytes(data)
    return folder


def tar_gz(content: dict[str, bytes], prefix: str = FOLDER + "/") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in content.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def cifar(tmp_path):
    content, train, test = files()
    write_folder(tmp_path, content)
    return tmp_path, train, test


def test_folder_read_exactly(cifar):
    root, (x_train, y_train), (x_test, y_test) = cifar
    data = zd.load_cifar10(root)
    assert data.x_train.dtype == np.uint8 and data.x_train.shape == (5, 3, 32, 32)
    assert data.y_train.dtype == np.int64 and data.y_test.shape == (2,)
    np.testing.assert_array_equal(data.x_train, x_train)  # batch 1's three records, then batch 2's two
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert data.classes == CLASSES  # the blank last line is no class
    (a, b), (c, d), classes = data  # a tuple too
    assert a is data.x_train and d is data.y_test and classes is data.classes
    again = zd.load_cifar10(root / FOLDER)  # the batches folder itself
    np.testing.assert_array_equal(again.x_test, x_test)


def test_record_layout_by_hand(tmp_path):
    record = bytearray(RECORD)
    record[0] = 7  # the label
    record[1 + 0] = 11  # red, row 0, column 0
    record[1 + 1024 + 2 * 32 + 5] = 22  # green, row 2, column 5
    record[1 + 2048 + 31 * 32 + 31] = 33  # blue, row 31, column 31
    write_folder(tmp_path, {"data_batch_1.bin": bytes(record), "test_batch.bin": bytes(record) * 2,
                            "batches.meta.txt": META.encode()})
    x = zd.load_cifar10(tmp_path).x_train
    assert x[0, 0, 0, 0] == 11 and x[0, 1, 2, 5] == 22 and x[0, 2, 31, 31] == 33 and int(x.sum()) == 66
    dataset = zd.CIFAR10(tmp_path)
    assert dataset.data.shape == (1, 32, 32, 3) and dataset.data[0, 2, 5, 1] == 22 and dataset.targets == [7]
    image, target = dataset[0]
    assert image.mode == "RGB" and image.size == (32, 32) and target == 7
    assert image.getpixel((0, 0)) == (11, 0, 0) and image.getpixel((5, 2)) == (0, 22, 0)
    assert image.getpixel((31, 31)) == (0, 0, 33)


def test_dataset_like_torchvision(cifar):
    root, (x_train, y_train), (x_test, y_test) = cifar
    train = zd.CIFAR10(root)
    test = zd.CIFAR10(root, train=False, transform=T.ToTensor(), target_transform=lambda t: t + 100)
    assert len(train) == 5 and len(test) == 2
    np.testing.assert_array_equal(train.data, x_train.transpose(0, 2, 3, 1))
    assert train.targets == y_train.tolist() and all(type(t) is int for t in train.targets)
    assert train.classes == CLASSES and train.class_to_idx == {name: k for k, name in enumerate(CLASSES)}
    image, target = test[1]
    np.testing.assert_array_equal(image.data, x_test[1].astype(np.float32) / np.float32(255))
    assert target == y_test[1] + 100
    assert repr(test).splitlines()[:4] == ["Dataset CIFAR10", "    Number of datapoints: 2",
                                           f"    Root location: {root}", "    Split: Test"]
    loader = zd.DataLoader(zd.CIFAR10(root, transform=T.Compose([T.ToTensor(), T.Normalize(0.5, 0.5)])),
                           batch_size=4)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and y.tolist() == y_train[:4].tolist()
    np.testing.assert_allclose(x, x_train[:4] / 255.0 * 2 - 1, atol=1e-6)


def test_archive_extracted_once(tmp_path):
    content, (x_train, _), _ = files()
    (tmp_path / ARCHIVE).write_bytes(tar_gz(content))
    np.testing.assert_array_equal(zd.load_cifar10(tmp_path).x_train, x_train)
    assert sorted(p.name for p in (tmp_path / FOLDER).iterdir()) == sorted(content)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ARCHIVE, FOLDER])  # no scratch folder left
    (tmp_path / ARCHIVE).unlink()  # the extracted folder is what is read from now on
    np.testing.assert_array_equal(zd.CIFAR10(tmp_path).data, x_train.transpose(0, 2, 3, 1))


def _hostile(kind: str) -> bytes:
    content, _, _ = files()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in content.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo({"absolute": "/tmp/evil", "parent": f"{FOLDER}/../../evil"}.get(kind, f"{FOLDER}/x"))
        if kind in ("absolute", "parent"):
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        else:
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["absolute", "parent", "symlink", "hardlink", "device", "fifo"])
def test_hostile_archives_refused(tmp_path, kind):
    root = tmp_path / "root"
    root.mkdir()
    (root / ARCHIVE).write_bytes(_hostile(kind))
    with pytest.raises(DataError, match="nothing was extracted") as e:
        zd.load_cifar10(root)
    assert str(root / ARCHIVE) in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in root.iterdir()) == [ARCHIVE]  # nothing extracted, no scratch folder left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


@pytest.mark.parametrize("data, message", [
    (b"not a tar.gz at all", "cannot be extracted"),
    (tar_gz(files()[0])[:200], "cannot be extracted"),
    (tar_gz(files()[0], prefix="elsewhere/x/"), "holds no cifar-10-batches-bin/"),
])
def test_damaged_archives_refused(tmp_path, data, message):
    (tmp_path / ARCHIVE).write_bytes(data)
    with pytest.raises(DataError, match=message):
        zd.load_cifar10(tmp_path)
    assert not (tmp_path / FOLDER).exists()


def test_is_cifar10_folder(cifar, tmp_path_factory):
    root, _, _ = cifar
    assert zd.is_cifar10_folder(root) and zd.is_cifar10_folder(root / FOLDER) and zd.is_cifar10_folder(str(root))
    assert not zd.is_cifar10_folder(root / "nowhere")
    for name in ["test_batch.bin", "batches.meta.txt", "data_batch_1.bin"]:
        other = tmp_path_factory.mktemp("partial")
        content, _, _ = files(train_sizes=(1,))
        del content[name]
        write_folder(other, content)
        assert not zd.is_cifar10_folder(other) and not zd.is_cifar10_folder(other / FOLDER), name
    # A training batch is data_batch_<k>.bin with k = 1, 2, ...: data_batch_0.bin is none.
    other = tmp_path_factory.mktemp("zero")
    content, _, _ = files(train_sizes=(1,))
    content["data_batch_0.bin"] = content.pop("data_batch_1.bin")
    write_folder(other, content)
    assert not zd.is_cifar10_folder(other)


def _load_error(root: Path) -> str:
    with pytest.raises(DataError) as e:
        zd.load_cifar10(root)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_bad_label_names_file_and_record(tmp_path):
    content, _, _ = files(meta="cat\ndog\n")
    x, _ = batch(3, 5)
    content["data_batch_1.bin"] = records(x, [1, 0, 2])
    folder = write_folder(tmp_path, content)
    message = _load_error(tmp_path)
    assert str(folder / "data_batch_1.bin") in message and "record 2 has the label 2" in message
    assert "names only 2 classes" in message


@pytest.mark.parametrize("cut", [1, RECORD - 1, RECORD + 1, 2 * RECORD - 7])
def test_truncated_file_names_file_and_size(tmp_path, cut):
    content, _, _ = files(test_size=2)
    content["test_batch.bin"] = content["test_batch.bin"][:cut]
    folder = write_folder(tmp_path, content)
    message = _load_error(tmp_path)
    assert f"{folder / 'test_batch.bin'} is {cut} bytes" in message and "3073-byte" in message


def test_empty_batch_refused(tmp_path):
    content, _, _ = files()
    content["data_batch_2.bin"] = b""
    folder = write_folder(tmp_path, content)
    assert f"{folder / 'data_batch_2.bin'} is 0 bytes" in _load_error(tmp_path)


def test_missing_test_batch_named(tmp_path):
    content, _, _ = files()
    del content["test_batch.bin"]
    folder = write_folder(tmp_path, content)
    message = _load_error(tmp_path)
    assert f"{folder} lacks test_batch.bin" in message


def test_gap_in_training_batches_named(tmp_path):
    content, _, _ = files(train_sizes=(1, 1, 1))
    del content["data_batch_2.bin"]
    folder = write_folder(tmp_path, content)
    message = _load_error(tmp_path)
    assert f"{folder} lacks data_batch_2.bin" in message


@pytest.mark.parametrize("meta, message", [("", "names no classes"), ("\n  \n\n", "names no classes"),
                                           ("\xff\xfe", "is not text"), ("x\n" * 257, "257 classes")])
def test_bad_meta_file_named(tmp_path, meta, message):
    content, _, _ = files()
    content["batches.meta.txt"] = meta.encode("latin-1")
    folder = write_folder(tmp_path, content)
    text = _load_error(tmp_path)
    assert str(folder / "batches.meta.txt") in text and message in text


def test_nothing_there_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("ZEROGRAD_MIRROR", raising=False)
    message = _load_error(tmp_path)
    assert f"{tmp_path} holds neither {FOLDER}/ nor {ARCHIVE}" in message
    assert f"https://www.cs.toronto.edu/~kriz/{ARCHIVE}" in message and "download=True" in message
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path / "cache"))
    assert str(tmp_path / "cache" / "cifar-10") in _load_error(None)  # the default root


def test_download_checked_and_extracted(server, tmp_path):
    content, (x_train, y_train), (x_test, _) = files()
    archive = tar_gz(content)
    server.files = {ARCHIVE: archive}
    md5 = hashlib.md5(archive).hexdigest()
    data = zd.load_cifar10(tmp_path, download=True, base_url=server.url, checksum=md5)
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.x_test, x_test)
    assert (tmp_path / ARCHIVE).read_bytes() == archive and [p for p, _ in server.requests] == [f"/{ARCHIVE}"]
    zd.CIFAR10(tmp_path, train=False, download=True)  # found in place: no second request
    assert len(server.requests) == 1


def test_download_with_wrong_checksum_refused(server, tmp_path):
    server.files = {ARCHIVE: tar_gz(files()[0])}
    with pytest.raises(DataError, match=f"fails its checksum: its MD5 is .*, expected {ARCHIVE_MD5}"):
        zd.load_cifar10(tmp_path, download=True, base_url=server.url)  # the published MD5 of the real archive
    with pytest.raises(DataError, match="fails its checksum"):
        zd.load_cifar10(tmp_path, download=True, base_url=server.url, checksum="0" * 64)
    assert list(tmp_path.iterdir()) == []  # the bad download deleted, nothing extracted


def test_download_from_mirror_into_cache(server, tmp_path, monkeypatch):
    content, (x_train, _), _ = files()
    archive = tar_gz(content)
    server.files = {f"cifar-10/{ARCHIVE}": archive}
    monkeypatch.setenv("ZEROGRAD_MIRROR", server.url.rstrip("/"))
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    data = zd.load_cifar10(download=True, checksum=hashlib.sha256(archive).hexdigest())
    np.testing.assert_array_equal(data.x_train, x_train)
    assert zd.is_cifar10_folder(tmp_path / "cifar-10")


def test_download_failure_says_what_to_fetch(dead_url, tmp_path):
    with pytest.raises(DownloadError) as e:
        zd.load_cifar10(tmp_path, download=True, base_url=dead_url, timeout=5)
    assert f"{dead_url}{ARCHIVE}" in str(e.value) and f"save it in {tmp_path}" in str(e.value)
