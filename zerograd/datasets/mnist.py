"""MNIST-format datasets: the bundled MNIST (book-compatible load_mnist), Fashion-MNIST and KMNIST
(downloaded on first use), or any folder holding the four standard IDX files."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zerograd.datasets.download import (
    DEFAULT_TIMEOUT,
    PathLike,
    Progress,
    _download,
    _join,
    cache_dir,
    checksum_algorithm,
    file_digest,
)
from zerograd.datasets.idx import read_idx
from zerograd.errors import DataError

# The order of every (train images, train labels, test images, test labels) tuple below.
FILE_STEMS: tuple[str, str, str, str] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
BUNDLED_DIR = Path(__file__).resolve().parent / "data"

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetInfo:
    """A known MNIST-format dataset: where it comes from and the checksums its files must have."""

    name: str
    url: str | None  # folder URL of the official mirror; None for the bundled MNIST
    classes: tuple[str, ...]
    sha256: Mapping[str, str] = field(default_factory=dict)  # stem -> SHA-256 of the decompressed content
    gz_checksums: Mapping[str, str] = field(default_factory=dict)  # "<stem>.gz" -> MD5/SHA-256 the mirror publishes


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        url=None,
        classes=tuple(str(d) for d in range(10)),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        # MD5s of the official .gz files; the bundled train-images.gz was recompressed, so the bundled
        # copy is checked by the decompressed SHA-256 above instead.
        gz_checksums={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        gz_checksums={  # published in the Fashion-MNIST README
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "kmnist": DatasetInfo(
        name="kmnist",
        url="http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        gz_checksums={
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    ),
}

# Decoding 47 MB of gzip takes about a second, so decoded arrays stay in memory for the process,
# read-only so that no caller can change what the next caller gets. Keyed by resolved path; the
# (size, mtime) stamp notices a file replaced on disk.
_lock = threading.Lock()
MAX_CLASSES = 10_000  # a folder whose labels go higher holds something other than class numbers
_arrays: dict[str, tuple[tuple[int, int], np.ndarray, set[str]]] = {}
_verified_files: set[tuple[str, int, int, str]] = set()


def clear_cache() -> None:
    """Forget the decoded arrays and verified checksums kept in memory by this module."""
    with _lock:
        _arrays.clear()
        _verified_files.clear()


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _read_cached(path: Path, sha256: str | None) -> np.ndarray:
    """Read-only array of the IDX file at `path`, decoded (and its `sha256` checked) once per process."""
    key, stamp = str(path.resolve()), _stamp(path)
    with _lock:
        entry = _arrays.get(key)
        if entry is not None and entry[0] == stamp and (sha256 is None or sha256 in entry[2]):
            return entry[1]
    array = read_idx(path, sha256=sha256)
    array.flags.writeable = False
    with _lock:
        verified = {sha256} if sha256 is not None else set()
        entry = _arrays.get(key)
        if entry is not None and entry[0] == stamp:
            verified |= entry[2]
        _arrays[key] = (stamp, array, verified)
    return array


def _verify_once(path: Path, expected: str) -> None:
    """Check the raw bytes of `path` against `expected` (MD5 or SHA-256), at most once per process per file version."""
    key = (str(path.resolve()), *_stamp(path), expected.lower())
    with _lock:
        if key in _verified_files:
            return
    algorithm = checksum_algorithm(expected)
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DataError(
            f"file {path} fails its checksum: its {algorithm.upper()} is {actual} but the published one is "
            f"{expected.lower()}; it is corrupted or a different file: delete it and run again to download it anew"
        )
    with _lock:
        _verified_files.add(key)


def _find_files(folder: Path) -> list[Path]:
    """Paths of the four standard IDX files in `folder`, or DataError listing the missing ones.

    Where both the raw and the .gz form of a file exist, the .gz form is returned.
    """
    if not folder.is_dir():
        raise DataError(
            f"dataset folder {folder} does not exist; expected a folder holding the four MNIST-format "
            f"IDX files {', '.join(FILE_STEMS)} (each raw or .gz)"
        )
    found, missing = [], []
    for stem in FILE_STEMS:
        candidates = [folder / f"{stem}.gz", folder / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append(stem)
        else:
            found.append(path)
    if missing:
        raise DataError(
            f"dataset folder {folder} lacks {', '.join(m + '[.gz]' for m in missing)}; an MNIST-format folder "
            f"holds the four IDX files {', '.join(FILE_STEMS)}, each raw or gzip-compressed (.gz)"
        )
    return found


def _images(images: np.ndarray, normalize: bool, flatten: bool, name: str) -> np.ndarray:
    """Fresh (never cached) image array: float32 in [0,1] or raw dtype, (N, pixels) or (N, 1, H, W)."""
    if images.ndim < 2:
        raise DataError(f"IDX file {name} holds an array of shape {images.shape}, not images (N, H, W)")
    if normalize:
        if images.dtype == np.uint8:
            out = images.astype(np.float32)
            out /= 255.0  # in place: a second 188 MB temporary for MNIST would double the time
        elif images.dtype.kind == "f":
            out = images.astype(np.float32)
        else:
            raise DataError(
                f"IDX file {name} holds {images.dtype} pixels; normalize=True scales uint8 pixels (0-255) "
                "to [0, 1]: pass normalize=False to get them unscaled"
            )
    else:
        out = images.copy()
    n = out.shape[0]
    if flatten:  # not reshape(n, -1): NumPy cannot infer the -1 of an empty array
        return out.reshape(n, math.prod(out.shape[1:]))
    return out.reshape(n, 1, *out.shape[1:]) if out.ndim == 3 else out


def _labels(labels: np.ndarray, n_images: int, one_hot: bool, num_classes: int, name: str) -> np.ndarray:
    """Fresh label array: int64 (N,) or float32 one-hot (N, num_classes)."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"IDX file {name} holds {labels.dtype} of shape {labels.shape}; "
            "labels must be integers of shape (N,)"
        )
    if labels.shape[0] != n_images:
        raise DataError(
            f"IDX file {name} holds {labels.shape[0]} labels but its images file holds {n_images} images; "
            "the two files do not belong together"
        )
    out = labels.astype(np.int64)
    if out.size and out.min() < 0:  # NumPy would index from the end: a silently wrong class
        raise DataError(f"IDX file {name} has a negative label ({out.min()}); class labels run from 0")
    if not one_hot:
        return out
    if out.size and out.max() >= num_classes:
        raise DataError(
            f"IDX file {name} has labels from {out.min()} to {out.max()}, outside 0..{num_classes - 1}; "
            "one_hot_label=True needs labels in that range"
        )
    # Not np.eye(num_classes)[out]: that first builds a num_classes x num_classes matrix.
    one = np.zeros((out.size, num_classes), dtype=np.float32)
    one[np.arange(out.size), out] = 1.0
    return one


