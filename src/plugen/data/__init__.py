"""Data sets for plugins: synthetic entangled latents (tests, benchmarks) and loaders."""

from plugen.data.synthetic import LatentDataset, entangled

__all__ = ["LatentDataset", "entangled"]
