"""Turn a user's photo or drawing of one digit into a 28x28 array that looks like an MNIST digit.

MNIST digits were made by fitting each digit into a 20x20 box (keeping its aspect ratio, anti-aliased)
and placing that box in a 28x28 field so that the digit's centre of mass sits at the field's centre.
A network trained on MNIST only recognises digits prepared the same way, so we repeat those steps:
grayscale, white-on-black, crop, fit into 20x20, centre by centre of mass, scale to [0, 1].
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zerograd.errors import DataError
from zerograd.io.image_file import (
    FORMATS,  # noqa: F401 (defined here before: still importable from here)
    MAX_PIXELS,
    gray_levels,
    image_errors,
    open_image,
    require_pillow,
)

if TYPE_CHECKING:  # Pillow is optional: imported for annotations only, at run time inside functions
    import PIL.Image

__all__ = ["load_digit_bytes", "load_digit_image", "preprocess_digit_array"]

OUT_SIZE = 28
BOX_SIZE = 20
# MNIST puts the centre of mass at index (14, 14) in row/column pixel coordinates (measured on the
# test set: mean 13.99, 14.01, never more than 0.5 away), so that is the target, not 13.5.
CENTRE = 14.0

# Levels on a 0..255 scale after making the digit white and the background black.
LIGHT_BACKGROUND = 127.0  # a border median above this means dark ink on light paper
MIN_CONTRAST = 25.0  # below this the "digit" is indistinguishable from paper texture or JPEG noise
# Fractions of the digit's brightest level.
BBOX_THRESHOLD = 0.25  # pixels fainter than this do not extend the bounding box (shadows, smudges)
NOISE_FLOOR = 0.05  # pixels fainter than this are background noise and become exactly 0
# Ink separated from the rest by more than this fraction of the image size, and holding less than
# SPECK_SHARE of all ink, is a speck or smudge, not part of the digit.
SPECK_GAP = 0.1
SPECK_SHARE = 0.1

# The digit ends up 20 pixels high: a larger image is first shrunk by a whole factor to at most this
# many pixels across (JPEG decodes straight at 1/2, 1/4 or 1/8 scale), so a 48-megapixel photo costs
# tens of megabytes instead of more than a gigabyte of float64 copies.
WORKING_SIZE = 2048
# The errors of zerograd.io.open_image, worded for a digit (MAX_PIXELS and FORMATS are that module's).
_MESSAGES = {
    "too_large": "{where} is too large to be a digit image ({detail}); "
                 "a few hundred pixels across is plenty: shrink it",
    "unreadable": "{where} is not an image Pillow can read; save the digit as a PNG or JPEG file",
    "corrupt": "{where} could not be decoded as an image ({detail}); save the digit again as PNG or JPEG",
    "nan": "{where} holds NaN or infinite pixel values; save the digit as PNG or JPEG",
}


def load_digit_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file of one digit (PNG, JPEG, ...; any size or mode) -> (28, 28) float32 in [0, 1]."""
    path = Path(path)
    gray = _read_grayscale(path)
    return _preprocess(gray, where=str(path))


