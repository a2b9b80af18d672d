"""Maximum-likelihood training loop shared by both plugins (PluGeN eq. 3, FPN eq. 14).

What it adds to the papers' recipe (Adam, batch 32, lr 1e-4, 1000 epochs): large batches, a
short warm-up, held-out scoring per epoch (or every few thousand training rows) with a stop once
the second half of the fit has not paid or patience has run out, plateau decay, gradient clipping, a
NaN/Inf guard that restores the last good weights, seeding, and a progress bar. It also runs
under ``torchrun`` with DistributedDataParallel (see ``plugen.distributed``), streams rows from
disk (``plugen.batches``), resumes a killed fit from its per-epoch state (``plugen.resume``), and
offers bf16 autocast and ``torch.compile``.

:func:`train` composes small pieces, each usable on its own:

- :class:`TrainingConfig`: the settings of one fit;
- :func:`split_rows` and :func:`held_out_rows`: the held-out rows, and the random generators that
  draw the batches and their augmentation;
- :func:`make_schedules` (:class:`Schedules`): Adam, the warm-up and the plateau decay;
- :class:`Loop` and :func:`run_epoch`: the batches of one epoch and the optimiser steps on them;
- :func:`evaluate`: the mean NLL of held-out rows;
- :class:`Checks`: when a held-out check is due inside the epochs;
- :class:`EarlyStopping`, :class:`HalfGainStopping` and :class:`PatienceOrHalfGain`: when a scoring
  counts as an improvement and when to stop;
- :class:`FitState`, :func:`snapshot` and :func:`restore`: the state saved for resuming.

Example::

    config = TrainingConfig(batch_size=1024, lr=2e-3, max_epochs=100, patience=10, val_fraction=0.1,
                            check_rows=8192)
    summary = train(module, nll, rows, config)
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import dataclasses
import hashlib
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from plugen import distributed
from plugen.batches import InMemoryRows, StreamedRows
from plugen.errors import InputError, TrainingError
from plugen.resume import fingerprint, load_state, save_state

#: early stopping counts an epoch as an improvement only if the NLL drops by this much per dimension
MIN_DELTA_PER_DIM = 1e-3
AUTOCAST = {None: None, "bf16": torch.bfloat16}
#: training steps between reads of the running loss on a GPU (the NaN/Inf guard): reading it every
#: step would make the host wait for the device and leave the GPU idle between steps
GPU_LOSS_READ_INTERVAL = 32
#: held-out checks instead of epochs: ``PluGeN(labels, **ROW_CHECKS)``. Ends a fit whose held-out NLL
#: levels off several times sooner at nearly the same NLL; not the default, since on image latents
#: whose NLL keeps falling slowly the per-epoch default reached a better NLL in less time.
#: ``warmup_steps=None`` keeps the warm-up of checks when these go on top of settings that pin a per-epoch one
ROW_CHECKS = {"batch_size": 1024, "lr": 2e-3, "warmup_steps": None, "check_rows": 8192}
#: with held-out checks, the learning rate halves after this many checks in a row without a new best
DECAY_CHECKS = 3
#: a long fit checks the held-out rows every (training rows so far) / GROWING_WINDOW rows (:class:`Checks`)
GROWING_WINDOW = 16
#: rows of training over which the learning rate warms up when the held-out rows are checked by rows
#: (``check_rows``): 100 steps of a batch of 256
WARMUP_ROWS = 25_600
#: the longest warm-up with one scoring per epoch, in steps
EPOCH_WARMUP_STEPS = 100
#: the automatic batch (``batch_size=None``): ``LARGE_BATCH`` rows when the training rows fill at least
#: ``MIN_STEPS_PER_EPOCH`` of them, else ``SMALL_BATCH``. A large batch uses the cores better per row, but
#: an epoch of few steps is mostly warm-up and the per-epoch patience and plateau decay count too few steps
LARGE_BATCH, SMALL_BATCH, MIN_STEPS_PER_EPOCH = 768, 256, 16
#: the automatic learning rate (``lr=None``): ``LARGE_BATCH_LR`` for a batch of ``LARGE_BATCH`` rows or
#: more, else ``SMALL_BATCH_LR``
LARGE_BATCH_LR, SMALL_BATCH_LR = 4e-3, 2e-3

#: one list per scoring in a fit's history: NLLs, learning rate, wall time, training rows seen, best NLL
HISTORY = ("train_nll", "val_nll", "lr", "seconds", "rows", "best")

Rows = InMemoryRows | StreamedRows
NLL = Callable[[Tensor, Tensor], Tensor]


def loss_read_interval(device: torch.device) -> int:
    """Steps between reads of the running loss: every step on the CPU (reading costs nothing
    there), every ``GPU_LOSS_READ_INTERVAL`` on an accelerator. A non-finite loss found late
    costs nothing: training then ends with the last good epoch's weights either way."""
    return 1 if device.type == "cpu" else GPU_LOSS_READ_INTERVAL


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch understands it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was asked for but CUDA is not available on this machine")
    return device


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one fit.

    Args:
        batch_size: rows per optimiser step (at most the number of training rows); None: chosen by
            :func:`resolve_batch_size` from the training rows.
        lr: Adam's learning rate after the warm-up; None: chosen by :func:`resolve_lr` from the batch.
        max_epochs: passes over the training rows at most.
        patience: epochs without an improvement of the held-out NLL before training stops; the
            learning rate halves after ``max(1, patience // 3)`` of them.
        val_fraction: share of the rows held out for early stopping (none when too few rows).
        weight_decay: Adam's L2 penalty.
        grad_clip: largest gradient norm (0: no clipping).
        warmup_steps: steps over which the learning rate rises linearly to ``lr``; None: chosen by
            :func:`warmup_steps` from the training rows.
        seed: draws the batches, the augmentation and the latent noise.
        split_seed: draws the held-out rows (default ``seed``): restarts with several seeds and
            one split have comparable held-out NLLs.
        progress: show a progress bar (on the first process only).
        autocast: ``"bf16"`` runs the forward pass under bfloat16 autocast.
        compile: wrap the objective in ``torch.compile``.
        check_rows: training rows between held-out checks, across epoch boundaries (at most one
            epoch's rows apart); with checks the learning rate halves after ``DECAY_CHECKS`` checks
            without a new best and :class:`HalfGainStopping` ends the fit (``patience`` is not
            used). 0: one scoring at the end of every epoch, the plateau decay, and
            :class:`PatienceOrHalfGain`.
        min_gain: the fit stops once the best held-out NLL fell by less than this many nats per
            dimension over the second half of the training rows so far (per-epoch scoring: or after
            ``patience`` epochs, whichever comes first); 0: never for that reason.
    """

    batch_size: int | None
    lr: float | None
    max_epochs: int
    patience: int
    val_fraction: float
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int | None = None
    seed: int = 0
    split_seed: int | None = None
    progress: bool = True
    autocast: str | None = None
    compile: bool = False
    check_rows: int = 0
    min_gain: float = 0.01

    @property
    def lr_patience(self) -> int:
        """Epochs without an improvement before the learning rate halves (per-epoch scoring)."""
        return max(1, self.patience // 3)


class Objective(nn.Module):
    """``nll(z, t)`` per row as a module, so that DDP and ``torch.compile`` can wrap it."""

    def __init__(self, module: nn.Module, nll: NLL):
        super().__init__()
        self.module, self.nll = module, nll

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        return self.nll(z, t)


# ---------------------------------------------------------------------- held-out rows
@dataclass
class Generators:
    """The random generators of a fit: ``batches`` draws each epoch's order, ``augment`` the
    label dropout and latent noise. One process uses one generator for both; several share the
    order generator (the same global batches everywhere) and each augment with its own."""

    batches: torch.Generator
    augment: torch.Generator


def split_rows(rows: Rows, config: TrainingConfig, rank: int = 0, world: int = 1) -> Generators:
    """Hold out ``config.val_fraction`` of ``rows`` (drawn from ``split_seed``, default ``seed``)
    and return the generators that draw everything else."""
    generator = torch.Generator().manual_seed(config.seed if config.split_seed is None else config.split_seed)
    rows.split(config.val_fraction, generator)
    if config.split_seed is not None and config.split_seed != config.seed:  # restarts: same held-out rows, new batches
        generator = torch.Generator().manual_seed(config.seed)
    return Generators(generator, generator if world == 1 else torch.Generator().manual_seed(config.seed + 1 + rank))


def held_out_rows(rows: Rows, latent_noise: Tensor | None, seed: int) -> tuple[Tensor, Tensor] | None:
    """The held-out rows (None when there are none); with ``latent_noise``, their latents carry
    one fixed draw of it (from ``seed + 1``), so that early stopping watches the objective that is
    trained, not one that rewards collapse."""
    if not rows.n_val:
        return None
    Z_val, T_val = rows.validation()
    if latent_noise is None:
        return Z_val, T_val
    fixed = torch.randn(Z_val.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=Z_val.dtype)
    return Z_val + latent_noise.to(Z_val.device) * fixed.to(Z_val.device), T_val


@torch.no_grad()
def evaluate(
    module: nn.Module, nll: NLL, Z: Tensor, T: Tensor, chunk: int = 8192, rank: int = 0, world: int = 1
) -> float:
    """Mean NLL per row over ``Z`` in chunks, in eval mode; with several processes each scores
    its share of the rows and the means are combined, so every process gets the same number."""
    module.eval()
    Z, T = Z[rank::world], T[rank::world]
    total = 0.0
    for i in range(0, Z.shape[0], chunk):
        total += nll(Z[i : i + chunk], T[i : i + chunk]).sum().item()
    total, count = distributed.sum_all(total, Z.shape[0], device=Z.device)
    return total / max(1, count)


# ---------------------------------------------------------------------- optimiser and schedules
@dataclass
class Schedules:
    """Adam with a linear warm-up over ``warmup_steps`` steps, then the learning rate halved when
    the monitored NLL stops falling."""

    optimizer: torch.optim.Adam
    warmup: torch.optim.lr_scheduler.LambdaLR
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau
    warmup_steps: int

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def after_step(self, steps: int) -> None:
        """Advance the warm-up; ``steps``: the optimiser steps taken before this one."""
        if steps < self.warmup_steps:
            self.warmup.step()

    def after_epoch(self, steps: int, score: float) -> None:
        """Let the plateau schedule see the epoch's score, once the warm-up is over."""
        if steps >= self.warmup_steps:
            self.plateau.step(score)

    def after_check(self, steps: int, stale: int) -> None:
        """With held-out checks: halve the learning rate after every ``DECAY_CHECKS`` checks in a
        row without a new best, once the warm-up is over (the noise of a constant rate would
        otherwise keep a slowly improving fit from its optimum)."""
        if steps >= self.warmup_steps and stale and stale % DECAY_CHECKS == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.plateau.factor


def resolve_batch_size(config: TrainingConfig, n_train: int) -> int:
    """Rows per step: ``config.batch_size`` when given, else ``LARGE_BATCH`` when ``n_train`` rows fill
    at least ``MIN_STEPS_PER_EPOCH`` such batches, else ``SMALL_BATCH``."""
    if config.batch_size is not None:
        return config.batch_size
    return LARGE_BATCH if n_train >= MIN_STEPS_PER_EPOCH * LARGE_BATCH else SMALL_BATCH


def resolve_lr(config: TrainingConfig) -> float:
    """Adam's learning rate: ``config.lr`` when given, else ``LARGE_BATCH_LR`` for a batch (resolved)
    of ``LARGE_BATCH`` rows or more, else ``SMALL_BATCH_LR``."""
    if config.lr is not None:
        return config.lr
    return LARGE_BATCH_LR if config.batch_size >= LARGE_BATCH else SMALL_BATCH_LR


def resolve(config: TrainingConfig, n_train: int) -> TrainingConfig:
    """``config`` with its automatic settings (None) chosen for ``n_train`` training rows: the batch,
    then the learning rate and the warm-up, which depend on it."""
    config = dataclasses.replace(config, batch_size=resolve_batch_size(config, n_train))
    return dataclasses.replace(config, lr=resolve_lr(config), warmup_steps=warmup_steps(config, n_train))


def warmup_steps(config: TrainingConfig, n_train: int) -> int:
    """Steps of the learning-rate warm-up: ``config.warmup_steps`` when given. Else, with held-out
    checks, as many as cover ``WARMUP_ROWS`` training rows whatever the batch size; with one scoring
    per epoch, ``EPOCH_WARMUP_STEPS`` or half the first epoch, whichever is shorter. The half-gain
    test (:class:`HalfGainStopping`) compares the first scoring with the second: when the first
    epoch is mostly warm-up, its NLL is high for that reason alone and a fit that has levelled
    off runs on for epochs."""
    if config.warmup_steps is not None:
        return config.warmup_steps
    batch_size = min(config.batch_size, n_train)
    if config.check_rows:
        return max(1, WARMUP_ROWS // batch_size)
    return min(EPOCH_WARMUP_STEPS, math.ceil(n_train / batch_size / 2))


def make_schedules(module: nn.Module, config: TrainingConfig) -> Schedules:
    """Adam over ``module``'s parameters and its two learning-rate schedules (the warm-up's steps
    resolved in ``config``, :func:`warmup_steps`)."""
    # not fused=True: its in-place updates do not bump the parameters' version counters, which the
    # inference caches of the linear layers rely on (plugen.flows.linear, plugen.flows.context).
    # foreach=True (the default on GPUs only): one kernel per operation over all parameters
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    steps = config.warmup_steps
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / steps))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=config.lr_patience)
    return Schedules(optimizer, warmup, plateau, steps)


