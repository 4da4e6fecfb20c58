"""Random shifts and rotations of image batches, vectorised over the batch with NumPy.

Each output pixel is sampled from the input at the inversely mapped position (bilinear or nearest),
pixels mapped from outside the image are 0 (MNIST's background). Accepted batch shapes: (N, H*W)
with square images, (N, H, W) or (N, C, H, W); the output has the input's shape and dtype.
The Random* classes are callables usable as DataLoader(transform=...).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from zerograd.errors import ShapeError, ZerogradError

_MODES = ("bilinear", "nearest")


def _as_nchw(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) view of a batch of images given as (N, H*W), (N, H, W) or (N, C, H, W)."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ShapeError(
                f"cannot read a batch of shape {x.shape} as square images: {x.shape[1]} pixels is not a "
                "square number; pass (N, H, W) or (N, C, H, W) instead"
            )
        return x.reshape(x.shape[0], 1, side, side)
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        return x
    raise ShapeError(f"augmentation takes image batches (N, H*W), (N, H, W) or (N, C, H, W), got shape {x.shape}")


def _per_image(value: ArrayLike, n: int, what: str) -> np.ndarray:
    """`value` (scalar or (N,)) broadcast to shape (N,) float64."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ShapeError(f"{what} must be a number or have one entry per image ({n}), got shape {array.shape}")
    return array


def affine_images(
    x: ArrayLike, degrees: ArrayLike = 0.0, dx: ArrayLike = 0, dy: ArrayLike = 0, *, mode: str = "bilinear"
) -> np.ndarray:
    """Rotate each image of the batch about its centre, then move it; same shape and dtype.

    The rotation is `degrees` counter-clockwise; the move is `dx` right and `dy` down.
    `degrees`, `dx`, `dy` are numbers or one value per image (N,).
    """
    if mode not in _MODES:
        raise ZerogradError(f"unknown interpolation mode {mode!r}; use one of {', '.join(_MODES)}")
    x = np.asarray(x)
    images = _as_nchw(x)
    n, c, h, w = images.shape
    angle = np.deg2rad(_per_image(degrees, n, "degrees"))[:, None]
    tx = _per_image(dx, n, "dx")[:, None]
    ty = _per_image(dy, n, "dy")[:, None]
    cos, sin = np.cos(angle), np.sin(angle)
    # cos(90 deg) is 6e-17, not 0: snap so that quarter turns move pixels exactly onto pixels.
    cos[np.abs(cos) < 1e-12] = 0.0
    sin[np.abs(sin) < 1e-12] = 0.0
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys, xs = np.divmod(np.arange(h * w), w)
    u = xs - cx - tx  # (N, P): output position relative to the centre, shift undone
    v = ys - cy - ty
    # Inverse rotation (image y axis points down, so a counter-clockwise turn on screen is this sign pattern).
    sx = u * cos - v * sin + cx
    sy = u * sin + v * cos + cy
    out = sample_at(images, sx, sy, mode)
    return _cast_like(out, x.dtype).reshape(x.shape)


def sample_at(images: np.ndarray, sx: np.ndarray, sy: np.ndarray, mode: str = "bilinear") -> np.ndarray:
    """Images (N, C, H, W) sampled at pixel positions (`sx`, `sy`), each (N, P) or (1, P): (N, C, P).

    Positions are in pixels (0 is the centre of the first pixel); bilinear weighs the four neighbours,
    nearest takes floor(position + 0.5); neighbours outside the image count as 0. Computed in float64
    for float64 images, else in float32.
    """
    n, c, h, w = images.shape
    work = np.float64 if images.dtype == np.float64 else np.float32
    flat = images.reshape(n, c, h * w).astype(work, copy=False)
    p = np.shape(sx)[-1]
    out = np.zeros((n, c, p), dtype=work)

    def gather(yy: np.ndarray, xx: np.ndarray, weight: np.ndarray) -> None:
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        index = np.where(inside, yy * w + xx, 0).astype(np.intp)
        values = np.take_along_axis(flat, np.broadcast_to(index[:, None, :], (n, c, p)), axis=2)
        out[...] += values * (weight * inside).astype(work)[:, None, :]

    if mode == "nearest":
        gather(np.floor(sy + 0.5), np.floor(sx + 0.5), np.ones_like(sx))
    else:
        x0, y0 = np.floor(sx), np.floor(sy)
        fx, fy = sx - x0, sy - y0
        gather(y0, x0, (1 - fy) * (1 - fx))
        gather(y0, x0 + 1, (1 - fy) * fx)
        gather(y0 + 1, x0, fy * (1 - fx))
        gather(y0 + 1, x0 + 1, fy * fx)
    return out


