"""The data of a run: a named MNIST-format dataset, a folder of IDX files, CIFAR-10, or your own images in class
folders, as float32 (N, C, H, W) arrays with integer labels, and what a model file records about them.

MNIST-format data keeps the book's scaling to [0, 1]. Colour and folder data (CIFAR-10, class folders) is
normalised by the training set's per-channel mean and standard deviation; the model file records them (with
the class names, channels and image size) so that `evaluate`, `predict` and `serve` prepare a new image exactly
as the training images were.

A folder given as --data is one of:
- a folder holding `train/` and `test/` (or `val/`), each a folder of class folders;
- a folder of class folders itself: `val_split` of each class (stratified, seeded) is held out for evaluation;
- an extracted CIFAR-10 binary folder (`cifar-10-batches-bin`, or the folder holding it);
- a folder of MNIST-format IDX files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..datasets import (
    DATASETS,
    FILE_STEMS,
    FolderImages,
    folder_kind,
    is_cifar10_folder,
    load_cifar10,
    load_dataset,
    load_image_folder,
    stratified_split,
)
from ..errors import DataError, ZerogradError
from ..models.inputs import normalize

__all__ = ["RunData", "TestData", "load_data", "load_run_data", "load_test_data", "normalize"]


@dataclass
class RunData:
    """A run's training and evaluation arrays, and `info`: what the model file records about the data."""

    x_train: np.ndarray  # float32 (N, C, H, W)
    t_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    t_test: np.ndarray
    info: dict[str, Any]  # source, classes, channels, image_size [H, W], mean, std (None: scaled to [0, 1]), ...

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])


def _channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images in [0, 1] units (a flat channel gets std 1).

    From each channel's histogram of the 256 levels: exact, and without a float copy of the whole training set.
    """
    levels = np.arange(256, dtype=np.float64) / 255
    mean, std = [], []
    for c in range(images.shape[1]):
        share = np.bincount(images[:, c].ravel(), minlength=256) / images[:, c].size
        m = float(share @ levels)
        s = float(np.sqrt(max(float(share @ (levels - m) ** 2), 0.0)))
        mean.append(round(m, 6))
        std.append(round(s, 6) if s > 1e-6 else 1.0)
    return mean, std


def _info(source: str, classes: list[str], x: np.ndarray, **more: Any) -> dict[str, Any]:
    return {"source": source, "classes": list(classes), "channels": int(x.shape[1]),
            "image_size": [int(x.shape[2]), int(x.shape[3])], **more}


def _from_images(source: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 classes: list[str], **more: Any) -> RunData:
    """uint8 training and test images -> a run normalised by the training set's per-channel statistics."""
    (x_train, t_train), (x_test, t_test) = train, test
    if len(x_train) == 0 or len(x_test) == 0:
        what = "training" if len(x_train) == 0 else "evaluation"
        raise DataError(f"the dataset {source} holds no {what} images: train and evaluate need both")
    mean, std = _channel_stats(x_train)
    info = _info(source, classes, x_train, mean=mean, std=std, **more)
    return RunData(normalize(x_train, mean, std), t_train.astype(np.int64), normalize(x_test, mean, std),
                   t_test.astype(np.int64), info)


def load_run_data(data: str, *, image_size: int = 32, val_split: float = 0.2, seed: int = 0,
                  skip_bad_images: bool = False, progress: bool = False) -> RunData:
    """The training and evaluation data that `zerograd train --data DATA` uses (see the module's docstring)."""
    if data == "cifar10":
        return _cifar(None, progress)
    if data in DATASETS:
        return _mnist_format(data, progress)
    folder = Path(data).expanduser()
    if folder.is_dir() and not _holds_idx_files(folder):
        if is_cifar10_folder(folder):
            return _cifar(folder, progress)
        kind = folder_kind(folder)
        if kind == "split":
            train = load_image_folder(folder / "train", image_size=image_size, skip_bad=skip_bad_images)
            test_dir = folder / "test" if (folder / "test").is_dir() else folder / "val"
            test = load_image_folder(test_dir, channels=train.channels, size=train.size, classes=train.classes,
                                     skip_bad=skip_bad_images)
            return _from_images(str(folder), (train.x, train.y), (test.x, test.y), train.classes,
                                resized=train.resized, evaluation=test_dir.name,
                                skipped=len(train.skipped) + len(test.skipped))
        if kind == "classes":
            if not 0 < val_split < 1:
                raise ZerogradError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
            images = load_image_folder(folder, image_size=image_size, skip_bad=skip_bad_images)
            train_idx, val_idx = stratified_split(images.y, val_split, seed)
            return _from_images(str(folder), (images.x[train_idx], images.y[train_idx]),
                                (images.x[val_idx], images.y[val_idx]), images.classes,
                                resized=images.resized, evaluation=f"{val_split:g} held out",
                                skipped=len(images.skipped))
    return _mnist_format(data, progress)


