"""CIFAR-10, binary version: the folder cifar-10-batches-bin/ (or cifar-10-binary.tar.gz, extracted safely on
first use, or downloaded and checked against its published MD5) read into arrays or a torchvision-style dataset.

Each file is a run of 3073-byte records: 1 label byte, then 1024 red, 1024 green and 1024 blue bytes, each a
32 x 32 image row by row. batches.meta.txt names the classes, one per line.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from zerograd.datasets.download import DEFAULT_TIMEOUT, PathLike, Progress, _download, cache_dir
from zerograd.datasets.loader import Dataset
from zerograd.datasets.mnist import DatasetInfo, _base_url
from zerograd.errors import DataError
from zerograd.io.atomic import folder_lock, fsync_dir

FOLDER = "cifar-10-batches-bin"
ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
INFO = DatasetInfo(
    name="cifar-10",
    url="https://www.cs.toronto.edu/~kriz/",
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    gz_checksums={ARCHIVE: ARCHIVE_MD5},
)
SIDE = 32
RECORD = 1 + 3 * SIDE * SIDE  # 3073 bytes: the label, then the red, green and blue planes
MAX_ARCHIVE_BYTES = 1 << 30  # the real archive unpacks to 185 MB: more means it is not CIFAR-10
_TRAIN = re.compile(r"data_batch_([1-9][0-9]*)\.bin")  # data_batch_1.bin, data_batch_2.bin, ...


class CIFARArrays(NamedTuple):
    """load_cifar10's result: ((x_train, y_train), (x_test, y_test), classes); x uint8 (N, 3, 32, 32), y int64."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    classes: list[str]

    @property
    def x_train(self) -> np.ndarray:
        return self.train[0]

    @property
    def y_train(self) -> np.ndarray:
        return self.train[1]

    @property
    def x_test(self) -> np.ndarray:
        return self.test[0]

    @property
    def y_test(self) -> np.ndarray:
        return self.test[1]


def _missing(folder: Path) -> list[str]:
    """The CIFAR-10 files `folder` lacks: data_batch_1.bin (for any batch), test_batch.bin, batches.meta.txt."""
    missing = [name for name in ("test_batch.bin", "batches.meta.txt") if not (folder / name).is_file()]
    if not any(_TRAIN.fullmatch(p.name) and p.is_file() for p in folder.glob("data_batch_*.bin")):
        missing.insert(0, "data_batch_1.bin")
    return missing


def _batches_folder(path: Path) -> Path | None:
    """`path` or path/cifar-10-batches-bin, whichever holds the batch files; None if neither does."""
    return next((folder for folder in (path, path / FOLDER) if not _missing(folder)), None)


def is_cifar10_folder(path: PathLike) -> bool:
    """Whether `path` is an extracted cifar-10-batches-bin folder, or the folder holding one.

    It is when it holds at least one data_batch_<k>.bin, test_batch.bin and batches.meta.txt.
    """
    return _batches_folder(Path(path).expanduser()) is not None


def _read_classes(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not text; a CIFAR-10 batches.meta.txt names one class per line") from e
    classes = [line.strip() for line in text.splitlines() if line.strip()]
    if not classes:
        raise DataError(f"{path} names no classes; a CIFAR-10 batches.meta.txt names one class per line")
    if len(classes) > 256:  # a label is one byte
        raise DataError(f"{path} names {len(classes)} classes, more than a one-byte label can tell apart; "
                        "it is not a CIFAR-10 batches.meta.txt")
    return classes


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of one batch file."""
    size = path.stat().st_size
    if size == 0 or size % RECORD:
        raise DataError(f"{path} is {size} bytes, not a whole number of {RECORD}-byte CIFAR-10 records (1 label "
                        "byte + 3072 pixel bytes): it is truncated or not a CIFAR-10 batch; delete it and download "
                        "it again")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise DataError(f"{path} record {bad} has the label {labels[bad]}, but batches.meta.txt names only "
                        f"{n_classes} classes (0..{n_classes - 1}): the file is damaged or from another dataset")
    return records[:, 1:].reshape(-1, 3, SIDE, SIDE), labels


def _read_folder(folder: Path) -> CIFARArrays:
    classes = _read_classes(folder / "batches.meta.txt")
    batches = {int(m.group(1)): p for p in folder.glob("data_batch_*.bin")
               if (m := _TRAIN.fullmatch(p.name)) and p.is_file()}
    missing = [k for k in range(1, max(batches) + 1) if k not in batches]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(f'data_batch_{k}.bin' for k in missing)} but holds "
                        f"data_batch_{max(batches)}.bin; the training batches are numbered from 1 without gaps")
    train = [_read_batch(batches[k], len(classes)) for k in sorted(batches)]
    x_test, y_test = _read_batch(folder / "test_batch.bin", len(classes))
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return CIFARArrays((x_train, y_train), (x_test, y_test), classes)


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse anything but plain files and folders inside the archive's own folder."""
    parts = Path(member.name).parts
    if member.name.startswith(("/", "\\")) or Path(member.name).is_absolute() or ".." in parts or not parts:
        raise DataError(f"{archive} holds the path {member.name!r}, which points outside the folder it is "
                        "extracted to; it is not a CIFAR-10 archive and nothing was extracted")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive} holds {member.name!r}, which is a link or a device rather than a file; "
                        "it is not a CIFAR-10 archive and nothing was extracted")