def load_idx_folder(
    path: PathLike,
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    sha256: Mapping[str, str] | None = None,
    num_classes: int | None = None,
) -> tuple[Split, Split]:
    """((x_train, t_train), (x_test, t_test)) from an IDX folder; x (N,H*W) or (N,1,H,W), t (N,) int64 or (N,C) float32.

    The folder holds the four standard IDX files (each raw or .gz).
    `sha256` maps file stems (e.g. "train-images-idx3-ubyte") to the SHA-256 of their decompressed
    content; files it names are checked (once per process). `num_classes` sizes one-hot labels
    (default: largest label + 1).
    """
    folder = Path(path)
    paths = _find_files(folder)
    sha256 = sha256 or {}
    raw = [_read_cached(p, sha256.get(stem)) for p, stem in zip(paths, FILE_STEMS)]
    x_train_raw, t_train_raw, x_test_raw, t_test_raw = raw
    names = [str(p) for p in paths]
    if num_classes is None:
        num_classes = int(max(t_train_raw.max(initial=0), t_test_raw.max(initial=0))) + 1
        # The largest label sizes one-hot labels and a network's output layer: a damaged label file
        # must not make that a matrix of billions of values.
        if num_classes > MAX_CLASSES:
            raise DataError(
                f"IDX label files in {folder} hold a label of {num_classes - 1}, which would mean {num_classes:,} "
                f"classes (at most {MAX_CLASSES:,} are accepted); the label file is damaged or not a label file"
            )
    x_train = _images(x_train_raw, normalize, flatten, names[0])
    t_train = _labels(t_train_raw, x_train.shape[0], one_hot_label, num_classes, names[1])
    x_test = _images(x_test_raw, normalize, flatten, names[2])
    t_test = _labels(t_test_raw, x_test.shape[0], one_hot_label, num_classes, names[3])
    return (x_train, t_train), (x_test, t_test)


def load_mnist(
    normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *, verify: bool = True
) -> tuple[Split, Split]:
    """Bundled MNIST: ((x_train, t_train), (x_test, t_test)); x (N,784) or (N,1,28,28), t (N,) int64 or (N,10) float32.

    Same interface as the book's load_mnist.
    x is float32 in [0, 1] with `normalize`, else uint8 0-255. Labels are int64 (the book's are
    uint8; int64 indexes and subtracts without wrapping around). The files are decoded and checked
    against their SHA-256 once per process (`verify=False` skips the check); every call returns new
    arrays that the caller may modify.
    """
    sha256 = DATASETS["mnist"].sha256 if verify else None
    try:
        return load_idx_folder(BUNDLED_DIR, normalize, flatten, one_hot_label, sha256=sha256, num_classes=10)
    except DataError as e:
        raise DataError(f"the MNIST copy shipped with zerograd is damaged or missing ({e}); "
                        "reinstall zerograd (pip install --force-reinstall zerograd)") from e


