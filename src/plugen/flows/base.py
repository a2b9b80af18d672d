"""The flow interface every plugin flow implements, and the small layers shared by all flows.

A flow is an invertible map between the backbone's latent space ``z`` and the flow's base space
``u``. Following the plugin papers, ``forward`` is the *normalising* direction (PluGeN eq. 3 uses
``F^-1(z)``, FPN eq. 14 uses ``T^-1(z | y)``: both name the map from latents to the base space):

    u, log_det = flow(z, context)      # log_det = log |det du/dz|   (FPN eq. 3 and 5)
    z = flow.inverse(u, context)

``context`` is the conditioning vector of a conditional flow (FPN) and ``None`` for PluGeN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Flow(nn.Module):
    """Base class: an invertible map with a tractable log-determinant."""

    #: number of latent coordinates the flow acts on
    features: int
    #: size of the conditioning vector (0: unconditional)
    context: int

    def forward(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        raise NotImplementedError


class Chain(Flow):
    """Composition of flows, applied left to right in the normalising direction (FPN eq. 4).

    >>> flow = Chain([Standardize(torch.zeros(3), torch.ones(3)), NICE(3)])  # doctest: +SKIP
    """

    def __init__(self, flows: list[Flow]):
        super().__init__()
        self.flows = nn.ModuleList(flows)
        self.features = flows[0].features
        self.context = max(f.context for f in flows)

    def forward(self, z, context=None):
        log_det = z.new_zeros(z.shape[0])
        for flow in self.flows:
            z, ld = flow(z, context)
            log_det = log_det + ld
        return z, log_det

    def inverse(self, u, context=None):
        for flow in reversed(self.flows):
            u = flow.inverse(u, context)
        return u


class Standardize(Flow):
    """Fixed affine map ``u = (z - mean) / std``; its log-determinant is ``-sum(log std)``.

    Put first in every plugin so that latents of any scale (a plain autoencoder's can be large)
    reach the learnable layers with unit variance. The statistics are buffers: saved, moved by
    ``.to()``, never trained.
    """

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        self.features = mean.numel()
        self.context = 0
        self.register_buffer("mean", mean.detach().clone().reshape(-1))
        self.register_buffer("std", std.detach().clone().reshape(-1))

    def forward(self, z, context=None):
        log_det = -torch.log(self.std).sum().expand(z.shape[0])
        return (z - self.mean) / self.std, log_det

    def inverse(self, u, context=None):
        return u * self.std + self.mean


class MLP(nn.Module):
    """Conditioner network: ``depth`` hidden layers of width ``hidden`` with LeakyReLU(0.1).

    The last layer starts at zero, so every coupling starts as the identity (a stable, fast start
    of training). Written with functional calls rather than ``nn.Sequential``: a flow runs
    dozens of these per edit, and the per-module call overhead dominates for one row.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int, depth: int):
        super().__init__()
        widths = [in_features] + [hidden] * depth + [out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = F.linear(x, layer.weight, layer.bias)
            if i < last:
                x = F.leaky_relu(x, 0.1)
        return x