# ---------------------------------------------------------------------- stopping
@dataclass
class FitState:
    """What a fit has done so far; saved after every epoch (:func:`snapshot`) to resume from.

    ``rows``: training rows seen; ``window_nll`` and ``window_rows`` sum the training NLL since the
    last held-out check. The history has one line per scoring, with the rows seen and the best NLL."""

    epoch: int = 0
    steps: int = 0
    rows: int = 0
    best: float = math.inf
    best_epoch: int = 0
    stale: int = 0
    seconds: float = 0.0
    history: dict = field(default_factory=lambda: {name: [] for name in HISTORY})
    best_state: dict = field(default_factory=dict)
    window_nll: float = 0.0
    window_rows: int = 0

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def record(self, train_nll: float, val_nll: float, lr: float, seconds: float) -> None:
        """One scoring's line of the history (``val_nll`` NaN when nothing is held out), after the
        stopping rule has counted it."""
        line = dict(train_nll=train_nll, val_nll=val_nll, lr=lr, seconds=seconds, rows=self.rows, best=self.best)
        for name in HISTORY:
            self.history.setdefault(name, []).append(line[name])


@dataclass
class EarlyStopping:
    """Stop when the monitored NLL has not fallen by more than ``min_delta`` for ``patience``
    scorings in a row; the weights of the best scoring are kept.

    Another rule overrides :meth:`improved` or :meth:`exhausted` and is given to :func:`train` as
    ``stopping``; the loop only calls :meth:`update` after each scoring and :meth:`exhausted` to decide.
    """

    patience: int
    min_delta: float

    def improved(self, score: float, best: float) -> bool:
        return score < best - self.min_delta

    def update(self, state: FitState, epoch: int, score: float, module: nn.Module) -> None:
        """Count ``score`` of ``epoch``: a new best (its weights copied) or one more stale scoring."""
        if self.improved(score, state.best):
            state.best, state.best_epoch, state.stale = score, epoch, 0
            state.best_state = copy.deepcopy(module.state_dict())
        else:
            state.stale += 1

    def exhausted(self, state: FitState) -> bool:
        return state.stale >= self.patience


