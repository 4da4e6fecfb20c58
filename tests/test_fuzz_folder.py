"""Fuzzing the folder datasets: random trees of class folders holding images of every mode and format, random
bytes, cut and bit-flipped files and links; load_image_folder and ImageFolder either give consistent samples or
raise a one-line ZerogradError, nothing else. fit_image likewise on images of every mode, size and target."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _fuzz import clean, fuzz
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from zerograd.datasets import IMG_EXTENSIONS, FolderImages, ImageFolder, fit_image, load_image_folder
from zerograd.errors import DataError, ZerogradError

MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM"]
CLASS_NAMES = ["cat", "dog", "Owl", "b c", "été", ".hidden"]
EXTENSIONS = [*IMG_EXTENSIONS, ".PNG", ".txt"]


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))


def random_image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.frombytes(mode, size, rng.bytes(len(Image.new(mode, size).tobytes())))


def encode(image: Image.Image, fmt: str) -> bytes | None:
    buf = io.BytesIO()
    try:
        image.save(buf, fmt)
    except (OSError, ValueError, KeyError):  # this format cannot store this mode
        return None
    return buf.getvalue()


@st.composite
def file_content(draw) -> bytes:
    """A valid small image, one cut short or with flipped bits, or random bytes."""
    image = random_image(draw(st.sampled_from(MODES)), (draw(st.integers(1, 12)), draw(st.integers(1, 12))),
                         draw(st.integers(0, 2**32 - 1)))
    data = encode(image, draw(st.sampled_from(FORMATS))) or encode(image.convert("RGB"), "PNG")
    damage = draw(st.sampled_from(["none", "none", "cut", "flip", "bytes"]))
    if damage == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if damage == "flip":
        flipped = bytearray(data)
        for _ in range(draw(st.integers(1, 3))):
            flipped[draw(st.integers(0, len(flipped) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(flipped)
    if damage == "bytes":
        return draw(st.binary(max_size=120))
    return data


@st.composite
def folder_tree(draw) -> dict[str, object]:
    """{relative path: bytes} of class folders (some files in sub-folders), and links: "loop" or "sibling"."""
    files: dict[str, object] = {}
    for name in draw(st.lists(st.sampled_from(CLASS_NAMES), max_size=3, unique=True)):
        for i in range(draw(st.integers(0, 3))):
            below = draw(st.sampled_from(["", "", "sub/"]))
            files[f"{name}/{below}{i}{draw(st.sampled_from(EXTENSIONS))}"] = draw(file_content())
    if files and draw(st.booleans()):
        files[f"{next(iter(files)).split('/')[0]}/link"] = draw(st.sampled_from(["loop", "sibling"]))
    return files


def build(root: Path, tree: dict[str, object]) -> None:
    root.mkdir()
    for relative, content in tree.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "loop":
            os.symlink(path.parent, path)
        elif content == "sibling":
            os.symlink(root, path)  # the class folders again, below a class folder
        else:
            assert isinstance(content, bytes)
            path.write_bytes(content)


def check(images: FolderImages, root: Path, skip_bad: bool, channels: int | None, size: tuple[int, int] | None):
    n = len(images.paths)
    assert n > 0 and images.x.dtype == np.uint8 and images.x.ndim == 4 and images.x.shape[0] == n
    assert images.channels in (1, 3) and images.x.shape[1] == images.channels
    assert channels is None or images.channels == channels
    assert images.x.shape[2:] == images.size and (size is None or images.size == size)
    assert images.y.dtype == np.int64 and images.y.shape == (n,)
    assert images.classes == sorted(e.name for e in os.scandir(root) if e.is_dir())
    assert 0 <= images.y.min() and images.y.max() < len(images.classes)
    assert all(Path(path).relative_to(root.resolve()).parts[0] == images.classes[label]
               for path, label in zip(images.paths, images.y))
    assert skip_bad or not images.skipped
    assert not set(images.paths) & {path for path, _ in images.skipped}
    assert all(why.startswith(path) and "\n" not in why for path, why in images.skipped)


@fuzz(80)
@given(tree=folder_tree(), skip_bad=st.booleans(), channels=st.sampled_from([None, 1, 3]),
       size=st.sampled_from([None, (3, 5), (8, 8)]), image_size=st.integers(1, 9), cache=st.booleans())
def test_random_folders_load_or_fail_cleanly(tree, skip_bad, channels, size, image_size, cache):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        build(root, tree)
        options = {"skip_bad": skip_bad, "channels": channels, "size": size, "image_size": image_size, "cache": cache}
        result = clean("image folder", lambda: load_image_folder(root, **options))
        if isinstance(result, FolderImages):
            check(result, root, skip_bad, channels, size)
            again = load_image_folder(root, **options)  # from the cache when cache=True
            np.testing.assert_array_equal(again.x, result.x)
            assert (again.paths, again.skipped, again.y.tolist()) == (result.paths, result.skipped, result.y.tolist())
        dataset = clean("ImageFolder", lambda: ImageFolder(root))
        if isinstance(dataset, ImageFolder):
            assert [target for _, target in dataset.samples] == sorted(dataset.targets)
            for i in range(len(dataset)):
                item = clean("ImageFolder item", lambda i=i: dataset[i], error=DataError)
                if not isinstance(item, DataError):
                    assert item[0].mode == "RGB" and item[1] == dataset.targets[i]


@fuzz(120)
@given(mode=st.sampled_from(MODES), shape=st.tuples(st.integers(1, 20), st.integers(1, 20)),
       seed=st.integers(0, 2**32 - 1), channels=st.sampled_from([1, 3]),
       size=st.sampled_from([None, (1, 1), (4, 7), (16, 16)]), transparent=st.booleans())
def test_fit_image_of_any_mode(mode, shape, seed, channels, size, transparent):
    image = random_image(mode, shape, seed)
    if transparent and mode in ("L", "RGB", "P"):
        image.info["transparency"] = 0 if mode != "RGB" else (0, 0, 0)
    result = clean("fit_image", fit_image, image, channels, size, error=ZerogradError)
    if isinstance(result, ZerogradError):
        assert mode == "F" and "NaN or infinite" in str(result)  # random float bits hold NaNs
        return
    assert result.dtype == np.uint8 and result.shape == (channels, *(size or (shape[1], shape[0])))
