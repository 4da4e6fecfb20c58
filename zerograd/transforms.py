"""torchvision.transforms' names and arguments: image transforms for datasets such as CIFAR10.

Each transform takes a Pillow image (as torchvision.transforms v1 does) and, apart from ToTensor, an image
array or Tensor (C, H, W) or a batch (N, C, H, W); arrays give arrays, Tensors give Tensors (no gradient is
recorded: these prepare data). A random transform draws its parameters from zerograd's default generator, so
`zerograd.manual_seed` repeats them, and uses the same parameters for every image of a batch, as torchvision
does for a batched tensor (`zerograd.datasets.RandomCropFlip` draws per image). Arrays are resampled as
torchvision resamples tensors; Pillow images by Pillow, as torchvision does. Pillow is needed only for Pillow
images.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import numpy as np

from zerograd import random as _random
from zerograd.datasets.augment import _cast_like, sample_at
from zerograd.errors import ShapeError
from zerograd.tensor import Tensor

__all__ = [
    "CenterCrop", "Compose", "Grayscale", "InterpolationMode", "Normalize", "RandomCrop",
    "RandomHorizontalFlip", "RandomRotation", "Resize", "ToTensor",
]

ImageLike = Any  # a PIL.Image.Image, an ndarray or a Tensor


class InterpolationMode(Enum):
    """How pixels are resampled, as torchvision.transforms.InterpolationMode."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"  # Pillow images only, as BOX, HAMMING and LANCZOS in torchvision
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}
_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


# ---- checks of arguments (torchvision's errors: ValueError, TypeError) -----------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _sequence(value: Any, name: str, lengths: tuple[int, ...]) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of {' or '.join(map(str, lengths))} values, got {value!r}")
    if len(value) not in lengths:
        raise ValueError(f"{name} must have {' or '.join(map(str, lengths))} values, got {len(value)}: {value!r}")
    return list(value)


def _size_pair(size: Any, name: str = "size") -> tuple[int, int]:
    """(h, w) from an int or a sequence of 1 or 2 ints, each >= 1 (torchvision's _setup_size)."""
    if not _is_number(size):
        size = _sequence(size, name, (1, 2))
        h, w = size[0], size[-1]
        return _whole(h, name, 1), _whole(w, name, 1)
    side = _whole(size, name, 1)
    return side, side


def _interpolation(mode: Any) -> InterpolationMode:
    if isinstance(mode, InterpolationMode):
        return mode
    if isinstance(mode, str):
        try:
            return InterpolationMode(mode)
        except ValueError:
            pass
    names = ", ".join(m.value for m in InterpolationMode)
    raise TypeError(f"interpolation must be an InterpolationMode or one of {names}, got {mode!r}")


def _fill(fill: Any) -> float | tuple[float, ...]:
    if _is_number(fill):
        return fill
    if isinstance(fill, (str, bytes)) or not isinstance(fill, Sequence) or not fill:
        raise TypeError(f"fill must be a number or a sequence of numbers (one per channel), got {fill!r}")
    if not all(_is_number(f) for f in fill):
        raise TypeError(f"fill must be a number or a sequence of numbers (one per channel), got {fill!r}")
    return tuple(fill)


def _probability(p: Any) -> float:
    if not _is_number(p):
        raise TypeError(f"p must be a probability, a number in [0, 1], got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p}")
    return p


# ---- the image kinds: Pillow images, arrays and Tensors ---------------------------------------------------------

def _is_pil(img: Any) -> bool:
    module = sys.modules.get("PIL.Image")  # no Pillow imported: no Pillow image can exist
    return module is not None and isinstance(img, module.Image)


def _pil() -> Any:
    """Pillow's Image module, or a one-line error naming the extra to install."""
    try:
        from PIL import Image as PILImage
    except ImportError as exc:
        raise ImportError('zerograd.transforms needs Pillow for Pillow images: pip install "zerograd[images]"') from exc
    return PILImage


def _array(img: Any, what: str) -> np.ndarray:
    """The (C, H, W) or (N, C, H, W) array of an ndarray or a Tensor."""
    array = img.data if isinstance(img, Tensor) else img
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{what} takes a PIL image or an image array or Tensor (C, H, W) or (N, C, H, W), "
                        f"got {type(img).__name__}")
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise ShapeError(f"{what} takes images (C, H, W) or batches (N, C, H, W) without empty axes, "
                         f"got shape {array.shape}")
    return array