@dataclass
class HalfGainStopping(EarlyStopping):
    """Stop once the best held-out NLL fell by less than ``min_gain`` over the second half of the
    training rows seen so far (a new best of any size is kept).

    The test compares the fit with itself at half its length, so it needs no scale of time: a fit
    whose NLL still falls steadily, however slowly per step, goes on as long as doubling its
    length has paid, and one that has levelled off stops after at most twice the rows it needed.
    It is not asked before ``min_rows`` (the warm-up) have been seen.
    """

    min_gain: float = 0.0
    min_rows: int = 0

    def exhausted(self, state: FitState) -> bool:
        rows, best = state.history["rows"], state.history["best"]
        if not rows or rows[-1] < self.min_rows:
            return False
        half = bisect.bisect_right(rows, rows[-1] / 2) - 1
        return half >= 0 and best[half] - best[-1] < self.min_gain


@dataclass
class PatienceOrHalfGain(HalfGainStopping):
    """Stop at whichever comes first: ``patience`` scorings without an improvement of
    ``min_delta`` (:class:`EarlyStopping`) or a second half of the fit that gained less than
    ``min_gain`` (:class:`HalfGainStopping`).

    Patience ends a fit a fixed number of epochs after its last improvement of ``min_delta``,
    however little the epochs before it gained; on data of tens of thousands of rows the NLL keeps
    falling in small steps, every few epochs one large enough to count, for tens of epochs that
    change little. The half-gain test ends such a fit once doubling its length stopped paying, and
    never runs a fit longer than patience alone would.
    """

    def exhausted(self, state: FitState) -> bool:
        return EarlyStopping.exhausted(self, state) or HalfGainStopping.exhausted(self, state)


