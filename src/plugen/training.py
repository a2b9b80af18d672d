"""Maximum-likelihood training loop shared by both plugins (PluGeN eq. 3, FPN eq. 14).

What it adds to the papers' recipe (Adam, batch 32, lr 1e-4, 1000 epochs): large batches, a
short warm-up then plateau-driven learning-rate decay, early stopping on a held-out split, gradient
clipping, a NaN/Inf guard that restores the last good weights, seeding, and a progress bar.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from plugen.errors import InputError, TrainingError

#: a held-out split smaller than this is not trusted for early stopping
MIN_VALIDATION_ROWS = 32
#: early stopping counts an epoch as an improvement only if the NLL drops by this much per dimension
MIN_DELTA_PER_DIM = 1e-3


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


def train(
    module: nn.Module,
    nll: Callable[[Tensor, Tensor], Tensor],
    Z: Tensor,
    T: Tensor,
    *,
    batch_size: int,
    lr: float,
    max_epochs: int,
    patience: int,
    val_fraction: float,
    weight_decay: float = 0.0,
    grad_clip: float = 1.0,
    warmup_steps: int = 100,
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    seed: int = 0,
    progress: bool = True,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> dict:
    """Minimise ``nll(z, t).mean()`` over rows of ``Z`` (latents) and ``T`` (encoded labels).

    ``augment(t, generator)`` may perturb a batch's labels (FPN's label dropout);
    ``on_epoch(epoch, stats)`` is called after every epoch and stops training by returning True.
    Returns a
    summary: epochs and steps run, best held-out NLL per row and per dimension, why it stopped,
    the wall time, and per-epoch history. ``module`` ends with its best (held-out) weights.
    """
    device = next(module.parameters()).device
    n = Z.shape[0]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    min_delta = MIN_DELTA_PER_DIM * Z.shape[1]  # an improvement smaller than this is noise
    n_val = int(round(n * val_fraction))
    if n_val < MIN_VALIDATION_ROWS or n - n_val < MIN_VALIDATION_ROWS:
        n_val = 0  # too small to hold out: stop on the training loss instead
    val_idx, train_idx = order[:n_val], order[n_val:]
    Z_train, T_train = Z[train_idx].to(device), T[train_idx].to(device)
    Z_val, T_val = Z[val_idx].to(device), T[val_idx].to(device)
    n_train = Z_train.shape[0]
    batch_size = max(1, min(batch_size, n_train))
    steps_per_epoch = math.ceil(n_train / batch_size)

    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, patience // 3))

    best_state = copy.deepcopy(module.state_dict())
    best, best_epoch, stale, steps = math.inf, 0, 0, 0
    history: dict[str, list[float]] = {"train_nll": [], "val_nll": [], "lr": []}
    stopped = "max_epochs"
    start = time.perf_counter()
    bar = tqdm(range(1, max_epochs + 1), desc="fit", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        module.train()
        perm = torch.randperm(n_train, generator=generator).to(device)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            t = T_train[idx] if augment is None else augment(T_train[idx], generator)
            loss = nll(Z_train[idx], t).mean()
            if not torch.isfinite(loss):
                stopped = f"non-finite loss at epoch {epoch}, batch {b + 1}"
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
            optimizer.step()
            if steps < warmup_steps:
                warmup.step()
            steps += 1
            running += loss.item() * idx.numel()
        if stopped != "max_epochs":
            break
        train_nll = running / n_train
        score = evaluate(module, nll, Z_val, T_val) if n_val else train_nll
        if not math.isfinite(score):
            stopped = f"non-finite held-out loss at epoch {epoch}"
            break
        history["train_nll"].append(train_nll)
        history["val_nll"].append(score if n_val else math.nan)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if score < best - min_delta:
            best, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
        if steps >= warmup_steps:
            plateau.step(score)
        bar.set_postfix(train=f"{train_nll:.3f}", val=f"{score:.3f}" if n_val else "-", best=best_epoch)
        if on_epoch is not None and on_epoch(epoch, {"train_nll": train_nll, "val_nll": score}):
            stopped = "callback"
            break
        if stale >= patience:
            stopped = "early_stopping"
            break
    bar.close()
    if stopped.startswith("non-finite"):
        _diverged(stopped, best)
    module.load_state_dict(best_state)
    features = Z.shape[1]
    return {
        "epochs": len(history["train_nll"]),
        "steps": steps,
        "best_epoch": best_epoch,
        "best_nll": best,
        "best_nll_per_dim": best / features,
        "monitor": "validation" if n_val else "training",
        "n_train": n_train,
        "n_val": n_val,
        "batch_size": batch_size,
        "stopped": stopped,
        "seconds": time.perf_counter() - start,
        "history": history,
    }


@torch.no_grad()
def evaluate(module: nn.Module, nll: Callable[[Tensor, Tensor], Tensor], Z: Tensor, T: Tensor, chunk: int = 8192) -> float:
    """Mean NLL per row over ``Z`` in chunks, in eval mode."""
    module.eval()
    total = 0.0
    for i in range(0, Z.shape[0], chunk):
        total += nll(Z[i : i + chunk], T[i : i + chunk]).sum().item()
    return total / max(1, Z.shape[0])


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
