"""Backbones: the frozen generative models plugins condition, behind one small protocol."""

from plugen.backbones.base import AutoencoderBackbone, Backbone, GANBackbone, LatentsOnly
from plugen.backbones.registry import architecture, available, describe, load

__all__ = [
    "AutoencoderBackbone",
    "Backbone",
    "GANBackbone",
    "LatentsOnly",
    "architecture",
    "available",
    "describe",
    "load",
]
