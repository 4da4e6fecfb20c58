"""Folders of your own images: ImageFolder (torchvision's layout and order), load_image_folder (channels, sizes,
exact pixels, the cache), fit_image, stratified_split, folder_kind, and every bad folder as a one-line error."""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zerograd.datasets.folder as folder_module
from zerograd.datasets import (
    IMG_EXTENSIONS,
    MAX_CLASSES,
    DataLoader,
    FolderImages,
    ImageFolder,
    find_classes,
    fit_image,
    folder_kind,
    load_image_folder,
    stratified_split,
)
from zerograd.errors import DataError, ZerogradError


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory, monkeypatch):
    """The decoded-folder cache goes into a temporary folder of its own, never into the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("ZEROGRAD_DATA", str(cache))
    return cache / "folders"


def save(path: Path, image: Image.Image | np.ndarray, fmt: str | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(path, fmt, **options)
    return path


def pixels(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's convert("L") (ITU-R 601-2 in 16-bit fixed point), (..., 3) uint8 -> (...) uint8."""
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def torchvision_samples(root: str, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """torchvision.datasets.folder.make_dataset with its default extensions (its code, as a reference)."""
    instances = []
    for target_class in sorted(class_to_idx.keys()):
        target_dir = os.path.join(root, target_class)
        for dirpath, _, fnames in sorted(os.walk(target_dir, followlinks=True)):
            for fname in sorted(fnames):
                path = os.path.join(dirpath, fname)
                if path.lower().endswith(IMG_EXTENSIONS):
                    instances.append((path, class_to_idx[target_class]))
    return instances


# --- the layout and ImageFolder ----------------------------------------------------------------------------------
@pytest.fixture
def animals(tmp_path) -> Path:
    """cat/ (with sub-folders whose names sort differently as strings and as paths), dog/, Zebra/, and litter."""
    root = tmp_path / "animals"
    for name in ("cat/b.png", "cat/a.PNG", "cat/kittens/z.png", "cat/kittens/a.bmp", "cat/b c/x.png", "cat/b-c/y.png",
                 "cat/b/deep.png", "cat/b/sub/s.png", "dog/1.jpg", "dog/10.jpeg", "dog/2.gif", "Zebra/z.tif"):
        save(root / name, pixels(len(name), (4, 5, 3)))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("a file beside the class folders is not a class")
    return root


def test_find_classes_sorts_the_class_folders_by_name(animals):
    assert find_classes(animals) == (["Zebra", "cat", "dog"], {"Zebra": 0, "cat": 1, "dog": 2})


def test_image_folder_has_torchvision_s_samples_in_torchvision_s_order(animals):
    dataset = ImageFolder(animals)
    root = str(animals)
    # folders in the order of their paths as strings ("b" < "b c" < "b-c" < "b/sub"), not depth first
    expected = [(f"{root}/Zebra/z.tif", 0),
                (f"{root}/cat/a.PNG", 1), (f"{root}/cat/b.png", 1), (f"{root}/cat/b/deep.png", 1),
                (f"{root}/cat/b c/x.png", 1), (f"{root}/cat/b-c/y.png", 1), (f"{root}/cat/b/sub/s.png", 1),
                (f"{root}/cat/kittens/a.bmp", 1), (f"{root}/cat/kittens/z.png", 1),
                (f"{root}/dog/1.jpg", 2), (f"{root}/dog/10.jpeg", 2), (f"{root}/dog/2.gif", 2)]
    assert dataset.samples == expected == torchvision_samples(root, dataset.class_to_idx)
    assert dataset.imgs is dataset.samples
    assert dataset.targets == [0] + [1] * 8 + [2] * 3
    assert dataset.classes == ["Zebra", "cat", "dog"] and dataset.root == root and len(dataset) == 12
    assert load_image_folder(animals).paths == [path for path, _ in expected]


def test_image_folder_items_are_rgb_images_through_the_transforms(tmp_path):
    rgb, grey = pixels(1, (3, 4, 3)), pixels(2, (3, 4))
    rgba = np.dstack([pixels(3, (3, 4, 3)), np.full((3, 4), 7, np.uint8)])
    save(tmp_path / "a" / "rgb.png", rgb)
    save(tmp_path / "a" / "rgba.png", rgba)
    save(tmp_path / "b" / "grey.png", grey)
    dataset = ImageFolder(tmp_path, target_transform=lambda t: t + 10)
    images = [dataset[i] for i in range(3)]
    assert [target for _, target in images] == [10, 10, 11]
    assert all(image.mode == "RGB" and image.size == (4, 3) for image, _ in images)
    np.testing.assert_array_equal(np.asarray(images[0][0]), rgb)
    np.testing.assert_array_equal(np.asarray(images[1][0]), rgba[..., :3])  # torchvision's loader drops alpha
    np.testing.assert_array_equal(np.asarray(images[2][0]), np.repeat(grey[..., None], 3, axis=2))


def test_image_folder_batches_through_data_loader_with_array_and_tensor_transforms(tmp_path):
    from zerograd import transforms

    images = [pixels(i, (6, 5, 3)) for i in range(5)]
    for i, image in enumerate(images):
        save(tmp_path / ("cat" if i < 3 else "dog") / f"{i}.png", image)
    as_array = ImageFolder(tmp_path, transform=lambda image: np.asarray(image).transpose(2, 0, 1) / 255)
    x, t = next(iter(DataLoader(as_array, batch_size=4)))
    assert x.dtype == np.float32 and x.shape == (4, 3, 6, 5) and t.dtype == np.int64
    np.testing.assert_allclose(x, np.stack(images[:4]).transpose(0, 3, 1, 2) / 255, rtol=1e-6)
    assert t.tolist() == [0, 0, 0, 1]
    as_tensor = ImageFolder(tmp_path, transform=transforms.ToTensor())
    batches = list(DataLoader(as_tensor, batch_size=4))
    assert batches[0][0].dtype == np.float32
    np.testing.assert_allclose(batches[0][0], x, rtol=1e-6)
    assert batches[1][0].shape == (1, 3, 6, 5) and batches[1][1].tolist() == [1]


# --- load_image_folder: pixels, channels, sizes -------------------------------------------------------------------
def test_lossless_formats_load_their_exact_pixels(tmp_path):
    rgb = pixels(0, (7, 9, 3))
    for fmt, ext, options in (("PNG", "png", {}), ("BMP", "bmp", {}), ("WEBP", "webp", {"lossless": True}),
                              ("TIFF", "tif", {}), ("PPM", "ppm", {})):
        save(tmp_path / "colour" / f"{fmt}.{ext}", rgb, fmt, **options)
    images = load_image_folder(tmp_path)
    assert images.x.dtype == np.uint8 and images.x.shape == (5, 3, 7, 9) and images.channels == 3
    assert images.size == (7, 9) and images.resized is False and images.skipped == []
    for row in images.x:
        np.testing.assert_array_equal(row, rgb.transpose(2, 0, 1))
    jpeg = tmp_path / "jpeg"
    save(jpeg / "c" / "photo.jpg", rgb, quality=95)
    decoded = np.asarray(Image.open(jpeg / "c" / "photo.jpg"))
    np.testing.assert_array_equal(load_image_folder(jpeg).x[0], decoded.transpose(2, 0, 1))


def test_grey_images_of_every_grey_mode_load_as_one_channel(tmp_path):
    grey = pixels(5, (6, 8))
    palette = Image.fromarray(grey).convert("P")  # a palette of greys
    save(tmp_path / "a" / "l.png", grey)
    save(tmp_path / "a" / "palette.png", palette)
    save(tmp_path / "a" / "palette.gif", palette)
    save(tmp_path / "a" / "l.pgm", grey)
    save(tmp_path / "b" / "sixteen.png", grey.astype(np.uint16) * 257)  # I;16: 0..65535 scaled back to 0..255
    save(tmp_path / "b" / "bits.png", Image.fromarray(grey >= 128))  # mode "1": 0 or 255
    save(tmp_path / "b" / "opaque-la.png", Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), "LA"))
    images = load_image_folder(tmp_path)
    assert images.channels == 1 and images.x.shape == (7, 1, 6, 8)
    by_name = {Path(p).name: row[0] for p, row in zip(images.paths, images.x)}
    for name in ("l.png", "palette.png", "palette.gif", "l.pgm", "sixteen.png", "opaque-la.png"):
        np.testing.assert_array_equal(by_name[name], grey, err_msg=name)
    np.testing.assert_array_equal(by_name["bits.png"], np.where(grey >= 128, 255, 0))
    assert images.y.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_one_colour_image_makes_every_image_three_channels_and_channels_forces(tmp_path):
    grey, rgb = pixels(6, (5, 5)), pixels(7, (5, 5, 3))
    save(tmp_path / "a" / "grey.png", grey)
    save(tmp_path / "b" / "colour.png", rgb)
    colour = load_image_folder(tmp_path)
    assert colour.channels == 3
    np.testing.assert_array_equal(colour.x[0], np.stack([grey] * 3))
    np.testing.assert_array_equal(colour.x[1], rgb.transpose(2, 0, 1))
    forced = load_image_folder(tmp_path, channels=1)
    assert forced.channels == 1 and forced.x.shape == (2, 1, 5, 5)
    np.testing.assert_array_equal(forced.x[0, 0], grey)
    np.testing.assert_array_equal(forced.x[1, 0], luma(rgb))
    save(tmp_path / "grey-only" / "c" / "grey.png", grey)
    np.testing.assert_array_equal(load_image_folder(tmp_path / "grey-only", channels=3).x[0], np.stack([grey] * 3))


