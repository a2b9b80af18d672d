"""Labelled samples of a generator that has no encoder (a GAN), as the PluGeN paper labels StyleGAN.

A GAN's latents of real images are not at hand, so the plugin is fitted on the generator's own
samples: draw latents from its prior ``N(0, I)``, decode them and read the labels from the pictures
with a classifier of one's own (the PluGeN paper's StyleGAN experiment labelled its samples with the
Microsoft Face API). Here only the share the classifier is surest of is kept, since a small
generator also draws samples that are no clear member of any class. Real images are then edited
through the GAN's inversion (:meth:`plugen.backbones.GANBackbone.invert`).

>>> Z, data = labelled_samples(load("mnist-gan"), 20000, mnist_reader(train), train.labels)  # doctest: +SKIP
>>> PluGeN(labels).fit(Z, data.Y[:, :3])                                                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from plugen.data.images import ImageDataset
from plugen.errors import InputError

#: ``read(images) -> (Y, confidence)``: labels (n, K) in a data set's label order, and how sure (n,)
Reader = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def labelled_samples(
    backbone, n: int, read: Reader, labels: dict[str, str], keep: float = 0.5, seed: int = 0, chunk: int = 2048
) -> tuple[np.ndarray, ImageDataset]:
    """``n`` latents drawn from ``N(0, I)`` and decoded; ``read`` labels the images; the ``keep``
    share with the highest confidence among rows with every label read is returned, as latents
    (m, latent_dim) float32 and an :class:`ImageDataset` of their images and labels."""
    if not 0 < keep <= 1:
        raise InputError(f"keep must be in (0, 1], got {keep}")
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    Z = np.random.default_rng(seed).standard_normal((int(n), backbone.latent_dim)).astype(np.float32)
    images = np.concatenate(
        [np.asarray(backbone.decode(Z[i : i + chunk]), np.float32) for i in range(0, len(Z), chunk)]
    )
    Y, confidence = read(images)
    Y, confidence = np.asarray(Y, np.float64), np.asarray(confidence, np.float64)
    if Y.shape != (len(Z), len(labels)) or confidence.shape != (len(Z),):
        raise InputError(
            f"read(images) must give labels ({len(Z)}, {len(labels)}) and confidence ({len(Z)},), "
            f"got {Y.shape} and {confidence.shape}"
        )
    readable = np.flatnonzero(np.isfinite(Y).all(axis=1) & np.isfinite(confidence))
    order = readable[np.argsort(-confidence[readable], kind="stable")]
    chosen = np.sort(order[: max(int(round(keep * len(Z))), 1)])
    return Z[chosen], ImageDataset(images[chosen], Y[chosen], dict(labels))


def mnist_reader(train: ImageDataset, seed: int = 0) -> Reader:
    """Reads MNIST labels off images as a user's own tools would: the digit by an RBF SVM on 50
    principal components of the pixels, fitted on ``train`` (not the experiments' judge, which is a
    CNN), its confidence the gap between its two highest decision values; thickness, slant and
    width by :func:`plugen.data.mnist.morphometry`."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    from plugen.data.mnist import LABELS, morphometry

    digit = list(train.labels).index("digit")
    svm = make_pipeline(PCA(50, random_state=seed), SVC(C=10)).fit(
        train.images.reshape(len(train), -1), train.Y[:, digit]
    )

    def read(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = images.reshape(len(images), -1)
        scores = np.sort(svm.decision_function(flat), axis=1)
        measured = morphometry(images)
        Y = np.column_stack([svm.predict(flat) if name == "digit" else measured[name] for name in LABELS])
        return Y, scores[:, -1] - scores[:, -2]

    return read
