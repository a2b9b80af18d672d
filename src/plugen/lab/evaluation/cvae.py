"""Baseline: a conditional VAE trained from scratch on images and labels (PluGeN Table 3's cVAE).

The PluGeN paper (Table 3) compares conditional generation by the plugin, fitted on a frozen VAE's
latents, with a conditional VAE trained from scratch on images and attributes (Sohn, Lee and Yan
2015, "Learning structured output representation using deep conditional generative models";
Yan et al. 2016). This module is that baseline for 28 x 28 single-channel images (MNIST):

- :class:`ConditionalConvVAE`: the layers of the ``mnist-vae`` backbone
  (:class:`plugen.backbones.mnist.ConvVAE`) with the condition vector ``c`` concatenated into the
  encoder (next to the flattened 7 x 7 feature map, before the layer that gives the mean and
  log-variance of q(z | x, c)) and into the decoder (next to z, as extra input channels of the
  first transposed convolution), so p(x | z, c) and prior p(z) = N(0, I);
- :class:`CVAE`: fit / sample with the plugins' request semantics. ``c`` is one-hot for a
  categorical label, 0/1 for a binary one and the standardised value for a continuous one;
  ``sample(n, {"digit": 3, "thickness": 2.5})`` takes class codes and values in label units,
  and draws labels it is not given from their training distribution
  (:meth:`plugen.labels.LabelSchema.draw`, exactly as PluGeN and FPN do);
- :func:`train_cvae`: one call, with an epoch count and an optional wall-time budget.

Training minimises the negative ELBO, ``BCE(x, x_hat) + KL(q(z | x, c) || N(0, I))`` per image,
with the ``mnist-vae`` recipe (Adam, one-cycle learning rate, batch 64).

>>> import numpy as np
>>> images = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
>>> Y = np.column_stack([np.arange(64) % 2, np.linspace(1, 3, 64)])
>>> model = train_cvae(images, Y, {"digit": "categorical", "thickness": "continuous"}, epochs=1, progress=False)
>>> model.sample(5, {"digit": 1}).shape
(5, 1, 28, 28)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from plugen.errors import InputError, NotFittedError, TrainingError
from plugen.labels import LabelSchema, check_sample_args

#: the clocks a training budget can be counted on
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class ConditionalConvVAE(nn.Module):
    """The ``mnist-vae`` ConvVAE layers with a condition vector of size ``condition_dim``
    concatenated into the encoder and the decoder (Sohn et al. 2015).

    Encoder: 28x28 -> 14x14 -> 7x7 in 2 (Conv2d, BatchNorm2d, LeakyReLU) blocks, the flattened map
    concatenated with ``c``, a Linear to (mean, log-variance) of q(z | x, c). Decoder: ``[z, c]`` as
    a 1 x 1 map -> 7x7 -> 14x14 -> 28x28 in 3 (ConvTranspose2d, BatchNorm2d, ReLU) blocks and a
    last ConvTranspose2d with a Sigmoid. Without ``c`` (``condition_dim=0``) it has exactly the
    backbone's parameter count (the backbone's last 7 x 7 Conv2d is this Linear).

    >>> vae = ConditionalConvVAE(latent_dim=8, condition_dim=3).eval()
    >>> vae.decode(torch.zeros(2, 8), torch.zeros(2, 3)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, latent_dim: int = 40, condition_dim: int = 0, width: int = 32):
        super().__init__()
        self.latent_dim, self.condition_dim = latent_dim, condition_dim
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.posterior = nn.Linear(2 * width * 49 + condition_dim, 2 * latent_dim)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent_dim + condition_dim, 4 * width, 7),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 3, 1, 1),
            nn.Sigmoid(),
        )

    def encode_stats(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Images (n, 1, 28, 28) and conditions (n, condition_dim) -> mean, log-variance of q(z | x, c)."""
        mean, logvar = self.posterior(torch.cat([self.features(x), c], dim=1)).chunk(2, dim=1)
        return mean, logvar

    def decode(self, z: Tensor, c: Tensor) -> Tensor:
        """Latents (n, latent_dim) and conditions -> images (n, 1, 28, 28) in [0, 1]."""
        return self.decoder(torch.cat([z, c], dim=1)[:, :, None, None])

    def forward(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: (reconstruction of a reparametrised sample, mean, log-variance)."""
        mean, logvar = self.encode_stats(x, c)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        return self.decode(z, c), mean, logvar


def negative_elbo(model: ConditionalConvVAE, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, reconstruction BCE, KL), each summed per image and averaged over the batch: the
    negative ELBO of a conditional VAE with a Bernoulli-style decoder (Sohn et al. 2015, eq. 4)."""
    recon, mean, logvar = model(x, c)
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(dim=1).mean()
    bce = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
    return bce + kl, bce, kl


class CVAE:
    """A conditional VAE baseline with the plugins' ``sample`` semantics (see the module docstring).

    ``labels`` maps names to kinds as for :class:`plugen.PluGeN`; the other keyword arguments are
    training settings (the ``mnist-vae`` recipe by default). ``seconds`` caps the training time, on
    the ``clock`` ``"wall"`` or ``"cpu"`` (this process's CPU time: fairer on a shared machine);
    the one-cycle learning rate then follows whichever of steps and seconds is further along, so a
    capped run still ends annealed (``stopped_early_`` is then True). Rows with a
    missing (NaN) label are dropped, since every condition must be given to a cVAE.
    Fitted state: ``schema_``, ``model_``, ``history_`` (mean loss per epoch), ``steps_``,
    ``fit_seconds_`` (wall) and ``fit_cpu_seconds_`` (CPU time of this process).
    """

    def __init__(
        self,
        labels: Mapping[str, str],
        *,
        latent_dim: int = 40,
        width: int = 32,
        epochs: int = 25,
        batch_size: int = 64,
        lr: float = 2e-3,
        seconds: float | None = None,
        clock: str = "wall",
        seed: int = 0,
        progress: bool = True,
    ):
        self.labels, self.latent_dim, self.width, self.epochs = dict(labels), latent_dim, width, epochs
        self.batch_size, self.lr, self.seconds, self.clock = batch_size, lr, seconds, clock
        self.seed, self.progress = seed, progress

    # ------------------------------------------------------------------ conditions
    def conditions(self, Y: np.ndarray) -> Tensor:
        """Label values (n, K) in label units -> condition vectors (n, condition_dim)."""
        if not hasattr(self, "schema_"):
            raise NotFittedError("this CVAE is not trained yet: call fit(images, Y) first")
        Y = np.asarray(Y, dtype=np.float64)
        self.schema_.check(Y)
        if np.isnan(Y).any():
            raise InputError("a cVAE needs every label of every row: the labels contain NaN")
        parts = []
        for i, label in enumerate(self.schema_.labels):
            if label.kind == "categorical":
                parts.append(np.eye(len(label.classes))[label.class_index(Y[:, i])])
            elif label.kind == "binary":
                parts.append(Y[:, i : i + 1])
            else:
                parts.append((Y[:, i : i + 1] - label.mean) / label.std)
        return torch.as_tensor(np.concatenate(parts, axis=1), dtype=torch.float32)

    # ------------------------------------------------------------------ training
    def fit(self, images, Y) -> CVAE:
        """Train from scratch on images (n, 1, 28, 28) in [0, 1] and labels (n, K); returns self."""
        x = np.asarray(images, dtype=np.float32)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if self.clock not in CLOCKS:
            raise InputError(f"clock must be one of {sorted(CLOCKS)}, got {self.clock!r}")
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise InputError(f"images must have shape (n, 1, 28, 28), got {x.shape}")
        if len(x) != len(Y):
            raise InputError(f"{len(x)} images but {len(Y)} label rows")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise InputError(f"images must be in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}]")
        self.schema_ = LabelSchema(self.labels)
        self.schema_.fit(Y)
        keep = ~np.isnan(Y).any(axis=1)
        self.dropped_rows_ = int((~keep).sum())
        x, Y = torch.from_numpy(x[keep]), Y[keep]
        c = self.conditions(Y)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.model_ = ConditionalConvVAE(self.latent_dim, c.shape[1], self.width)
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        steps = max(self.epochs * math.ceil(len(x) / self.batch_size), 1)
        self.history_, self.stopped_early_, step = [], False, 0
        start, cpu_start = time.perf_counter(), time.process_time()
        budget_start, clock = (start, cpu_start)[self.clock == "cpu"], CLOCKS[self.clock]
        bar = tqdm(range(self.epochs), desc="cVAE epochs", leave=False, disable=not self.progress)
        for _ in bar:
            self.model_.train()
            total, seen = 0.0, 0
            for idx in torch.randperm(len(x), generator=gen).split(self.batch_size):
                done = step / steps
                if self.seconds is not None:
                    done = max(done, (clock() - budget_start) / max(self.seconds, 1e-9))
                if done >= 1:
                    self.stopped_early_ = True
                    break
                _one_cycle(opt, self.lr, done)
                loss, _, _ = negative_elbo(self.model_, x[idx], c[idx])
                if not torch.isfinite(loss):
                    raise TrainingError("cVAE training diverged (non-finite loss); lower lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step, total, seen = step + 1, total + loss.item() * len(idx), seen + len(idx)
            if seen:
                self.history_.append(total / seen)
                bar.set_postfix(loss=f"{self.history_[-1]:.2f}")
            if self.stopped_early_:
                break
        self.fit_seconds_ = time.perf_counter() - start
        self.fit_cpu_seconds_ = time.process_time() - cpu_start
        self.steps_ = step
        self.model_.eval()
        return self

    def loss(self, images, Y, seed: int = 0) -> float:
        """Mean negative ELBO of (images, labels) under the current model (eval mode, seeded noise)."""
        self._check_fitted()
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        c = self.conditions(np.asarray(Y, dtype=np.float64).reshape(len(x), -1))
        was_training = self.model_.training
        self.model_.eval()
        torch.manual_seed(seed)
        with torch.inference_mode():
            value = negative_elbo(self.model_, x, c)[0].item()
        self.model_.train(was_training)
        return value

    # ------------------------------------------------------------------ generation
    def sample(
        self, n: int, conditions: Mapping[str, Any] | None = None, temperature: float = 1.0, seed: int | None = None
    ) -> np.ndarray:
        """``n`` new images (n, 1, 28, 28) with the requested label values (class codes, values in
        label units); labels not named are drawn from their training distribution; z ~ N(0, T^2 I)."""
        self._check_fitted()
        check_sample_args(n, temperature)
        rng = np.random.default_rng(seed)
        Y = self.schema_.draw(int(n), self.schema_.requests(conditions or {}, int(n)), rng)
        z = torch.as_tensor(rng.standard_normal((int(n), self.latent_dim)), dtype=torch.float32) * float(temperature)
        self.model_.eval()
        with torch.inference_mode():
            return self.model_.decode(z, self.conditions(Y)).numpy()

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this CVAE is not trained yet: call fit(images, Y) first")


def _one_cycle(opt: torch.optim.Optimizer, max_lr: float, done: float, warmup: float = 0.1) -> None:
    """Set Adam's learning rate and beta1 for training progress ``done`` in [0, 1): the one-cycle
    policy of the ``mnist-vae`` backbone (PyTorch's ``OneCycleLR`` defaults, cosine annealing: lr
    from max_lr / 25 up to max_lr over the first 10 %, then down to max_lr / 2.5e5; beta1 0.95 ->
    0.85 -> 0.95). Driven by progress rather than by step, so a run cut by a time budget still
    ends annealed."""
    low, final = max_lr / 25, max_lr / 25 / 1e4
    if done < warmup:
        t, lr_range, beta_range = done / warmup, (low, max_lr), (0.95, 0.85)
    else:
        t, lr_range, beta_range = (done - warmup) / (1 - warmup), (max_lr, final), (0.85, 0.95)
    cos = (math.cos(math.pi * t) + 1) / 2
    for group in opt.param_groups:
        group["lr"] = lr_range[1] + (lr_range[0] - lr_range[1]) * cos
        group["betas"] = (beta_range[1] + (beta_range[0] - beta_range[1]) * cos, group["betas"][1])


def train_cvae(
    images,
    Y,
    labels: Mapping[str, str],
    *,
    epochs: int = 25,
    seconds: float | None = None,
    seed: int = 0,
    progress: bool = True,
    **options,
) -> CVAE:
    """Train a :class:`CVAE` from scratch on images and labels (the PluGeN Table 3 cVAE baseline).

    ``epochs`` sets the schedule; ``seconds`` (optional) stops training once that much time is
    spent (see :class:`CVAE`). Other ``options`` (``latent_dim``, ``width``, ``batch_size``, ``lr``,
    ``clock``) go to :class:`CVAE`.
    """
    return CVAE(labels, epochs=epochs, seconds=seconds, seed=seed, progress=progress, **options).fit(images, Y)


class PixelBackbone:
    """A stand-in backbone whose ``decode`` is the identity: lets the image protocols of
    :mod:`plugen.lab.evaluation.images` judge a model whose ``sample`` already returns images."""

    name = "pixels"

    def decode(self, images) -> np.ndarray:
        return np.asarray(images)
