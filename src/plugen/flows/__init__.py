"""Invertible flows and a registry of them by name (``flow="nice" | "realnvp" | "maf" | "nsf"``)."""

from __future__ import annotations

from plugen.flows.autoregressive import MAF, NSF
from plugen.flows.base import Chain, Flow, Standardize
from plugen.flows.coupling import NICE, RealNVP

FLOWS: dict[str, type[Flow]] = {"nice": NICE, "realnvp": RealNVP, "maf": MAF, "nsf": NSF}


def build_flow(name: str, features: int, context: int = 0, **options) -> Flow:
    """Build the flow registered as ``name`` on ``features`` latent coordinates.

    >>> build_flow("realnvp", 16, context=3, transforms=4).context
    3
    """
    try:
        cls = FLOWS[name]
    except KeyError:
        raise ValueError(f"unknown flow {name!r}; choose one of {sorted(FLOWS)}") from None
    return cls(features, context, **options)


__all__ = ["FLOWS", "MAF", "NICE", "NSF", "Chain", "Flow", "RealNVP", "Standardize", "build_flow"]
