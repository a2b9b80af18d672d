"""The label-dependent linear layer that starts FPN's conditional flow.

A conditional flow first learns the latents' density and only slowly the part that depends on the
labels. This layer gives that part a direct path, a Gaussian per label value:

    u = L(y) (z - m(y)),    L(y) lower triangular with diagonal exp(d(y)),
    log |det du/dz| = sum_i d_i(y)                        (FPN eq. 3 for one layer)

``m`` and ``d`` are linear in the whole context ``y``; the strictly lower part of ``L`` is a shared
matrix plus, for the context columns listed in ``class_columns`` (the one-hot columns of
categorical labels), one matrix per column. With one categorical label that is quadratic
discriminant analysis (a covariance per class); without class columns it is linear discriminant
analysis with per-value spreads. The following flow then refines it. :meth:`ContextLinear.initialize`
sets the layer to the least-squares / shrunk-covariance fit, so FPN's Bayes classifier
(FPN eq. 15-17) starts from QDA instead of from nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from plugen.flows.base import Flow

#: matrix entries per batched triangular solve in ``inverse`` (each row needs an N x N matrix)
SOLVE_ENTRIES = 2**24


class ContextLinear(Flow):
    """``u = L(y) (z - m(y))``; see the module docstring. Starts at the identity.

    Args:
        features: latent size N.
        context: context size C.
        class_columns: context columns that get their own lower-triangular part (a covariance
            per class); (1 + len(class_columns)) N^2 parameters.
        scale_bound: bound B on the log-diagonal, ``d = B tanh(raw / B)``.
    """

    def __init__(self, features: int, context: int, class_columns: Sequence[int] = (), scale_bound: float = 3.0):
        super().__init__()
        self.features, self.context, self.scale_bound = features, context, scale_bound
        self.shift = nn.Linear(context, features)
        self.log_diag = nn.Linear(context, features)
        for p in (*self.shift.parameters(), *self.log_diag.parameters()):
            nn.init.zeros_(p)
        # lower[0]: shared; lower[1 + i]: scaled by context column class_columns[i]
        self.lower = nn.Parameter(torch.zeros(1 + len(class_columns), features, features))
        self.register_buffer("class_columns", torch.as_tensor(list(class_columns), dtype=torch.long))
        self.register_buffer("mask", torch.tril(torch.ones(features, features), diagonal=-1))

    def _diag(self, context: Tensor) -> Tensor:
        return self.scale_bound * torch.tanh(self.log_diag(context) / self.scale_bound)

    def _lower(self) -> Tensor:
        """The strictly lower parts; kept between calls at inference, where re-masking the
        (1 + classes) N x N matrices would cost more than a one-row edit itself."""
        if torch.is_grad_enabled():
            return self.lower * self.mask
        key = (self.lower._version, self.lower.data_ptr(), self.lower.dtype, self.lower.device)
        if getattr(self, "_cache", None) is None or self._cache[0] != key:
            self._cache = (key, self.lower * self.mask)
        return self._cache[1]

    def _weights(self, context: Tensor) -> Tensor:
        """(B, 1 + len(class_columns)): how much of each lower part a row uses."""
        return torch.cat([torch.ones_like(context[:, :1]), context[:, self.class_columns]], dim=1)

    def forward(self, z, context=None):
        x = z - self.shift(context)
        d = self._diag(context)
        # sum_c w_c (O_c x): a few (B, N) x (N, N) products, no per-row matrices
        per_part = torch.einsum("cij,bj->bci", self._lower(), x)
        u = x * torch.exp(d) + torch.einsum("bc,bci->bi", self._weights(context), per_part)
        return u, d.sum(dim=1)

    def _matrices(self, context: Tensor, d: Tensor) -> Tensor:
        """``L(y)`` for each row of ``context``: (B, N, N)."""
        return torch.einsum("bc,cij->bij", self._weights(context), self._lower()) + torch.diag_embed(d.exp())

    def inverse(self, u, context=None):
        """``z = L(y)^-1 u + m(y)``. Rows that share a context (discrete labels: one value per
        sample or edit target) share one triangular solve; otherwise one N x N matrix per row,
        built and solved in chunks of ``SOLVE_ENTRIES`` entries."""
        contexts, group = torch.unique(context, dim=0, return_inverse=True)
        if contexts.shape[0] < u.shape[0]:
            L = self._matrices(contexts, self._diag(contexts))
            z = torch.empty_like(u)
            for k in range(contexts.shape[0]):
                rows = (group == k).nonzero()[:, 0]
                z[rows] = torch.linalg.solve_triangular(L[k], u[rows].T, upper=False).T
            return z + self.shift(context)
        d = self._diag(context)
        parts, chunk = [], max(1, SOLVE_ENTRIES // self.features**2)
        for i in range(0, u.shape[0], chunk):
            L = self._matrices(context[i : i + chunk], d[i : i + chunk])
            parts.append(torch.linalg.solve_triangular(L, u[i : i + chunk, :, None], upper=False)[..., 0])
        return torch.cat(parts) + self.shift(context)

    @torch.no_grad()
    def initialize(self, x: Tensor, context: Tensor, shrinkage: float = 0.1) -> None:
        """Least-squares start on standardised latents ``x`` (n, N) with their contexts (n, C).

        ``m(y)`` is the ridge regression of ``x`` on the context (linear discriminant means).
        ``L`` whitens the residuals: ``chol(S)^-1`` of their covariance ``S`` shrunk to
        ``(1 - a) S + a I``, pooled over all rows for the shared part and, for each class column,
        over that class's rows minus the pooled one.
        """
        x, context = x.double(), context.double()
        n, N = x.shape
        X = torch.cat([torch.ones_like(context[:, :1]), context], dim=1)
        ridge = 1e-3 * n * torch.eye(X.shape[1], dtype=x.dtype, device=x.device)
        coef = torch.linalg.solve(X.T @ X + ridge, X.T @ x)  # (1 + C, N)
        self.shift.weight.copy_(coef[1:].T)
        self.shift.bias.copy_(coef[0])
        residual = x - X @ coef
        eye = torch.eye(N, dtype=x.dtype, device=x.device)

        def whitening(r: Tensor) -> Tensor:
            cov = (1 - shrinkage) * torch.cov(r.T) + shrinkage * eye
            return torch.linalg.inv(torch.linalg.cholesky(cov))

        def raw(W: Tensor) -> Tensor:  # the log-diagonal before the tanh bound
            log_d = torch.log(torch.diagonal(W)).clamp(-0.99 * self.scale_bound, 0.99 * self.scale_bound)
            return self.scale_bound * torch.atanh(log_d / self.scale_bound)

        pooled = whitening(residual)
        self.log_diag.bias.copy_(raw(pooled))
        self.lower[0].copy_(pooled * self.mask)
        for i, j in enumerate(self.class_columns.tolist()):
            rows = context[:, j] > 0.5
            if int(rows.sum()) <= N:  # too few rows for a covariance: keep the pooled one
                continue
            W = whitening(residual[rows])
            self.log_diag.weight[:, j] = raw(W) - raw(pooled)
            self.lower[1 + i].copy_((W - pooled) * self.mask)
