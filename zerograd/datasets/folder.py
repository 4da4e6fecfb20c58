"""Folders of your own images: torchvision's ImageFolder, and a whole folder decoded into arrays for training.

The layout is torchvision's: `root/<class>/<image>`, the classes sorted by folder name, images also in folders
below a class folder (links followed), the samples sorted as torchvision sorts them. `ImageFolder` reads an
image when it is asked for; `load_image_folder` decodes every image at once (large ones on every thread) into uint8
(N, C, H, W) arrays of one size and one channel count, and caches them on disk so that the next load of an
unchanged folder starts at once. `fit_image` is the preparation of one image: a photo given to a model trained
on a folder gets exactly what the training images got.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from zerograd.datasets.download import PathLike, cache_dir
from zerograd.datasets.loader import Dataset
from zerograd.errors import DataError, ZerogradError
from zerograd.io.atomic import atomic_open
from zerograd.io.image_file import gray_levels, image_errors, open_image, peek_image, require_pillow
from zerograd.threads import parallel_map

if TYPE_CHECKING:  # Pillow is optional: imported for annotations only, at run time inside functions
    import PIL.Image

__all__ = ["IMG_EXTENSIONS", "MAX_CLASSES", "FolderImages", "ImageFolder", "default_loader", "find_classes",
           "fit_image", "folder_kind", "load_image_folder", "stratified_split"]

# torchvision's list, and GIF: a file counts as an image by its name (in any case); its content decides the decoder
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
MAX_CLASSES = 10_000
# Images of fewer pixels than this are decoded in one thread, when their header is read (sparing a second opening
# of the file): opening a small file is mostly Python, so threads would only take turns holding the GIL (MNIST's
# 28x28 PNGs decode slower on two threads than on one). Larger ones are decoded on every thread, once the headers
# have decided the channels and the size: they spend their time in Pillow's decoders, which release the GIL.
# (Measured on 2 cores with 3,000 PNGs and JPEGs: 64x64 0.55 s in one thread, 0.65 s on two; 96x96 0.8 and 0.7 s.)
# At most KEEP_BYTES of small images are held between the two passes; beyond that they are read again.
SMALL_IMAGE_PIXELS = 80 * 80
KEEP_BYTES = 1 << 30
_CACHE_FORMAT = 1  # part of every cache key: a change of the format or of the preprocessing orphans old files
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")  # and I;16, I;16B, ...
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


# --- the layout -------------------------------------------------------------------------------------------------
def _folder(root: PathLike) -> Path:
    """`root` as a Path, checked to be an existing folder."""
    folder = Path(root).expanduser()
    if not folder.exists():
        raise DataError(f"{folder}: no such folder; give a folder holding one folder of images per class")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder; give the folder holding one folder of images per class")
    return folder


def _entries(folder: str | Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        raise DataError(f"{folder} could not be read ({exc.strerror or exc}); check its permissions") from exc


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows links, as torchvision's os.scandir / os.walk(followlinks=True)
    except OSError:
        return False


def _walk(top: str) -> Iterator[tuple[str, list[str]]]:
    """(folder, its file names sorted) for `top` and every folder below it, links followed (os.walk's
    followlinks=True, depth first); a link to a folder that contains it raises DataError instead of looping."""
    stack: list[tuple[str, frozenset[str]]] = [(top, frozenset())]
    while stack:
        folder, ancestors = stack.pop()
        real = os.path.realpath(folder)
        if real in ancestors:
            raise DataError(f"{folder} is a link to a folder that contains it (a loop); remove the link")
        entries = _entries(folder)
        yield folder, sorted(e.name for e in entries if not _is_dir(e))
        below = ancestors | {real}
        stack.extend((e.path, below) for e in sorted(entries, key=lambda e: e.name, reverse=True) if _is_dir(e))


def _has_image_extension(path: str) -> bool:
    return path.lower().endswith(IMG_EXTENSIONS)


def find_classes(root: PathLike) -> tuple[list[str], dict[str, int]]:
    """The class folders of `root` sorted by name, and each one's index (torchvision's find_classes)."""
    folder = _folder(root)
    classes = sorted(e.name for e in _entries(folder) if _is_dir(e))
    if not classes:
        raise DataError(f"{folder} holds no class folders; put each class's images in a folder named after the "
                        f"class: {folder}{os.sep}<class>{os.sep}<image>")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{folder} holds {len(classes):,} class folders, more than {MAX_CLASSES:,}; "
                        "give the folder holding the class folders, not a folder of many folders")
    return classes, {name: i for i, name in enumerate(classes)}


def _samples(root: str, class_to_idx: dict[str, int],
             is_valid_file: Callable[[str], bool] = _has_image_extension) -> list[tuple[str, int]]:
    """(path, class index) of every image under root/<class>, as torchvision's make_dataset sorts them."""
    samples: list[tuple[str, int]] = []
    for name in sorted(class_to_idx):
        class_dir = os.path.join(root, name)
        if not os.path.isdir(class_dir):
            continue
        found = [(path, class_to_idx[name]) for folder, files in sorted(_walk(class_dir)) for file in files
                 if is_valid_file(path := os.path.join(folder, file))]
        if not found:
            raise DataError(f"{class_dir}: no images in this class folder (files ending in "
                            f"{' '.join(IMG_EXTENSIONS)}); add its images or remove the folder")
        samples += found
    return samples


