"""PluGeN (Wołczyk et al., AAAI 2022): an unconditional flow whose first coordinates are labels.

``(c, s) = F^-1(z)``; the label coordinates ``c`` follow the priors of :mod:`plugen.priors` and the
style ``s`` is ``N(0, I)``. Training minimises eq. 3; editing sets ``c_i`` and maps back; sampling
draws ``c`` from the requested label components and ``s ~ N(0, T^2 I)``; classification reads
``c_i``. Edits need no source labels.

>>> from plugen.data import entangled
>>> data = entangled(n=2000, latent_dim=8)
>>> model = PluGeN(data.labels, max_epochs=5, progress=False).fit(data.Z, data.Y)
>>> model.edit(data.Z[:3], {"a": 1}).shape
(3, 8)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from plugen.checkpoint import estimator
from plugen.errors import InputError
from plugen.flows import Chain, Standardize
from plugen.flows.linear import InvertibleLinear
from plugen.flows.style import StyleScale
from plugen.labels import LabelSchema
from plugen.plugins.base import Plugin
from plugen.priors import PluGeNPrior, encode_targets, label_means


class PluGeNModel(nn.Module):
    """PluGeN's model: the flow ``F`` and the label prior of eq. 2 on its base space.

    ``flow`` chains a standardisation, an optional invertible linear map and the couplings;
    ``prior`` is :class:`plugen.priors.PluGeNPrior` over the first ``prior.width`` coordinates.
    """

    def __init__(self, flow: Chain, prior: PluGeNPrior, linear: bool):
        super().__init__()
        self.flow, self.prior, self.has_linear = flow, prior, linear

    @property
    def standardize(self) -> Standardize:
        """The first step of the flow: ``(z - mean) / std``."""
        return self.flow.flows[0]

    @property
    def linear(self) -> InvertibleLinear | None:
        """The invertible linear map after standardisation (``linear_init``), or None."""
        return self.flow.flows[1] if self.has_linear else None

    def nll(self, z: Tensor, t: Tensor) -> Tensor:
        """Negative of eq. 3: ``-log p(c, s | y) - log |det dF^-1/dz|`` per row."""
        u, log_det = self.flow(z)
        return -(self.prior.log_prob(u, t) + log_det)


@estimator
class PluGeN(Plugin):
    """PluGeN plugin.

    Args:
        labels: ordered ``{name: "binary" | "categorical" | "continuous" | [class names]}``; a list of
            class names declares a categorical label whose code ``i`` is the ``i``-th name.
        flow: ``"nice"`` (the paper's), ``"realnvp"``, ``"maf"`` or ``"nsf"``.
        transforms, hidden_features, depth: couplings (or autoregressive steps), width and
            number of hidden layers of each conditioner network.
        sigma: standard deviation of the two label components at -1 / +1 (eq. 2).
        continuous_sigma: standard deviation around a standardised continuous label.
        balanced_sigma: scale the two sigmas by the label's class balance (the paper's code).
        linear_init: start with an invertible linear layer whose first outputs are least-squares
            fits of the labels (False: the paper's plain flow, no linear layer).
        style_scale: end the flow with :class:`plugen.flows.style.StyleScale`, a style scale linear
            in the label coordinates, so that ``s`` of eq. 1 can be ``N(0, I)`` for every class also
            when a class's latents vary less than the others' (a volume-preserving NICE flow cannot
            rescale them otherwise); an edit then carries the style over at the new class's scale.
        batch_size, lr: rows per optimiser step and Adam's learning rate; None (the defaults): a batch
            of 768 at lr 4e-3 when the training rows fill 16 such batches, else 256 at 2e-3
            (:func:`plugen.training.resolve_batch_size`, :func:`plugen.training.resolve_lr`).
        max_epochs, val_fraction, weight_decay, grad_clip: training
            (:class:`plugen.training.TrainingConfig`).
        warmup_steps: steps over which the learning rate rises to ``lr``; None (the default):
            :func:`plugen.training.warmup_steps` picks them from the training rows.
        check_rows: 0 (the default): one scoring of the held-out rows per epoch, the rate halves on
            plateaus, and the fit stops after ``patience`` epochs without an improvement or once the
            best held-out NLL fell by less than ``min_gain`` nats per dimension over the second half
            of the training so far, whichever comes first
            (:class:`plugen.training.PatienceOrHalfGain`). Else training rows between scorings,
            across epoch boundaries (at most an epoch apart); after its warm-up the rate halves
            after three checks in a row without a new best, and only the ``min_gain`` test stops
            the fit (:class:`plugen.training.HalfGainStopping`).
            :data:`plugen.training.ROW_CHECKS` sets it with a larger batch and rate for large data.
        patience: with ``check_rows=0``, epochs without an improvement before training stops.
        min_gain: see ``check_rows``; 0 turns the half-gain test off.
        latent_noise: s >= 0; every training batch gets fresh Gaussian noise of ``s`` times each
            latent dimension's standard deviation (:func:`plugen.training.train`). Use about 0.1 for
            latents of a non-generative autoencoder, which lie near a low-dimensional manifold.
        restarts: fit this many flows, from seeds ``seed``, ``seed + 1``, ..., on the same held-out
            split, and keep the one with the lowest held-out NLL (as ``n_init`` in scikit-learn's
            GaussianMixture), since flows on the same data can land in different optima.
        seed: seeds initialisation, the held-out split and batching.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; dtype: ``"float32"`` or ``"float64"``.
        autocast: ``"bf16"`` trains under bfloat16 autocast (fast on recent GPUs); compile:
            wrap the training objective in ``torch.compile``.
        progress: show a progress bar while fitting.
        backbone: name of the model the latents come from (recorded and checked on load).
    """

    def __init__(
        self,
        labels: dict[str, str | list[str]],
        *,
        flow: str = "nice",
        transforms: int = 4,
        hidden_features: int = 256,
        depth: int = 2,
        sigma: float = 0.2,
        continuous_sigma: float = 0.2,
        balanced_sigma: bool = False,
        linear_init: bool = True,
        style_scale: bool = False,
        batch_size: int | None = None,
        lr: float | None = None,
        warmup_steps: int | None = None,
        max_epochs: int = 500,
        patience: int = 10,
        check_rows: int = 0,
        min_gain: float = 0.01,
        val_fraction: float = 0.1,
        weight_decay: float = 1e-3,
        grad_clip: float = 1.0,
        latent_noise: float = 0.0,
        restarts: int = 1,
        seed: int = 0,
        device: str = "auto",
        dtype: str = "float32",
        autocast: str | None = None,
        compile: bool = False,
        progress: bool = True,
        backbone: str | None = None,
    ):
        self._store_params(locals())

    # ---------------------------------------------------------------- training
    def _check_sizes(self, latent_dim, schema):
        super()._check_sizes(latent_dim, schema)
        if schema.width > latent_dim:
            raise InputError(
                f"the labels need {schema.width} base coordinates (one per binary/continuous label, "
                f"one per class of a categorical one) but the latents have only {latent_dim}"
            )

    def _build(self, latent_dim, schema, moments) -> PluGeNModel:
        flow = self._make_flow(latent_dim, 0, moments)
        if self.linear_init:
            flow.flows.insert(1, InvertibleLinear(latent_dim))
        if self.style_scale and schema.width < latent_dim:
            flow.flows.append(StyleScale(latent_dim, schema.width))
        prior = PluGeNPrior(schema, self.sigma, self.continuous_sigma, self.balanced_sigma)
        return PluGeNModel(flow, prior, linear=self.linear_init)

    @torch.no_grad()
    def _initialize(self, Z, T):
        """Start the label coordinates at a least-squares fit of the label targets.

        The invertible linear layer after standardisation is set so that its first C outputs are
        ridge regressions of the component means (eq. 2) on the standardised latents, and the
        others an orthonormal basis of what the regressions do not use. The flow then starts with
        the linearly decodable part of every label already in place and only learns the rest.
        """
        if not self.linear_init:
            return
        standardize, linear = self.module_.standardize, self.module_.linear
        X = standardize(Z)[0].double()
        targets = self.module_.prior.means(T).double()
        n, N = X.shape
        C = targets.shape[1]
        A, b = torch.zeros(C, N, dtype=X.dtype, device=X.device), torch.zeros(C, dtype=X.dtype, device=X.device)
        every_row = None  # the centred latents and their Gram matrix, shared by the labels known on every row
        for cols in self.module_.prior.slices:
            seen = ~torch.isnan(targets[:, cols.start])
            if bool(seen.all()):
                every_row = every_row if every_row is not None else _ridge_gram(X)
                x_mean, xc, gram = every_row
            else:
                x_mean, xc, gram = _ridge_gram(X[seen])
            t = targets[seen, cols]
            t_mean = t.mean(0)
            coef = torch.linalg.solve(gram, xc.T @ (t - t_mean))  # (N, width)
            A[cols], b[cols] = coef.T, t_mean - x_mean @ coef
        # full row rank: lift small singular values, then complete with an orthonormal basis
        U, S, Vh = torch.linalg.svd(A, full_matrices=True)
        S = torch.clamp(S, min=0.1 * float(S.max())) if float(S.max()) > 0 else torch.ones_like(S)  # constant labels
        rows = U @ torch.diag(S) @ Vh[:C]
        weight = torch.cat([rows, Vh[C:]], dim=0)
        linear.initialize(weight, torch.cat([b, torch.zeros(N - C, dtype=X.dtype, device=X.device)]))

    def _encode(self, schema: LabelSchema, Y: np.ndarray) -> np.ndarray:
        return encode_targets(schema, Y)

    def _nll(self, z, t):
        return self.module_.nll(z, t)

    # ---------------------------------------------------------------- inference
    def _edit(self, z, requests):
        """Set the requested label coordinates of ``(c, s) = F^-1(z)``, then map back with F."""
        flow, slices = self.module_.flow, self.module_.prior.slices
        u, _ = flow(z)
        for i, values in requests.items():
            u[:, slices[i]] = self._tensor(label_means(self.schema_.labels[i], values))
        return flow.inverse(u)

    def _sample(self, Y, noise, temperature):
        """``c ~ N(m(y), (T sigma)^2)`` (eq. 2) and ``s ~ N(0, T^2 I)`` (eq. 1), mapped back with F."""
        prior, noise = self.module_.prior, temperature * noise
        t = self._tensor(encode_targets(self.schema_, Y))
        c = prior.means(t) + prior.component_sigmas(t) * noise[:, : prior.width]
        return self.module_.flow.inverse(torch.cat([c, noise[:, prior.width :]], dim=1))

    def _posteriors(self, z):
        prior = self.module_.prior
        u, _ = self.module_.flow(z)
        c = u[:, : prior.width]
        binary = iter(prior.binary.proba(c).T) if prior.binary is not None else iter(())
        categorical = iter(part.proba(c) for part in prior.categorical)
        out = []
        for label, cols in zip(self.schema_.labels, prior.slices):
            if label.kind == "binary":
                out.append(next(binary))
            elif label.kind == "categorical":
                out.append(next(categorical))
            else:
                out.append(c[:, cols.start] * label.std + label.mean)
        return out


def _ridge_gram(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The column means of ``x``, ``x`` centred, and its Gram matrix with a ridge of 1e-3 per row."""
    x_mean = x.mean(0)
    xc = x - x_mean
    ridge = 1e-3 * max(1, x.shape[0]) * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return x_mean, xc, xc.T @ xc + ridge
