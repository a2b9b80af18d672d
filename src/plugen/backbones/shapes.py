"""Reference Shapes backbone: a convolutional VAE for the procedural Shapes images
(:mod:`plugen.data.shapes`, (n, 3, 32, 32) float32 in [0, 1]).

Same design as the MNIST ConvVAE of the FPN paper (section 5.1.1), one stride-2 level deeper for
32x32 RGB. Latent size 16: the images have about 8 generative factors (shape, colour with its hue
jitter, size, x, y, rotation), so 16 leaves room while keeping the latents small enough for fast
plugins, and it is well above the 5 labelled attributes a PluGeN plugin reserves coordinates for.
The shipped ``shapes-vae`` (width 64) is trained with the KL term weighted 0.25 (a beta-VAE with
beta < 1, Higgins et al. 2017): small squares and triangles keep their corners, which judging the
shape of generated images needs. It is trained, without labels, on all shape x colour combinations
at any rotation, as a pretrained model would be; the plugins see only the labelled, correlated
training split (:mod:`plugen.data.shapes`).

The shipped weights are produced by ``python -m plugen.backbones.train shapes-vae --device cuda``.

>>> import torch
>>> vae = ShapesVAE().eval()
>>> vae.decode(torch.zeros(2, 16)).shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from torch import nn

from plugen.backbones.registry import architecture
from plugen.backbones.vae import ConvVAEPasses


@architecture
class ShapesVAE(ConvVAEPasses):
    """Convolutional VAE for 32x32 RGB Shapes: encoder 32 -> 16 -> 8 -> 4 in (Conv2d, BatchNorm2d,
    LeakyReLU) blocks and a last Conv2d giving mean and log-variance; decoder 1 -> 4 -> 8 -> 16 in
    (ConvTranspose2d, BatchNorm2d, ReLU) blocks and a last ConvTranspose2d with a Sigmoid."""

    def __init__(self, latent_dim: int = 16, width: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1),
            nn.BatchNorm2d(w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.BatchNorm2d(2 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
            nn.BatchNorm2d(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 2 * latent_dim, 4),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 4 * w, 4),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1),
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.ConvTranspose2d(w, 3, 4, 2, 1),
            nn.Sigmoid(),
        )