def test_transparency_is_composited_over_white(tmp_path):
    colour = pixels(8, (2, 3, 3))
    alpha = np.array([[0, 255, 128], [255, 0, 64]], np.uint8)
    save(tmp_path / "a" / "rgba.png", np.dstack([colour, alpha]))
    grey = pixels(9, (2, 3))
    save(tmp_path / "b" / "la.png", Image.fromarray(np.dstack([grey, alpha]), "LA"))
    palette = Image.fromarray(colour).convert("P", palette=Image.Palette.ADAPTIVE, colors=6)
    save(tmp_path / "b" / "palette.png", palette, transparency=int(np.asarray(palette)[0, 0]))
    images = load_image_folder(tmp_path)
    a = alpha / 255.0
    expected = colour * a[..., None] + 255 * (1 - a[..., None])  # what a viewer on a white page shows
    assert np.abs(images.x[0].transpose(1, 2, 0) - expected).max() <= 1
    np.testing.assert_array_equal(images.x[0][:, alpha == 0], 255)
    np.testing.assert_array_equal(images.x[0][:, alpha == 255], colour[alpha == 255].T)
    assert np.abs(images.x[1].transpose(1, 2, 0) - (grey * a + 255 * (1 - a))[..., None]).max() <= 1
    index = np.asarray(palette)
    shown = np.asarray(palette.convert("RGB"))
    np.testing.assert_array_equal(images.x[2].transpose(1, 2, 0)[index == index[0, 0]], 255)
    np.testing.assert_array_equal(images.x[2].transpose(1, 2, 0)[index != index[0, 0]], shown[index != index[0, 0]])
    save(tmp_path / "grey" / "c" / "la.png", Image.fromarray(np.dstack([grey, alpha]), "LA"))
    grey_only = load_image_folder(tmp_path / "grey")
    assert grey_only.channels == 1 and np.abs(grey_only.x[0, 0] - (grey * a + 255 * (1 - a))).max() <= 1