def default_stopping(config: TrainingConfig, features: int) -> EarlyStopping:
    """Per-epoch scoring: :class:`PatienceOrHalfGain`, where an improvement smaller than
    ``MIN_DELTA_PER_DIM`` per dimension is noise. With checks: :class:`HalfGainStopping`. Both
    take ``config.min_gain`` per dimension and ask the half-gain test once the warm-up is over and
    ``WARMUP_ROWS`` rows were trained on: a short warm-up on small data would otherwise let it judge
    a fit after a handful of steps, while its NLL still falls fast."""
    min_rows = max(config.warmup_steps * config.batch_size, WARMUP_ROWS)
    if config.check_rows:
        return HalfGainStopping(config.patience, 0.0, config.min_gain * features, min_rows)
    return PatienceOrHalfGain(config.patience, MIN_DELTA_PER_DIM * features, config.min_gain * features, min_rows)


# ---------------------------------------------------------------------- state for resume
def resume_key(
    rows: Rows,
    config: TrainingConfig,
    module: nn.Module,
    world: int,
    batch_size: int,
    latent_noise: Tensor | None,
    objective_settings: dict | None,
) -> str:
    """Fingerprint of the data and settings: a saved state is resumed only by the same fit."""
    settings = dict(
        batch_size=batch_size,
        lr=config.lr,
        max_epochs=config.max_epochs,
        patience=config.patience,
        val_fraction=config.val_fraction,
        weight_decay=config.weight_decay,
        grad_clip=config.grad_clip,
        warmup_steps=config.warmup_steps,
        seed=config.seed,
        world=world,
        latent_noise=None if latent_noise is None else latent_noise.tolist(),
        parameters=[list(p.shape) for p in module.parameters()],
        **({} if config.split_seed in (None, config.seed) else {"split_seed": config.split_seed}),
        **_scoring_settings(config),
        **(objective_settings or {}),
    )
    if rows.groups is not None:  # another grouping holds out other rows
        settings["groups"] = hashlib.sha256(rows.groups.tobytes()).hexdigest()
    return fingerprint(settings, rows.fingerprint_rows(), rows.n, rows.features)


