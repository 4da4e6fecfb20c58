"""Tests for zerograd.images: user digit images prepared like MNIST digits."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zerograd.errors import DataError, ZerogradError
from zerograd.images import load_digit_bytes, load_digit_image, preprocess_digit_array

REPO = Path(__file__).resolve().parent.parent
MNIST_TEST_IMAGES = REPO / "zerograd" / "datasets" / "data" / "t10k-images-idx3-ubyte.gz"
pytestmark = pytest.mark.filterwarnings("error")

# The first twelve test digits: 7 2 1 0 4 1 4 9 5 9 0 6 - every stroke style, two thin 1s.
DIGITS = range(12)


@pytest.fixture(scope="module")
def mnist() -> np.ndarray:
    with gzip.open(MNIST_TEST_IMAGES) as f:
        data = f.read(16 + 28 * 28 * len(DIGITS))
    return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def best_shift_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation allowing a one-pixel shift: MNIST rounded its centring, so a thin 1 may sit a pixel over."""
    return max(correlation(np.roll(a, (dr, dc), axis=(0, 1)), b) for dr in (-1, 0, 1) for dc in (-1, 0, 1))


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    idx = np.arange(a.shape[0])
    return float(a.sum(axis=1) @ idx / a.sum()), float(a.sum(axis=0) @ idx / a.sum())


def upscale(digit: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.LANCZOS))


def assert_like_mnist(out: np.ndarray, original: np.ndarray, min_corr: float = 0.9) -> None:
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert best_shift_correlation(out, original / 255.0) > min_corr
    r, c = centre_of_mass(out)
    assert abs(r - 14) <= 1 and abs(c - 14) <= 1


# Each variant turns an MNIST digit (28x28 uint8, white on black) into a file a user might give us.
def _png(tmp: Path, d: np.ndarray) -> Path:
    Image.fromarray(d).save(tmp / "digit.png")
    return tmp / "digit.png"


def _inverted_png(tmp: Path, d: np.ndarray) -> Path:
    Image.fromarray(255 - d).save(tmp / "dark_on_light.png")
    return tmp / "dark_on_light.png"


def _upscaled_png(tmp: Path, d: np.ndarray) -> Path:
    Image.fromarray(255 - upscale(d, (280, 280))).save(tmp / "big.png")
    return tmp / "big.png"


def _non_square_canvas(tmp: Path, d: np.ndarray) -> Path:
    # 120 wide, 200 high, light paper, the digit off-centre: cropping and centring must find it.
    canvas = np.full((200, 120), 255, np.uint8)
    canvas[20:120, 15:115] = 255 - upscale(d, (100, 100))
    Image.fromarray(canvas).save(tmp / "canvas.png")
    return tmp / "canvas.png"


def _rgb_jpeg(tmp: Path, d: np.ndarray) -> Path:
    # Blue ink on light grey paper, saved lossy.
    big = upscale(d, (140, 140)).astype(np.float64) / 255.0
    paper = np.array([235.0, 235.0, 230.0])
    ink = np.array([20.0, 40.0, 160.0])
    rgb = paper * (1 - big[..., None]) + ink * big[..., None]
    Image.fromarray(rgb.round().astype(np.uint8), "RGB").save(tmp / "photo.jpg", quality=85)
    return tmp / "photo.jpg"


def _rgba_dark_on_transparent(tmp: Path, d: np.ndarray) -> Path:
    # What drawing apps export: black strokes whose alpha is the ink, on a transparent canvas.
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = d
    Image.fromarray(rgba, "RGBA").save(tmp / "drawn.png")
    return tmp / "drawn.png"


def _rgba_light_on_transparent(tmp: Path, d: np.ndarray) -> Path:
    # White strokes on a transparent canvas: invisible on white, so this must fall back to black.
    rgba = np.full((56, 56, 4), 255, np.uint8)
    rgba[..., 3] = upscale(d, (56, 56))
    Image.fromarray(rgba, "RGBA").save(tmp / "white_ink.png")
    return tmp / "white_ink.png"


def _palette_gif(tmp: Path, d: np.ndarray) -> Path:
    Image.fromarray(255 - d).convert("P").save(tmp / "digit.gif")
    return tmp / "digit.gif"


