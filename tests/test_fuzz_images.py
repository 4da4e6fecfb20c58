"""Fuzzing the image preprocessing of `zerograd predict`: every mode and format, bombs, garbage."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from _fuzz import clean, fuzz, peak_bytes
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from zerograd.errors import DataError
from zerograd.images import MAX_PIXELS, load_digit_bytes, load_digit_image


def _digit(size: int = 28) -> np.ndarray:
    """A dark '7'-like stroke on white paper, (size, size) uint8."""
    a = np.full((size, size), 255, dtype=np.uint8)
    s = size / 28
    a[int(5 * s):int(8 * s), int(6 * s):int(22 * s)] = 0
    for r in range(int(8 * s), int(24 * s)):
        c = int(22 * s - (r - 8 * s) * 0.5)
        a[r, max(c - int(2 * s), 0):c + 1] = 0
    return a


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _load(data: bytes) -> np.ndarray | DataError:
    result = clean("image", load_digit_bytes, data, "the image", error=DataError)
    if isinstance(result, np.ndarray):
        assert result.shape == (28, 28) and result.dtype == np.float32
        assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 1
    return result


def _modes() -> dict[str, bytes]:
    """The digit in every mode Pillow has, each in a format that stores that mode."""
    gray = Image.fromarray(_digit(40))
    rgb = gray.convert("RGB")
    rgba = np.dstack([np.full((40, 40, 3), 0, np.uint8), 255 - _digit(40)])  # black ink, transparent paper
    sixteen = Image.fromarray((_digit(40).astype(np.uint16) * 257))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    transparent_palette = palette.copy()
    transparent_palette.info["transparency"] = 0
    frames = [gray.convert("P"), Image.new("P", (40, 40), 0), Image.fromarray(255 - _digit(40)).convert("P")]
    return {
        "1-bit PNG": _encode(gray.convert("1"), "PNG"),
        "1-bit TIFF": _encode(gray.convert("1"), "TIFF"),
        "L PNG": _encode(gray, "PNG"),
        "L JPEG": _encode(gray, "JPEG"),
        "P PNG": _encode(palette, "PNG"),
        "P PNG with transparency": _encode(transparent_palette, "PNG", transparency=0),
        "P GIF": _encode(palette, "GIF"),
        "animated GIF": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
        "LA PNG": _encode(Image.fromarray(np.dstack([_digit(40), np.full((40, 40), 255, np.uint8)]), "LA"), "PNG"),
        "RGB PNG": _encode(rgb, "PNG"),
        "RGB JPEG": _encode(rgb, "JPEG", quality=90),
        "RGB BMP": _encode(rgb, "BMP"),
        "RGB WEBP": _encode(rgb, "WEBP", lossless=True),
        "RGB PPM": _encode(rgb, "PPM"),
        "RGBA PNG": _encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "RGBA TIFF": _encode(Image.fromarray(rgba, "RGBA"), "TIFF"),
        "I;16 PNG": _encode(sixteen, "PNG"),
        "I;16 TIFF": _encode(sixteen, "TIFF"),
        "I TIFF": _encode(Image.fromarray(_digit(40).astype(np.int32) * 1000 - 100_000), "TIFF"),
        "F TIFF": _encode(Image.fromarray(_digit(40).astype(np.float32) * 1e20), "TIFF"),
        "CMYK JPEG": _encode(rgb.convert("CMYK"), "JPEG"),
        "CMYK TIFF": _encode(rgb.convert("CMYK"), "TIFF"),
        "YCbCr JPEG": _encode(rgb.convert("YCbCr"), "JPEG"),
        "grey PGM": _encode(gray, "PPM"),
    }


MODES = _modes()
REFERENCE = load_digit_bytes(MODES["L PNG"])


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_gives_the_digit(name):
    result = _load(MODES[name])
    assert isinstance(result, np.ndarray), result
    # The same stroke in every mode: within JPEG's and palette's losses of the grey PNG.
    assert np.abs(result - REFERENCE).mean() < 0.05, name


def test_one_pixel_images_are_blank_not_errors_of_python():
    for mode, value in (("L", 0), ("1", 1), ("RGBA", (0, 0, 0, 0)), ("I;16", 65535), ("F", 0.5)):
        result = _load(_encode(Image.new(mode, (1, 1), value), "TIFF" if mode in ("I;16", "F") else "PNG"))
        assert isinstance(result, DataError) and "no digit found" in str(result)


def test_nan_pixels_are_refused():
    pixels = _digit(30).astype(np.float32)
    pixels[3, 4] = np.nan
    result = _load(_encode(Image.fromarray(pixels), "TIFF"))
    assert isinstance(result, DataError) and "NaN or infinite" in str(result)


def _png_header(width: int, height: int, mode_code: int = 0, depth: int = 1) -> bytes:
    """A PNG that announces width x height pixels and holds almost no data: only a header to refuse."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, mode_code, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width,height", [(20000, 20000), (7100, 7100), (100_000, 100_000), (2**31 - 1, 1),
                                          (1, 60_000_000)])
