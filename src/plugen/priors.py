"""PluGeN's base distribution: label coordinates ``c`` first, style coordinates ``s`` after.

PluGeN eq. 1 factorises the base density given labels ``y`` as
``p(c, s | y) = prod_i p(c_i | y_i) * N(s; 0, I)``, and eq. 2 makes ``p(c_i | y_i)`` a Gaussian at
``m0 = -1`` (``y_i = 0``) or ``m1 = +1`` (``y_i = 1``). Extensions implemented here:

- continuous labels (PluGeN supplement): ``c_i ~ N(standardised y_i, sigma_c)``;
- categorical labels: one binary coordinate per class (the class's at +1, the others at -1);
- missing labels (NaN): marginalised exactly over the label's training distribution, i.e.
  ``p(c_i) = sum_y p(y) p(c_i | y)`` (for continuous labels over its stored quantiles);
- class-balanced sigmas (the paper's code): ``sigma_1 = sigma * sqrt(2 p)``,
  ``sigma_0 = sigma * sqrt(2 (1 - p))`` with ``p`` the frequency of ``y = 1``.

Targets are encoded per coordinate (:func:`encode_targets`): 0/1 for binary and one-hot
coordinates, the standardised value for continuous ones, NaN where the label is missing.
The marginal over a missing label is computed for every row and picked with ``torch.where``, also
when no label is missing: asking first whether any is would make the host wait for a GPU at every
training step.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from plugen.labels import Label, LabelSchema

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def normal_log_prob(x: Tensor, mean, sigma) -> Tensor:
    return (
        -0.5 * ((x - mean) / sigma) ** 2
        - torch.log(torch.as_tensor(sigma, dtype=x.dtype, device=x.device))
        - LOG_SQRT_2PI
    )


def label_slices(schema: LabelSchema) -> list[slice]:
    """Coordinates of each label inside the label block ``c``."""
    slices, start = [], 0
    for label in schema.labels:
        slices.append(slice(start, start + label.width))
        start += label.width
    return slices


def label_targets(label: Label, values: np.ndarray) -> np.ndarray:
    """Targets (n, width) of one label's observed values: the value for binary, the standardised
    value for continuous, one-hot for categorical."""
    if label.kind == "binary":
        return values.reshape(-1, 1)
    if label.kind == "continuous":
        return ((values - label.mean) / label.std).reshape(-1, 1)
    onehot = np.zeros((values.size, label.width))
    onehot[np.arange(values.size), label.class_index(values)] = 1.0
    return onehot


def label_means(label: Label, values: np.ndarray) -> np.ndarray:
    """Centres (n, width) of the label coordinates for requested values (PluGeN eq. 2 with
    m0 = -1, m1 = +1): ``2 v - 1`` for binary (gradual for 0 < v < 1), +-1 for one-hot
    coordinates, the standardised value for continuous labels."""
    t = label_targets(label, values)
    return t if label.kind == "continuous" else 2 * t - 1


def encode_targets(schema: LabelSchema, Y: np.ndarray) -> np.ndarray:
    """Per-coordinate targets (n, C) for label values Y (n, K); missing labels stay NaN."""
    out = np.full((Y.shape[0], schema.width), np.nan)
    for label, cols, y in zip(schema.labels, label_slices(schema), Y.T):
        seen = ~np.isnan(y)
        out[seen, cols] = label_targets(label, y[seen])
    return out


class _TwoComponent(nn.Module):
    """Shared part of binary-like coordinates: Gaussians at -1 and +1 with per-coordinate sigmas."""

    def _set(self, p: Tensor, sigma: float, balanced: bool):
        p = p.double()
        if balanced:
            sigmas = torch.stack([sigma * torch.sqrt(2 * (1 - p)), sigma * torch.sqrt(2 * p)])
        else:
            sigmas = torch.full((2, p.numel()), float(sigma), dtype=torch.float64)
        self.register_buffer("sigma", sigmas)

    def _component_log_probs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return normal_log_prob(x, -1.0, self.sigma[0]), normal_log_prob(x, 1.0, self.sigma[1])


class BinaryPrior(_TwoComponent):
    """All binary labels at once: PluGeN eq. 2 per coordinate, mixture over ``y`` when missing."""

    def __init__(self, coords: list[int], frequencies: list[float], sigma: float, balanced: bool):
        super().__init__()
        p = torch.tensor(frequencies, dtype=torch.float64)
        self.register_buffer("coords", torch.tensor(coords, dtype=torch.long))
        self.register_buffer("log_prior", torch.stack([torch.log1p(-p), torch.log(p)]))
        self._set(p, sigma, balanced)

    def log_prob(self, c: Tensor, t: Tensor) -> Tensor:
        x, target = c[:, self.coords], t[:, self.coords]
        l0, l1 = self._component_log_probs(x)
        observed = torch.where(target > 0.5, l1, l0)
        absent = torch.isnan(target)
        missing = torch.logaddexp(self.log_prior[0] + l0, self.log_prior[1] + l1)
        return torch.where(absent, missing, observed).sum(dim=1)

    def proba(self, c: Tensor) -> Tensor:
        """P(y = 1 | c) for each binary label (Bayes rule with the training frequency)."""
        l0, l1 = self._component_log_probs(c[:, self.coords])
        return torch.sigmoid(self.log_prior[1] + l1 - self.log_prior[0] - l0)


class CategoricalPrior(_TwoComponent):
    """One categorical label: one coordinate per class; the class's coordinate at +1."""

    def __init__(self, start: int, frequencies: list[float], sigma: float, balanced: bool):
        super().__init__()
        p = torch.tensor(frequencies, dtype=torch.float64)
        self.start, self.width = start, p.numel()
        self.register_buffer("log_prior", torch.log(p))
        self._set(p, sigma, balanced)

    def _class_scores(self, x: Tensor) -> Tensor:
        # log p(class k) + log p(c | class k), up to the class-independent sum of l0
        l0, l1 = self._component_log_probs(x)
        return l0.sum(dim=1, keepdim=True) + (l1 - l0) + self.log_prior

    def log_prob(self, c: Tensor, t: Tensor) -> Tensor:
        x, target = c[:, self.start : self.start + self.width], t[:, self.start : self.start + self.width]
        l0, l1 = self._component_log_probs(x)
        observed = torch.where(target > 0.5, l1, l0).sum(dim=1)
        absent = torch.isnan(target[:, 0])
        missing = torch.logsumexp(self._class_scores(x), dim=1)
        return torch.where(absent, missing, observed)

    def proba(self, c: Tensor) -> Tensor:
        """P(class | c), shape (n, number of classes)."""
        return torch.softmax(self._class_scores(c[:, self.start : self.start + self.width]), dim=1)


