"""Reference MNIST backbones: ConvVAE and ConvAE (FPN paper, section 5.1.1) and a small DCGAN.

Images are (n, 1, 28, 28) float32 in [0, 1]. The autoencoders follow the Flow Plugin Network paper:
an encoder of 2 blocks (Conv2d, BatchNorm2d, LeakyReLU) and a last Conv2d, a decoder of 3 blocks
(ConvTranspose2d, BatchNorm2d, ReLU) and a last ConvTranspose2d with a Sigmoid. The paper does not
give channel widths or kernels; the ones here are chosen to train in minutes on a CPU.

The weights shipped as ``mnist-vae``, ``mnist-ae`` and ``mnist-gan`` are produced by
``python -m plugen.backbones.train <name>``.

>>> import torch
>>> vae = ConvVAE(latent_dim=40).eval()
>>> vae.decode(vae.encode(torch.rand(2, 1, 28, 28))).shape
torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

from torch import Tensor, nn

from plugen.backbones.registry import architecture
from plugen.backbones.vae import ConvVAEPasses


def _encoder(out_channels: int, width: int = 32) -> nn.Sequential:
    """28x28 -> 14x14 -> 7x7 in 2 (Conv2d, BatchNorm2d, LeakyReLU) blocks, then a last Conv2d to 1x1."""
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1),
        nn.BatchNorm2d(width),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1),
        nn.BatchNorm2d(2 * width),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, out_channels, 7),
    )


def _decoder(latent_dim: int, width: int = 32) -> nn.Sequential:
    """1x1 -> 7x7 -> 14x14 -> 28x28 in 3 (ConvTranspose2d, BatchNorm2d, ReLU) blocks, then a last
    ConvTranspose2d with a Sigmoid."""
    return nn.Sequential(
        nn.ConvTranspose2d(latent_dim, 4 * width, 7),
        nn.BatchNorm2d(4 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 3, 1, 1),
        nn.Sigmoid(),
    )


@architecture
class ConvAE(nn.Module):
    """Plain convolutional autoencoder (the FPN paper's ConvAE, section 5.1.1): same layers as
    :class:`ConvVAE`, deterministic codes. Not generative by itself; a plugin makes it so."""

    def __init__(self, latent_dim: int = 40):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _encoder(latent_dim)
        self.decoder = _decoder(latent_dim)

    def encode(self, x: Tensor) -> Tensor:
        """Images (n, 1, 28, 28) -> codes (n, latent_dim)."""
        return self.encoder(x).flatten(1)

    def decode(self, z: Tensor) -> Tensor:
        """Codes (n, latent_dim) -> images (n, 1, 28, 28) in [0, 1]."""
        return self.decoder(z[:, :, None, None])

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


@architecture
class ConvVAE(ConvVAEPasses):
    """Convolutional VAE (the FPN paper's ConvVAE, section 5.1.1; 40-dim latent space): the
    encoder's last Conv2d outputs the mean and log-variance of q(z | x); prior N(0, I)."""

    def __init__(self, latent_dim: int = 40):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = _encoder(2 * latent_dim)
        self.decoder = _decoder(latent_dim)


@architecture
class DCGANGenerator(nn.Module):
    """Small DCGAN generator (Radford et al. 2016): z ~ N(0, I) (n, latent_dim) -> images
    (n, 1, 28, 28) in [0, 1]. It has no encoder: real digits are mapped to latents by
    :meth:`plugen.backbones.GANBackbone.invert`, as the PluGeN paper does for real images."""

    def __init__(self, latent_dim: int = 32, width: int = 64):
        super().__init__()
        self.latent_dim, self.width = latent_dim, width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 2 * width, 7, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


@architecture
class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator for 28x28 digits: one logit per image. Used only in training; not shipped."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 7),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()