def _like(img: Any, array: np.ndarray) -> Any:
    """`array` as the kind of `img`: a Tensor for a Tensor, else the array."""
    return Tensor(array) if isinstance(img, Tensor) else array


def _size(img: Any, what: str) -> tuple[int, int]:
    """(height, width) of an image of any kind."""
    if _is_pil(img):
        return img.height, img.width
    shape = _array(img, what).shape
    return shape[-2], shape[-1]


def _crop(img: Any, top: int, left: int, height: int, width: int) -> Any:
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    return _like(img, _array(img, "crop")[..., top:top + height, left:left + width].copy())


def _pil_fill(fill: Any, img: Any) -> Any:
    """`fill` for Pillow: one value per band of the image."""
    bands = len(img.getbands())
    values = (fill,) * bands if _is_number(fill) else tuple(fill)
    if len(values) == 1:
        values *= bands
    if len(values) != bands:
        raise ValueError(f"fill {fill!r} gives {len(values)} values for an image of {bands} bands ({img.mode})")
    return values[0] if bands == 1 else values


def _pad(img: Any, ltrb: tuple[int, int, int, int], fill: Any, mode: str) -> Any:
    """Padded by (left, top, right, bottom) pixels: `fill` (constant) or the edge, reflect or symmetric pattern."""
    left, top, right, bottom = ltrb
    if not any(ltrb):
        return img
    if _is_pil(img):
        from PIL import ImageOps

        if mode == "constant":
            padded = ImageOps.expand(img, border=ltrb, fill=_pil_fill(fill, img))
        else:
            array = np.asarray(img)
            widths = ((top, bottom), (left, right)) + ((0, 0),) * (array.ndim - 2)
            padded = _pil().fromarray(np.pad(array, widths, mode=mode))
        if img.mode == "P":
            padded.putpalette(img.getpalette())
        return padded
    array = _array(img, "padding")
    widths = ((0, 0),) * (array.ndim - 2) + ((top, bottom), (left, right))
    if mode != "constant":
        return _like(img, np.pad(array, widths, mode=mode))
    values = np.asarray(fill, dtype=np.float64).reshape(-1, 1, 1)
    if values.shape[0] not in (1, array.shape[-3]):
        raise ValueError(f"fill {fill!r} gives {values.shape[0]} values for images of {array.shape[-3]} channels")
    out = np.empty(array.shape[:-2] + (array.shape[-2] + top + bottom, array.shape[-1] + left + right), array.dtype)
    out[...] = _cast_like(values, array.dtype)
    out[..., top:top + array.shape[-2], left:left + array.shape[-1]] = array
    return _like(img, out)


def _resize_weights(n_in: int, n_out: int, mode: InterpolationMode, antialias: bool) -> np.ndarray:
    """(n_out, n_in) matrix that resamples one axis as torch.nn.functional.interpolate (align_corners=False)."""
    scale = n_in / n_out
    dst = np.arange(n_out, dtype=np.float64)
    weights = np.zeros((n_out, n_in))
    if mode in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT):
        src = np.floor((dst + (0.5 if mode is InterpolationMode.NEAREST_EXACT else 0.0)) * scale)
        weights[np.arange(n_out), np.minimum(src.astype(np.intp), n_in - 1)] = 1.0
        return weights
    cubic = mode is InterpolationMode.BICUBIC
    if antialias:  # Pillow's filters, stretched over the source pixels when shrinking (as PyTorch's antialias)
        support = (2.0 if cubic else 1.0) * max(scale, 1.0)
        centre = scale * (dst + 0.5)
        first = np.maximum((centre - support + 0.5).astype(np.intp), 0)
        stop = np.minimum((centre + support + 0.5).astype(np.intp), n_in)
        j = np.arange(n_in)
        t = np.abs((j - centre[:, None] + 0.5) / max(scale, 1.0))
        if cubic:  # Keys' kernel with a = -0.5
            outer = np.where(t < 2, (((t - 5) * t + 8) * t - 4) * -0.5, 0.0)
            values = np.where(t < 1, (1.5 * t - 2.5) * t * t + 1, outer)
        else:
            values = np.maximum(1 - t, 0)
        weights = np.where((j >= first[:, None]) & (j < stop[:, None]), values, 0.0)
        total = weights.sum(axis=1, keepdims=True)
        return np.divide(weights, total, out=weights, where=total != 0)
    src = scale * (dst + 0.5) - 0.5
    if not cubic:
        src = np.maximum(src, 0.0)
        i0 = np.floor(src).astype(np.intp)
        frac = src - i0
        rows = np.arange(n_out)
        np.add.at(weights, (rows, i0), 1 - frac)
        np.add.at(weights, (rows, np.minimum(i0 + 1, n_in - 1)), frac)
        return weights
    i0 = np.floor(src).astype(np.intp)
    t = src - i0
    a = -0.75  # PyTorch's bicubic without antialias

    def near(x: np.ndarray) -> np.ndarray:
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    for offset, w in zip((-1, 0, 1, 2), (far(t + 1), near(t), near(1 - t), far(2 - t))):
        np.add.at(weights, (np.arange(n_out), np.clip(i0 + offset, 0, n_in - 1)), w)
    return weights


