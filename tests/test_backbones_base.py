"""The backbone protocol with a user's own callables: autoencoder, GAN inversion, latents only."""

import numpy as np
import pytest
import torch
from torch import nn

from plugen import InputError
from plugen.backbones import AutoencoderBackbone, GANBackbone, LatentsOnly


class TinyVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(6, 4), nn.Linear(2, 6)

    def encode(self, x):
        h = self.enc(x.reshape(len(x), -1))
        return h[:, :2], h[:, 2:]  # (mean, log variance)

    def decode(self, z):
        return torch.sigmoid(self.dec(z)).reshape(-1, 1, 2, 3)


def test_autoencoder_uses_the_vae_mean_and_converts_types():
    vae = TinyVAE()
    bb = AutoencoderBackbone(vae.encode, vae.decode, latent_dim=2, name="tiny", batch_size=4)
    x = np.random.default_rng(0).random((10, 1, 2, 3)).astype(np.float32)
    z = bb.encode(x)
    assert isinstance(z, np.ndarray) and z.shape == (10, 2)
    assert np.allclose(z, vae.encode(torch.as_tensor(x))[0].detach().numpy(), atol=1e-6)
    out = bb.decode(torch.as_tensor(z))
    assert isinstance(out, torch.Tensor) and out.shape == (10, 1, 2, 3)
    with pytest.raises(InputError, match=r"decodes latents of shape \(n, 2\)"):
        bb.decode(np.zeros((3, 5)))
    with pytest.raises(InputError, match="NaN"):
        bb.encode(np.full((2, 1, 2, 3), np.nan))


def test_modules_are_frozen():
    enc, dec = nn.Linear(3, 2), nn.Linear(2, 3)
    AutoencoderBackbone(enc, dec, 2)
    assert not any(p.requires_grad for p in [*enc.parameters(), *dec.parameters()])
    assert not enc.training


def test_gan_inversion_recovers_latents_of_generated_samples():
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 8))
    gan = GANBackbone(generator, latent_dim=3, name="toy-gan")
    z_true = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    x = gan.decode(z_true)
    z, err = gan.invert(x, steps=300, restarts=3, lr=0.05)
    assert z.shape == (5, 3) and err.shape == (5,)
    blank = ((x - x.mean(0)) ** 2).mean(axis=1)
    assert np.all(err < 0.05 * blank)
    with pytest.raises(InputError, match="use invert"):
        gan.encode(x)


def test_latents_only_has_no_decoder():
    bb = LatentsOnly(16, name="my-latents")
    assert bb.latent_dim == 16 and not bb.can_encode
    with pytest.raises(InputError, match="latents only"):
        bb.decode(np.zeros((1, 16)))