def _scoring_settings(config: TrainingConfig) -> dict:
    """The scoring settings; none with per-epoch scoring and patience alone (``min_gain=0``), so
    that states saved before the other ways to stop existed keep their key."""
    if not config.check_rows:
        return {"min_gain": config.min_gain} if config.min_gain else {}
    return dict(check_rows=config.check_rows, min_gain=config.min_gain)


def snapshot(state: FitState, key: str, module: nn.Module, schedules: Schedules, generators: Generators) -> dict:
    """Everything :func:`restore` needs to go on after ``state.epoch``, as one dict."""
    return dict(
        state.as_dict(),
        fingerprint=key,
        module=module.state_dict(),
        optimizer=schedules.optimizer.state_dict(),
        warmup=schedules.warmup.state_dict(),
        plateau=schedules.plateau.state_dict(),
        generator=generators.batches.get_state(),
        augment_generator=generators.augment.get_state(),
    )


def restore(saved: dict, state: FitState, module: nn.Module, schedules: Schedules, generators: Generators) -> None:
    """Put a :func:`snapshot` back into the fit's pieces."""
    for name, value in state.as_dict().items():
        setattr(state, name, saved.get(name, value))  # states written before a key existed: its start value
    for name in HISTORY:  # states written before a key existed
        state.history.setdefault(name, [])
    module.load_state_dict(saved["module"])
    schedules.optimizer.load_state_dict(saved["optimizer"])
    schedules.warmup.load_state_dict(saved["warmup"])
    schedules.plateau.load_state_dict(saved["plateau"])
    generators.batches.set_state(saved["generator"])
    generators.augment.set_state(saved["augment_generator"])