def test_images_of_mixed_sizes_are_scaled_and_cropped_at_the_centre(tmp_path):
    wide = np.zeros((10, 30), np.uint8)
    wide[:, 10:20] = 255  # the centre 10x10 is white, the sides black
    save(tmp_path / "a" / "wide.png", wide)
    tall = np.zeros((40, 20), np.uint8)
    tall[10:30] = 200  # scaled by 1/2 its centre 10x10 comes from rows 10..30
    save(tmp_path / "a" / "tall.png", tall)
    images = load_image_folder(tmp_path, image_size=10)
    assert images.resized is True and images.size == (10, 10) and images.x.shape == (2, 1, 10, 10)
    np.testing.assert_array_equal(images.x[1, 0], 255)  # one to one: the crop exactly
    np.testing.assert_array_equal(images.x[0, 0, 1:-1], 200)  # antialiased rows at the edges see the black
    assert images.x[0, 0, 0].max() < 200 and images.x[0, 0, -1].max() < 200
    same = tmp_path / "same"
    for i in range(3):
        save(same / "c" / f"{i}.png", pixels(i, (9, 13, 3)))
    kept = load_image_folder(same, image_size=4)
    assert kept.size == (9, 13) and kept.resized is False


def test_a_given_size_is_forced_on_images_of_other_sizes(tmp_path):
    right = pixels(1, (12, 8, 3))
    save(tmp_path / "a" / "right.png", right)
    save(tmp_path / "a" / "big.png", pixels(2, (50, 40, 3)))
    images = load_image_folder(tmp_path, size=(12, 8))
    assert images.size == (12, 8) and images.x.shape == (2, 3, 12, 8) and images.resized is True
    np.testing.assert_array_equal(images.x[1], right.transpose(2, 0, 1))  # already that size: untouched
    only_right = tmp_path / "b"
    save(only_right / "c" / "right.png", right)
    assert load_image_folder(only_right, size=(12, 8)).resized is False


