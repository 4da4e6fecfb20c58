"""Small folders of the user's own kind of images for the tests: class folders with word names, colour PNGs and
JPEGs (and a few RGBA and palette images) of mixed sizes, drawn with a seed.

The classes are textures a small network learns in a few epochs whatever the colours: horizontal stripes,
vertical stripes, and a plain colour with noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("horizontal", "plain", "vertical")  # sorted, as ImageFolder orders them


def texture(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One (height, width, 3) uint8 image of the class `kind`, in random colours."""
    a, b = rng.integers(0, 256, size=(2, 3))
    while np.abs(a.astype(int) - b.astype(int)).sum() < 150:  # two colours far enough apart to tell stripes
        b = rng.integers(0, 256, size=3)
    period = int(rng.integers(8, 13))
    if kind == "horizontal":
        stripe = (np.arange(height) // (period // 2)) % 2 == 0
        mask = np.repeat(stripe[:, None], width, axis=1)
    elif kind == "vertical":
        stripe = (np.arange(width) // (period // 2)) % 2 == 0
        mask = np.repeat(stripe[None, :], height, axis=0)
    else:
        mask = np.ones((height, width), dtype=bool)
    image = np.where(mask[..., None], a, b).astype(np.float64)
    image += rng.normal(0, 12, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image(path: Path, pixels: np.ndarray, rng: np.random.Generator) -> Path:
    """Saves pixels as PNG or JPEG (and sometimes RGBA or palette PNG); returns the path written."""
    choice = rng.integers(0, 6)
    image = Image.fromarray(pixels, "RGB")
    if choice <= 2:
        path = path.with_suffix(".png")
        image.save(path)
    elif choice <= 4:
        path = path.with_suffix(".jpg")
        image.save(path, quality=92)
    elif rng.integers(0, 2):
        path = path.with_suffix(".png")
        image.convert("RGBA").save(path)
    else:
        path = path.with_suffix(".png")
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path)
    return path


def make_class_folder(root: Path, per_class: int, seed: int = 0, sizes: tuple[int, int] = (24, 40),
                      classes: tuple[str, ...] = CLASSES) -> Path:
    """root/<class>/<n>.png|.jpg with `per_class` images of each class, sides drawn from `sizes`."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, size=2))
            write_image(root / kind / f"{i:04d}", texture(kind, rng, height, width), rng)
    return root


def make_split_folder(root: Path, train_per_class: int, test_per_class: int, seed: int = 0,
                      test_name: str = "test") -> Path:
    """root/train/<class>/... and root/<test_name>/<class>/... (different images: other seeds)."""
    make_class_folder(root / "train", train_per_class, seed)
    make_class_folder(root / test_name, test_per_class, seed + 1000)
    return root


def write_cifar_folder(root: Path, train_per_batch: tuple[int, ...] = (150, 150), test: int = 90,
                       seed: int = 0) -> Path:
    """An extracted CIFAR-10 binary folder (root/cifar-10-batches-bin) of texture images: labels 0-2 are the
    three CLASSES, the other seven class names of the meta file go unused. Records: a label byte, then the
    red, green and blue 32x32 planes."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)

    def records(n: int) -> bytes:
        labels = rng.integers(0, len(CLASSES), n)
        return b"".join(bytes([int(k)]) + texture(CLASSES[k], rng, 32, 32).transpose(2, 0, 1).tobytes()
                        for k in labels)

    for i, n in enumerate(train_per_batch, 1):
        (folder / f"data_batch_{i}.bin").write_bytes(records(n))
    (folder / "test_batch.bin").write_bytes(records(test))
    names = [*CLASSES, "ship", "truck", "frog", "deer", "bird", "cat", "dog"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return folder
