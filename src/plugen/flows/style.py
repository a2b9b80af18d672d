"""A style scale that depends on the labels: ``s -> s * exp(W c + b)``, ``c`` unchanged.

PluGeN eq. 1 makes the style ``s`` independent of the label coordinates ``c`` in the base space.
A NICE flow (additive couplings) preserves volume, so a class whose latents vary less than the
others (a circle does not change when rotated) keeps a style of smaller spread, and an edit into
that class carries the source's wider style off the class's data. This layer, placed last in the
normalising direction, lets the flow give every class its own style scale. Its log-scale is linear
in ``c``: additive over labels (a combination of classes never seen together gets the sum of their
log-scales) and bounded, ``B * tanh(raw / B)``, like RealNVP's. It starts as the identity.

>>> layer = StyleScale(6, label_width=2)
>>> u = torch.randn(4, 6)
>>> torch.allclose(layer.inverse(layer(u)[0]), u)
True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plugen.flows.base import Flow


class StyleScale(Flow):
    """``(c, s) -> (c, s * exp(g(c)))`` with ``g(c) = B tanh((W c + b) / B)``; log-det ``sum g(c)``."""

    def __init__(self, features: int, label_width: int, scale_bound: float = 2.0):
        super().__init__()
        if not 0 < label_width < features:
            raise ValueError(f"label_width must be between 1 and {features - 1}, got {label_width}")
        self.features, self.context, self.label_width = features, 0, label_width
        self.scale_bound = scale_bound
        self.weight = nn.Parameter(torch.zeros(features - label_width, label_width))
        self.bias = nn.Parameter(torch.zeros(features - label_width))

    def log_scale(self, c: Tensor) -> Tensor:
        """``g(c)`` per row and style coordinate."""
        raw = c @ self.weight.T + self.bias
        return self.scale_bound * torch.tanh(raw / self.scale_bound)

    def forward(self, x, context=None):
        c, s = x[:, : self.label_width], x[:, self.label_width :]
        g = self.log_scale(c)
        return torch.cat([c, s * torch.exp(g)], dim=1), g.sum(dim=1)

    def inverse(self, u, context=None):
        c, s = u[:, : self.label_width], u[:, self.label_width :]
        return torch.cat([c, s * torch.exp(-self.log_scale(c))], dim=1)
