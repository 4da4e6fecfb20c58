"""Opening image files safely with Pillow (an optional dependency): the formats tried, the pixel limit, one error kind.

Both the digit preprocessing of `zerograd predict` (zerograd.images) and the folder datasets
(zerograd.datasets.folder) open user files here, so they refuse the same files the same way: a file
Pillow cannot identify, a truncated or corrupt one, one announcing more than `max_pixels` pixels (refused
from its header, before a pixel is decoded: a small file can announce a huge image) or holding NaN pixels
raises `DataError` naming the file and the fix. `messages` lets a caller word those errors for its task.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

from zerograd.errors import DataError, ZerogradError

if TYPE_CHECKING:  # Pillow is optional: imported for annotations only, at run time inside functions
    import PIL.Image

__all__ = ["FORMATS", "MAX_PIXELS", "MESSAGES", "gray_levels", "image_errors", "open_image", "peek_image",
           "require_pillow"]

# Larger images are refused before their pixels are decoded (a 48-megapixel phone photo still fits):
# a small file can announce a huge image (a decompression bomb), and memory must not follow the file's word.
MAX_PIXELS = 50_000_000
# Only these decoders see user files: the rest of Pillow's formats (EPS would even run Ghostscript)
# are never tried. JPEG includes the multi-picture JPEGs (MPO) of many phone cameras; PPM reads .pgm too.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
# The errors' wording, str.format templates with {where} (the file), {detail} (what Pillow said, or the size),
# {limit} (max_pixels) and {formats}; a caller may pass its own (zerograd.images words them for a digit).
MESSAGES: Mapping[str, str] = {
    "too_large": "{where} is too large ({detail}, more than {limit:,} pixels); shrink it",
    "unreadable": "{where} is not an image Pillow can read (it reads {formats}); save it as PNG or JPEG",
    "corrupt": "{where} could not be decoded as an image ({detail}); it is truncated or damaged: save it again",
    "nan": "{where} holds NaN or infinite pixel values; save it as an 8-bit PNG",
}
_WARNINGS_LOCK = threading.Lock()

Source = str | os.PathLike[str] | io.BytesIO


def require_pillow(task: str) -> None:
    """Raise a ZerogradError with the install command when the optional Pillow is missing."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError as exc:
        raise ZerogradError(f'{task} needs Pillow, which is not installed: pip install "zerograd[images]"') from exc


def _message(messages: Mapping[str, str], kind: str, where: str, detail: object = "", limit: int = MAX_PIXELS) -> str:
    return messages[kind].format(where=where, detail=detail, limit=limit, formats=", ".join(FORMATS))


@contextlib.contextmanager
def image_errors(where: str, messages: Mapping[str, str] = MESSAGES, max_pixels: int = MAX_PIXELS) -> Iterator[None]:
    """Pillow's errors inside the block (unknown format, truncated or corrupt data, its own bomb check) as DataError."""
    from PIL import Image, UnidentifiedImageError  # callers checked with require_pillow

    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(_message(messages, "too_large", where, exc, max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise DataError(_message(messages, "unreadable", where)) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Pillow reports truncated or corrupt image data as OSError/ValueError/SyntaxError.
        raise DataError(_message(messages, "corrupt", where, exc)) from exc


@contextlib.contextmanager
def peek_image(
    source: Source, where: str, max_pixels: int = MAX_PIXELS, *, messages: Mapping[str, str] = MESSAGES
) -> Iterator[PIL.Image.Image]:
    """The image with only its header read (size, mode, palette: quick) and its size checked; closed after the block.

    Errors inside the block are Pillow's as `image_errors` reports them, so the block may go on to decode.
    """
    require_pillow(f"reading {where}")
    from PIL import Image

    with image_errors(where, messages, max_pixels):
        # Pillow only warns between its own limit and twice that; ours is lower, so that is an error.
        # catch_warnings swaps process-wide filters: the lock keeps a server's threads from interleaving it.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img_file = Image.open(source, formats=FORMATS)  # reads the header only: quick
        with img_file as img:
            # open() has read the header only: refuse by the announced size before decoding a pixel.
            if img.width * img.height > max_pixels:
                raise DataError(_message(messages, "too_large", where, f"{img.width}x{img.height} pixels", max_pixels))
            yield img


def open_image(
    source: Source,
    where: str,
    max_pixels: int = MAX_PIXELS,
    *,
    draft_size: int | None = None,
    messages: Mapping[str, str] = MESSAGES,
) -> PIL.Image.Image:
    """Decode an image file (a path or its bytes in a BytesIO) -> a Pillow image, fully loaded, its file closed.

    `where` names the file in errors (DataError); images of more than `max_pixels` pixels are refused from
    their header. `draft_size`: a JPEG more than this many pixels across decodes straight at 1/2, 1/4 or
    1/8 scale, still at least that large (Pillow's draft; other formats decode at full size).
    """
    with peek_image(source, where, max_pixels, messages=messages) as img:
        if draft_size is not None and max(img.size) > draft_size:
            scale = draft_size / max(img.size)
            img.draft(None, (max(1, int(img.width * scale)), max(1, int(img.height * scale))))  # JPEG only
        img.load()
        return img


def gray_levels(img: PIL.Image.Image, where: str, messages: Mapping[str, str] = MESSAGES) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grayscale image (modes I;16*, I, F) -> (H, W) float64 on a 0..255 scale.

    Pillow's convert("L") clips such values at 255 instead of rescaling them: 16-bit levels are scaled by
    255/65535, and a range beyond 0..65535 (32-bit integer or float pixels) is mapped onto 0..255.
    """
    with np.errstate(invalid="ignore"):  # casting a signalling NaN warns; any NaN is refused just below
        arr = np.asarray(img, dtype=np.float64)
    if not np.isfinite(arr).all():  # a float TIFF may hold NaN or infinity
        raise DataError(_message(messages, "nan", where))
    low, top = arr.min(initial=0.0), arr.max(initial=0.0)
    if low < 0.0 or top > 65535.0:  # 32-bit integer or float pixels: map their range onto 0..255
        return (arr - low) * (255.0 / (top - low))
    return arr * (255.0 / 65535.0) if top > 255.0 else arr
