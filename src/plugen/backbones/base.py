"""The backbone protocol and adapters for a user's own model.

A backbone is the frozen generative model a plugin conditions:

- ``latent_dim``: size of its latent codes;
- ``decode(z) -> x``: latents (n, latent_dim) to samples (images: float arrays (n, C, H, W) in [0, 1]);
- ``encode(x) -> z`` (optional): samples to latents. An autoencoder has one (a VAE returns its
  mean); a GAN has none and is inverted by optimisation (:meth:`GANBackbone.invert`, the PluGeN
  paper's recipe for editing real images with a GAN).

Numpy in gives numpy out; a tensor in gives a tensor out on the same device. Work runs in batches
under ``torch.inference_mode`` on the backbone's device.

>>> import torch.nn as nn
>>> bb = AutoencoderBackbone(nn.Linear(4, 2), nn.Linear(2, 4), latent_dim=2, name="toy")
>>> bb.decode(bb.encode(np.zeros((3, 4), dtype=np.float32))).shape
(3, 4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from plugen.errors import InputError


class Backbone:
    """Base class: batching, conversion and checks around ``_encode`` / ``_decode``."""

    name: str = "backbone"
    latent_dim: int
    batch_size: int = 512

    @property
    def can_encode(self) -> bool:
        return type(self)._encode is not Backbone._encode

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def encode(self, x):
        """Samples -> latents (n, latent_dim)."""
        if not self.can_encode:
            raise InputError(f"backbone {self.name!r} has no encoder" + self._no_encoder_hint())
        return self._batched(self._encode, x, "samples")

    def decode(self, z):
        """Latents (n, latent_dim) -> samples."""
        z_shape = tuple(z.shape)
        if len(z_shape) != 2 or z_shape[1] != self.latent_dim:
            raise InputError(f"backbone {self.name!r} decodes latents of shape (n, {self.latent_dim}), got {z_shape}")
        return self._batched(self._decode, z, "latents")

    def _no_encoder_hint(self) -> str:
        return ""

    def _encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def _batched(self, fn: Callable[[Tensor], Tensor], data, what: str):
        is_tensor = isinstance(data, Tensor)
        source = data if is_tensor else torch.as_tensor(np.asarray(data, dtype=np.float32))
        if source.ndim < 2 or source.shape[0] == 0:
            raise InputError(
                f"{what} for backbone {self.name!r} must be a non-empty batch, got shape {tuple(source.shape)}"
            )
        if source.is_floating_point() and not torch.isfinite(source).all():
            raise InputError(f"{what} for backbone {self.name!r} contain NaN or Inf")
        outputs = []
        with torch.inference_mode():
            for i in range(0, source.shape[0], self.batch_size):
                chunk = source[i : i + self.batch_size].to(self.device, torch.float32)
                outputs.append(fn(chunk).float())
        out = torch.cat(outputs)
        if is_tensor:
            return out.to(data.device)
        return out.cpu().numpy()


def _as_callable(fn: Callable | nn.Module) -> Callable:
    if isinstance(fn, nn.Module):
        fn.eval()
        for p in fn.parameters():
            p.requires_grad_(False)
    return fn


def _module_device(*fns: Any) -> torch.device:
    for fn in fns:
        if isinstance(fn, nn.Module):
            for p in fn.parameters():
                return p.device
    return torch.device("cpu")


class AutoencoderBackbone(Backbone):
    """A user's autoencoder or VAE from two callables (or ``nn.Module``s), kept frozen.

    If the encoder returns a tuple (a VAE's ``(mean, log_var)``), its first element, the mean, is
    the latent code.
    """

    def __init__(
        self,
        encoder: Callable | nn.Module,
        decoder: Callable | nn.Module,
        latent_dim: int,
        name: str = "autoencoder",
        batch_size: int = 512,
    ):
        self.encoder, self.decoder = _as_callable(encoder), _as_callable(decoder)
        self.latent_dim, self.name, self.batch_size = int(latent_dim), name, batch_size
        self._device = _module_device(encoder, decoder)

    @property
    def device(self) -> torch.device:
        return self._device

    def _encode(self, x):
        z = self.encoder(x)
        z = z[0] if isinstance(z, (tuple, list)) else z
        z = z.reshape(z.shape[0], -1)
        if z.shape[1] != self.latent_dim:
            raise InputError(f"encoder of {self.name!r} returned {z.shape[1]}-dim codes, expected {self.latent_dim}")
        return z

    def _decode(self, z):
        return self.decoder(z)


class GANBackbone(Backbone):
    """A GAN generator, kept frozen; real samples are mapped to latents by :meth:`invert`."""

    def __init__(self, generator: Callable | nn.Module, latent_dim: int, name: str = "gan", batch_size: int = 512):
        self.generator = _as_callable(generator)
        self.latent_dim, self.name, self.batch_size = int(latent_dim), name, batch_size
        self._device = _module_device(generator)

    @property
    def device(self) -> torch.device:
        return self._device

    def _no_encoder_hint(self) -> str:
        return ": a GAN is inverted by optimisation, use invert(x)"

    def _decode(self, z):
        return self.generator(z)

    def invert(
        self, x, steps: int = 300, restarts: int = 4, lr: float = 0.05, seed: int = 0, latent_penalty: float = 1e-3
    ):
        """Latents whose decodings reconstruct ``x``: Adam on ``z`` from ``restarts`` random starts,
        keeping per sample the start with the lowest error.

        Minimises ``mean((G(z) - x)^2) + latent_penalty * mean(z^2)`` (the penalty keeps ``z``
        where the generator was trained). Returns ``(z, error)``: latents (n, latent_dim) and the
        per-sample mean squared reconstruction error, numpy or tensors like ``x``.
        """
        is_tensor = isinstance(x, Tensor)
        target = (x if is_tensor else torch.as_tensor(np.asarray(x, dtype=np.float32))).to(self.device, torch.float32)
        if target.ndim < 2 or target.shape[0] == 0:
            raise InputError(f"samples to invert must be a non-empty batch, got shape {tuple(target.shape)}")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        n = target.shape[0]
        best_z = torch.zeros(n, self.latent_dim, device=self.device)
        best_err = torch.full((n,), float("inf"), device=self.device)
        for _ in range(restarts):
            z = torch.randn(n, self.latent_dim, generator=gen).to(self.device).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                err = ((self.generator(z) - target) ** 2).reshape(n, -1).mean(dim=1)
                loss = err.sum() + latent_penalty * (z**2).mean(dim=1).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                err = ((self.generator(z) - target) ** 2).reshape(n, -1).mean(dim=1)
                better = err < best_err
                best_z[better], best_err[better] = z.detach()[better], err[better]
        if is_tensor:
            return best_z.to(x.device), best_err.to(x.device)
        return best_z.cpu().numpy(), best_err.cpu().numpy()


class LatentsOnly(Backbone):
    """No model at all: latents the user already has (.npy / .csv / .pt). Records the latent size
    and a name so plugins can refuse latents from somewhere else."""

    def __init__(self, latent_dim: int, name: str = "latents"):
        self.latent_dim, self.name = int(latent_dim), name

    def decode(self, z):
        raise InputError(f"backbone {self.name!r} is latents only: it has no decoder")