def _sixteen_bit_png(tmp: Path, d: np.ndarray) -> Path:
    Image.fromarray(d.astype(np.uint16) * 257).save(tmp / "digit16.png")
    return tmp / "digit16.png"


VARIANTS = {
    "png": (_png, 0.99),
    "inverted": (_inverted_png, 0.99),
    "upscaled-280": (_upscaled_png, 0.9),
    "canvas-120x200": (_non_square_canvas, 0.9),
    "rgb-jpeg": (_rgb_jpeg, 0.9),
    "rgba-dark": (_rgba_dark_on_transparent, 0.99),
    "rgba-light": (_rgba_light_on_transparent, 0.9),
    "palette-gif": (_palette_gif, 0.99),
    "16-bit-png": (_sixteen_bit_png, 0.99),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_files_of_mnist_digits_come_back_as_the_digit(tmp_path: Path, mnist: np.ndarray, variant: str) -> None:
    make, min_corr = VARIANTS[variant]
    plain = []
    for i in DIGITS:
        out = load_digit_image(make(tmp_path, mnist[i]))
        assert_like_mnist(out, mnist[i], min_corr)
        plain.append(correlation(out, mnist[i] / 255.0))
    # Without shift tolerance too, the typical digit is reproduced closely.
    assert np.median(plain) > 0.95


def test_lossless_28x28_digit_is_reproduced_almost_exactly(mnist: np.ndarray) -> None:
    # A digit that already is an MNIST digit passes through nearly unchanged: up to a whole-pixel
    # centring choice, the stretch of its brightest pixel to 1, its faintest anti-aliasing (below 5%)
    # dropped as noise, and at most a slight rescale when a faint edge row falls outside the crop.
    for i in DIGITS:
        out = preprocess_digit_array(mnist[i])
        expected = mnist[i] / float(mnist[i].max())
        diffs = [np.abs(np.roll(out, (dr, dc), axis=(0, 1)) - expected) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
        best = min(diffs, key=lambda d: d.mean())
        assert best.mean() < 0.002 and best.max() < 0.25, i


def test_float_and_integer_arrays_agree(mnist: np.ndarray) -> None:
    d = mnist[0]
    a = preprocess_digit_array(d)
    np.testing.assert_allclose(preprocess_digit_array(d / 255.0), a, atol=1e-6)
    np.testing.assert_allclose(preprocess_digit_array((d / 255.0).astype(np.float32)), a, atol=1e-5)
    np.testing.assert_allclose(preprocess_digit_array(255 - d), a, atol=1e-6)


def test_grey_paper_and_faint_noise_are_ignored(mnist: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    d = mnist[2]
    canvas = np.full((300, 300), 190.0)  # paper in dim light
    canvas += rng.uniform(-20, 20, canvas.shape)  # sensor noise
    canvas[120:230, 40:150] -= 150 * upscale(d, (110, 110)).astype(np.float64) / 255.0  # pencil digit, not full black
    canvas[10:14, 280:284] -= 25  # a smudge in a corner, above the ink threshold, must not stretch the box
    out = preprocess_digit_array(np.clip(canvas, 0, 255).astype(np.uint8))
    assert_like_mnist(out, d)


def test_detached_part_of_a_digit_is_kept_and_scattered_specks_do_not_crash() -> None:
    img = np.zeros((120, 120), np.uint8)
    img[30:110, 55:65] = 255  # a stem of 800 pixels
    img[19:21, 45:75] = 255  # a cap 9 rows above: 7% of the ink, under the speck share, but close
    out = preprocess_digit_array(img)
    rows = np.flatnonzero(out.max(axis=1) > 0.1)
    assert rows[-1] - rows[0] + 1 == 20
    assert np.count_nonzero(out[rows[0]] > 0.1) >= 4  # the top row is the wide cap, not the stem
    dots = np.zeros((200, 200), np.uint8)
    dots[::30, ::30] = 255  # ink in many equal, far-apart groups: no group is "the digit"
    assert preprocess_digit_array(dots).shape == (28, 28)


def test_aspect_ratio_is_kept_within_the_20x20_box() -> None:
    bar = np.zeros((50, 200), np.uint8)
    bar[20:30, :] = 255  # a "minus": 200 wide, 10 high -> 20 wide, 1 high
    out = preprocess_digit_array(bar)
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert cols[-1] - cols[0] + 1 == 20
    assert rows[-1] - rows[0] + 1 <= 2
    stroke = np.zeros((300, 100), np.uint8)
    stroke[:, 40:60] = 255  # a tall "1": 300 high -> 20 high, about 1.3 wide
    out = preprocess_digit_array(stroke)
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 <= 3


def test_lopsided_digit_is_not_cut_off() -> None:
    # A thin stem with a heavy blob on top: its centre of mass is near the top, so centring it exactly
    # would push the stem out of the field; the whole digit must stay visible instead.
    img = np.zeros((100, 100), np.uint8)
    img[0:100, 48:52] = 255
    img[0:15, 20:80] = 255
    out = preprocess_digit_array(img)
    rows = np.flatnonzero(out.max(axis=1) > 0.1)
    assert rows[-1] - rows[0] + 1 >= 19
    assert rows[0] >= 0 and rows[-1] <= 27


def test_exif_rotation_is_applied(tmp_path: Path, mnist: np.ndarray) -> None:
    d = mnist[0]  # a 7: rotating it 180 degrees changes it a lot
    stored = Image.fromarray(255 - upscale(d, (112, 112))).rotate(180)
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: the camera says "rotate 180 to display"
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert_like_mnist(load_digit_image(tmp_path / "phone.jpg"), d)


@pytest.mark.parametrize(
    "image",
    [np.full((40, 40), 255, np.uint8), np.zeros((40, 40), np.uint8), np.full((40, 40), 128, np.uint8)],
    ids=["white", "black", "grey"],
)
def test_blank_image_file_is_refused(tmp_path: Path, image: np.ndarray) -> None:
    path = tmp_path / "blank.png"
    Image.fromarray(image).save(path)
    with pytest.raises(DataError, match=r"no digit found in .*blank\.png"):
        load_digit_image(path)


def test_nearly_blank_array_is_refused() -> None:
    img = np.full((40, 40), 200, np.uint8)
    img[15:25, 18:22] = 190  # a barely visible mark, below any sensible ink contrast
    with pytest.raises(DataError, match="no digit found in the image array"):
        preprocess_digit_array(img)


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.png: no such file"):
        load_digit_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="is a folder"):
        load_digit_image(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n")
    with pytest.raises(DataError, match=r"notes\.png is not an image Pillow can read"):
        load_digit_image(text)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(buf, "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DataError, match=r"cut\.png could not be decoded"):
        load_digit_image(cut)


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.zeros((28, 28, 3), np.uint8), "must be a 2-D grayscale array"),
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.full((5, 5), 300, np.int32), "must hold 0..255"),
        (np.full((5, 5), 2.0), "must hold 0..1"),
        (np.full((5, 5), np.nan), "NaN"),
        (np.full((5, 5), "a"), "integer or float array"),
    ],
    ids=["rgb", "empty", "int-range", "float-range", "nan", "strings"],
)
def test_bad_arrays(arr: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        preprocess_digit_array(arr)


def test_missing_pillow_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ZerogradError, match=r'pip install "zerograd\[images\]"'):
        load_digit_image(tmp_path / "digit.png")
    with pytest.raises(ZerogradError, match=r'pip install "zerograd\[images\]"'):
        preprocess_digit_array(np.zeros((28, 28), np.uint8))


def test_bytes_of_a_file_give_what_the_file_gives(tmp_path: Path, mnist: np.ndarray) -> None:
    """load_digit_bytes (uploads) shares load_digit_image's decoding and preprocessing."""
    for variant, (make, _) in VARIANTS.items():
        path = make(tmp_path, mnist[DIGITS[0]])
        np.testing.assert_array_equal(load_digit_bytes(path.read_bytes()), load_digit_image(path), err_msg=variant)
    with pytest.raises(DataError, match="^the upload is not an image Pillow can read"):
        load_digit_bytes(b"not a picture", where="the upload")
    blank = io.BytesIO()
    Image.new("L", (50, 50), 255).save(blank, "PNG")
    with pytest.raises(DataError, match="^no digit found in the image: the image is blank"):
        load_digit_bytes(blank.getvalue())
    with pytest.raises(DataError, match=r"^the image is too large to be a digit image \(50x50 pixels\)"):
        load_digit_bytes(blank.getvalue(), max_pixels=49 * 50)