class ContinuousPrior(nn.Module):
    """All continuous labels: ``c ~ N(standardised y, sigma)``; missing ``y`` marginalised over
    the label's training quantiles."""

    def __init__(self, coords: list[int], quantiles: Tensor, sigma: float):
        super().__init__()
        self.register_buffer("coords", torch.tensor(coords, dtype=torch.long))
        self.register_buffer("quantiles", quantiles.double())  # (labels, G), standardised
        self.sigma = float(sigma)

    def log_prob(self, c: Tensor, t: Tensor) -> Tensor:
        x, target = c[:, self.coords], t[:, self.coords]
        seen = ~torch.isnan(target)
        observed = normal_log_prob(x, torch.where(seen, target, 0.0), self.sigma)
        grid = normal_log_prob(x.unsqueeze(-1), self.quantiles, self.sigma)
        missing = torch.logsumexp(grid, dim=-1) - math.log(self.quantiles.shape[-1])
        return torch.where(seen, observed, missing).sum(dim=1)


class PluGeNPrior(nn.Module):
    """The full base density of PluGeN eq. 3: label coordinates then ``N(0, I)`` style."""

    def __init__(self, schema: LabelSchema, sigma: float, continuous_sigma: float, balanced: bool):
        super().__init__()
        self.width = schema.width
        self.slices = label_slices(schema)
        self.kinds = [label.kind for label in schema.labels]
        self.sigma, self.continuous_sigma = float(sigma), float(continuous_sigma)
        binary_like = torch.ones(self.width, dtype=torch.bool)
        for s, kind in zip(self.slices, self.kinds):
            if kind == "continuous":
                binary_like[s] = False
        self.register_buffer("binary_like", binary_like)
        binary = [(s.start, lab.frequencies[0]) for s, lab in zip(self.slices, schema.labels) if lab.kind == "binary"]
        continuous = [(s.start, lab) for s, lab in zip(self.slices, schema.labels) if lab.kind == "continuous"]
        self.binary = BinaryPrior([b[0] for b in binary], [b[1] for b in binary], sigma, balanced) if binary else None
        self.continuous = None
        if continuous:
            q = torch.tensor(
                [[(v - lab.mean) / lab.std for v in lab.quantiles] for _, lab in continuous], dtype=torch.float64
            )
            self.continuous = ContinuousPrior([c[0] for c in continuous], q, continuous_sigma)
        self.categorical = nn.ModuleList(
            CategoricalPrior(s.start, lab.frequencies, sigma, balanced)
            for s, lab in zip(self.slices, schema.labels)
            if lab.kind == "categorical"
        )

    def parts(self):
        return [p for p in (self.binary, self.continuous, *self.categorical) if p is not None]

    def log_prob(self, u: Tensor, targets: Tensor) -> Tensor:
        """``log p(c, s | y)`` of eq. 1-3 per row; ``targets`` from :func:`encode_targets`."""
        c, s = u[:, : self.width], u[:, self.width :]
        out = normal_log_prob(s, 0.0, 1.0).sum(dim=1)
        for part in self.parts():
            out = out + part.log_prob(c, targets)
        return out

    def component_sigmas(self, targets: Tensor) -> Tensor:
        """Sigma of the Gaussian each target coordinate is drawn from (sampling, eq. 2)."""
        sig = torch.full_like(targets, self.continuous_sigma)
        if self.binary is not None:
            pick = targets[:, self.binary.coords] > 0.5
            sig[:, self.binary.coords] = torch.where(pick, self.binary.sigma[1], self.binary.sigma[0])
        for part in self.categorical:
            cols = slice(part.start, part.start + part.width)
            sig[:, cols] = torch.where(targets[:, cols] > 0.5, part.sigma[1], part.sigma[0])
        return sig

    def means(self, targets: Tensor) -> Tensor:
        """Component means of the label coordinates: ``2 t - 1`` for binary and one-hot
        coordinates (so 0 < t < 1 is a gradual intensity), the standardised value otherwise."""
        return torch.where(self.binary_like, 2 * targets - 1, targets)
