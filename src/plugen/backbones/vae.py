"""The passes shared by the shipped convolutional VAEs (:class:`~plugen.backbones.mnist.ConvVAE`,
:class:`~plugen.backbones.shapes.ShapesVAE`): an ``encoder`` whose output holds the mean and
log-variance of q(z | x) at 1x1, and a ``decoder`` from a 1x1 latent to an image in [0, 1].
A plugin sees the posterior mean; training uses the reparametrised sample (Kingma & Welling, 2014)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvVAEPasses(nn.Module):
    """Base class: subclasses set ``latent_dim``, ``encoder`` and ``decoder``."""

    latent_dim: int
    encoder: nn.Module
    decoder: nn.Module

    def encode_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images -> (mean, log-variance) of q(z | x), each (n, latent_dim)."""
        mean, logvar = self.encoder(x).flatten(1).chunk(2, dim=1)
        return mean, logvar

    def encode(self, x: Tensor) -> Tensor:
        """Images -> posterior means (n, latent_dim): the latent code a plugin sees."""
        return self.encode_stats(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Latents (n, latent_dim) -> images in [0, 1]."""
        return self.decoder(z[:, :, None, None])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: (reconstruction of a reparametrised sample, mean, log-variance)."""
        mean, logvar = self.encode_stats(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        return self.decode(z), mean, logvar