def _resize(img: Any, height: int, width: int, mode: InterpolationMode, antialias: bool) -> Any:
    if _is_pil(img):
        if mode is InterpolationMode.NEAREST_EXACT:
            raise ValueError("InterpolationMode.NEAREST_EXACT is for arrays and Tensors; Pillow images take NEAREST")
        return img.resize((width, height), _PIL_FILTERS[mode.value])
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT, InterpolationMode.BILINEAR,
                    InterpolationMode.BICUBIC):
        raise ValueError(f"interpolation {mode.value} is for Pillow images; arrays and Tensors take nearest, "
                         "nearest-exact, bilinear or bicubic")
    array = _array(img, "Resize")
    rows = _resize_weights(array.shape[-2], height, mode, antialias)
    cols = _resize_weights(array.shape[-1], width, mode, antialias)
    if mode in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT):  # pick pixels: exact for any value
        return _like(img, array[..., rows.argmax(axis=1)[:, None], cols.argmax(axis=1)])
    work = np.float64 if array.dtype == np.float64 else np.float32
    out = rows.astype(work) @ array.astype(work, copy=False) @ cols.T.astype(work)
    return _like(img, _cast_like(out, array.dtype))


def _hflip(img: Any) -> Any:
    if _is_pil(img):
        return img.transpose(_pil().Transpose.FLIP_LEFT_RIGHT)
    return _like(img, _array(img, "RandomHorizontalFlip")[..., ::-1].copy())


def _rotate(img: Any, angle: float, mode: InterpolationMode, expand: bool, centre: Any, fill: Any) -> Any:
    """Rotated `angle` degrees counter-clockwise about `centre` (x, y) (default: the image's centre)."""
    if _is_pil(img):
        if mode.value not in ("nearest", "bilinear", "bicubic"):
            raise ValueError(f"rotation takes nearest, bilinear or bicubic interpolation, not {mode.value}")
        return img.rotate(angle, _PIL_FILTERS[mode.value], expand, centre, fillcolor=_pil_fill(fill, img))
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        raise ValueError(f"rotating arrays and Tensors takes nearest or bilinear interpolation, not {mode.value}")
    array = _array(img, "RandomRotation")
    h, w = array.shape[-2:]
    # torchvision's inverse affine matrix, in coordinates whose origin is the image's centre (w / 2, h / 2).
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cos, sin = (0.0 if abs(cos) < 1e-12 else cos), (0.0 if abs(sin) < 1e-12 else sin)
    cx, cy = (0.0, 0.0) if centre is None else (centre[0] - w * 0.5, centre[1] - h * 0.5)
    matrix = np.array([[cos, -sin, cx - cos * cx + sin * cy], [sin, cos, cy - sin * cx - cos * cy]])
    out_w, out_h = w, h
    if expand:  # the bounding box of the turned corners, as torchvision (and Pillow) compute it
        corners = np.array([[-0.5 * w, -0.5 * h, 1], [-0.5 * w, 0.5 * h, 1], [0.5 * w, 0.5 * h, 1],
                            [0.5 * w, -0.5 * h, 1]]) @ matrix.T
        low = np.floor(np.trunc((corners.min(axis=0) + (w * 0.5, h * 0.5)) / 1e-4) * 1e-4)
        high = np.ceil(np.trunc((corners.max(axis=0) + (w * 0.5, h * 0.5)) / 1e-4) * 1e-4)
        out_w, out_h = (int(v) for v in high - low)
    # The source of each output pixel, computed step by step as torchvision's affine grid and grid_sample compute
    # it (in float32, or float64 for float64 images), so that nearest sampling rounds the same halves the same way.
    ftype = np.float64 if array.dtype == np.float64 else np.float32
    scaled = matrix.astype(ftype) / np.array([[0.5 * w], [0.5 * h]], dtype=ftype)
    ys, xs = np.divmod(np.arange(out_h * out_w), out_w)
    xs, ys = xs.astype(ftype) + ftype(0.5 - out_w * 0.5), ys.astype(ftype) + ftype(0.5 - out_h * 0.5)
    grid_x = xs * scaled[0, 0] + ys * scaled[0, 1] + scaled[0, 2]
    grid_y = xs * scaled[1, 0] + ys * scaled[1, 1] + scaled[1, 2]
    sx = ((grid_x + ftype(1)) * ftype(w) - ftype(1)) / ftype(2)  # pixel indices
    sy = ((grid_y + ftype(1)) * ftype(h) - ftype(1)) / ftype(2)
    if mode is InterpolationMode.NEAREST:
        sx, sy = np.rint(sx), np.rint(sy)  # grid_sample rounds halves to even
    images = array.reshape(-1, *array.shape[-3:])
    # torchvision samples a channel of ones beside the image and fills where it comes out below 1.
    stacked = np.concatenate([images, np.ones_like(images[:, :1])], axis=1)
    sampled = sample_at(stacked, sx[None], sy[None], mode.value)
    values, mask = sampled[:, :-1], sampled[:, -1:]
    fills = np.asarray(fill, dtype=values.dtype).reshape(-1, 1)
    if fills.shape[0] not in (1, values.shape[1]):
        raise ValueError(f"fill {fill!r} gives {fills.shape[0]} values for images of {values.shape[1]} channels")
    if mode is InterpolationMode.NEAREST:
        values = np.where(mask < 0.5, fills, values)
    else:
        values = values * mask + (1 - mask) * fills
    out = _cast_like(values, array.dtype).reshape(*array.shape[:-2], out_h, out_w)
    return _like(img, out)