def test_fit_image_is_the_preparation_of_one_image(tmp_path):
    photo = pixels(3, (21, 34, 3))
    save(tmp_path / "a" / "0.png", photo)
    save(tmp_path / "a" / "1.png", pixels(4, (16, 16, 3)))
    images = load_image_folder(tmp_path, image_size=16)
    fitted = fit_image(Image.fromarray(photo), 3, (16, 16))
    assert fitted.dtype == np.uint8 and fitted.shape == (3, 16, 16) and fitted.flags.writeable
    np.testing.assert_array_equal(fitted, images.x[0])
    np.testing.assert_array_equal(fit_image(Image.fromarray(photo), 1, None), luma(photo)[None])
    with pytest.raises(ZerogradError, match="channels must be 1 .* or 3"):
        fit_image(Image.fromarray(photo), 4, None)


def test_a_test_split_takes_the_training_classes(tmp_path):
    for name in ("cat", "dog", "owl"):
        save(tmp_path / "train" / name / "0.png", pixels(len(name), (4, 4)))
    save(tmp_path / "test" / "owl" / "0.png", pixels(1, (4, 4)))
    save(tmp_path / "test" / "cat" / "0.png", pixels(2, (4, 4)))
    train = load_image_folder(tmp_path / "train")
    test = load_image_folder(tmp_path / "test", classes=train.classes, channels=train.channels, size=train.size)
    assert test.classes == ["cat", "dog", "owl"] and test.y.tolist() == [0, 2]
    save(tmp_path / "test" / "emu" / "0.png", pixels(3, (4, 4)))
    with pytest.raises(DataError, match=r"test/emu is a class folder of a class the training data does not have "
                                        r"\(its classes: cat, dog, owl\)"):
        load_image_folder(tmp_path / "test", classes=train.classes)


# --- the cache -------------------------------------------------------------------------------------------------------
@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """The files load_image_folder opens, in order (header reads and decodes)."""
    opened: list[str] = []
    probe = folder_module._probe

    def counting(path, keep):
        opened.append(path)
        return probe(path, keep)

    monkeypatch.setattr(folder_module, "_probe", counting)
    return opened


