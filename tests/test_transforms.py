"""zerograd.transforms (torchvision's names) on small images whose outputs are worked out by hand: Pillow images,
(C, H, W) and (N, C, H, W) arrays and Tensors; seeding, Compose, repr, bad arguments; and the per-image batch
augmentation datasets.RandomCropFlip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import zerograd
import zerograd.transforms as T
from zerograd.datasets import DataLoader, RandomCropFlip, TensorDataset
from zerograd.errors import ShapeError, ZerogradError
from zerograd.random import Generator

NEAREST, BILINEAR, BICUBIC = T.InterpolationMode.NEAREST, T.InterpolationMode.BILINEAR, T.InterpolationMode.BICUBIC


def grid(h: int, w: int, c: int = 1, dtype=np.float32) -> np.ndarray:
    """(c, h, w) image whose pixels count 0, 1, 2, ... row by row, channel after channel."""
    return np.arange(c * h * w, dtype=dtype).reshape(c, h, w)


# ---- Resize ---------------------------------------------------------------------------------------------------

def test_resize_output_sizes():
    x = np.zeros((3, 6, 9), np.float32)
    assert T.Resize(4)(x).shape == (3, 4, 6)  # the shorter side (6) becomes 4, the other keeps the ratio: 9 * 4 / 6
    assert T.Resize([4])(x).shape == (3, 4, 6)
    assert T.Resize((5, 2))(x).shape == (3, 5, 2)
    assert T.Resize(4, max_size=5)(x).shape == (3, 3, 5)  # the longer side capped: int(5 * 4 / 6) = 3
    assert T.Resize(2)(np.zeros((1, 7, 3), np.float32)).shape == (1, 4, 2)  # int(2 * 7 / 3) = 4
    assert T.Resize(4)(np.zeros((2, 3, 6, 9), np.float32)).shape == (2, 3, 4, 6)  # a batch
    same = np.ones((1, 4, 4), np.float32)
    assert T.Resize(4)(same) is same  # already that size: returned as is, as torchvision does


def test_resize_values_by_hand():
    row = np.array([[[0.0, 7.0, 14.0, 21.0]]], np.float32)  # (1, 1, 4)
    # Shrinking 4 -> 2 with antialias: the triangle filter stretched over 2 source pixels each way,
    # weights (3, 3, 1) / 7 around the first output pixel and (1, 3, 3) / 7 around the second.
    np.testing.assert_allclose(T.Resize((1, 2))(row)[0, 0], [5.0, 16.0], rtol=1e-6)
    # Without antialias each output pixel reads its two nearest source pixels: positions 0.5 and 2.5.
    np.testing.assert_allclose(T.Resize((1, 2), antialias=False)(row)[0, 0], [3.5, 17.5], rtol=1e-6)
    # Growing 2 -> 4: positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel).
    pair = np.array([[[0.0, 4.0]]], np.float32)
    for antialias in (True, False):
        np.testing.assert_allclose(T.Resize((1, 4), antialias=antialias)(pair)[0, 0], [0, 1, 3, 4], rtol=1e-6)
    # Nearest takes pixel floor(i * in / out): 0 and 2 of 4.
    np.testing.assert_array_equal(T.Resize(2, NEAREST)(grid(4, 4)), [[[0, 2], [8, 10]]])
    np.testing.assert_array_equal(T.Resize(2, T.InterpolationMode.NEAREST_EXACT)(grid(4, 4)), [[[5, 7], [13, 15]]])
    # Bicubic keeps a constant image constant and a linear ramp linear inside.
    np.testing.assert_allclose(T.Resize(3, BICUBIC)(np.full((2, 5, 5), 0.25, np.float32)), 0.25, rtol=1e-6)
    # uint8 arrays are rounded back to uint8.
    out = T.Resize((1, 2), antialias=False)(np.array([[[0, 7, 14, 21]]], np.uint8))
    assert out.dtype == np.uint8 and out.tolist() == [[[4, 18]]]  # 3.5 and 17.5 rounded half to even


def test_resize_pillow_images_go_through_pillow():
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8))
    out = T.Resize(3)(image)
    assert isinstance(out, Image.Image) and out.size == (4, 3)  # Pillow's size is (width, height)
    assert np.array_equal(np.asarray(out), np.asarray(image.resize((4, 3), Image.Resampling.BILINEAR)))
    out = T.Resize((2, 5), BICUBIC)(image)
    assert np.array_equal(np.asarray(out), np.asarray(image.resize((5, 2), Image.Resampling.BICUBIC)))


def test_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    x = np.random.default_rng(0).random((2, 3, 9, 13), dtype=np.float32)
    for size in [(4, 5), (20, 31), (9, 6), (1, 1)]:
        for mode in ("bilinear", "bicubic"):
            for antialias in (True, False):
                ours = T.Resize(size, T.InterpolationMode(mode), antialias=antialias)(x)
                theirs = F.interpolate(torch.from_numpy(x), size=size, mode=mode, align_corners=False,
                                       antialias=antialias).numpy()
                np.testing.assert_allclose(ours, theirs, atol=1e-5, err_msg=f"{size} {mode} {antialias}")
        ours = T.Resize(size, NEAREST)(x)
        np.testing.assert_array_equal(ours, F.interpolate(torch.from_numpy(x), size=size, mode="nearest").numpy())


# ---- crops, padding, flips -------------------------------------------------------------------------------------

def test_center_crop():
    x = grid(4, 5)
    np.testing.assert_array_equal(T.CenterCrop(2)(x), x[:, 1:3, 2:4])  # top round(1), left round(1.5) = 2
    np.testing.assert_array_equal(T.CenterCrop((1, 3))(grid(2, 4)), [[[0, 1, 2]]])  # round(0.5) = 0
    padded = T.CenterCrop(4)(np.ones((1, 2, 2), np.float32))  # larger than the image: zeros around it
    np.testing.assert_array_equal(padded, np.pad(np.ones((1, 2, 2)), ((0, 0), (1, 1), (1, 1))))
    np.testing.assert_array_equal(T.CenterCrop((3, 2))(grid(1, 1) + 5), [[[0, 0], [5, 0], [0, 0]]])
    image = Image.fromarray(grid(4, 5, dtype=np.uint8)[0])
    assert np.asarray(T.CenterCrop(2)(image)).tolist() == [[7, 8], [12, 13]]


@pytest.mark.parametrize("mode, expected", [
    ("constant", [0, 0, 1, 2, 3, 0, 0]),
    ("edge", [1, 1, 1, 2, 3, 3, 3]),
    ("reflect", [3, 2, 1, 2, 3, 2, 1]),
    ("symmetric", [2, 1, 1, 2, 3, 3, 2]),
])
def test_random_crop_padding_modes(mode, expected):
    x = np.array([[[1, 2, 3]]], np.float32)
    crop = T.RandomCrop((1, 7), padding=(2, 0), padding_mode=mode)  # the whole padded image: no choice left
    np.testing.assert_array_equal(crop(x)[0, 0], expected)
    image = Image.fromarray(x[0].astype(np.uint8))
    assert np.asarray(crop(image))[0].tolist() == expected


def test_random_crop_draws_from_the_default_generator():
    x = np.array([[[1, 2], [3, 4]]], np.float32)
    crop = T.RandomCrop(2, padding=1)  # a 4 x 4 zero-padded image, a 2 x 2 crop at one of 9 places
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    zerograd.manual_seed(7)
    outs = [crop(x) for _ in range(60)]
    reference = Generator().manual_seed(7)
    for out in outs:
        top, left = int(reference.integers(0, 3)), int(reference.integers(0, 3))
        np.testing.assert_array_equal(out, padded[:, top:top + 2, left:left + 2])
    assert len({out.tobytes() for out in outs}) == 9  # every place was drawn


def test_random_crop_padding_forms_and_fill():
    x = np.ones((3, 1, 1), np.float32)
    out = T.RandomCrop((4, 3), padding=(1, 2, 1, 1), fill=(5, 6, 7))(x)  # left, top, right, bottom
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[:, 2, 1], [1, 1, 1])
    np.testing.assert_array_equal(out[:, 0, 0], [5, 6, 7])
    image = Image.new("RGB", (1, 1), (1, 1, 1))
    out = T.RandomCrop((4, 3), padding=(1, 2, 1, 1), fill=(5, 6, 7))(image)
    assert out.size == (3, 4) and out.getpixel((1, 2)) == (1, 1, 1) and out.getpixel((0, 0)) == (5, 6, 7)
    with pytest.raises(ValueError, match=r"the crop \(3, 3\) is larger than the \(padded\) image \(2, 2\)"):
        T.RandomCrop(3)(x.repeat(2, 1).repeat(2, 2))


def test_random_crop_pad_if_needed():
    # pad_if_needed pads both sides by the shortfall, as torchvision does: 1 x 2 -> 1 x 6, then a crop of 4
    # (the top drawn from [0, 0], then the left from [0, 2]).
    zerograd.manual_seed(4)
    out = T.RandomCrop((1, 4), pad_if_needed=True)(np.array([[[1, 2]]], np.float32))
    reference = Generator().manual_seed(4)
    assert int(reference.integers(0, 1)) == 0
    left = int(reference.integers(0, 3))
    np.testing.assert_array_equal(out[0, 0], np.array([0, 0, 1, 2, 0, 0])[left:left + 4])


def test_horizontal_flip():
    x = grid(2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x), x[:, :, ::-1])
    assert T.RandomHorizontalFlip(0.0)(x) is x
    image = Image.fromarray(grid(2, 3, dtype=np.uint8)[0])
    assert np.asarray(T.RandomHorizontalFlip(1.0)(image)).tolist() == [[2, 1, 0], [5, 4, 3]]
    zerograd.manual_seed(1)
    outs = [T.RandomHorizontalFlip(0.3)(x) for _ in range(50)]
    reference = Generator().manual_seed(1)
    flipped = [bool(reference.random() < 0.3) for _ in range(50)]
    assert [not np.array_equal(out, x) for out in outs] == flipped and 5 < sum(flipped) < 25
    batch = np.stack([grid(2, 3), grid(2, 3) + 10])
    out = T.RandomHorizontalFlip(1.0)(batch)  # a batch: one draw for all images, as torchvision
    np.testing.assert_array_equal(out, batch[..., ::-1])


# ---- rotation ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [NEAREST, BILINEAR])
def test_rotation_quarter_turn_by_hand(mode):
    x = grid(2, 4)  # [[0 1 2 3] [4 5 6 7]]
    turn = T.RandomRotation((90, 90), interpolation=mode, fill=9)  # counter-clockwise, about the centre (2, 1)
    np.testing.assert_array_equal(turn(x), [[[9, 2, 6, 9], [9, 1, 5, 9]]])
    expanded = T.RandomRotation((90, 90), interpolation=mode, expand=True)(x)
    np.testing.assert_array_equal(expanded, [[[3, 7], [2, 6], [1, 5], [0, 4]]])
    image = Image.fromarray(x[0].astype(np.uint8))
    assert np.asarray(turn(image)).tolist() == [[9, 2, 6, 9], [9, 1, 5, 9]]
    assert np.asarray(T.RandomRotation((90, 90), expand=True)(image)).tolist() == [[3, 7], [2, 6], [1, 5], [0, 4]]


def test_rotation_centre_half_turn_and_bilinear_fill():
    x = grid(3, 3)
    np.testing.assert_array_equal(T.RandomRotation((180, 180))(x), x[:, ::-1, ::-1])
    # About the corner point (0, 0) a half turn sends every pixel outside the image: all fill.
    np.testing.assert_array_equal(T.RandomRotation((180, 180), center=(0, 0), fill=4)(x), np.full((1, 3, 3), 4))
    # Bilinear at a whole-pixel shift of the sampling grid: a 90 degree turn of a 3 x 3 image is exact.
    out = T.RandomRotation((-90, -90), BILINEAR, fill=(1.0,))(x)
    np.testing.assert_allclose(out, [[[6, 3, 0], [7, 4, 1], [8, 5, 2]]], atol=1e-6)


def test_rotation_seeded_same_angle_for_a_batch():
    x = np.random.default_rng(0).random((1, 5, 5), dtype=np.float32)
    rotate = T.RandomRotation(30, BILINEAR)
    zerograd.manual_seed(5)
    single = rotate(x)
    zerograd.manual_seed(5)
    batch = rotate(np.stack([x, x]))
    np.testing.assert_array_equal(batch[0], single)
    np.testing.assert_array_equal(batch[1], single)
    angle = Generator().manual_seed(5).uniform(-30, 30)
    np.testing.assert_array_equal(single, T.RandomRotation((angle, angle), BILINEAR)(x))
    assert not np.array_equal(single, x)


# ---- colour, tensors, normalisation ----------------------------------------------------------------------------

def test_grayscale():
    x = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 0.5]]], np.float32)  # (3, 1, 2): red, then green + half blue
    np.testing.assert_allclose(T.Grayscale()(x), [[[0.2989, 0.587 + 0.057]]], rtol=1e-6)
    three = T.Grayscale(3)(x)
    assert three.shape == (3, 1, 2) and np.array_equal(three[0], three[2])
    assert T.Grayscale()(np.stack([x, x])).shape == (2, 1, 1, 2)
    image = Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8))
    gray = T.Grayscale()(image)
    assert gray.mode == "L" and np.asarray(gray).tolist() == [[76, 150, 29, 18]]  # Pillow's ITU-R 601-2 luma
    assert T.Grayscale(3)(image).mode == "RGB"
    with pytest.raises(ShapeError, match="1 or 3 channels"):
        T.Grayscale()(np.zeros((2, 2, 2), np.float32))


def test_to_tensor():
    pixels = np.array([[[0, 128, 255], [1, 2, 3]]], np.uint8)  # (H, W, C) = (1, 2, 3)
    expected = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    for pic in (pixels, Image.fromarray(pixels)):
        out = T.ToTensor()(pic)
        assert isinstance(out, zerograd.Tensor) and out.dtype == np.float32 and out.shape == (3, 1, 2)
        np.testing.assert_array_equal(out.data, expected)
        assert not out.requires_grad
    assert T.ToTensor()(Image.fromarray(pixels[:, :, 0])).shape == (1, 1, 2)
    assert T.ToTensor()(Image.fromarray(pixels[:, :, 1] > 100)).data.tolist() == [[[1.0, 0.0]]]  # mode "1"
    unscaled = T.ToTensor()(np.full((2, 2), 3.0))  # float arrays are taken as they are (float64 stays)
    assert unscaled.dtype == np.float64 and unscaled.data.tolist() == [[[3.0, 3.0], [3.0, 3.0]]]
    with pytest.raises(TypeError, match="PIL image or an ndarray"):
        T.ToTensor()([[1, 2]])
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        T.ToTensor()(np.zeros((1, 1, 1, 1), np.uint8))


def test_normalize():
    x = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)]).astype(np.float32)
    out = T.Normalize((0.5, 0.25), (0.5, 0.25))(x)
    assert out.dtype == np.float32 and out[0].tolist() == [[0, 0], [0, 0]] and out[1].tolist() == [[3, 3], [3, 3]]
    assert x[1, 0, 0] == 1.0  # not in place
    np.testing.assert_array_equal(T.Normalize(0.5, 2.0)(x), (x - 0.5) / 2)  # one value for every channel
    tensor = zerograd.tensor(x.copy())
    same = T.Normalize((0.5, 0.25), (0.5, 0.25), inplace=True)(tensor)
    assert same is tensor and tensor.data[1, 0, 0] == 3.0
    batch = np.stack([x, x])
    assert T.Normalize([0.5, 0.5], [1, 1], inplace=True)(batch) is batch and batch[0, 1, 0, 0] == 0.5
    with pytest.raises(ValueError, match="mean has 3 values for images of 2 channels"):
        T.Normalize((0, 0, 0), (1, 1, 1))(x)
    with pytest.raises(TypeError, match="float images"):
        T.Normalize(0, 1)(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(TypeError, match="not a PIL image"):
        T.Normalize(0, 1)(Image.new("L", (2, 2)))


def test_tensors_in_tensors_out_arrays_in_arrays_out():
    x = np.random.default_rng(1).random((3, 6, 6), dtype=np.float32)
    for transform in (T.Resize(4), T.CenterCrop(3), T.RandomCrop(4, padding=2), T.RandomHorizontalFlip(1.0),
                      T.RandomRotation(20), T.Grayscale(), T.Normalize(0.5, 0.5)):
        zerograd.manual_seed(2)
        from_array = transform(x)
        zerograd.manual_seed(2)
        from_tensor = transform(zerograd.tensor(x))
        assert isinstance(from_array, np.ndarray) and isinstance(from_tensor, zerograd.Tensor), transform
        np.testing.assert_array_equal(from_tensor.data, from_array)


# ---- Compose, seeding, repr, bad arguments ---------------------------------------------------------------------

def test_compose_seeded_pipeline():
    pipeline = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.RandomRotation(15),
                          T.ToTensor(), T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    zerograd.manual_seed(11)
    first = [pipeline(image).data for _ in range(3)]
    zerograd.manual_seed(11)
    second = [pipeline(image).data for _ in range(3)]
    for a, b in zip(first, second):
        assert a.shape == (3, 32, 32) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # each call draws anew
    zerograd.manual_seed(12)
    assert not np.array_equal(pipeline(image).data, first[0])


def test_repr_as_torchvision():
    assert repr(T.Resize(32)) == "Resize(size=32, interpolation=bilinear, max_size=None, antialias=True)"
    assert repr(T.CenterCrop(4)) == "CenterCrop(size=(4, 4))"
    assert repr(T.RandomCrop(32, padding=4)) == "RandomCrop(size=(32, 32), padding=4)"
    assert repr(T.RandomHorizontalFlip()) == "RandomHorizontalFlip(p=0.5)"
    assert repr(T.RandomRotation(10)) == \
        "RandomRotation(degrees=[-10.0, 10.0], interpolation=nearest, expand=False, fill=0)"
    assert repr(T.RandomRotation((0, 5), BILINEAR, True, (1, 2), 3)) == \
        "RandomRotation(degrees=[0.0, 5.0], interpolation=bilinear, expand=True, center=(1, 2), fill=3)"
    assert repr(T.Grayscale(3)) == "Grayscale(num_output_channels=3)"
    assert repr(T.ToTensor()) == "ToTensor()"
    assert repr(T.Normalize((0.5,), (0.5,))) == "Normalize(mean=(0.5,), std=(0.5,))"
    assert repr(T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])) == \
        "Compose(\n    ToTensor()\n    Normalize(mean=(0.5,), std=(0.5,))\n)"


@pytest.mark.parametrize("make, error, message", [
    (lambda: T.Resize(-1), ValueError, "size must be >= 1"),
    (lambda: T.Resize((2, 3, 4)), ValueError, "size must have 1 or 2 values"),
    (lambda: T.Resize(2.5), TypeError, "size must be a whole number"),
    (lambda: T.Resize("32"), TypeError, "size must be a sequence"),
    (lambda: T.Resize(8, max_size=8), ValueError, "max_size = 8 must be greater"),
    (lambda: T.Resize((8, 8), max_size=9), ValueError, "max_size is for an int size"),
    (lambda: T.Resize(8, interpolation="cubic"), TypeError, "interpolation must be"),
    (lambda: T.Resize(8, antialias="yes"), TypeError, "antialias must be True or False"),
    (lambda: T.CenterCrop(0), ValueError, "size must be >= 1"),
    (lambda: T.RandomCrop(4, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: T.RandomCrop(4, padding=(1, 2, 3)), ValueError, "padding must have 1 or 2 or 4 values"),
    (lambda: T.RandomCrop(4, padding_mode="wrap"), ValueError, "padding_mode must be one of"),
    (lambda: T.RandomCrop(4, fill="red"), TypeError, "fill must be a number"),
    (lambda: T.RandomHorizontalFlip(1.5), ValueError, r"p must be a probability in \[0, 1\]"),
    (lambda: T.RandomHorizontalFlip(-0.1), ValueError, "p must be a probability"),
    (lambda: T.RandomRotation(-10), ValueError, "must be finite and >= 0"),
    (lambda: T.RandomRotation((10, -10)), ValueError, "min <= max"),
    (lambda: T.RandomRotation((1, 2, 3)), ValueError, "degrees must have 2 values"),
    (lambda: T.RandomRotation(5, center=(1,)), ValueError, "center must have 2 values"),
    (lambda: T.Grayscale(2), ValueError, "num_output_channels must be 1 or 3"),
    (lambda: T.Normalize((0.5, 0.5), (0.5, 0.0)), ValueError, "contains 0"),
    (lambda: T.Normalize((), (1,)), TypeError, "mean must be a finite number"),
    (lambda: T.Normalize(0.5, "1"), TypeError, "std must be a finite number"),
    (lambda: T.Compose(T.ToTensor()), TypeError, "Compose takes a list"),
    (lambda: T.Compose([1]), TypeError, "callables"),
    (lambda: T.Resize(4)([[1.0]]), TypeError, "takes a PIL image or an image array"),
    (lambda: T.CenterCrop(4)(np.zeros((4, 4), np.float32)), ShapeError, r"got shape \(4, 4\)"),
    (lambda: T.Resize(4, T.InterpolationMode.LANCZOS)(np.zeros((1, 8, 8), np.float32)), ValueError, "Pillow"),
    (lambda: T.RandomRotation(5, BICUBIC)(np.zeros((1, 8, 8), np.float32)), ValueError, "nearest or bilinear"),
    (lambda: T.RandomCrop(2, padding=1, fill=(1, 2))(np.zeros((3, 4, 4), np.float32)), ValueError, "3 channels"),
])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message) as e:
        make()
    assert "\n" not in str(e.value)


# ---- the batch augmentation RandomCropFlip ---------------------------------------------------------------------

def _reference_crop_flip(x: np.ndarray, padding: int, seed: int) -> np.ndarray:
    """RandomCropFlip written out image by image from the same draws."""
    generator = np.random.default_rng(seed)
    n, _, h, w = x.shape
    top = generator.integers(0, 2 * padding + 1, size=n)
    left = generator.integers(0, 2 * padding + 1, size=n)
    mirror = generator.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        padded = np.pad(x[i], ((0, 0), (padding, padding), (padding, padding)))
        crop = padded[:, top[i]:top[i] + h, left[i]:left[i] + w]
        out[i] = crop[:, :, ::-1] if mirror[i] else crop
    return out


@pytest.mark.parametrize("seed, top, left, mirror, expected", [
    (7, 2, 1, False, [[3, 4], [0, 0]]),
    (0, 2, 1, True, [[4, 3], [0, 0]]),
    (4, 2, 2, False, [[4, 0], [0, 0]]),
    (6, 1, 1, True, [[2, 1], [4, 3]]),
])
def test_random_crop_flip_by_hand(seed, top, left, mirror, expected):
    # One image [[1, 2], [3, 4]] padded by 1: [[0 0 0 0] [0 1 2 0] [0 3 4 0] [0 0 0 0]]; the 2 x 2 window at
    # (top, left), mirrored or not, as drawn from the seed.
    generator = np.random.default_rng(seed)
    assert (generator.integers(0, 3), generator.integers(0, 3), generator.random() < 0.5) == (top, left, mirror)
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    np.testing.assert_array_equal(RandomCropFlip(padding=1, seed=seed)(x), [[expected]])


def test_random_crop_flip_matches_image_by_image():
    x = np.random.default_rng(5).random((300, 3, 8, 8), dtype=np.float32)
    out = RandomCropFlip(padding=4, seed=9)(x)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, _reference_crop_flip(x, 4, 9))
    np.testing.assert_array_equal(out, RandomCropFlip(4, seed=9)(x))  # the same seed, the same batch
    assert not np.array_equal(out, RandomCropFlip(4, seed=10)(x))
    augment = RandomCropFlip(4, seed=9)
    assert not np.array_equal(augment(x), augment(x))  # a new draw per call


def test_random_crop_flip_really_crops_and_flips():
    n = 2000
    x = np.broadcast_to(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) + 1, (n, 1, 4, 4)).copy()
    out = RandomCropFlip(padding=2, seed=1)(x)
    generator = np.random.default_rng(1)
    top, left, mirror = generator.integers(0, 5, n), generator.integers(0, 5, n), generator.random(n) < 0.5
    assert len(set(zip(top.tolist(), left.tolist()))) == 25 and 900 < mirror.sum() < 1100
    centred = (top == 2) & (left == 2)
    np.testing.assert_array_equal(out[centred & ~mirror], x[centred & ~mirror])
    np.testing.assert_array_equal(out[centred & mirror], x[centred & mirror][..., ::-1])
    assert (out[(top == 0) & (left == 0)][..., :2, :] == 0).all()  # moved down 2 rows: the top 2 are padding
    np.testing.assert_array_equal(RandomCropFlip(padding=0, flip=False, seed=0)(x), x)


def test_random_crop_flip_shapes_loader_and_errors():
    flat = np.arange(2 * 9, dtype=np.float32).reshape(2, 9)  # (N, H*W) of square images, as RandomAffine takes
    assert RandomCropFlip(1, seed=0)(flat).shape == (2, 9)
    assert RandomCropFlip(1, seed=0)(flat.reshape(2, 3, 3)).shape == (2, 3, 3)
    assert RandomCropFlip(1, seed=0)(np.zeros((4, 3, 5, 5), np.uint8)).dtype == np.uint8
    assert repr(RandomCropFlip()) == "RandomCropFlip(padding=4, flip=True)"
    x = np.random.default_rng(0).random((10, 3, 6, 6), dtype=np.float32)
    loader = DataLoader(TensorDataset(x, np.arange(10)), batch_size=4, transform=RandomCropFlip(2, seed=4))
    batches = [b for b, _ in loader]
    expected = RandomCropFlip(2, seed=4)
    for batch, start in zip(batches, (0, 4, 8)):
        np.testing.assert_array_equal(batch, expected(x[start:start + 4]))
    for bad in (-1, 1.5, True):
        with pytest.raises(ZerogradError, match="padding must be a whole number"):
            RandomCropFlip(bad)
    with pytest.raises(ZerogradError, match="flip must be True or False"):
        RandomCropFlip(4, flip="yes")


# ---- against torchvision itself, where it is installed -------------------------------------------------------

def test_same_as_torchvision():
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.transforms")
    tvf = pytest.importorskip("torchvision.transforms.functional")
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 7, 9), dtype=np.float32)
    image = Image.fromarray((x[0].transpose(1, 2, 0) * 255).astype(np.uint8))
    mode = {m: tv.InterpolationMode(m.value) for m in (NEAREST, BILINEAR, BICUBIC)}
    cases = [(T.Resize(4, m, antialias=a), tv.Resize(4, mode[m], antialias=a)) for m in mode for a in (True, False)]
    cases += [(T.Resize((9, 20), m), tv.Resize((9, 20), mode[m])) for m in mode]
    cases += [(T.Resize(3, max_size=4), tv.Resize(3, max_size=4)), (T.CenterCrop((4, 12)), tv.CenterCrop((4, 12))),
              (T.Grayscale(3), tv.Grayscale(3)), (T.Normalize((0.1, 0.2, 0.3), (0.3, 0.2, 0.1)),
                                                  tv.Normalize((0.1, 0.2, 0.3), (0.3, 0.2, 0.1)))]
    for ours, theirs in cases:
        assert repr(ours) == repr(theirs)
        np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).numpy(), atol=1e-5, err_msg=repr(ours))
        if not isinstance(ours, T.Normalize):
            assert np.array_equal(np.asarray(ours(image)), np.asarray(theirs(image))), repr(ours)
    for angle in (30.0, -77.7, 90.0):
        for m in (NEAREST, BILINEAR):
            for expand in (False, True):
                for center in (None, (1.0, 2.5)):
                    ours = T._rotate(x, angle, m, expand, center, (0.1, 0.2, 0.3))
                    theirs = tvf.rotate(torch.from_numpy(x), angle, mode[m], expand, center, [0.1, 0.2, 0.3])
                    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5)
                    ours = T._rotate(image, angle, m, expand, center, (1, 2, 3))
                    assert np.array_equal(np.asarray(ours), np.asarray(tvf.rotate(image, angle, mode[m], expand,
                                                                                  center, [1, 2, 3])))
    for padding, padding_mode in ((3, "constant"), ((1, 2), "edge"), ((1, 2, 3, 0), "reflect"), (2, "symmetric")):
        ours = T._pad(x, T.RandomCrop(1, padding)._ltrb, 0.5, padding_mode)
        np.testing.assert_array_equal(ours, tvf.pad(torch.from_numpy(x), padding, 0.5, padding_mode).numpy())
    pixels = (x[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    for pic in (pixels, image, image.convert("L"), image.convert("1"), image.convert("F"), image.convert("I")):
        ours, theirs = T.ToTensor()(pic), tv.ToTensor()(pic)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.data, theirs.numpy())
