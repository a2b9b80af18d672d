"""Flow Plugin Network (Wielopolski et al.): a conditional flow ``p(z | y)`` on the latents.

Training minimises FPN eq. 14. Generation draws ``u ~ N(0, T^2 I)`` and returns ``T(u | y)``
(section 3.3); editing computes ``u = T^-1(z | y)``, changes ``y`` and maps back (section 3.5);
classification is Bayes' rule ``argmax_y p(z | y) p(y)`` (eq. 15-17). With ``classifier_weight``
``beta > 0`` training adds ``-beta log p(y | z)`` of that rule for every known discrete label: the
hybrid generative-discriminative objective of Nalisnick et al. (ICML 2019), not in the FPN paper.

The context vector holds, per label, its value (binary as ``2y - 1``, categorical one-hot,
continuous standardised) and a "known" flag. Missing labels get flag 0; training also hides each
label with probability ``label_dropout``, so the flow learns ``p(z | some labels)``. That is what
lets the Bayes classifier handle several labels: each label is scored first with the others
unknown, then with the others fixed at their first-pass predictions.

>>> from plugen.data import entangled
>>> data = entangled(n=2000, latent_dim=8)
>>> fpn = FPN(data.labels, max_epochs=5, progress=False).fit(data.Z, data.Y)
>>> fpn.predict(data.Z[:2]).shape
(2, 4)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from plugen.checkpoint import estimator
from plugen.flows import Chain, Standardize
from plugen.flows.context import ContextLinear
from plugen.labels import LabelSchema
from plugen.plugins.base import Plugin, _labels_array
from plugen.priors import LOG_SQRT_2PI, encode_targets, label_slices

#: rows scored per chunk by the Bayes classifier (rows x support values)
CLASSIFIER_CHUNK = 65536
#: ``covariance="auto"`` gives each class its own covariance up to this many parameters
PER_CLASS_MAX_PARAMS = 2**22


class FPNModel(nn.Module):
    """FPN's model: the conditional flow ``T(u | y)`` (FPN eq. 14) with its context layer.

    ``flow`` chains a standardisation, the context layer (:class:`plugen.flows.context.ContextLinear`,
    class-conditional Gaussians) and the conditional couplings. Buffers: ``label_columns`` (which
    context columns belong to each label) and, for the hybrid objective, ``candidates_k``: the
    contexts of every value of discrete label ``k``.
    """

    def __init__(self, flow: Chain, label_columns: Tensor, candidates: dict[int, Tensor]):
        super().__init__()
        self.flow = flow
        self.register_buffer("label_columns", label_columns)
        for k, values in candidates.items():
            self.register_buffer(f"candidates_{k}", values, persistent=False)

    @property
    def standardize(self) -> Standardize:
        """The first step of the flow: ``(z - mean) / std``."""
        return self.flow.flows[0]

    @property
    def context_layer(self) -> ContextLinear:
        """The class-conditional affine layer after standardisation."""
        return self.flow.flows[1]

    def candidates(self, k: int) -> Tensor:
        """Contexts of every value of discrete label ``k`` (values, width + K)."""
        return getattr(self, f"candidates_{k}")

    def nll(self, z: Tensor, context: Tensor) -> Tensor:
        """Negative of FPN eq. 14 with a standard normal base, per row."""
        u, log_det = self.flow(z, context)
        log_base = -0.5 * (u**2).sum(dim=1) - u.shape[1] * LOG_SQRT_2PI
        return -(log_base + log_det)


def encode_context(schema: LabelSchema, Y: np.ndarray) -> np.ndarray:
    """Context (n, width + K): label values (0 where missing) then one known-flag per label."""
    t = encode_targets(schema, Y)
    for label, cols in zip(schema.labels, label_slices(schema)):
        if label.kind == "binary":
            t[:, cols] = 2 * t[:, cols] - 1
    known = (~np.isnan(Y)).astype(np.float64)
    return np.concatenate([np.nan_to_num(t, nan=0.0), known], axis=1)


def label_columns(schema: LabelSchema) -> np.ndarray:
    """(K, width + K) 0/1 matrix: which context columns belong to each label."""
    width = schema.width
    member = np.zeros((len(schema), width + len(schema)))
    for k, cols in enumerate(label_slices(schema)):
        member[k, cols] = 1.0
        member[k, width + k] = 1.0
    return member


@estimator
class FPN(Plugin):
    """Flow Plugin Network.

    Args:
        labels: ordered ``{name: "binary" | "categorical" | "continuous" | [class names]}``; a list of
            class names declares a categorical label whose code ``i`` is the ``i``-th name.
        flow: ``"realnvp"`` (fast inverse), ``"maf"`` (the paper's best; sequential inverse),
            ``"nsf"`` or ``"nice"``; all conditional.
        label_dropout: probability of hiding each label from a training row.
        covariance: covariance of the first, label-dependent linear layer
            (:mod:`plugen.flows.context`): ``"per-class"`` (each class of a categorical label its
            own: starts as quadratic discriminant analysis), ``"shared"`` (one for all, with
            per-value spreads: linear discriminant analysis) or ``"auto"`` (per-class while it
            needs at most ``PER_CLASS_MAX_PARAMS`` parameters, (1 + classes) x latent size^2).
        classifier_weight: beta >= 0. Training minimises ``-log p(z | y) - beta log p(y_k | z, y_-k)``
            summed over the known binary and categorical labels ``y_k``, the second term being
            Bayes' rule (eq. 15-17) over all values of ``y_k`` with the other labels as given.
            0 (default) is the paper's maximum likelihood (eq. 14). Use it when the plugin is
            wanted as a classifier (about 10; the image results page compares both), at the cost
            of one extra flow pass per class value in training and a slightly worse likelihood.
            Early stopping and ``restarts`` then watch this objective.
        Other arguments as for :class:`~plugen.PluGeN`.
    """

    def __init__(
        self,
        labels: dict[str, str | list[str]],
        *,
        flow: str = "realnvp",
        transforms: int = 6,
        hidden_features: int = 256,
        depth: int = 2,
        label_dropout: float = 0.1,
        covariance: str = "auto",
        classifier_weight: float = 0.0,
        batch_size: int = 256,
        lr: float = 1e-3,
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
    def _build(self, latent_dim, schema, moments) -> FPNModel:
        context = schema.width + len(schema)
        flow = self._make_flow(latent_dim, context, moments)
        classes = [
            j
            for label, cols in zip(schema.labels, label_slices(schema))
            if label.kind == "categorical"
            for j in range(cols.start, cols.stop)
        ]
        per_class = {"per-class": True, "shared": False}.get(
            self.covariance, (1 + len(classes)) * latent_dim**2 <= PER_CLASS_MAX_PARAMS
        )
        flow.flows.insert(1, ContextLinear(latent_dim, context, classes if per_class else ()))
        members = torch.as_tensor(label_columns(schema), dtype=torch.float64)
        return FPNModel(flow, members, self._discrete_contexts(schema))

    def _discrete_contexts(self, schema: LabelSchema) -> dict[int, Tensor]:
        """Per binary or categorical label ``k`` (when ``classifier_weight`` > 0): its context
        columns for each value it can take (values, width + K), the label known, the others not."""
        if not self.classifier_weight:
            return {}
        out = {}
        for k, label in enumerate(schema.labels):
            if label.kind != "continuous":
                values = self._support(label)[0]
                Y = np.full((values.size, len(schema)), np.nan)
                Y[:, k] = values
                out[k] = torch.as_tensor(encode_context(schema, Y), dtype=torch.float64)
        return out

    @torch.no_grad()
    def _initialize(self, Z, T):
        """Start the context layer at the class-conditional Gaussians fitted to the standardised
        latents (linear / quadratic discriminant analysis), see ``ContextLinear.initialize``."""
        standardize, context_layer = self.module_.standardize, self.module_.context_layer
        # a second copy with each label hidden half the time, so that "unknown" starts at the
        # marginal mean and spread rather than at an extrapolation of the known flags
        hidden = self._hide_labels(T, 0.5, torch.Generator().manual_seed(self.seed))
        x = standardize(Z)[0]
        context_layer.initialize(torch.cat([x, x]), torch.cat([T, hidden]))

    def _encode(self, schema, Y):
        return encode_context(schema, Y)

    def _nll(self, z, context):
        return self.module_.nll(z, context)

    def _training_loss(self, z, context):
        """FPN eq. 14 plus ``classifier_weight`` times the cross-entropy of Bayes' rule (eq. 15-17)
        for each known discrete label, the other labels as in ``context``."""
        loss = self._nll(z, context)
        if not self.classifier_weight:
            return loss
        members = self.module_.label_columns.to(context.dtype)
        width = self.schema_.width
        for k, label in enumerate(self.schema_.labels):
            if label.kind == "continuous":
                continue
            candidates = self.module_.candidates(k).to(context.dtype)
            columns = members[k].bool()
            m, n = candidates.shape[0], z.shape[0]
            trial = context.repeat_interleave(m, dim=0)
            trial[:, columns] = candidates[:, columns].repeat(n, 1)
            log_joint = -self._nll(z.repeat_interleave(m, dim=0), trial).reshape(n, m)
            log_joint = log_joint + self._tensor(self._support(label)[1]).to(context.dtype)
            truth = torch.cdist(context[:, columns], candidates[:, columns]).argmin(dim=1)
            known = context[:, width + k]
            loss = loss + self.classifier_weight * known * F.cross_entropy(log_joint, truth, reduction="none")
        return loss

    def _objective_settings(self):
        return {"classifier_weight": self.classifier_weight} if self.classifier_weight else {}

    def _augment(self, context: Tensor, generator: torch.Generator) -> Tensor:
        """Label dropout: hide each label of each row with probability ``label_dropout``."""
        if not self.label_dropout:
            return context
        return self._hide_labels(context, self.label_dropout, generator)

    def _hide_labels(self, context: Tensor, probability: float, generator: torch.Generator) -> Tensor:
        """Mark each label of each row unknown (value and flag 0) with the given probability."""
        members = self.module_.label_columns
        hide = torch.rand(context.shape[0], members.shape[0], generator=generator) < probability
        hidden_columns = hide.to(context.device, context.dtype) @ members.to(context.dtype)
        return context * (1 - hidden_columns.clamp(max=1))

    # ---------------------------------------------------------------- inference
    def _context(self, Y: np.ndarray) -> Tensor:
        return self._tensor(encode_context(self.schema_, Y))

    def _source_labels(self, z: Tensor, y_source) -> np.ndarray:
        if y_source is None:
            return self._point_estimates(self._posteriors(z))
        Y = _labels_array(y_source, self.schema_, z.shape[0])
        self.schema_.check(Y)
        return Y

    def _edit(self, z, requests, y_source=None):
        """FPN section 3.5: ``u = T^-1(z | y_source)``, then ``T(u | y_target)``. Source labels
        not given are inferred with the plugin's own Bayes classifier."""
        Y_source = self._source_labels(z, y_source)
        Y_target = Y_source.copy()
        for i, values in requests.items():
            Y_target[:, i] = values
        flow = self.module_.flow
        u, _ = flow(z, self._context(Y_source))
        return flow.inverse(u, self._context(Y_target))

    def _repeat_edit_kwargs(self, z, m, y_source=None):
        Y = self._source_labels(z, y_source)
        return {"y_source": np.repeat(Y, m, axis=0)}

    def _sample(self, Y, noise, temperature):
        return self.module_.flow.inverse(temperature * noise, self._context(Y))

    def _support(self, label) -> tuple[np.ndarray, np.ndarray]:
        """Values a label can take for Bayes' rule and their log prior probabilities."""
        if label.kind == "binary":
            p = label.frequencies[0]
            return np.array([0.0, 1.0]), np.log([1 - p, p])
        if label.kind == "categorical":
            return np.asarray(label.classes, dtype=np.float64), np.log(label.frequencies)
        q = np.asarray(label.quantiles)
        return q, np.full(q.size, -math.log(q.size))

    def _posteriors(self, z):
        """Bayes' rule (FPN eq. 15-17) per label: first with the other labels unknown, then (if
        there are several labels) with the others fixed at the first pass's predictions."""
        n = z.shape[0]
        unknown = np.full((n, len(self.schema_)), np.nan)
        posteriors = [self._bayes(z, k, unknown) for k in range(len(self.schema_))]
        if len(self.schema_) == 1:
            return posteriors
        first = self._point_estimates(posteriors)
        return [self._bayes(z, k, first) for k in range(len(self.schema_))]

    def _point_estimates(self, posteriors: list[Tensor]) -> np.ndarray:
        return self._decide(posteriors).cpu().numpy().astype(np.float64)

    def _bayes(self, z: Tensor, k: int, Y_other: np.ndarray) -> Tensor:
        label = self.schema_.labels[k]
        values, log_prior = self._support(label)
        n, s = z.shape[0], values.size
        Y = np.repeat(Y_other, s, axis=0)
        Y[:, k] = np.tile(values, n)
        context = self._context(Y)
        zz = z.repeat_interleave(s, dim=0)
        log_lik = torch.cat(
            [
                -self._nll(zz[i : i + CLASSIFIER_CHUNK], context[i : i + CLASSIFIER_CHUNK])
                for i in range(0, zz.shape[0], CLASSIFIER_CHUNK)
            ]
        )
        log_post = torch.log_softmax(log_lik.reshape(n, s) + self._tensor(log_prior), dim=1)
        post = log_post.exp()
        if label.kind == "binary":
            return post[:, 1]
        if label.kind == "categorical":
            return post
        return post @ self._tensor(values)