def test_a_second_load_of_an_unchanged_folder_reads_the_cache(tmp_path, data_cache, counted, monkeypatch):
    for i in range(4):
        save(tmp_path / "imgs" / ("a" if i % 2 else "b") / f"{i}.png", pixels(i, (5, 6, 3)))
    first = load_image_folder(tmp_path / "imgs", image_size=8)
    assert len(counted) == 4 and len(list(data_cache.glob("*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(folder_module, "peek_image", no_decoding)
    monkeypatch.setattr(folder_module, "open_image", no_decoding)
    second = load_image_folder(tmp_path / "imgs", image_size=8)
    for field in ("classes", "paths", "channels", "size", "resized", "skipped"):
        assert getattr(second, field) == getattr(first, field), field
    np.testing.assert_array_equal(second.x, first.x)
    assert second.y.dtype == np.int64 and second.y.tolist() == first.y.tolist() == [0, 0, 1, 1]
    with pytest.raises(AssertionError, match="decoded although cached"):  # other arguments, another cache entry
        load_image_folder(tmp_path / "imgs", image_size=8, channels=1)


def test_touching_adding_or_removing_a_file_decodes_again(tmp_path, data_cache, counted):
    root = tmp_path / "imgs"
    paths = [save(root / "a" / f"{i}.png", pixels(i, (5, 5))) for i in range(3)]
    load_image_folder(root)
    stat = paths[1].stat()
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    counted.clear()
    assert load_image_folder(root).x.shape == (3, 1, 5, 5) and len(counted) == 3
    save(root / "a" / "3.png", pixels(3, (5, 5)))
    assert load_image_folder(root).x.shape == (4, 1, 5, 5) and len(counted) == 7
    paths[0].unlink()
    again = load_image_folder(root)
    assert again.x.shape == (3, 1, 5, 5) and len(counted) == 10
    np.testing.assert_array_equal(again.x[0, 0], pixels(1, (5, 5)))
    load_image_folder(root)
    assert len(counted) == 10 and len(list(data_cache.glob("*.npz"))) == 1  # one entry per folder and arguments


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other arrays"])
def test_a_damaged_cache_file_is_ignored_and_rewritten(tmp_path, data_cache, counted, damage):
    root = tmp_path / "imgs"
    for i in range(3):
        save(root / "a" / f"{i}.png", pixels(i, (5, 5, 3)))
    first = load_image_folder(root)
    (entry,) = data_cache.glob("*.npz")
    data = entry.read_bytes()
    if damage == "other arrays":
        with np.load(entry) as archive:
            arrays = dict(archive)
        buf = io.BytesIO()
        np.savez(buf, **{**arrays, "x": arrays["x"][:, :1]})  # the wrong number of channels
        data = buf.getvalue()
    entry.write_bytes({"garbage": b"\x00not a zip" * 50, "truncated": data[: len(data) // 2],
                       "empty": b"", "other arrays": data}[damage])
    counted.clear()
    again = load_image_folder(root)
    assert len(counted) == 3  # decoded again
    np.testing.assert_array_equal(again.x, first.x)
    with np.load(entry, allow_pickle=False) as archive:  # and rewritten whole
        np.testing.assert_array_equal(archive["x"], first.x)


def test_cache_false_writes_nothing_and_always_decodes(tmp_path, data_cache, counted):
    save(tmp_path / "imgs" / "a" / "0.png", pixels(0, (5, 5)))
    load_image_folder(tmp_path / "imgs", cache=False)
    load_image_folder(tmp_path / "imgs", cache=False)
    assert len(counted) == 2 and not data_cache.exists()


def test_an_unwritable_cache_warns_and_loads(tmp_path, monkeypatch):
    save(tmp_path / "imgs" / "a" / "0.png", pixels(0, (5, 5)))
    (tmp_path / "file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path / "file"))
    with pytest.warns(UserWarning, match="could not be cached"):
        images = load_image_folder(tmp_path / "imgs")
    np.testing.assert_array_equal(images.x[0, 0], pixels(0, (5, 5)))


# --- stratified_split and folder_kind -----------------------------------------------------------------------------
def test_stratified_split_holds_out_a_share_of_every_class():
    targets = np.array([0] * 10 + [1] * 4 + [2] * 1 + [3] * 2 + [0] * 10)
    train, val = stratified_split(targets, 0.25, seed=0)
    assert train.dtype == val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(targets)))
    assert np.bincount(targets[val], minlength=4).tolist() == [5, 1, 0, 1]  # 20 * 0.25, 4 * 0.25, 1: 0, 2: >= 1
    again_train, again_val = stratified_split(list(targets), 0.25, seed=0)
    np.testing.assert_array_equal(again_val, val)
    np.testing.assert_array_equal(again_train, train)
    assert not np.array_equal(stratified_split(targets, 0.25, seed=1)[1], val)
    assert np.bincount(targets[stratified_split(targets, 0.99, seed=0)[0]], minlength=4).tolist() == [1, 1, 1, 1]
    for fraction in (0, 1, 1.5, -0.1, True):
        with pytest.raises(ZerogradError, match="between 0 and 1"):
            stratified_split(targets, fraction, seed=0)
    with pytest.raises(ZerogradError, match="1-D array of class indices"):
        stratified_split(np.zeros((2, 2), np.int64), 0.5, seed=0)
    with pytest.raises(ZerogradError, match="seed must be a whole number"):
        stratified_split(targets, 0.5, seed=-1)


def test_folder_kind_tells_split_folders_from_class_folders(tmp_path):
    save(tmp_path / "split" / "train" / "cat" / "0.png", pixels(0, (3, 3)))
    save(tmp_path / "split" / "test" / "cat" / "0.png", pixels(0, (3, 3)))
    save(tmp_path / "val-split" / "train" / "cat" / "deep" / "0.png", pixels(0, (3, 3)))
    save(tmp_path / "val-split" / "val" / "cat" / "0.jpg", pixels(0, (3, 3)))
    save(tmp_path / "classes" / "cat" / "0.png", pixels(0, (3, 3)))
    (tmp_path / "classes" / "empty").mkdir()
    save(tmp_path / "train-only" / "train" / "cat" / "0.png", pixels(0, (3, 3)))
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03")
    (tmp_path / "no-images" / "cat").mkdir(parents=True)
    (tmp_path / "no-images" / "cat" / "notes.txt").write_text("text")
    assert folder_kind(tmp_path / "split") == "split"
    assert folder_kind(tmp_path / "val-split") == "split"
    assert folder_kind(tmp_path / "classes") == "classes"
    assert folder_kind(tmp_path / "train-only") == "classes"  # train/ is then a class of its own
    assert folder_kind(tmp_path / "idx") is None
    assert folder_kind(tmp_path / "no-images") is None
    assert folder_kind(tmp_path / "missing") is None
    assert folder_kind(tmp_path / "idx" / "train-images-idx3-ubyte") is None


# --- bad folders and bad images ---------------------------------------------------------------------------------
def png_announcing(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height pixels and that holds almost no data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("name, content, message", [
    ("noise.png", b"this is not a picture", "is not an image Pillow can read"),
    ("small-cut.png", encoded(pixels(0, (8, 8)))[:60], "could not be decoded as an image"),  # decoded with its header
    ("large-cut.png", encoded(pixels(0, (200, 200)))[:3000], "could not be decoded as an image"),  # in the 2nd pass
    ("bomb.png", png_announcing(8000, 8000), r"is too large \(8000x8000 pixels, more than 50,000,000 pixels\)"),
    ("drawing.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", "is not an image Pillow can read"),
])
def test_a_bad_image_is_refused_with_its_path_or_skipped(tmp_path, data_cache, name, content, message):
    root = tmp_path / "imgs"
    good = [save(root / "a" / f"{i}.png", pixels(i, (6, 6, 3))) for i in range(2)]
    bad = root / "b" / name
    save(root / "b" / "z.png", pixels(9, (6, 6, 3)))
    bad.write_bytes(content)
    with pytest.raises(DataError, match=f"^{re.escape(str(bad))} {message}") as raised:
        load_image_folder(root)
    assert "\n" not in str(raised.value) and not data_cache.exists()  # nothing written
    images = load_image_folder(root, skip_bad=True)
    assert images.paths == [str(good[0]), str(good[1]), str(root / "b" / "z.png")]
    # the size is decided by the headers: the cut 200x200 image's counts though its pixels turn out unreadable
    size = (32, 32) if name == "large-cut.png" else (6, 6)
    assert images.size == size and images.x.shape == (3, 3, *size) and images.y.tolist() == [0, 0, 1]
    assert len(images.skipped) == 1 and images.skipped[0][0] == str(bad)
    assert images.skipped[0][1].startswith(f"{bad} ")
    assert load_image_folder(root, skip_bad=True).skipped == images.skipped  # from the cache, the same


def test_a_folder_of_unreadable_images_is_an_error_even_skipping(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "0.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"none of the 1 images in .* could be read \(the first: .*0\.png is not an"):
        load_image_folder(tmp_path, skip_bad=True)


def test_bad_folders_are_one_line_errors_naming_them(tmp_path):
    with pytest.raises(DataError, match=r"missing: no such folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"file\.png is a file, not a folder"):
        ImageFolder(tmp_path / "file.png")
    (tmp_path / "flat").mkdir()
    save(tmp_path / "flat" / "0.png", pixels(0, (3, 3)))
    with pytest.raises(DataError, match=r"flat holds no class folders; put each class's images in a folder"):
        load_image_folder(tmp_path / "flat")
    save(tmp_path / "some" / "cat" / "0.png", pixels(0, (3, 3)))
    (tmp_path / "some" / "dog" / "deeper").mkdir(parents=True)
    (tmp_path / "some" / "dog" / "notes.txt").write_text("no images")
    for load in (load_image_folder, ImageFolder):
        with pytest.raises(DataError, match=r"some/dog: no images in this class folder \(files ending in \.jpg"):
            load(tmp_path / "some")


def test_more_than_max_classes_is_refused(tmp_path):
    assert MAX_CLASSES == 10_000
    for i in range(MAX_CLASSES + 1):
        (tmp_path / f"c{i:05d}").mkdir()
    with pytest.raises(DataError, match=f"^{tmp_path} holds 10,001 class folders, more than 10,000"):
        find_classes(tmp_path)


def test_links_are_followed_but_a_loop_is_refused(tmp_path):
    save(tmp_path / "elsewhere" / "x.png", pixels(0, (3, 3)))
    root = tmp_path / "imgs"
    save(root / "cat" / "0.png", pixels(1, (3, 3)))
    os.symlink(tmp_path / "elsewhere", root / "cat" / "linked")
    os.symlink(tmp_path / "elsewhere", root / "dog")
    images = load_image_folder(root)
    assert images.paths == [f"{root}/cat/0.png", f"{root}/cat/linked/x.png", f"{root}/dog/x.png"]
    assert ImageFolder(root).samples == torchvision_samples(str(root), {"cat": 0, "dog": 1})
    os.symlink(root / "cat", root / "cat" / "linked" / "back")  # elsewhere/back -> cat, which holds linked
    for load in (load_image_folder, ImageFolder):
        with pytest.raises(DataError, match=r"cat/linked/back is a link to a folder that contains it \(a loop\)"):
            load(root)


def test_bad_arguments_are_refused(tmp_path):
    save(tmp_path / "a" / "0.png", pixels(0, (3, 3)))
    for kwargs, message in [({"image_size": 0}, "image_size must be"), ({"image_size": 2.5}, "image_size must be"),
                            ({"channels": 2}, "channels must be 1"), ({"size": (0, 3)}, r"size must be \(height"),
                            ({"size": 32}, r"size must be \(height"), ({"classes": ["a", "a"]}, "distinct class names"),
                            ({"classes": []}, "distinct class names")]:
        with pytest.raises(ZerogradError, match=message):
            load_image_folder(tmp_path, **kwargs)


def test_folder_images_fields(tmp_path):
    save(tmp_path / "a" / "0.png", pixels(0, (3, 4)))
    images = load_image_folder(tmp_path, size=[5, 6])
    assert isinstance(images, FolderImages) and images.size == (5, 6) and images.classes == ["a"]
    assert images.y.dtype == np.int64 and images.x.flags.c_contiguous