def _extract(archive: Path, root: Path) -> None:
    """Extract `archive` into root (its cifar-10-batches-bin/ appears complete or not at all)."""
    with folder_lock(root):
        if _batches_folder(root / FOLDER) is not None:
            return  # another process extracted it while this one waited
        if (root / FOLDER).exists():
            raise DataError(f"{root / FOLDER} lacks some of data_batch_1.bin, test_batch.bin and batches.meta.txt; "
                            f"delete it so that {archive} is extracted anew")
        scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
        try:
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    members = tar.getmembers()
                    for member in members:
                        _check_member(member, archive)
                    if sum(m.size for m in members) > MAX_ARCHIVE_BYTES:
                        raise DataError(f"{archive} unpacks to more than {MAX_ARCHIVE_BYTES:,} bytes, far more than "
                                        "CIFAR-10's 185 MB; it is not a CIFAR-10 archive and nothing was extracted")
                    # Python's own "data" filter too, where it has one (3.10.12, 3.11.4 and later)
                    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    tar.extractall(scratch, members=members, **safe)
            except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as e:
                raise DataError(f"{archive} cannot be extracted ({e}); it is damaged or not a .tar.gz: "
                                "delete it and download it again") from e
            extracted = _batches_folder(scratch)
            if extracted is None:
                raise DataError(f"{archive} holds no {FOLDER}/ folder with data_batch_<k>.bin, test_batch.bin and "
                                "batches.meta.txt; it is not CIFAR-10's binary version (cifar-10-binary.tar.gz)")
            os.replace(extracted, root / FOLDER)
            fsync_dir(root)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _locate(root: PathLike | None, download: bool, progress: Progress, base_url: str | None,
            checksum: str | None, timeout: float) -> Path:
    """The folder holding the batch files: found, extracted from the archive, or downloaded and extracted."""
    root = Path(root).expanduser() if root is not None else cache_dir() / INFO.name
    found = _batches_folder(root)
    if found is not None:
        return found
    for folder in (root / FOLDER, root):
        missing = _missing(folder)
        if len(missing) < 3:
            raise DataError(f"{folder} lacks {', '.join(missing)}; a CIFAR-10 folder holds data_batch_1.bin .. "
                            f"data_batch_5.bin, test_batch.bin and batches.meta.txt: restore it, or delete it and "
                            f"extract {ARCHIVE} again")
    archive = root / ARCHIVE
    if not archive.is_file():
        base = _base_url(INFO, base_url)
        if not download:
            raise DataError(f"{root} holds neither {FOLDER}/ nor {ARCHIVE}; pass download=True, or download "
                            f"{base}{ARCHIVE} into {root} (as is, or extracted)")
        manual = f"without a network, download {base}{ARCHIVE} on another machine and save it in {root}"
        _download(base + ARCHIVE, archive, checksum or ARCHIVE_MD5, progress, timeout, manual)
    _extract(archive, root)
    return root / FOLDER


def load_cifar10(root: PathLike | None = None, *, download: bool = False, progress: Progress = False,
                 base_url: str | None = None, checksum: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> CIFARArrays:
    """CIFAR-10 as ((x_train, y_train), (x_test, y_test), classes): x uint8 (N, 3, 32, 32), y int64 (N,).

    `root` holds cifar-10-batches-bin/ or cifar-10-binary.tar.gz (extracted there on first use), or is that
    folder itself; default cache_dir()/cifar-10. With `download`, a missing archive is downloaded from
    `base_url` (else $ZEROGRAD_MIRROR/cifar-10/, else the official site) and checked against `checksum`
    (MD5 or SHA-256 hex; default the published MD5). Training batches are data_batch_1.bin, 2, ... (all there).
    """
    return _read_folder(_locate(root, download, progress, base_url, checksum, timeout))


class CIFAR10(Dataset):
    """torchvision's CIFAR10 over the binary version: dataset[i] is (PIL RGB image, class index).

    `.data` is uint8 (N, 32, 32, 3), `.targets` a list of ints, `.classes` and `.class_to_idx` name them;
    `transform` maps each image, `target_transform` each label. `root` as load_cifar10's.
    """

    def __init__(self, root: PathLike, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, download: bool = False) -> None:
        arrays = load_cifar10(root, download=download)
        images, labels = arrays.train if train else arrays.test
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        self.data = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.targets: list[int] = labels.tolist()
        self.classes = arrays.classes
        self.class_to_idx = {name: k for k, name in enumerate(self.classes)}

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        try:
            from PIL import Image
        except ImportError as e:
            raise ImportError('CIFAR10 gives Pillow images and needs Pillow: pip install "zerograd[images]"') from e
        image: Any = Image.fromarray(self.data[index])  # uint8 (32, 32, 3): an RGB image
        target: Any = self.targets[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}".replace("\n", "\n    "))
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)
