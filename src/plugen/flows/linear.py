"""An invertible dense linear layer, LU-parametrised (the 1x1 convolution of Glow, Kingma and
Dhariwal 2018, on vectors): ``u = W z + b`` with ``W = P L (U + diag(sign * exp(log_s)))``.

``P`` is a fixed permutation, ``L`` unit lower triangular, ``U`` strictly upper triangular: the
log-determinant is ``sum(log_s)`` and the inverse two triangular solves, both exact and cheap.
:meth:`InvertibleLinear.initialize` sets ``W`` from any invertible matrix (a data-dependent start,
like ActNorm's), which is how PluGeN starts its label coordinates at a least-squares fit of the
labels (:meth:`plugen.PluGeN._initialize`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from plugen.flows.base import Flow


class InvertibleLinear(Flow):
    def __init__(self, features: int):
        super().__init__()
        self.features, self.context = features, 0
        self.lower = nn.Parameter(torch.zeros(features, features))
        self.upper = nn.Parameter(torch.zeros(features, features))
        self.log_s = nn.Parameter(torch.zeros(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("sign", torch.ones(features))
        self.register_buffer("perm", torch.eye(features))
        self.register_buffer("lower_mask", torch.tril(torch.ones(features, features), -1))

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.features, dtype=self.lower.dtype, device=self.lower.device)
        L = self.lower * self.lower_mask + eye
        U = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return L, U

    def _rows(self) -> Tensor:
        """Row order of ``P``: ``(P M)[i] = M[rows[i]]`` (a gather instead of an N x N product)."""
        return self.perm.argmax(dim=1)

    def weight(self) -> Tensor:
        L, U = self._factors()
        return (L @ U)[self._rows()]

    def _frozen(self) -> tuple[Tensor, Tensor]:
        """``W`` and ``W^-1`` in float64 for inference, recomputed only when the parameters
        change: an edit of one row must not pay two N x N products and two triangular solves,
        and float64 keeps ``F^-1(F(z)) = z`` exact to float32 rounding."""
        key = tuple(p._version for p in (self.lower, self.upper, self.log_s)) + (self.lower.dtype, self.lower.device)
        if getattr(self, "_cache", None) is None or self._cache[0] != key:
            W = self.weight().double()
            self._cache = (key, W, torch.linalg.inv(W))
        return self._cache[1], self._cache[2]

    def forward(self, z, context=None):
        log_det = self.log_s.sum().expand(z.shape[0])
        if torch.is_grad_enabled():
            if z.shape[0] < self.features:  # two row-wise products cost less than forming W
                L, U = self._factors()
                return (z @ U.T @ L.T)[:, self._rows()] + self.bias, log_det
            return z @ self.weight().T + self.bias, log_det
        return (z.double() @ self._frozen()[0].T).to(z.dtype) + self.bias, log_det

    def inverse(self, u, context=None):
        if not torch.is_grad_enabled():
            return ((u - self.bias).double() @ self._frozen()[1].T).to(u.dtype)
        L, U = self._factors()
        rhs = (u - self.bias) @ self.perm  # P^T (u - b), row-wise
        y = torch.linalg.solve_triangular(L, rhs.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(U, y, upper=True).T

    @torch.no_grad()
    def initialize(self, weight: Tensor, bias: Tensor) -> None:
        """Set ``W = weight`` (invertible) and ``b = bias``."""
        P, L, U = torch.linalg.lu(weight.to(torch.float64))
        diag = torch.diagonal(U)
        dtype = self.lower.dtype
        self.perm.copy_(P.to(dtype))
        self.lower.copy_(torch.tril(L, -1).to(dtype))
        self.upper.copy_(torch.triu(U, 1).to(dtype))
        self.sign.copy_(torch.sign(diag).to(dtype))
        self.log_s.copy_(torch.log(torch.abs(diag)).to(dtype))
        self.bias.copy_(bias.to(dtype))