# ---- the transforms ----------------------------------------------------------------------------------------------

class Compose:
    """Applies `transforms` one after the other: Compose([Resize(32), ToTensor()])(image)."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
            raise TypeError(f"Compose takes a list of transforms, got {type(transforms).__name__}")
        for t in transforms:
            if not callable(t):
                raise TypeError(f"Compose takes a list of transforms (callables), got the element {t!r}")
        self.transforms = list(transforms)

    def __call__(self, img: ImageLike) -> ImageLike:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return type(self).__name__ + "(" + "".join(f"\n    {t}" for t in self.transforms) + "\n)"


class Resize:
    """Resizes to `size`: (h, w) exactly, or an int for the shorter side (the longer side keeps the aspect ratio,
    at most `max_size`). `antialias` (arrays; Pillow always antialiases) smooths when shrinking."""

    def __init__(self, size: int | Sequence[int], interpolation: InterpolationMode = InterpolationMode.BILINEAR,
                 max_size: int | None = None, antialias: bool = True) -> None:
        pair = _size_pair(size)
        self.interpolation = _interpolation(interpolation)
        if max_size is not None:
            if not _is_number(size) and len(size) != 1:
                raise ValueError("max_size is for an int size (the shorter side); with size (h, w) leave it None")
            if _whole(max_size, "max_size", 1) <= pair[0]:
                raise ValueError(f"max_size = {max_size} must be greater than size = {size}, the shorter side")
        if not isinstance(antialias, (bool, np.bool_)):
            raise TypeError(f"antialias must be True or False, got {antialias!r}")
        self.size, self.max_size, self.antialias = size, max_size, bool(antialias)
        self._pair = pair

    def _output_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) an image of `height` x `width` is resized to (torchvision's rule)."""
        if not (_is_number(self.size) or len(self.size) == 1):
            return self._pair
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self._pair[0], int(self._pair[0] * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def __call__(self, img: ImageLike) -> ImageLike:
        height, width = _size(img, "Resize")
        new = self._output_size(height, width)
        if min(new) < 1:
            raise ValueError(f"Resize: an image of {height} x {width} would become {new[0]} x {new[1]} pixels with "
                             f"max_size={self.max_size}; use a larger max_size")
        if new == (height, width):
            return img
        return _resize(img, *new, self.interpolation, self.antialias)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class CenterCrop:
    """Crops the centre `size` (int or (h, w)); an image smaller than that is first padded with zeros."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size_pair(size)

    def __call__(self, img: ImageLike) -> ImageLike:
        crop_h, crop_w = self.size
        height, width = _size(img, "CenterCrop")
        if crop_h > height or crop_w > width:
            pad_w, pad_h = max(crop_w - width, 0), max(crop_h - height, 0)
            img = _pad(img, (pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2), 0, "constant")
            height, width = _size(img, "CenterCrop")
        return _crop(img, int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0)), crop_h, crop_w)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class RandomCrop:
    """Crops `size` (int or (h, w)) at a random place, after padding by `padding` (int, (left/right, top/bottom)
    or (left, top, right, bottom)) with `fill` or the edge, reflect or symmetric pattern; `pad_if_needed` pads an
    image smaller than `size` on both sides by the shortfall."""

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: float | Sequence[float] = 0,
                 padding_mode: str = "constant") -> None:
        self.size = _size_pair(size)
        self._ltrb = (0, 0, 0, 0)
        if padding is not None:
            values = [padding] if _is_number(padding) else _sequence(padding, "padding", (1, 2, 4))
            values = [_whole(v, "padding", 0) for v in values]
            self._ltrb = tuple((values * 4)[:4] if len(values) < 4 else values)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {', '.join(_PADDING_MODES)}, got {padding_mode!r}")
        self.padding, self.pad_if_needed, self.padding_mode = padding, bool(pad_if_needed), padding_mode
        self.fill = _fill(fill)

    def __call__(self, img: ImageLike) -> ImageLike:
        img = _pad(img, self._ltrb, self.fill, self.padding_mode)
        height, width = _size(img, "RandomCrop")
        crop_h, crop_w = self.size
        if self.pad_if_needed and width < crop_w:
            img = _pad(img, (crop_w - width, 0, crop_w - width, 0), self.fill, self.padding_mode)
        if self.pad_if_needed and height < crop_h:
            img = _pad(img, (0, crop_h - height, 0, crop_h - height), self.fill, self.padding_mode)
        height, width = _size(img, "RandomCrop")
        if height < crop_h or width < crop_w:
            raise ValueError(f"RandomCrop: the crop {(crop_h, crop_w)} is larger than the (padded) image "
                             f"{(height, width)}; pass pad_if_needed=True or a smaller size")
        generator = _random.default_generator
        top = int(generator.integers(0, height - crop_h + 1))
        left = int(generator.integers(0, width - crop_w + 1))
        return _crop(img, top, left, crop_h, crop_w)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirrors the image left-right with probability `p` (a batch: all images or none)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _probability(p)

    def __call__(self, img: ImageLike) -> ImageLike:
        if _is_pil(img):
            _size(img, "RandomHorizontalFlip")
        else:
            _array(img, "RandomHorizontalFlip")
        if _random.default_generator.random() < self.p:
            return _hflip(img)
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomRotation:
    """Rotates by an angle uniform in [-degrees, degrees] (or [min, max]) counter-clockwise about `center` (x, y),
    default the image's centre; `expand` enlarges the output to hold the whole turned image; corners get `fill`."""

    def __init__(self, degrees: float | Sequence[float], interpolation: InterpolationMode = InterpolationMode.NEAREST,
                 expand: bool = False, center: Sequence[float] | None = None,
                 fill: float | Sequence[float] = 0) -> None:
        if _is_number(degrees):
            if not degrees >= 0 or not math.isfinite(degrees):
                raise ValueError(f"degrees, a single number, must be finite and >= 0, got {degrees}")
            bounds = [-degrees, degrees]
        else:
            bounds = _sequence(degrees, "degrees", (2,))
            if not all(_is_number(d) and math.isfinite(d) for d in bounds) or bounds[0] > bounds[1]:
                raise ValueError(f"degrees, a pair, must be finite numbers (min, max) with min <= max, got {degrees!r}")
        self.degrees = [float(d) for d in bounds]
        self.interpolation = _interpolation(interpolation)
        if center is not None:
            if not all(_is_number(c) and math.isfinite(c) for c in _sequence(center, "center", (2,))):
                raise ValueError(f"center must be two finite numbers (x, y), got {center!r}")
        self.expand, self.center, self.fill = bool(expand), center, _fill(fill)

    def __call__(self, img: ImageLike) -> ImageLike:
        _size(img, "RandomRotation")
        angle = float(_random.default_generator.uniform(self.degrees[0], self.degrees[1]))
        return _rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)

    def __repr__(self) -> str:
        text = f"{type(self).__name__}(degrees={self.degrees}, interpolation={self.interpolation.value}, " \
               f"expand={self.expand}"
        if self.center is not None:
            text += f", center={self.center}"
        return text + f", fill={self.fill})"