# ---------------------------------------------------------------------- one epoch
@dataclass
class Checks:
    """Held-out checks across epoch boundaries: ``run(train_nll, epoch)`` scores the held-out rows
    after the step that completes a window, given the mean training NLL of the window, and returns
    why training must stop, or None.

    A window is ``rows`` training rows, or the rows seen so far over ``GROWING_WINDOW`` when that
    is more (a long fit on large data then spends little on checks, and
    :class:`HalfGainStopping` still finds its half-way point within that share), but never more than
    one epoch (``epoch_rows``)."""

    rows: int
    epoch_rows: int
    run: Callable[[float, int], str | None]

    def due(self, window_rows: int, seen_rows: int) -> bool:
        """Whether a window of ``window_rows``, after ``seen_rows`` rows in all, is complete."""
        return window_rows >= min(max(self.rows, seen_rows // GROWING_WINDOW), self.epoch_rows)


@dataclass
class Loop:
    """The moving parts of one fit that every epoch uses.

    ``augment(t, generator)`` may perturb a batch's labels (FPN's label dropout).
    ``latent_noise`` (one standard deviation per latent dimension) adds fresh Gaussian noise to
    every training batch. Latents of an autoencoder lie near a low-dimensional manifold; maximum
    likelihood then shrinks the flow's density across it without end, its inverse grows
    ill-conditioned, and samples land off the manifold (Kim et al. 2020, "SoftFlow: Probabilistic
    Framework for Normalizing Flow on Manifolds", train on data perturbed the same way).
    ``forward(z, t)``: the per-row NLL (the objective, wrapped for DDP or ``torch.compile`` when
    asked), run under ``cast``.
    ``checks`` (None: one scoring per epoch) scores the held-out rows from inside the epochs.
    """

    module: nn.Module
    forward: Callable[[Tensor, Tensor], Tensor]
    rows: Rows
    generators: Generators
    schedules: Schedules
    batch_size: int
    grad_clip: float
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None
    latent_noise: Tensor | None = None
    cast: contextlib.AbstractContextManager = field(default_factory=contextlib.nullcontext)
    rank: int = 0
    world: int = 1
    checks: Checks | None = None

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def batches(self) -> Iterator[tuple[Tensor, Tensor, int]]:
        """One epoch's batches of this process (latents, labels, rows in the global batch),
        augmented; the order and the augmentation are drawn batch by batch, in that order."""
        for z, t, batch_rows in self.rows.epoch(self.generators.batches, self.batch_size, self.rank, self.world):
            if self.augment is not None:
                t = self.augment(t, self.generators.augment)
            if self.latent_noise is not None:
                noise = torch.randn(z.shape, generator=self.generators.augment, dtype=z.dtype)
                z = z + self.latent_noise.to(z.device) * noise.to(z.device)
            yield z, t, batch_rows

    def per_row_nll(self, z: Tensor, t: Tensor) -> Tensor:
        with self.cast:
            return self.forward(z, t).float()

    def step(self, loss: Tensor, state: FitState) -> None:
        """One optimiser step on ``loss`` (gradients clipped to ``grad_clip``), then the warm-up."""
        self.schedules.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip, foreach=True)
        self.schedules.optimizer.step()
        self.schedules.after_step(state.steps)
        state.steps += 1


def run_epoch(loop: Loop, state: FitState, epoch: int) -> tuple[float, str | None]:
    """One pass over the training rows: the mean training NLL per row, and None, or NaN and why
    training must stop (a non-finite loss). The summed loss stays on the device and is read (and
    summed over processes) every :func:`loss_read_interval` steps, so all processes stop together."""
    loop.module.train()
    device, check_every = loop.device, loss_read_interval(loop.device)
    running, seen, checked, b = torch.zeros((), dtype=torch.float64, device=device), 0, 0, -1
    mark = running.clone()  # ``running`` at the last held-out check
    for b, (z, t, batch_rows) in enumerate(loop.batches()):
        per_row = loop.per_row_nll(z, t)
        # this process's share of the global batch mean; DDP averages the gradients over processes
        loss = per_row.sum() * (loop.world / batch_rows)
        running += per_row.detach().sum()
        if (b + 1) % check_every == 0:
            if not math.isfinite(distributed.sum_all(running.item(), device=device)[0]):
                return math.nan, f"non-finite loss at epoch {epoch}, {_batches(checked, b + 1)}"
            checked = b + 1
        loop.step(loss, state)
        seen += batch_rows
        state.rows += batch_rows
        if loop.checks is not None:
            state.window_rows += batch_rows
            if loop.checks.due(state.window_rows, state.rows):
                stopped = _check(loop, state, epoch, running - mark)
                mark = running.clone()
                if stopped is not None:
                    return running.item() / max(1, seen), stopped
    (total,) = distributed.sum_all(running.item(), device=device)
    if not math.isfinite(total):
        return math.nan, f"non-finite loss at epoch {epoch}, {_batches(checked, b + 1)}"
    if loop.checks is not None:  # the window goes on in the next epoch
        state.window_nll += distributed.sum_all((running - mark).item(), device=device)[0]
    return total / max(1, seen), None


def _check(loop: Loop, state: FitState, epoch: int, window: Tensor) -> str | None:
    """A held-out check after a full window of training rows; training goes on in train mode."""
    (window_nll,) = distributed.sum_all(window.item(), device=window.device)
    train_nll = (state.window_nll + window_nll) / max(1, state.window_rows)
    state.window_nll, state.window_rows = 0.0, 0
    if not math.isfinite(train_nll):
        return f"non-finite loss at epoch {epoch}"
    stopped = loop.checks.run(train_nll, epoch)
    loop.module.train()
    return stopped


def _batches(after: int, upto: int) -> str:
    """Where a non-finite loss was found: batch ``upto``, or somewhere in ``after + 1 .. upto``."""
    return f"batch {upto}" if upto - after == 1 else f"batches {after + 1}-{upto}"


# ---------------------------------------------------------------------- the trainer
def train(
    module: nn.Module,
    nll: NLL,
    rows: Rows,
    config: TrainingConfig,
    *,
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    latent_noise: Tensor | None = None,
    on_epoch: Callable[[int, dict], bool | None] | None = None,
    checkpoint: str | Path | None = None,
    objective_settings: dict | None = None,
    stopping: EarlyStopping | None = None,
) -> dict:
    """Minimise the mean of ``nll(z, t)`` over the training part of ``rows`` (PluGeN eq. 3,
    FPN eq. 14); ``module`` ends with its best (held-out) weights.

    Args:
        module: holds the parameters that ``nll`` uses.
        nll: per-row negative log-likelihood of latents ``z`` given encoded labels ``t``.
        rows: the data (:mod:`plugen.batches`), in memory or streamed from disk.
        config: the settings (:class:`TrainingConfig`).
        augment: ``augment(t, generator)`` perturbs a batch's labels (FPN's label dropout).
        latent_noise: one standard deviation per latent dimension; every training batch gets fresh
            Gaussian noise of that size and held-out rows are scored with one fixed draw of it
            (see :class:`Loop`).
        on_epoch: ``on_epoch(epoch, stats)`` runs after every epoch; returning True stops training.
        checkpoint: a file where the full training state is saved after every epoch; when it
            exists at the start, training resumes from it; it is removed when training ends.
        objective_settings: settings of ``nll`` that the caller wants in the checkpoint's
            fingerprint (a state saved under other ones is not resumed).
        stopping: the rule that decides when to stop (default :func:`default_stopping`).

    Returns:
        A summary: epochs and steps run, best held-out NLL per row and per dimension, why it
        stopped, the wall time, and the per-epoch history (NLLs, learning rate, wall time).

    Raises:
        TrainingError: the loss was not finite before any good weights existed.
    """
    rank, world = distributed.rank_and_world()
    generators = split_rows(rows, config, rank, world)
    config = resolve(config, rows.n_train)
    held_out = held_out_rows(rows, latent_noise, config.seed)
    loop = _make_loop(module, nll, rows, config, generators, augment, latent_noise, rank, world)
    state = FitState(best_state=copy.deepcopy(module.state_dict()))
    key, saved = "", None
    if checkpoint:
        key = resume_key(rows, config, module, world, loop.batch_size, latent_noise, objective_settings)
        saved = load_state(checkpoint, key)
    if saved is not None:
        restore(saved, state, module, loop.schedules, generators)
    start = time.perf_counter() - state.seconds
    stopping = stopping or default_stopping(config, rows.features)
    stopped = _run_epochs(loop, state, config, stopping, nll, held_out, on_epoch, checkpoint, key, start)
    if stopped.startswith("non-finite"):
        _diverged(stopped, state.best)
    module.load_state_dict(state.best_state)
    if checkpoint and distributed.is_main():
        Path(checkpoint).unlink(missing_ok=True)
    return _summary(state, rows, loop, stopped, saved, start)


def _make_loop(
    module: nn.Module,
    nll: NLL,
    rows: Rows,
    config: TrainingConfig,
    generators: Generators,
    augment,
    latent_noise: Tensor | None,
    rank: int,
    world: int,
) -> Loop:
    """The objective wrapped as asked (DDP over several processes, ``torch.compile``, autocast)
    and the optimiser, for the training rows already split off."""
    device = next(module.parameters()).device
    objective: nn.Module = Objective(module, nll)
    if world > 1:
        device_ids = [device] if device.type == "cuda" else None
        objective = nn.parallel.DistributedDataParallel(objective, device_ids=device_ids)
    forward = torch.compile(objective) if config.compile else objective
    autocast = config.autocast
    cast = torch.autocast(device.type, dtype=AUTOCAST[autocast]) if autocast else contextlib.nullcontext()
    return Loop(
        module,
        forward,
        rows,
        generators,
        make_schedules(module, config),
        batch_size=max(1, min(config.batch_size, rows.n_train)),
        grad_clip=config.grad_clip,
        augment=augment,
        latent_noise=latent_noise,
        cast=cast,
        rank=rank,
        world=world,
    )


def _run_epochs(
    loop: Loop,
    state: FitState,
    config: TrainingConfig,
    stopping: EarlyStopping,
    nll: NLL,
    held_out,
    on_epoch,
    checkpoint,
    key: str,
    start: float,
) -> str:
    """Epochs from the one after ``state.epoch`` until a stopping rule fires; returns why it stopped.
    The held-out rows are scored after every epoch, or with ``config.check_rows`` by the checks
    inside the epochs (:class:`Checks`)."""
    bar = tqdm(
        range(state.epoch + 1, config.max_epochs + 1),
        desc="fit",
        unit="epoch",
        leave=False,
        disable=not config.progress or loop.rank != 0,
        initial=state.epoch,
        total=config.max_epochs,
    )
    scoring = Scoring(loop, state, stopping, nll, _check_subset(held_out, config.check_rows), start)
    if config.check_rows:  # at least one check per epoch: small data would otherwise skip its optimum
        loop.checks = Checks(config.check_rows, loop.rows.n_train, scoring.check)
    stopped = None
    for epoch in bar:
        train_nll, stopped = run_epoch(loop, state, epoch)
        state.epoch = epoch
        if stopped is not None:
            break
        if loop.checks is None:
            score, stopped = scoring.epoch(train_nll, epoch)
        else:
            score, stopped = (state.history["val_nll"] or [math.nan])[-1], None
            if epoch == config.max_epochs and state.window_rows:  # the last steps are scored too
                stopped = _check(loop, state, epoch, torch.zeros((), dtype=torch.float64, device=loop.device))
        if stopped is not None and stopped.startswith("non-finite"):
            break
        bar.set_postfix(train=f"{train_nll:.3f}", val=f"{score:.3f}" if loop.rows.n_val else "-", best=state.best_epoch)
        stopped = _stop_reason(on_epoch, epoch, train_nll, score, stopping, state)
        if stopped is not None:
            break
        if checkpoint and epoch < config.max_epochs:
            _save(checkpoint, state, epoch, start, key, loop)
    bar.close()
    return stopped or "max_epochs"


def _check_subset(held_out: tuple[Tensor, Tensor] | None, check_rows: int) -> tuple[Tensor, Tensor] | None:
    """With checks, at most ``check_rows`` held-out rows are scored (the split is already random):
    a check then costs at most a forward pass over as many rows as the training between checks."""
    if held_out is None or not check_rows:
        return held_out
    return held_out[0][:check_rows], held_out[1][:check_rows]


@dataclass
class Scoring:
    """Scores the held-out rows, records the history and counts the score for the stopping rule:
    after every epoch (:meth:`epoch`) or at every held-out check (:meth:`check`)."""

    loop: Loop
    state: FitState
    stopping: EarlyStopping
    nll: NLL
    held_out: tuple[Tensor, Tensor] | None
    start: float

    def count(self, train_nll: float, epoch: int) -> tuple[float, str | None]:
        """The score, counted by the stopping rule; or NaN and why training must stop."""
        loop, state = self.loop, self.state
        score = _score(loop, self.nll, self.held_out, train_nll)
        if not math.isfinite(score):
            return math.nan, f"non-finite held-out loss at epoch {epoch}"
        val = score if loop.rows.n_val else math.nan
        self.stopping.update(state, epoch, score, loop.module)
        state.record(train_nll, val, loop.schedules.lr, time.perf_counter() - self.start)
        return score, None

    def epoch(self, train_nll: float, epoch: int) -> tuple[float, str | None]:
        score, stopped = self.count(train_nll, epoch)
        if stopped is None:
            self.loop.schedules.after_epoch(self.state.steps, score)
        return score, stopped

    def check(self, train_nll: float, epoch: int) -> str | None:
        _, stopped = self.count(train_nll, epoch)
        if stopped is not None:
            return stopped
        self.loop.schedules.after_check(self.state.steps, self.state.stale)
        return "early_stopping" if self.stopping.exhausted(self.state) else None


def _stop_reason(
    on_epoch, epoch: int, train_nll: float, score: float, stopping: EarlyStopping, state: FitState
) -> str | None:
    """Why training stops after ``epoch`` (the callback asks first), or None to go on."""
    if on_epoch is not None and on_epoch(epoch, {"train_nll": train_nll, "val_nll": score}):
        return "callback"
    if stopping.exhausted(state):
        return "early_stopping"
    return None


def _score(loop: Loop, nll: NLL, held_out, train_nll: float) -> float:
    """The NLL that early stopping watches: held-out rows', or the training NLL without them."""
    if held_out is None:
        return train_nll
    return evaluate(loop.module, nll, *held_out, rank=loop.rank, world=loop.world)


def _save(checkpoint, state: FitState, epoch: int, start: float, key: str, loop: Loop) -> None:
    """Write the state after ``epoch`` (the first process writes, all wait for it)."""
    state.epoch, state.seconds = epoch, time.perf_counter() - start
    if distributed.is_main():
        save_state(checkpoint, snapshot(state, key, loop.module, loop.schedules, loop.generators))
    distributed.barrier()


def _summary(state: FitState, rows: Rows, loop: Loop, stopped: str, saved: dict | None, start: float) -> dict:
    return {
        "epochs": len(state.history["train_nll"]) if loop.checks is None else state.epoch,
        "checks": len(state.history["train_nll"]),
        "steps": state.steps,
        "best_epoch": state.best_epoch,
        "best_nll": state.best,
        "best_nll_per_dim": state.best / rows.features,
        "monitor": "validation" if rows.n_val else "training",
        "n_train": rows.n_train,
        "n_val": rows.n_val,
        "batch_size": loop.batch_size,
        "lr": loop.schedules.optimizer.defaults["lr"],
        "warmup_steps": loop.schedules.warmup_steps,
        "processes": loop.world,
        "resumed_from_epoch": saved["epoch"] if saved else 0,
        "stopped": stopped,
        "seconds": time.perf_counter() - start,
        "history": state.history,
    }


def _diverged(where: str, best: float) -> None:
    if not math.isfinite(best):
        raise TrainingError(
            f"training diverged ({where}) before any good weights existed; try a lower lr, "
            "a smaller grad_clip, or check the latents for extreme values"
        )
    warnings.warn(
        f"training stopped early ({where}); kept the last good weights (NLL {best:.4f})",
        RuntimeWarning,
        stacklevel=3,
    )
