"""A synthetic "pre-trained latent space" with known, entangled labels.

Labels are drawn with correlations (the two binary labels share a common cause, so some
combinations are rare), written into independent factors ``h`` together with free style factors,
and then pushed through a random invertible nonlinear mixing

    z = Q (h + a * tanh(M h)) * scale,

with ``Q`` a random rotation (every label spreads over every latent coordinate), ``a * ||M|| < 1``
(so the residual map is invertible) and a random per-coordinate scale (latents of uneven size, like
a plain autoencoder's). Nothing in ``z`` lines up with a label: a plugin has to learn the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABELS = {"a": "binary", "b": "binary", "size": "continuous", "shape": "categorical"}


@dataclass
class LatentDataset:
    Z: np.ndarray  # (n, N) float32 latents
    Y: np.ndarray  # (n, K) float64 labels, columns in the order of ``labels``
    labels: dict[str, str]

    def split(self, fraction: float, seed: int = 0) -> tuple[LatentDataset, LatentDataset]:
        order = np.random.default_rng(seed).permutation(len(self.Z))
        cut = int(round(len(self.Z) * fraction))
        first, second = order[:cut], order[cut:]
        return (
            LatentDataset(self.Z[first], self.Y[first], self.labels),
            LatentDataset(self.Z[second], self.Y[second], self.labels),
        )


def entangled(
    n: int = 4000, latent_dim: int = 16, correlation: float = 0.6, classes: int = 3, noise: float = 0.25, seed: int = 0
) -> LatentDataset:
    """Latents ``(n, latent_dim)`` with labels ``a``, ``b`` (binary, correlated), ``size``
    (continuous, in its own units: mean 10, sd 2) and ``shape`` (categorical, codes 0..classes-1).
    """
    if latent_dim < classes + 3:
        raise ValueError(f"latent_dim must be at least {classes + 3}")
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(n)
    a = (correlation * common + np.sqrt(1 - correlation**2) * rng.standard_normal(n)) > 0.3
    b = (correlation * common + np.sqrt(1 - correlation**2) * rng.standard_normal(n)) > -0.3
    size = 10 + 2 * (0.4 * common + np.sqrt(1 - 0.16) * rng.standard_normal(n))
    shape = rng.integers(0, classes, n)

    h = rng.standard_normal((n, latent_dim))  # style factors; label factors overwrite the first ones
    h[:, 0] = np.where(a, 1.0, -1.0) + noise * rng.standard_normal(n)
    h[:, 1] = np.where(b, 1.0, -1.0) + noise * rng.standard_normal(n)
    h[:, 2] = (size - 10) / 2
    centroids = 1.5 * np.eye(classes) - 0.5
    h[:, 3 : 3 + classes] = centroids[shape] + noise * rng.standard_normal((n, classes))

    Q, _ = np.linalg.qr(rng.standard_normal((latent_dim, latent_dim)))
    M = rng.standard_normal((latent_dim, latent_dim))
    M *= 0.9 / np.linalg.norm(M, 2)
    scale = np.exp(rng.uniform(-1, 1.5, latent_dim))
    Z = ((h + 0.9 * np.tanh(h @ M.T)) @ Q.T) * scale
    Y = np.column_stack([a, b, size, shape]).astype(np.float64)
    return LatentDataset(Z.astype(np.float32), Y, dict(LABELS))