def folder_kind(path: PathLike) -> str | None:
    """"split" when `path` holds train/ and test/ (or val/) that are folders of class folders, "classes" when it
    is itself a folder of class folders (sub-folders holding images), else None."""
    folder = Path(path).expanduser()
    if _holds_class_folders(folder / "train") and (_holds_class_folders(folder / "test")
                                                   or _holds_class_folders(folder / "val")):
        return "split"
    return "classes" if _holds_class_folders(folder) else None


def _holds_class_folders(folder: Path) -> bool:
    """Whether `folder` has a sub-folder with an image file in it or below it (stops at the first found)."""
    if not folder.is_dir():
        return False
    return any(any(map(_has_image_extension, files)) for entry in sorted(_entries(folder), key=lambda e: e.name)
               if _is_dir(entry) for _, files in _walk(entry.path))


# --- one image ---------------------------------------------------------------------------------------------------
def default_loader(path: str) -> PIL.Image.Image:
    """The image at `path` as an RGB Pillow image (torchvision's default_loader: an alpha channel is dropped)."""
    return open_image(path, str(path)).convert("RGB")


class ImageFolder(Dataset):
    """torchvision's ImageFolder: `root/<class>/<image>` as (image, class index) samples, read when asked for.

    `.classes` (sorted folder names), `.class_to_idx`, `.samples` / `.imgs` ((path, class index), in torchvision's
    order) and `.targets`. dataset[i] is (loader(path), target), the image passed through `transform` and the
    target through `target_transform`; the default loader gives an RGB Pillow image. A transform returning
    arrays or Tensors of one shape (zerograd.transforms.ToTensor, say) makes batches for DataLoader.
    `is_valid_file(path)` chooses the files (default: names ending in one of IMG_EXTENSIONS).
    """

    def __init__(self, root: PathLike, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None,
                 loader: Callable[[str], Any] | None = None,
                 is_valid_file: Callable[[str], bool] | None = None) -> None:
        self.root = os.path.expanduser(os.fspath(root))
        self.transform, self.target_transform = transform, target_transform
        self.loader = default_loader if loader is None else loader
        self.classes, self.class_to_idx = find_classes(self.root)
        self.samples = _samples(self.root, self.class_to_idx, is_valid_file or _has_image_extension)
        self.imgs = self.samples
        self.targets = [target for _, target in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __repr__(self) -> str:
        return f"ImageFolder(root={self.root!r}, {len(self.classes)} classes, {len(self)} images)"


def _is_gray(img: PIL.Image.Image) -> bool:
    """Whether an opened image (header read) is grayscale by its mode, or its palette's colours are all grey."""
    if img.mode in _GRAY_MODES or img.mode.startswith("I;16"):
        return True
    if img.mode not in ("P", "PA") or img.palette is None:
        return False
    layout = img.palette.rawmode or img.palette.mode
    data = np.frombuffer(bytes(img.palette.palette), np.uint8)
    if layout == "RGB;L":  # TIFF: all reds, then all greens, then all blues
        colours = data[: len(data) // 3 * 3].reshape(3, -1).T
    elif layout in ("RGB", "RGBA", "RGBX", "BGR", "BGRA", "BGRX"):
        colours = data[: len(data) // len(layout) * len(layout)].reshape(-1, len(layout))[:, :3]
    else:  # a packed palette (BGR;15, ...): call it colour, which every image can be
        return False
    return bool((colours == colours[:, :1]).all())


def _flatten(img: PIL.Image.Image, where: str) -> PIL.Image.Image:
    """Any mode -> "L" or "RGB": transparency composited over white, 16-bit, 32-bit and float levels to 0..255."""
    from PIL import Image

    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return Image.fromarray(np.rint(gray_levels(img, where)).astype(np.uint8))
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img if img.mode in ("L", "RGB") else img.convert("RGB")


def fit_image(image: PIL.Image.Image, channels: int, size: tuple[int, int] | None, *,
              where: str = "the image") -> np.ndarray:
    """One Pillow image prepared as load_image_folder prepares every image -> uint8 (channels, H, W).

    Transparent parts are composited over white; `channels` 1 takes the luma of colour images (ITU-R 601-2, as
    Pillow's convert("L")), 3 repeats a grey level; `size` (H, W), when the image has another size: scaled
    (bilinear, antialiased) so that it covers H x W and the centre cut out (for a square size: the shorter side
    to that size, then the centre crop, in one resampling). None keeps the image's size. EXIF orientation is
    ignored, as torchvision ignores it. `where` names the image in errors.
    """
    from PIL import Image

    if isinstance(channels, bool) or channels not in (1, 3):
        raise ZerogradError(f"fit_image: channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    with image_errors(where):
        img = _flatten(image, where)
        mode = "L" if channels == 1 else "RGB"
        if img.mode != mode:
            img = img.convert(mode)
        if size is not None and (img.height, img.width) != (size[0], size[1]):
            height, width = size
            scale = max(height / img.height, width / img.width)
            left, top = (img.width - width / scale) / 2, (img.height - height / scale) / 2
            img = img.resize((width, height), Image.Resampling.BILINEAR,
                             box=(left, top, img.width - left, img.height - top))
        pixels = np.asarray(img)
    return pixels[np.newaxis].copy() if channels == 1 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


# --- a whole folder ------------------------------------------------------------------------------------------------
@dataclass
class FolderImages:
    """A folder of class folders decoded: images x uint8 (N, C, H, W), labels y int64 (N,) indexing `classes`."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    paths: list[str]  # each image's file, in the order of x
    channels: int
    size: tuple[int, int]  # (H, W)
    resized: bool  # whether some images were resized to `size`
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of unreadable images, with skip_bad


def _whole(value: Any) -> int | None:
    return None if isinstance(value, bool) or not isinstance(value, (int, np.integer)) else int(value)


def _settings(image_size: Any, channels: Any, size: Any,
              classes: Any) -> tuple[int, int | None, tuple[int, int] | None, list[str] | None]:
    """load_image_folder's arguments checked: (image_size, channels, size, classes)."""
    if (_whole(image_size) or 0) < 1:
        raise ZerogradError(f"image_size must be a whole number of pixels >= 1, e.g. 32, got {image_size!r}")
    if channels is not None and _whole(channels) not in (1, 3):
        raise ZerogradError(f"channels must be 1 (grey), 3 (RGB) or None (decided by the images), got {channels!r}")
    if size is not None:
        sides = [_whole(n) for n in size] if isinstance(size, (tuple, list)) else []
        if len(sides) != 2 or any(n is None or n < 1 for n in sides):
            raise ZerogradError(f"size must be (height, width) in pixels, e.g. (32, 32), or None, got {size!r}")
        size = (sides[0], sides[1])
    if classes is not None:
        classes = list(classes)
        if not classes or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) < len(classes):
            raise ZerogradError(f"classes must be a list of distinct class names, e.g. the training split's "
                                f".classes, got {classes!r}")
    return int(image_size), None if channels is None else int(channels), size, classes


def load_image_folder(root: PathLike, *, image_size: int = 32, channels: int | None = None,
                      size: tuple[int, int] | None = None, classes: Sequence[str] | None = None,
                      skip_bad: bool = False, cache: bool = True) -> FolderImages:
    """Decode every image of `root/<class>/...` into one array, for training (ImageFolder's layout and order).

    channels: None: 1 if every image is grayscale by its mode (1, L, LA, I, I;16, F, or a palette of greys),
    else 3; 1 or 3 converts every image to that. size: None: the images' size when they all share one (resized
    False), else image_size x image_size; (H, W): that size. An image of another size is scaled and cropped at
    the centre, as `fit_image` says (which also says what happens to transparency). The channels and the size
    are decided from the images' headers, before their pixels are decoded. classes: the training split's
    classes, for a test split: each class folder must be one of them, and y indexes that list.

    An image that cannot be read (corrupt, truncated, over the pixel limit, not an image) is an error naming
    it; with skip_bad=True it is left out and listed in `.skipped`. The arrays are cached under
    cache_dir()/folders, keyed by the folder, every image's path, size in bytes and modification time, and the
    arguments: loading an unchanged folder again reads them back instead of decoding (cache=False: never).
    """
    require_pillow(f"reading the images in {root}")
    image_size, channels, size, classes = _settings(image_size, channels, size, classes)
    folder = _folder(root).resolve()
    found, _ = find_classes(folder)
    if classes is None:
        classes = found
    else:
        known = set(classes)
        extra = [name for name in found if name not in known]
        if extra:
            raise DataError(f"{folder / extra[0]} is a class folder of a class the training data does not have "
                            f"(its classes: {', '.join(classes[:20])}{', ...' if len(classes) > 20 else ''}); "
                            "remove it, or train with that class too")
    index = {name: i for i, name in enumerate(classes)}
    samples = _samples(str(folder), {name: index[name] for name in found})
    settings = [_CACHE_FORMAT, str(folder), image_size, channels, size, classes, bool(skip_bad)]
    where = cache_dir() / "folders" / f"{_digest(settings)[:32]}.npz" if cache else None
    stamp = _stamp(str(folder), samples) if cache else ""
    if where is not None:
        images = _read_cache(where, stamp, str(folder), classes)
        if images is not None:
            return images
    images = _decode(samples, classes, image_size, channels, size, bool(skip_bad), folder)
    if where is not None:
        _write_cache(where, stamp, str(folder), images)
    return images


class _Header(NamedTuple):
    width: int
    height: int
    gray: bool
    image: PIL.Image.Image | None  # a small image, decoded already


def _probe(path: str, keep: bool) -> _Header | DataError:
    """An image file's size and grayness from its header, or the DataError saying why it cannot be read. A small
    image (fewer than SMALL_IMAGE_PIXELS pixels) is decoded at once when `keep`, sparing a second opening."""
    try:
        with peek_image(path, path) as img:
            gray = _is_gray(img)  # before load(), which rewrites the palette
            keep = keep and img.width * img.height < SMALL_IMAGE_PIXELS
            if keep:
                img.load()
            return _Header(img.width, img.height, gray, img if keep else None)
    except DataError as exc:
        return exc


def _decode(samples: list[tuple[str, int]], classes: list[str], image_size: int, channels: int | None,
            size: tuple[int, int] | None, skip_bad: bool, folder: Path) -> FolderImages:
    """Two passes: every header (sizes and modes decide the channels and the size), then every image decoded."""
    paths = [path for path, _ in samples]
    headers: list[Any] = []
    kept = 0
    for path in paths:  # in one thread: see SMALL_IMAGE_PIXELS
        headers.append(header := _probe(path, keep=kept < KEEP_BYTES))
        if isinstance(header, _Header) and header.image is not None:
            kept += header.width * header.height * len(header.image.getbands()) + 1000  # and the object's own
    skipped: dict[int, str] = {}
    for i, header in enumerate(headers):
        if isinstance(header, DataError):
            if not skip_bad:
                raise header
            skipped[i] = str(header)
    good = [i for i in range(len(paths)) if i not in skipped]
    if not good:
        raise _none_read(folder, len(paths), skipped)
    if channels is None:
        channels = 1 if all(headers[i].gray for i in good) else 3
    sizes = {(headers[i].height, headers[i].width) for i in good}
    if size is None:
        size = next(iter(sizes)) if len(sizes) == 1 else (image_size, image_size)
    x = np.empty((len(paths), channels, *size), dtype=np.uint8)

    def decode(i: int) -> str | None:
        image, headers[i] = headers[i].image, None  # the decoded small image is dropped once used
        try:
            if image is None:
                image = open_image(paths[i], paths[i])
            x[i] = fit_image(image, channels, size, where=paths[i])
        except DataError as exc:
            if not skip_bad:
                raise
            return str(exc)
        return None

    small = [i for i in good if headers[i].width * headers[i].height < SMALL_IMAGE_PIXELS]
    large = [i for i in good if headers[i].width * headers[i].height >= SMALL_IMAGE_PIXELS]
    errors = [decode(i) for i in small] + parallel_map(decode, large)  # large ones on every thread
    for i, error in zip(small + large, errors):
        if error is not None:
            skipped[i] = error
    keep = [i for i in range(len(paths)) if i not in skipped]
    if not keep:
        raise _none_read(folder, len(paths), skipped)
    y = np.array([samples[i][1] for i in keep], dtype=np.int64)
    return FolderImages(x if not skipped else x[keep], y, list(classes), [paths[i] for i in keep], channels, size,
                        resized=any(s != size for s in sizes),
                        skipped=[(paths[i], skipped[i]) for i in sorted(skipped)])


def _none_read(folder: Path, count: int, skipped: dict[int, str]) -> DataError:
    return DataError(f"none of the {count} images in {folder} could be read (the first: {skipped[min(skipped)]}); "
                     "check that they are images")


# --- the cache -------------------------------------------------------------------------------------------------------
def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()


def _stamp(root: str, samples: list[tuple[str, int]]) -> str:
    """A digest of every image's path below root, class index, size in bytes and modification time (ns)."""
    digest = hashlib.sha256()
    for path, label in samples:
        try:
            info = os.stat(path)
            size, mtime = info.st_size, info.st_mtime_ns
        except OSError:  # a broken link: decoding will say so
            size = mtime = -1
        digest.update(f"{path[len(root):]}\0{label}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _read_cache(where: Path, stamp: str, root: str, classes: list[str]) -> FolderImages | None:
    """The cached arrays when the file holds this folder's current stamp and is whole; None otherwise."""
    try:
        with open(where, "rb") as f, np.load(f, allow_pickle=False) as archive:  # np.load leaks a file it fails on
            meta = json.loads(archive["meta"].tobytes())
            if meta["stamp"] != stamp or meta["classes"] != classes:
                return None
            x, y = archive["x"], archive["y"]
        paths = [root + path for path in meta["paths"]]
        size = (int(meta["size"][0]), int(meta["size"][1]))
        if (x.dtype != np.uint8 or x.shape != (len(paths), int(meta["channels"]), *size) or y.dtype != np.int64
                or y.shape != (len(paths),) or (len(y) and not 0 <= y.min() <= y.max() < len(classes))):
            return None
        return FolderImages(x, y, classes, paths, x.shape[1], size, bool(meta["resized"]),
                            [(root + path, str(why)) for path, why in meta["skipped"]])
    except Exception:  # noqa: BLE001 - missing, damaged or foreign: decode again and rewrite it, never an error
        return None


def _write_cache(where: Path, stamp: str, root: str, images: FolderImages) -> None:
    """The arrays and what they are, as one .npz (no pickles) written atomically; a failure only warns."""
    meta = {"stamp": stamp, "classes": images.classes, "channels": images.channels, "size": list(images.size),
            "resized": images.resized, "paths": [path[len(root):] for path in images.paths],
            "skipped": [[path[len(root):], why] for path, why in images.skipped]}
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(where) as f:
            np.savez(f, x=images.x, y=images.y, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    except OSError as exc:
        warnings.warn(f"the images of {root} could not be cached in {where} ({exc}); they are decoded again "
                      "at the next load", stacklevel=3)


# --- a held-out share ------------------------------------------------------------------------------------------------
def stratified_split(targets: Sequence[int] | np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_indices, val_indices), sorted int64: `fraction` of each class's samples held out, drawn with `seed`.

    Each class holds out round(fraction * n) of its n samples, at least 1 and at most n - 1 when n >= 2 (a class
    of one sample stays in training). The same targets, fraction and seed always give the same split.
    """
    targets = np.asarray(targets)
    if targets.ndim != 1 or not (targets.dtype.kind in "iu" or targets.size == 0):
        raise ZerogradError(f"stratified_split takes a 1-D array of class indices, got {targets.dtype} "
                            f"of shape {targets.shape}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ZerogradError(f"stratified_split: the held-out fraction must be between 0 and 1, got {fraction!r}")
    seed_value = _whole(seed)
    if seed_value is None or seed_value < 0:
        raise ZerogradError(f"stratified_split: seed must be a whole number >= 0, got {seed!r}")
    rng = np.random.default_rng(seed_value)
    order = np.argsort(targets, kind="stable")
    _, starts, counts = np.unique(targets[order], return_index=True, return_counts=True)
    held = [np.empty(0, dtype=np.int64)]
    for start, n in zip(starts, counts):
        k = 0 if n < 2 else min(n - 1, max(1, math.floor(fraction * n + 0.5)))
        held.append(rng.permutation(order[start:start + n])[:k])
    val = np.sort(np.concatenate(held)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(targets), dtype=np.int64), val, assume_unique=True)
    return train, val