def _dataset_info(name: str) -> DatasetInfo | None:
    return DATASETS.get(name.strip().lower().replace("_", "-"))


def _base_url(info: DatasetInfo, base_url: str | None) -> str:
    """Folder URL to fetch `info`'s files from: `base_url`, else $ZEROGRAD_MIRROR/<name>/, else the official mirror."""
    if base_url:
        return base_url.rstrip("/") + "/"
    mirror = os.environ.get("ZEROGRAD_MIRROR")
    if mirror:
        return f"{mirror.rstrip('/')}/{info.name}/"
    return info.url or ""


def _by_hand(info: DatasetInfo, base: str, folder: Path) -> str:
    urls = _join([f"{base}{stem}.gz" for stem in FILE_STEMS])
    return (f"to install {info.name} by hand, download {urls} into the folder {folder} "
            f"(or into any folder, then load it with load_dataset(\"<that folder>\"))")


def download_dataset(
    name: str,
    root: PathLike | None = None,
    *,
    base_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: Progress = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Folder root/<name> holding the dataset's four .gz files, downloading and verifying the missing ones.

    `root` defaults to cache_dir().
    `checksums` maps "<stem>.gz" names to MD5 or SHA-256 hex digests of the .gz files and replaces the
    published table; files already present are checked against it once per process. `base_url` (or
    $ZEROGRAD_MIRROR, under which files live in <name>/) replaces the official mirror. "mnist" is
    bundled and returns the package's own data folder.
    """
    info = _dataset_info(name)
    if info is None:
        raise DataError(f"unknown dataset {name!r}; known datasets are {', '.join(DATASETS)}")
    if info.url is None:
        return BUNDLED_DIR
    folder = Path(root if root is not None else cache_dir()).expanduser() / info.name
    base = _base_url(info, base_url)
    table = info.gz_checksums if checksums is None else checksums
    for stem in FILE_STEMS:
        gz = folder / f"{stem}.gz"
        if not gz.exists() and (folder / stem).is_file():
            continue  # unpacked by hand: no published checksum covers the raw form
        expected = table.get(gz.name)
        if gz.exists():
            if expected is not None:
                _verify_once(gz, expected)
            continue
        _download(base + gz.name, gz, expected, progress, timeout, _by_hand(info, base, folder))
        if expected is not None:
            with _lock:
                _verified_files.add((str(gz.resolve()), *_stamp(gz), expected.lower()))
    return folder


def load_dataset(
    name_or_path: str | os.PathLike[str],
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    root: PathLike | None = None,
    *,
    download: bool = True,
    base_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: Progress = True,
) -> tuple[Split, Split]:
    """((x_train, t_train), (x_test, t_test)) of a named dataset or a folder of IDX files; shapes as load_mnist.

    Named datasets are "mnist" (bundled), "fashion-mnist" and "kmnist" (downloaded into root/<name>).
    A str equal to a known name means that dataset; any other str or path is a folder. With
    `download=False` a named dataset missing from root/<name> raises DataError instead of downloading.
    `root` defaults to cache_dir(); `base_url`, `checksums`, `progress` go to download_dataset.
    """
    info = _dataset_info(name_or_path) if isinstance(name_or_path, str) else None
    if info is None:
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise DataError(
                f"{str(name_or_path)!r} is neither a known dataset ({', '.join(DATASETS)}) nor an existing "
                f"folder ({folder.resolve()} does not exist); pass a name or a folder holding the four IDX files"
            )
        return load_idx_folder(folder, normalize, flatten, one_hot_label)
    if info.url is None:
        return load_mnist(normalize, flatten, one_hot_label)
    if download:
        folder = download_dataset(info.name, root, base_url=base_url, checksums=checksums, progress=progress)
    else:
        folder = Path(root if root is not None else cache_dir()).expanduser() / info.name
        try:
            _find_files(folder)
        except DataError as e:
            raise DataError(f"{e}; download=False, so nothing was downloaded: "
                            f"{_by_hand(info, _base_url(info, base_url), folder)}") from e
    return load_idx_folder(folder, normalize, flatten, one_hot_label,
                           sha256=info.sha256 or None, num_classes=len(info.classes))