class Grayscale:
    """Converts to grayscale (0.2989 R + 0.587 G + 0.114 B) with 1 or 3 (equal) channels."""

    def __init__(self, num_output_channels: int = 1) -> None:
        if _whole(num_output_channels, "num_output_channels", 1) not in (1, 3):
            raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels}")
        self.num_output_channels = int(num_output_channels)

    def __call__(self, img: ImageLike) -> ImageLike:
        if _is_pil(img):
            gray = img.convert("L")
            return gray if self.num_output_channels == 1 else _pil().merge("RGB", (gray, gray, gray))
        array = _array(img, "Grayscale")
        if array.shape[-3] not in (1, 3):
            raise ShapeError(f"Grayscale takes images of 1 or 3 channels, got {array.shape[-3]} (shape {array.shape})")
        if array.shape[-3] == 3:
            r, g, b = (array[..., k:k + 1, :, :] for k in range(3))
            gray = (0.2989 * r + 0.587 * g + 0.114 * b).astype(array.dtype)
        else:
            gray = array.copy()
        return _like(img, np.repeat(gray, self.num_output_channels, axis=-3))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_output_channels={self.num_output_channels})"


class ToTensor:
    """A Pillow image or an (H, W[, C]) array -> a Tensor (C, H, W); uint8 pixels become float32 in [0, 1]
    (other dtypes are kept unscaled, as torchvision does)."""

    def __call__(self, pic: Any) -> Tensor:
        if _is_pil(pic):
            dtypes = {"I": np.int32, "I;16": np.int16, "F": np.float32}
            array = np.array(pic, dtype=dtypes.get(pic.mode, np.uint8))
            if pic.mode == "1":
                array = array * np.uint8(255)
            array = array.reshape(pic.height, pic.width, len(pic.getbands()))
        elif isinstance(pic, np.ndarray):
            if pic.ndim not in (2, 3):
                raise ValueError(f"ToTensor takes an image array (H, W) or (H, W, C), got shape {pic.shape}")
            array = pic[:, :, None] if pic.ndim == 2 else pic
        else:
            raise TypeError(f"ToTensor takes a PIL image or an ndarray, got {type(pic).__name__}")
        array = np.ascontiguousarray(array.transpose(2, 0, 1))
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / np.float32(255)
        return Tensor(array)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """(image - mean) / std per channel, for float arrays and Tensors (C, H, W) or (N, C, H, W); `inplace`
    overwrites the input."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float], inplace: bool = False) -> None:
        for name, values in (("mean", mean), ("std", std)):
            flat = [values] if _is_number(values) else values
            if not isinstance(flat, (Sequence, np.ndarray)) or isinstance(flat, (str, bytes)) or not len(flat) \
                    or np.ndim(flat) != 1 or not all(_is_number(v) and math.isfinite(v) for v in flat):
                raise TypeError(f"{name} must be a finite number or a sequence of them (one per channel), "
                                f"got {values!r}")
        if not np.all(np.asarray(std, dtype=np.float64)):
            raise ValueError(f"std {std!r} contains 0: normalizing would divide by zero")
        self.mean, self.std, self.inplace = mean, std, bool(inplace)

    def __call__(self, tensor: Any) -> Any:
        if _is_pil(tensor):
            raise TypeError("Normalize takes a float array or Tensor, not a PIL image; put ToTensor() before it")
        array = _array(tensor, "Normalize")
        if array.dtype.kind != "f":
            raise TypeError(f"Normalize takes float images, got {array.dtype}; put ToTensor() before it")
        channels = array.shape[-3]
        mean = np.asarray(self.mean, dtype=array.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=array.dtype).reshape(-1, 1, 1)
        for name, values in (("mean", mean), ("std", std)):
            if values.shape[0] not in (1, channels):
                raise ValueError(f"Normalize: {name} has {values.shape[0]} values for images of {channels} channels")
        if not np.all(std):
            raise ValueError(f"std {self.std!r} is 0 in {array.dtype}: normalizing would divide by zero")
        if not self.inplace:
            return _like(tensor, (array - mean) / std)
        array -= mean
        array /= std
        return tensor

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"
