"""Datasets for zerograd: the bundled MNIST (book-compatible load_mnist), Fashion-MNIST and KMNIST
downloads, CIFAR-10 (binary version), IDX files, folders of your own images (ImageFolder, load_image_folder), and
a NumPy DataLoader. Depends only on NumPy (Pillow for images), zerograd.errors, zerograd.random, zerograd.threads
and zerograd.io."""

from zerograd.datasets.augment import (
    RandomAffine,
    RandomCropFlip,
    RandomRotation,
    RandomShift,
    affine_images,
    rotate_images,
    shift_images,
)
from zerograd.datasets.cifar import CIFAR10, CIFARArrays, is_cifar10_folder, load_cifar10
from zerograd.datasets.download import cache_dir, download_file, file_digest, verify_file
from zerograd.datasets.folder import (
    IMG_EXTENSIONS,
    MAX_CLASSES,
    FolderImages,
    ImageFolder,
    default_loader,
    find_classes,
    fit_image,
    folder_kind,
    load_image_folder,
    stratified_split,
)
from zerograd.datasets.idx import idx_sha256, parse_idx, read_idx, write_idx
from zerograd.datasets.loader import DataLoader, Dataset, Subset, TensorDataset, random_split
from zerograd.datasets.mnist import (
    DATASETS,
    FILE_STEMS,
    DatasetInfo,
    clear_cache,
    download_dataset,
    load_dataset,
    load_idx_folder,
    load_mnist,
)

__all__ = [
    "CIFAR10",
    "CIFARArrays",
    "DATASETS",
    "FILE_STEMS",
    "DataLoader",
    "Dataset",
    "DatasetInfo",
    "FolderImages",
    "IMG_EXTENSIONS",
    "ImageFolder",
    "MAX_CLASSES",
    "RandomAffine",
    "RandomCropFlip",
    "RandomRotation",
    "RandomShift",
    "Subset",
    "TensorDataset",
    "affine_images",
    "cache_dir",
    "clear_cache",
    "default_loader",
    "download_dataset",
    "download_file",
    "file_digest",
    "find_classes",
    "fit_image",
    "folder_kind",
    "idx_sha256",
    "is_cifar10_folder",
    "load_cifar10",
    "load_dataset",
    "load_idx_folder",
    "load_image_folder",
    "load_mnist",
    "parse_idx",
    "random_split",
    "read_idx",
    "rotate_images",
    "shift_images",
    "stratified_split",
    "verify_file",
    "write_idx",
]