def test_images_above_the_pixel_limit_are_refused_before_decoding(width, height):
    result, peak = peak_bytes(_load, _png_header(width, height))
    assert isinstance(result, DataError) and "too large to be a digit image" in str(result)
    assert peak < 1_000_000, peak


def test_a_real_decompression_bomb_is_refused_unread(tmp_path):
    # 8000 x 8000 1-bit pixels, a complete and valid PNG of 64 megapixels in about 10 kB.
    path = tmp_path / "bomb.png"
    Image.new("1", (8000, 8000), 1).save(path)
    assert path.stat().st_size < 100_000 and 8000 * 8000 > MAX_PIXELS
    result, peak = peak_bytes(clean, "image", load_digit_image, path, error=DataError)
    assert isinstance(result, DataError) and "(8000x8000 pixels)" in str(result)
    assert peak < 1_000_000, peak


def test_a_large_photo_is_shrunk_before_preprocessing(tmp_path):
    # A 6000 x 6000 JPEG (36 megapixels) of the digit decodes at 1/4 scale and gives the same digit.
    path = tmp_path / "photo.jpg"
    Image.fromarray(_digit(28)).resize((6000, 6000), Image.Resampling.NEAREST).save(path, quality=90)
    result, peak = peak_bytes(clean, "image", load_digit_image, path, error=DataError)
    assert isinstance(result, np.ndarray) and np.abs(result - load_digit_bytes(_encode(
        Image.fromarray(_digit(28)), "PNG"))).mean() < 0.05
    assert peak < 150_000_000, peak  # NumPy's share; a full-size float64 copy alone would be 288 MB


def test_formats_outside_the_list_are_never_decoded():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n0 0 moveto 28 28 lineto stroke\nshowpage\n"
    ico = _encode(Image.fromarray(_digit(32)), "ICO")
    for data in (eps, ico, _encode(Image.fromarray(_digit(32)), "PCX"), b"BM" + bytes(100)):
        result = _load(data)
        assert isinstance(result, DataError), result


@pytest.mark.parametrize("name", ["L PNG", "RGB JPEG", "animated GIF", "RGBA TIFF"])
def test_every_truncation(name):
    data = MODES[name]
    for n in range(0, len(data), max(1, len(data) // 300)):
        assert isinstance(_load(data[:n]), (DataError, np.ndarray))  # a JPEG cut late still decodes


@fuzz(150)
@given(name=st.sampled_from(list(MODES)), data=st.data())
def test_bit_flips(name, data):
    flipped = bytearray(MODES[name])
    for _ in range(data.draw(st.integers(1, 4))):
        flipped[data.draw(st.integers(0, len(flipped) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    _load(bytes(flipped))


@fuzz(250)
@given(raw=st.binary(max_size=300) | st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM",
                                                      b"II*\x00", b"RIFF", b"P5\n"]).flatmap(
    lambda magic: st.binary(max_size=200).map(lambda tail: magic + tail)))
def test_random_bytes(raw):
    _load(raw)


@fuzz(120)
@given(mode=st.sampled_from(["1", "L", "P", "LA", "RGB", "RGBA", "I", "F", "CMYK", "I;16"]),
       size=st.tuples(st.integers(1, 40), st.integers(1, 40)), seed=st.integers(0, 2**32 - 1),
       fmt=st.sampled_from(["PNG", "TIFF", "JPEG", "GIF", "BMP", "WEBP"]))
def test_random_images_of_any_mode(mode, size, seed, fmt):
    rng = np.random.default_rng(seed)
    img = Image.frombytes(mode, size, rng.bytes(len(Image.new(mode, size).tobytes())))
    try:
        data = _encode(img, fmt)
    except (OSError, ValueError, KeyError):  # this format cannot store this mode
        return
    _load(data)


def test_files_that_are_not_files(tmp_path):
    for path in (tmp_path / "missing.png", tmp_path):
        assert isinstance(clean("image", load_digit_image, path, error=DataError), DataError)


def test_the_loader_reads_paths_like_bytes(tmp_path: Path):
    path = tmp_path / "d.png"
    path.write_bytes(MODES["RGBA PNG"])
    np.testing.assert_array_equal(load_digit_image(path), load_digit_bytes(MODES["RGBA PNG"]))
