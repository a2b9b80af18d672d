"""Coupling flows in plain PyTorch: NICE and RealNVP, each optionally conditioned on a context.

Each coupling keeps one half of the coordinates and transforms the other half with a function of
the kept half (and of the context, concatenated to the conditioner's input as in FPN section 3.2).
Consecutive couplings swap the roles of the two halves, so two couplings touch every coordinate.

- NICE (Dinh et al. 2014; the flow of the PluGeN paper): additive coupling
  ``b' = b + t(a)`` (log-det 0) followed by a learnable diagonal scaling ``u = exp(s) * x``.
- RealNVP (Dinh et al. 2017; FPN eq. 11-13): affine coupling ``b' = b * exp(s(a)) + t(a)`` with
  a bounded scale ``s = B * tanh(raw / B)`` so that a single step can never explode.

>>> flow = NICE(8, transforms=4, hidden_features=64)
>>> z = torch.randn(5, 8)
>>> u, log_det = flow(z)
>>> torch.allclose(flow.inverse(u), z, atol=1e-5)
True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plugen.flows.base import MLP, Flow


class Coupling(nn.Module):
    """One coupling layer. ``swap`` selects which half is kept (conditioned on) and which changes."""

    def __init__(self, features, context, hidden_features, depth, swap, affine, scale_bound):
        super().__init__()
        self.split = features // 2
        self.swap = swap
        self.affine = affine
        self.scale_bound = scale_bound
        kept = features - self.split if swap else self.split
        changed = features - kept
        self.net = MLP(kept + context, changed * (2 if affine else 1), hidden_features, depth)

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = x[:, : self.split], x[:, self.split :]
        return (b, a) if self.swap else (a, b)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([changed, kept] if self.swap else [kept, changed], dim=1)

    def _shift_scale(self, kept: Tensor, context: Tensor | None):
        h = kept if context is None else torch.cat([kept, context], dim=1)
        out = self.net(h)
        if not self.affine:
            return out, None
        raw, shift = out.chunk(2, dim=1)
        return shift, self.scale_bound * torch.tanh(raw / self.scale_bound)

    def forward(self, x, context=None):
        kept, changed = self._halves(x)
        shift, log_scale = self._shift_scale(kept, context)
        if log_scale is None:
            return self._join(kept, changed + shift), x.new_zeros(x.shape[0])
        return self._join(kept, changed * torch.exp(log_scale) + shift), log_scale.sum(dim=1)

    def inverse(self, y, context=None):
        kept, changed = self._halves(y)
        shift, log_scale = self._shift_scale(kept, context)
        if log_scale is None:
            return self._join(kept, changed - shift)
        return self._join(kept, (changed - shift) * torch.exp(-log_scale))


class CouplingFlow(Flow):
    """A stack of ``transforms`` couplings with alternating halves."""

    affine = False

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 4,
        hidden_features: int = 256,
        depth: int = 2,
        scale_bound: float = 2.0,
    ):
        super().__init__()
        if features < 2:
            raise ValueError(f"coupling flows need at least 2 latent dimensions, got {features}")
        self.features, self.context = features, context
        self.couplings = nn.ModuleList(
            Coupling(features, context, hidden_features, depth, i % 2 == 1, self.affine, scale_bound)
            for i in range(transforms)
        )

    def _check_context(self, context):
        if self.context and context is None:
            raise ValueError(f"this flow is conditional: it needs a context of size {self.context}")
        return context if self.context else None

    def forward(self, z, context=None):
        context = self._check_context(context)
        log_det = z.new_zeros(z.shape[0])
        for coupling in self.couplings:
            z, ld = coupling(z, context)
            log_det = log_det + ld
        return z, log_det

    def inverse(self, u, context=None):
        context = self._check_context(context)
        for coupling in reversed(self.couplings):
            u = coupling.inverse(u, context)
        return u


class NICE(CouplingFlow):
    """NICE: additive couplings plus a diagonal scaling layer (NICE section 3.3; PluGeN's flow)."""

    def __init__(self, features: int, context: int = 0, **kwargs):
        super().__init__(features, context, **kwargs)
        self.log_scale = nn.Parameter(torch.zeros(features))

    def forward(self, z, context=None):
        x, log_det = super().forward(z, context)
        return x * torch.exp(self.log_scale), log_det + self.log_scale.sum()

    def inverse(self, u, context=None):
        return super().inverse(u * torch.exp(-self.log_scale), context)


class RealNVP(CouplingFlow):
    """RealNVP: affine couplings with a bounded log-scale (FPN eq. 11-13)."""

    affine = True