def _holds_idx_files(folder: Path) -> bool:
    """Whether the folder holds MNIST-format IDX files (then it is read as such, whatever else it holds)."""
    return any((folder / f"{stem}{gz}").is_file() for stem in FILE_STEMS for gz in ("", ".gz"))


def _mnist_format(data: str, progress: bool) -> RunData:
    """A named MNIST-format dataset or a folder of IDX files, scaled to [0, 1] as the book does."""
    (x_train, t_train), (x_test, t_test) = load_dataset(data, normalize=True, flatten=False, progress=progress)
    for what, x in (("training", x_train), ("test", x_test)):
        if len(x) == 0:  # a folder of empty IDX files: say so rather than fail on an empty maximum later
            raise ZerogradError(f"the dataset {data} holds no {what} images: train and evaluate need both")
    if data in DATASETS:
        classes = list(DATASETS[data].classes)
    else:
        classes = [str(i) for i in range(int(max(t_train.max(), t_test.max())) + 1)]
    source = data if data in DATASETS else "idx"
    return RunData(x_train, t_train.astype(np.int64), x_test, t_test.astype(np.int64),
                   _info(source, classes, x_train, mean=None, std=None))


def _cifar(folder: Path | None, progress: bool) -> RunData:
    (x_train, t_train), (x_test, t_test), classes = _cifar_arrays(folder, progress)
    return _from_images("cifar10", (x_train, t_train), (x_test, t_test), list(classes), resized=False,
                        evaluation="test")


def _cifar_arrays(folder: Path | None, progress: bool) -> Any:
    """CIFAR-10's uint8 arrays from `folder`, or (None) from the data folder, downloaded if missing."""
    return load_cifar10(folder, download=folder is None, progress=progress)


class TestData(NamedTuple):
    """The evaluation split that load_test_data prepares; `skipped`: unreadable images left out."""

    x: np.ndarray
    t: np.ndarray
    classes: list[str]
    skipped: int = 0


def load_test_data(data: str, info: dict[str, Any] | None, *, skip_bad_images: bool = False,
                   progress: bool = False) -> TestData:
    """The evaluation split of `data`, prepared as the model whose data `info` its file records.

    A folder of class folders is read whole (every image is evaluated), with the model's channels, image size
    and normalisation; its class folders are matched to the model's class names. Without `info` (an older model
    file, a book pickle), data is prepared as MNIST is.
    """
    folder = Path(data).expanduser()
    images_folder = folder.is_dir() and not _holds_idx_files(folder)
    cifar = data == "cifar10" or (images_folder and is_cifar10_folder(folder))
    kind = folder_kind(folder) if images_folder and not cifar else None
    if cifar and info is not None and info.get("mean") is not None:
        # normalised by what the model was trained with (its file's record), not by the training set again
        _, (x_test, t_test), classes = _cifar_arrays(None if data == "cifar10" else folder, progress)
        return TestData(normalize(x_test, info["mean"], info["std"]), t_test.astype(np.int64), list(classes))
    if kind is None:
        run = load_run_data(data, progress=progress)
        return TestData(run.x_test, run.t_test, run.classes)
    if kind == "split":
        folder = folder / "test" if (folder / "test").is_dir() else folder / "val"
    if info is None or info.get("mean") is None:
        raise ZerogradError(f"{data} is a folder of images but this model records no image preprocessing "
                            "(it was not trained on an image folder): evaluate it on the data it was trained on")
    images: FolderImages = load_image_folder(folder, channels=int(info["channels"]), size=tuple(info["image_size"]),
                                             classes=list(info["classes"]), skip_bad=skip_bad_images)
    return TestData(normalize(images.x, info.get("mean"), info.get("std")), images.y.astype(np.int64),
                    images.classes, len(images.skipped))


def load_data(name: str, progress: bool = False) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, t_train), (x_test, t_test)) of `--data NAME` with the default settings (images (N, C, H, W))."""
    run = load_run_data(name, progress=progress)
    return (run.x_train, run.t_train), (run.x_test, run.t_test)