def _cast_like(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`out` as `dtype`: integer pixels rounded and clipped to the type's range."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(dtype, copy=False)


def shift_images(x: ArrayLike, dx: ArrayLike, dy: ArrayLike) -> np.ndarray:
    """Move each image `dx` pixels right and `dy` down (numbers or (N,)), filling with 0; same shape and dtype."""
    return affine_images(x, 0.0, dx, dy)


def rotate_images(x: ArrayLike, degrees: ArrayLike, *, mode: str = "bilinear") -> np.ndarray:
    """Rotate each image `degrees` counter-clockwise about its centre, filling with 0; same shape and dtype.

    `degrees` is a number or one value per image (N,).
    """
    return affine_images(x, degrees, 0, 0, mode=mode)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class RandomAffine:
    """Per image: a random whole-pixel shift and a random rotation.

    The shift is in [-max_shift, max_shift] on each axis; the rotation is uniform in [-max_degrees, max_degrees].
    """

    def __init__(self, max_shift: int = 2, max_degrees: float = 10.0, *,
                 seed: int | np.random.Generator | None = None, mode: str = "bilinear") -> None:
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
            raise ZerogradError(f"max_shift must be a whole number of pixels >= 0, got {max_shift!r}")
        if not max_degrees >= 0:
            raise ZerogradError(f"max_degrees must be >= 0, got {max_degrees!r}")
        if mode not in _MODES:
            raise ZerogradError(f"unknown interpolation mode {mode!r}; use one of {', '.join(_MODES)}")
        self.max_shift = int(max_shift)
        self.max_degrees = float(max_degrees)
        self.mode = mode
        self.generator = _rng(seed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Randomly shifted and rotated copy of the batch `x`; same shape and dtype."""
        n = np.shape(x)[0]
        k = self.max_shift
        dx = self.generator.integers(-k, k + 1, size=n)
        dy = self.generator.integers(-k, k + 1, size=n)
        degrees = self.generator.uniform(-self.max_degrees, self.max_degrees, size=n)
        return affine_images(x, degrees, dx, dy, mode=self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_shift={self.max_shift}, max_degrees={self.max_degrees}, mode={self.mode!r})"


class RandomShift(RandomAffine):
    """Per image: a whole-pixel shift in [-max_shift, max_shift] on each axis, filling with 0."""

    def __init__(self, max_shift: int = 2, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_shift, 0.0, seed=seed)


class RandomRotation(RandomAffine):
    """Per image: a rotation by an angle uniform in [-max_degrees, max_degrees] about the centre."""

    def __init__(self, max_degrees: float = 10.0, *, seed: int | np.random.Generator | None = None,
                 mode: str = "bilinear") -> None:
        super().__init__(0, max_degrees, seed=seed, mode=mode)


class RandomCropFlip:
    """Per image: zero-pad by `padding`, crop back to H x W at a random place, and mirror left-right with
    probability 0.5 (if `flip`): the standard CIFAR augmentation (He et al. 2016).

    Takes batches like RandomAffine ((N, C, H, W), (N, H, W) or square (N, H*W)); same shape and dtype.
    """

    def __init__(self, padding: int = 4, flip: bool = True, *, seed: int | np.random.Generator | None = None) -> None:
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ZerogradError(f"padding must be a whole number of pixels >= 0, got {padding!r}")
        if not isinstance(flip, (bool, np.bool_)):
            raise ZerogradError(f"flip must be True or False, got {flip!r}")
        self.padding = int(padding)
        self.flip = bool(flip)
        self.generator = _rng(seed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """A randomly cropped and flipped copy of the batch `x`; same shape and dtype."""
        x = np.asarray(x)
        images = _as_nchw(x)
        n, c, h, w = images.shape
        p = self.padding
        top = self.generator.integers(0, 2 * p + 1, size=n)
        left = self.generator.integers(0, 2 * p + 1, size=n)
        mirror = self.generator.random(n) < 0.5 if self.flip else np.zeros(n, dtype=bool)
        padded = np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))
        # Every H x W window of each padded image, as a view; one fancy index copies out the chosen ones.
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
        out = windows[np.arange(n), :, top, left]  # (N, C, H, W)
        out[mirror] = out[mirror, ..., ::-1]
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(padding={self.padding}, flip={self.flip})"
