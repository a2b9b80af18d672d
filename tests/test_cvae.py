"""The cVAE baseline (plugen.lab.evaluation.cvae): shapes, conditioning, training, request semantics."""

import numpy as np
import pytest
import torch

from plugen.backbones.mnist import ConvVAE
from plugen.errors import InputError, NotFittedError
from plugen.lab.evaluation.cvae import CVAE, ConditionalConvVAE, PixelBackbone, train_cvae

LABELS = {"side": "categorical", "ink": "continuous"}


def toy(n=256, seed=0):
    """A block of ink on the left (side 0) or right (side 1) half, of intensity ``ink`` in [0.3, 1]."""
    rng = np.random.default_rng(seed)
    side, ink = rng.integers(0, 2, n), rng.uniform(0.3, 1.0, n)
    images = rng.uniform(0, 0.05, (n, 1, 28, 28)).astype(np.float32)
    for i in range(n):
        cols = slice(3, 12) if side[i] == 0 else slice(16, 25)
        images[i, 0, 6:22, cols] = ink[i]
    return images, np.column_stack([side, ink]).astype(float)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained():
    images, Y = toy(128)
    model = train_cvae(images, Y, LABELS, epochs=24, latent_dim=2, width=8, lr=5e-3, batch_size=32, progress=False)
    return model, images, Y


def test_module_shapes_and_size():
    vae = ConditionalConvVAE(latent_dim=40, condition_dim=12).eval()
    x, c = torch.rand(3, 1, 28, 28), torch.rand(3, 12)
    recon, mean, logvar = vae(x, c)
    assert recon.shape == x.shape and mean.shape == logvar.shape == (3, 40)
    assert 0 <= recon.min() and recon.max() <= 1
    # without a condition it is the mnist-vae backbone, parameter for parameter
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ConditionalConvVAE(40, 0)) == count(ConvVAE(40))


def test_condition_enters_encoder_and_decoder():
    vae = ConditionalConvVAE(latent_dim=8, condition_dim=3).eval()
    x, z = torch.rand(4, 1, 28, 28), torch.randn(4, 8)
    c1, c2 = torch.tensor([[1.0, 0, 0]]).expand(4, 3), torch.tensor([[0, 1.0, 0]]).expand(4, 3)
    with torch.no_grad():
        assert (vae.encode_stats(x, c1)[0] - vae.encode_stats(x, c2)[0]).abs().max() > 1e-4
        assert (vae.decode(z, c1) - vae.decode(z, c2)).abs().max() > 1e-4


@pytest.mark.slow
def test_conditions_encode_one_hot_and_standardised(trained):
    model, _, Y = trained
    c = model.conditions(np.array([[0, Y[:, 1].mean()], [1, Y[:, 1].mean() + Y[:, 1].std()]])).numpy()
    np.testing.assert_allclose(c, [[1, 0, 0], [0, 1, 1]], atol=1e-5)


def test_training_lowers_the_loss(trained):
    model, images, Y = trained
    untrained = CVAE(LABELS, epochs=0, latent_dim=2, width=8, progress=False).fit(images, Y)
    assert model.loss(images, Y) < 0.7 * untrained.loss(images, Y)
    assert model.history_[-1] < model.history_[0] and len(model.history_) == 24


def test_sample_honours_the_requested_class_and_value(trained):
    model = trained[0]
    left = model.sample(40, {"side": 0}, seed=1)[:, 0]
    right = model.sample(40, {"side": 1}, seed=1)[:, 0]
    assert left.shape == (40, 28, 28)
    left_side = lambda x: x[:, :, :14].mean(axis=(1, 2)) > x[:, :, 14:].mean(axis=(1, 2))  # noqa: E731
    assert left_side(left).mean() > 0.85 and (~left_side(right)).mean() > 0.85
    faint = model.sample(40, {"side": 0, "ink": 0.35}, seed=2)[:, 0, 6:22, 3:12].mean()
    strong = model.sample(40, {"side": 0, "ink": 0.95}, seed=2)[:, 0, 6:22, 3:12].mean()
    assert strong - faint > 0.25  # requested 0.6 apart


def test_sample_semantics_and_errors(trained):
    model = trained[0]
    np.testing.assert_array_equal(model.sample(5, seed=3), model.sample(5, seed=3))  # unnamed labels drawn, seeded
    with pytest.raises(InputError, match="unknown label 'digit'"):
        model.sample(2, {"digit": 1})
    with pytest.raises(InputError, match="unknown class"):
        model.sample(2, {"side": 7})
    with pytest.raises(InputError, match="n must be"):
        model.sample(0)
    with pytest.raises(NotFittedError):
        CVAE(LABELS).sample(2)
    with pytest.raises(InputError, match="shape"):
        CVAE(LABELS).fit(np.zeros((4, 28, 28), np.float32), np.zeros((4, 2)))
    assert PixelBackbone().decode(model.sample(2)).shape == (2, 1, 28, 28)


def test_time_budget_and_missing_labels():
    images, Y = toy(64)
    Y[:5, 1] = np.nan
    model = CVAE(LABELS, epochs=1000, seconds=0.3, latent_dim=2, width=4, progress=False).fit(images, Y)
    assert model.stopped_early_ and 0 < model.steps_ < 1000 and model.fit_seconds_ < 2
    assert model.dropped_rows_ == 5