def load_digit_bytes(data: bytes, where: str = "the image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file's contents (PNG, JPEG, ...) of one digit -> (28, 28) float32 in [0, 1].

    `where` names the image in error messages; images with more than `max_pixels` pixels are refused
    before they are decoded (a server taking uploads may set a lower limit).
    """
    require_pillow(f"reading {where}")
    return _preprocess(_decode_grayscale(io.BytesIO(data), where, max_pixels), where=where)


def preprocess_digit_array(arr: np.ndarray) -> np.ndarray:
    """Prepare a 2-D grayscale digit (H, W) like MNIST -> (28, 28) float32 in [0, 1], white digit on black.

    Integer arrays are read as 0..255, float arrays as 0..1; either polarity (dark-on-light or
    light-on-dark) is accepted.
    """
    require_pillow("preparing a digit image")
    return _preprocess(_to_0_255(np.asarray(arr)), where="the image array")


def _read_grayscale(path: Path) -> np.ndarray:
    """Decode an image file to an (H, W) float64 array on a 0..255 scale, alpha composited onto white."""
    require_pillow(f"reading the image {path}")
    if not path.exists():
        raise DataError(f"{path}: no such file; give the path of a PNG or JPEG image of one digit")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the path of a PNG or JPEG image of one digit")
    return _decode_grayscale(path, str(path))


def _decode_grayscale(source: Path | io.BytesIO, where: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file or its bytes to an (H, W) float64 array on a 0..255 scale, alpha on white."""
    from PIL import ImageOps  # callers checked with require_pillow

    img = open_image(source, where, max_pixels, draft_size=WORKING_SIZE, messages=_MESSAGES)
    with image_errors(where, _MESSAGES, max_pixels):
        img = _shrink(img)
        # Phone cameras store rotation as an EXIF tag rather than rotating the pixels.
        img = ImageOps.exif_transpose(img)
        return _pil_to_gray(img, where)


def _shrink(img: PIL.Image.Image) -> PIL.Image.Image:
    """Box-average `img` by a whole factor so that its longest side is at most WORKING_SIZE pixels."""
    factor = -(-max(img.size) // WORKING_SIZE)
    if factor <= 1:
        return img
    # Averaging palette indices or bits would mix unrelated colours: convert those modes first.
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    return img.reduce(factor)


def _pil_to_gray(img: PIL.Image.Image, where: str = "the image") -> np.ndarray:
    """Pillow image of any mode -> (H, W) float64 on a 0..255 scale."""
    from PIL import Image

    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return gray_levels(img, where, _MESSAGES)  # convert("L") would clip 16-bit values at 255
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if not has_alpha:
        if mode not in ("L", "RGB"):
            img = img.convert("RGB")  # CMYK, YCbCr, palettes, bilevel: go through RGB
        return np.asarray(img.convert("L"), dtype=np.float64)
    rgba = img.convert("RGBA")
    on_white = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    gray = np.asarray(on_white.convert("L"), dtype=np.float64)
    if np.ptp(gray) < MIN_CONTRAST:
        # A white stroke on a transparent canvas vanishes on white; on black it is the digit.
        on_black = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        gray = np.asarray(on_black.convert("L"), dtype=np.float64)
    return gray


def _to_0_255(arr: np.ndarray) -> np.ndarray:
    """Validate a 2-D grayscale array and map it to float64 on a 0..255 scale."""
    if arr.ndim != 2:
        raise DataError(
            f"a digit image must be a 2-D grayscale array (H, W), got shape {arr.shape}; "
            "convert colour images to grayscale first"
        )
    if arr.size == 0:
        raise DataError(f"the digit image array is empty (shape {arr.shape})")
    if arr.dtype == np.bool_:
        return arr.astype(np.float64) * 255.0
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(f"an integer digit image must hold 0..255, got values {lo}..{hi}")
        return arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise DataError("the digit image array holds NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"a float digit image must hold 0..1, got values {lo:g}..{hi:g}; "
                "pass uint8 for 0..255 data or divide by 255"
            )
        return arr.astype(np.float64) * 255.0
    raise DataError(f"a digit image must be an integer or float array, got dtype {arr.dtype}")


def _preprocess(gray: np.ndarray, where: str) -> np.ndarray:
    """(H, W) float64 0..255, either polarity -> (28, 28) float32 MNIST-style digit in [0, 1]."""
    border = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    if np.median(border) > LIGHT_BACKGROUND:
        gray = 255.0 - gray
        border = 255.0 - border
    # Paper photographed in ordinary light is grey, not white: remove its level so the box we paste
    # around the digit is black like MNIST's background.
    digit = np.clip(gray - np.median(border), 0.0, None)
    peak = float(digit.max())
    if peak < MIN_CONTRAST:
        raise DataError(
            f"no digit found in {where}: the image is blank or has almost no contrast "
            f"(strongest stroke {peak:.0f}/255 above the background); "
            "use a dark digit on light paper or a light digit on a dark background"
        )
    digit[digit < NOISE_FLOOR * peak] = 0.0

    top, bottom, left, right = _digit_bounding_box(np.where(digit >= BBOX_THRESHOLD * peak, digit, 0.0))
    crop = digit[top:bottom, left:right]

    box = _fit_into_box(crop, BOX_SIZE)
    out = _place_by_centre_of_mass(box, OUT_SIZE, CENTRE)
    brightest = out.max()
    # The network saw digits whose strokes reach full white; a faint pencil stroke should too.
    return (out / brightest).astype(np.float32) if brightest > 0 else out.astype(np.float32)


def _digit_bounding_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right; end-exclusive) of the digit in (H, W) ink, skipping specks."""
    gap = max(2, round(SPECK_GAP * max(ink.shape)))
    top, bottom = _main_extent(ink.sum(axis=1), gap)
    left, right = _main_extent(ink[top:bottom].sum(axis=0), gap)
    # A speck beside the digit but level with it only shows up once the columns are known.
    top, bottom = _main_extent(ink[:, left:right].sum(axis=1), gap)
    return top, bottom, left, right


def _main_extent(profile: np.ndarray, gap: int) -> tuple[int, int]:
    """Span [start, end) of a 1-D ink profile covering every group holding >= SPECK_SHARE of the ink.

    Runs of ink closer than `gap` form one group, so a broken stroke stays with its digit while a
    smudge far away, holding little ink, is left out.
    """
    idx = np.flatnonzero(profile > 0)
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(idx) - 1]])
    total = profile.sum()
    groups = [(int(idx[a]), int(idx[b]) + 1) for a, b in zip(starts, ends)]
    masses = [profile[lo:hi].sum() for lo, hi in groups]
    # The heaviest group always counts, even when ink is scattered into many small groups.
    kept = [g for g, m in zip(groups, masses) if m >= SPECK_SHARE * total or m == max(masses)]
    return kept[0][0], kept[-1][1]


def _fit_into_box(crop: np.ndarray, size: int) -> np.ndarray:
    """Resize (h, w) so its longer side is `size`, keeping the aspect ratio -> (h', w') float64 >= 0."""
    from PIL import Image  # callers checked with _require_pillow

    h, w = crop.shape
    scale = size / max(h, w)
    new_h = max(1, min(size, round(h * scale)))
    new_w = max(1, min(size, round(w * scale)))
    resized = Image.fromarray(crop.astype(np.float32)).resize((new_w, new_h), Image.Resampling.LANCZOS)
    # Lanczos rings slightly negative next to sharp strokes; MNIST has no negative ink.
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, None)


def _place_by_centre_of_mass(box: np.ndarray, size: int, centre: float) -> np.ndarray:
    """Paste (h, w) into a (size, size) field so its centre of mass lands on (centre, centre)."""
    h, w = box.shape
    mass = box.sum()
    if mass > 0:
        com_r = (box.sum(axis=1) @ np.arange(h)) / mass
        com_c = (box.sum(axis=0) @ np.arange(w)) / mass
    else:  # cannot happen for a crop holding ink, but a centred box is the sane answer
        com_r, com_c = (h - 1) / 2, (w - 1) / 2
    # Whole-pixel shifts as MNIST did; clamping keeps a lopsided digit entirely inside the field.
    top = int(np.clip(round(centre - com_r), 0, size - h))
    left = int(np.clip(round(centre - com_c), 0, size - w))
    out = np.zeros((size, size), dtype=np.float64)
    out[top : top + h, left : left + w] = box
    return out
