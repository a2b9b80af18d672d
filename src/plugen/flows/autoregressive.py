"""Autoregressive flows taken from zuko: conditional MAF (FPN section 2.3, eq. 6-10) and NSF.

Only zuko's transformation is used; the base distribution is the plugin's own. Evaluating the
normalising direction (``forward``) is one parallel pass; the inverse is sequential, one pass per
latent coordinate, so every FPN edit or sample with these flows costs ``features`` network passes.
"""

from __future__ import annotations

import zuko

from plugen.flows.base import Flow


class ZukoFlow(Flow):
    """Adapter from a ``zuko.flows.Flow`` to the plugin ``Flow`` interface."""

    zuko_class: type

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 5,
        hidden_features: int = 256,
        depth: int = 2,
        **kwargs,
    ):
        super().__init__()
        self.features, self.context = features, context
        self.flow = self.zuko_class(
            features,
            context,
            transforms=transforms,
            hidden_features=[hidden_features] * depth,
            **kwargs,
        )

    def forward(self, z, context=None):
        return self.flow.transform(context if self.context else None).call_and_ladj(z)

    def inverse(self, u, context=None):
        return self.flow.transform(context if self.context else None).inv(u)


class MAF(ZukoFlow):
    """Masked autoregressive flow with affine steps (Papamakarios et al. 2017), via zuko."""

    zuko_class = zuko.flows.MAF


class NSF(ZukoFlow):
    """Neural spline flow (Durkan et al. 2019): autoregressive rational-quadratic splines, via zuko."""

    zuko_class = zuko.flows.NSF
