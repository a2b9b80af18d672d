"""A linear baseline in the style of InterFaceGAN (Shen et al. 2020): attributes as directions.

For each binary label and each class of a categorical label, a logistic regression on the latents
gives a unit normal ``n`` of its decision boundary; for a continuous label, a ridge regression gives
its direction. Editing moves a latent along the requested direction, made orthogonal to the
directions of the other labels (InterFaceGAN's "conditional manipulation"), until the linear model
reads the requested value; for a class, to the signed distance that ``quantile`` (0.9) of that
class's training latents reach (deep enough on the class's side for the decoder to show it). Sampling draws latents from the backbone's prior ``N(0, I)`` and edits them.

Same interface as the plugins (``fit``, ``edit``, ``sample``, ``predict``) so the evaluation can
treat it as a third method. Needs scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from plugen.labels import LabelSchema


class LinearDirections:
    """InterFaceGAN-style linear attribute directions."""

    def __init__(self, labels: dict[str, str], C: float = 1.0, quantile: float = 0.9):
        self.labels, self.C, self.quantile = dict(labels), C, quantile

    def fit(self, Z: np.ndarray, Y: np.ndarray) -> LinearDirections:
        from sklearn.linear_model import LogisticRegression, Ridge

        Z = np.asarray(Z, np.float64)
        self.schema_ = LabelSchema(self.labels).fit(Y)
        self.directions_: dict[tuple[int, float], tuple[np.ndarray, float, float]] = {}
        self.negatives_: dict[int, float] = {}  # binary labels: how deep the y = 0 latents sit
        for k, label in enumerate(self.schema_.labels):
            seen = ~np.isnan(Y[:, k])
            z, y = Z[seen], Y[seen, k]
            if label.kind == "continuous":
                model = Ridge(alpha=1.0).fit(z, y)
                w = model.coef_
                self.directions_[(k, np.nan)] = (
                    w / np.linalg.norm(w),
                    float(model.intercept_),
                    float(np.linalg.norm(w)),
                )
                continue
            values = [1.0] if label.kind == "binary" else label.classes
            for value in values:
                model = LogisticRegression(C=self.C, max_iter=2000).fit(z, y == value)
                w, b = model.coef_[0], float(model.intercept_[0])
                norm = np.linalg.norm(w)
                signed = (z @ w + b) / norm
                target = float(np.quantile(signed[y == value], self.quantile))
                self.directions_[(k, float(value))] = (w / norm, b / norm, target)
                if label.kind == "binary":
                    self.negatives_[k] = float(np.quantile(signed[y != value], 1 - self.quantile))
        self.latent_dim_ = Z.shape[1]
        return self

    def _direction(self, k: int, value: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit direction for label ``k`` at ``value`` (orthogonal to the other labels'), and the
        signed distance each latent must reach along the raw normal."""
        label = self.schema_.labels[k]
        key = (k, np.nan) if label.kind == "continuous" else (k, 1.0 if label.kind == "binary" else float(value))
        normal = self.directions_[key][0]
        others = np.array([v[0] for (j, _), v in self.directions_.items() if j != k])
        direction = normal
        if len(others):
            q, _ = np.linalg.qr(others.T)
            direction = normal - q @ (q.T @ normal)
            direction /= np.linalg.norm(direction)
        return normal, direction

    def edit(self, Z, changes: Mapping[str, Any]) -> np.ndarray:
        Z = np.array(Z, np.float64)
        for k, values in self.schema_.requests(changes, len(Z)).items():
            label = self.schema_.labels[k]
            for value in np.unique(values):
                rows = values == value
                if label.kind == "continuous":
                    normal, _, norm = self.directions_[(k, np.nan)]
                    target = (value - self.directions_[(k, np.nan)][1]) / norm  # offset along the unit normal
                    current = Z[rows] @ normal
                else:
                    key = (k, 1.0) if label.kind == "binary" else (k, float(value))
                    normal, offset, distance = self.directions_[key]
                    target = distance
                    if label.kind == "binary":  # 0 -> where negatives sit, 1 -> positives, gradual between
                        target = self.negatives_[k] + value * (distance - self.negatives_[k])
                    current = Z[rows] @ normal + offset
                _, direction = self._direction(k, value)
                step = (target - current) / max(float(direction @ normal), 1e-6)
                Z[rows] += step[:, None] * direction
        return Z.astype(np.float32)

    def sample(
        self, n: int, conditions: Mapping[str, Any] | None = None, temperature: float = 1.0, seed: int | None = None
    ) -> np.ndarray:
        rng = np.random.default_rng(seed)
        Z = temperature * rng.standard_normal((n, self.latent_dim_))
        return self.edit(Z, conditions or {})

    def predict(self, Z) -> np.ndarray:
        Z = np.asarray(Z, np.float64)
        out = np.empty((len(Z), len(self.schema_)))
        for k, label in enumerate(self.schema_.labels):
            if label.kind == "continuous":
                normal, intercept, norm = self.directions_[(k, np.nan)]
                out[:, k] = Z @ normal * norm + intercept
            elif label.kind == "binary":
                normal, offset, _ = self.directions_[(k, 1.0)]
                out[:, k] = (Z @ normal + offset) > 0
            else:
                scores = np.stack(
                    [
                        Z @ self.directions_[(k, float(c))][0] + self.directions_[(k, float(c))][1]
                        for c in label.classes
                    ],
                    axis=1,
                )
                out[:, k] = np.asarray(label.classes)[scores.argmax(axis=1)]
        return out
