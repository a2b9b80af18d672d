"""Container for labelled image data sets: images (n, C, H, W) float32 in [0, 1] and labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ImageDataset:
    images: np.ndarray  # (n, C, H, W) float32 in [0, 1]
    Y: np.ndarray  # (n, K) float64 labels, columns in the order of ``labels``; NaN = missing
    labels: dict[str, str | list[str]]  # name -> "binary" | "categorical" | "continuous" | class names

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> ImageDataset:
        return ImageDataset(self.images[index], self.Y[index], dict(self.labels))

    def split(self, fraction: float, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """Random split: the first part has ``fraction`` of the rows."""
        order = np.random.default_rng(seed).permutation(len(self))
        cut = int(round(len(self) * fraction))
        return self.subset(order[:cut]), self.subset(order[cut:])

    def column(self, name: str) -> np.ndarray:
        return self.Y[:, list(self.labels).index(name)]
