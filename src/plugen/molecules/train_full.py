"""Resumable, time-budgeted training of a molecule VAE on a token cache (the full MOSES set), for a GPU.

``python -m plugen.molecules.train_full --cache moses-train.npz --checkpoint ckpt --output weights --minutes 10``

The same :class:`~plugen.molecules.backbone.SequenceVAE` as :mod:`plugen.molecules.train_backbone`,
trained on a cache of :mod:`plugen.molecules.token_cache` (no RDKit or SELFIES needed: the token ids
are read from the cache and the whole set sits on the device), so that several short GPU runs add
up to one long training:

- steps, not minutes, drive the schedules: linear warm-up, cosine decay of the learning rate to a
  tenth over ``total_steps`` (constant after), and the KL schedule over ``anneal_steps``;
- the data order is a function of (seed, epoch) (:func:`epoch_batches`), and a checkpoint (written
  every ``checkpoint_seconds`` and at the end, atomically: parts first, then the manifest renamed
  into place) keeps the model, the optimizer, the RNG states and the position in the epoch, so a
  run stopped and resumed takes the same steps as one that was not stopped;
- ``minutes`` bounds a run: it stops cleanly, writes the final checkpoint and exports the weights
  with the training record (steps, epochs, losses, molecules/s, recipe, data digest, held-out
  reconstruction) in their JSON, like the shipped ``selfies-vae``.

The loss is the negative ELBO (Kingma & Welling 2014, eq. 3) with a weighted KL term and, as in
CharVAE's joint training, a property head on the posterior mean trained on the molecules that have
labels (the shipped subset's rows). KL schedules (``kl``):

- ``anneal``: ``beta * KL`` with ``beta`` rising linearly from 0 to ``kl_weight`` (Bowman et al. 2016);
- ``free-bits``: the same, but each latent dimension's batch-mean KL counts at least ``free_bits``
  nats (Kingma et al. 2016, eq. 15), so no dimension collapses while ``kl_weight`` 1 pulls the
  posteriors together to fill the prior;
- ``mmd``: a small per-molecule KL plus ``mmd_weight`` times the maximum mean discrepancy between the
  batch's latents and prior draws (InfoVAE, Zhao et al. 2019, eq. 7; inverse multiquadric kernel of
  Tolstikhin et al. 2018), matching the aggregate posterior to the prior.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from plugen.backbones import registry
from plugen.errors import CheckpointError, InputError
from plugen.molecules.backbone import SequenceVAE, length_sorted_batches
from plugen.molecules.token_cache import TokenCache, load_cache

LABELS = ("logP", "TPSA", "SAS")
KL_SCHEDULES = ("anneal", "free-bits", "mmd")
#: bytes per checkpoint part (the device tool returns files of at most 16 MiB)
PART_BYTES = 15 * 2**20
#: held-out molecules reconstructed at the end of a run
HELD_OUT = 2000


@dataclass
class Recipe:
    """Everything that defines a training run (a resumed run must use the same, except
    ``log_every`` and ``precision``)."""

    name: str = "selfies-vae-moses"
    latent_dim: int = 100
    hidden: int = 256
    layers: int = 2
    embed: int = 64
    batch_size: int = 1024
    lr: float = 1.5e-3
    warmup_steps: int = 500
    total_steps: int = 40_000
    kl: str = "mmd"  # chosen by benchmarks/kl_schedules.py
    kl_weight: float = 0.1
    anneal_steps: int = 8_000
    free_bits: float = 0.3
    mmd_weight: float = 100.0
    word_dropout: float = 0.1
    property_weight: float = 1.0
    seed: int = 0
    train_size: int = 0  # 0: every training molecule of the cache; n: its first n (short comparisons)
    precision: str = "bf16"
    log_every: int = 200

    def check(self) -> Recipe:
        if self.kl not in KL_SCHEDULES:
            raise InputError(f"kl must be one of {', '.join(KL_SCHEDULES)}, got {self.kl!r}")
        if self.precision not in ("bf16", "fp32"):
            raise InputError(f"precision must be 'bf16' or 'fp32', got {self.precision!r}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise InputError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if (
            self.batch_size < 2
            or self.total_steps < 1
            or min(self.warmup_steps, self.anneal_steps, self.train_size) < 0
        ):
            raise InputError(
                "batch_size must be >= 2, total_steps >= 1, warmup_steps, anneal_steps and train_size >= 0"
            )
        return self

    def lr_at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        frac = min(1.0, step / self.total_steps)
        return self.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    def beta_at(self, step: int) -> float:
        return self.kl_weight * (min(1.0, step / self.anneal_steps) if self.anneal_steps else 1.0)


@dataclass
class Data:
    """Training and held-out tensors made from a cache (ids stay uint8 until a batch is taken)."""

    ids: torch.Tensor
    lengths: np.ndarray
    props: torch.Tensor  # standardised labels, NaN where a molecule has none
    held_ids: torch.Tensor
    held_lengths: np.ndarray
    tokens: list[str]
    digest: str
    label_mean: np.ndarray
    label_std: np.ndarray
    meta: dict


def training_data(
    cache: TokenCache, labels_path: str | Path | None = None, device: str = "cpu", train_size: int = 0
) -> Data:
    """Split ``cache`` into training and held-out rows: the held-out rows are the validation split of
    the labelled subset (:func:`plugen.molecules.data.load_subset`, matched by ``moses_row``), which
    the shipped backbone reports on; its training rows give the property labels. ``train_size``:
    keep only the first that many training rows (0: all)."""
    from plugen.molecules.data import SUBSET, load_subset

    labels_path = str(labels_path or SUBSET)
    train_lab, val_lab = load_subset("train", labels_path), load_subset("validation", labels_path)
    held = np.isin(cache.rows, val_lab["moses_row"].to_numpy())
    keep = ~held
    if train_size:
        keep &= np.cumsum(keep) <= train_size
    rows = cache.rows[keep]
    values = np.full((len(rows), len(LABELS)), np.nan, dtype=np.float32)
    where = {int(r): i for i, r in enumerate(train_lab["moses_row"].to_numpy())}
    hits = np.array([where.get(int(r), -1) for r in rows])
    table = train_lab[list(LABELS)].to_numpy(np.float32)
    values[hits >= 0] = table[hits[hits >= 0]]
    mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
    if not np.isfinite(mean).all() or keep.sum() < 2:
        raise InputError("the token cache shares no labelled training molecule with the labels file")
    digest = hashlib.sha256(f"{cache.digest} {Path(labels_path).name} {held.sum()} {keep.sum()}".encode()).hexdigest()
    return Data(
        ids=torch.from_numpy(cache.ids[keep]).to(device),
        lengths=cache.lengths[keep].astype(np.int64),
        props=torch.from_numpy((values - mean) / std).to(device),
        held_ids=torch.from_numpy(cache.ids[held][:HELD_OUT]).to(device),
        held_lengths=cache.lengths[held][:HELD_OUT].astype(np.int64),
        tokens=cache.tokens,
        digest=digest,
        label_mean=mean,
        label_std=std,
        meta={"labelled": int((hits >= 0).sum()), "held_out": int(held.sum()), "train": int(keep.sum())},
    )


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch, a function of (seed, epoch) alone: a shuffle, sorted by length within
    windows of 50 batches (less padding), the batches shuffled again; the last short batch dropped."""
    rng = np.random.default_rng([seed, epoch])
    batches = length_sorted_batches(rng.permutation(len(lengths)), lengths, batch_size)
    batches = [b for b in batches if len(b) == batch_size] or batches
    return [batches[i] for i in rng.permutation(len(batches))]


def mmd_imq(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unbiased MMD^2 between ``z`` and as many N(0, I) draws, inverse multiquadric kernel
    k(x, y) = C / (C + |x - y|^2) with C = 2 d (Tolstikhin et al. 2018)."""
    n, d = z.shape
    prior = torch.randn(z.shape, device=z.device, dtype=z.dtype, generator=generator)
    c = 2.0 * d
    off = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)

    def kernel(a, b):
        return c / (c + torch.cdist(a, b).pow(2))

    within = ((kernel(z, z) + kernel(prior, prior)) * off).sum() / (n * (n - 1))
    return within - 2.0 * kernel(z, prior).mean()


def kl_term(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, recipe: Recipe, beta: float):
    """(the KL part of the loss, the plain KL per molecule) under ``recipe.kl``."""
    per_dim = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)
    kl = per_dim.sum(1).mean()
    if recipe.kl == "free-bits":
        return beta * per_dim.mean(0).clamp(min=recipe.free_bits).sum(), kl
    if recipe.kl == "mmd":
        return beta * kl + recipe.mmd_weight * mmd_imq(z), kl
    return beta * kl, kl


def forward_loss(model: SequenceVAE, data: Data, idx: np.ndarray, recipe: Recipe, step: int, autocast):
    """The loss of one batch and its parts (loss, recon, kl, prop, token accuracy) as a tensor."""
    device = data.ids.device
    width = int(data.lengths[idx].max())
    rows = torch.from_numpy(idx).to(device)
    ids = data.ids[rows, :width].long()
    lens = torch.from_numpy(data.lengths[idx])
    inputs = ids[:, :-1]
    if recipe.word_dropout > 0:
        drop = (torch.rand(inputs.shape, device=device) < recipe.word_dropout) & (inputs != model.tokenizer.bos)
        inputs = inputs.masked_fill(drop, model.tokenizer.pad)
    with autocast():
        mean, logvar = model.encode_stats(ids, lens)
        mean, logvar = mean.float(), logvar.float()
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        emb = model.embedding(inputs)
        x = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.shape[1], -1).to(emb.dtype)], dim=2)
        out, _ = model.decoder(x, model.initial_state(z).to(x.dtype))
        logits = model.to_logits(out).float()
        prop = model.property_head(mean).float()
    target = ids[:, 1:]
    mask = target != model.tokenizer.pad
    recon = (F.cross_entropy(logits.transpose(1, 2), target, reduction="none") * mask).sum(1).mean()
    kl_loss, kl = kl_term(mean, logvar, z, recipe, recipe.beta_at(step))
    labels = data.props[rows]
    known = ~torch.isnan(labels)
    prop_loss = ((prop - labels.nan_to_num()) ** 2 * known).sum() / known.any(1).sum().clamp(min=1)
    loss = recon + kl_loss + recipe.property_weight * prop_loss
    with torch.no_grad():
        acc = ((logits.argmax(2) == target) & mask).sum() / mask.sum()
    return loss, torch.stack([loss, recon, kl, prop_loss, acc]).detach().double()


def autocast_for(device: torch.device, precision: str):
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@dataclass
class State:
    """Where a training run stands (all of it goes into a checkpoint)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch of the epoch
    seen: int = 0
    seconds: float = 0.0
    runs: int = 0
    history: list = None
    precision_used: str = ""

    def __post_init__(self):
        self.history = [] if self.history is None else self.history


def build_model(recipe: Recipe, data: Data) -> SequenceVAE:
    return SequenceVAE(data.tokens[3:], "selfies", **model_kwargs(recipe, data))


def model_kwargs(recipe: Recipe, data: Data) -> dict:
    return {
        "latent_dim": recipe.latent_dim,
        "hidden": recipe.hidden,
        "layers": recipe.layers,
        "embed": recipe.embed,
        "max_len": int(data.ids.shape[1]),
        "n_properties": len(LABELS),
    }


def save_checkpoint(directory: Path, model, opt, state: State, recipe: Recipe, data: Data, running, counted) -> Path:
    """Write the checkpoint as parts of at most :data:`PART_BYTES` and then ``checkpoint.json`` (the
    manifest, renamed into place, so a reader sees the old checkpoint or the new one, never half);
    parts of older checkpoints are removed after."""
    payload = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "state": asdict(state),
        "running": running.cpu(),
        "counted": counted,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if data.ids.is_cuda else torch.zeros(0, dtype=torch.uint8),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    blob = buffer.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"step{state.step:09d}-{time.time_ns()}"
    parts = []
    for i in range(0, len(blob), PART_BYTES):
        chunk, name = blob[i : i + PART_BYTES], f"{tag}-{i // PART_BYTES:02d}.part"
        (directory / f"{name}.tmp").write_bytes(chunk)
        (directory / f"{name}.tmp").replace(directory / name)
        parts.append({"file": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    manifest = {
        "format": "plugen molecule training checkpoint 1",
        "step": state.step,
        "recipe": asdict(recipe),
        "data": data.digest,
        "parts": parts,
    }
    (directory / "checkpoint.json.tmp").write_text(json.dumps(manifest, indent=2))
    (directory / "checkpoint.json.tmp").replace(directory / "checkpoint.json")
    for old in directory.glob("*.part"):
        if not old.name.startswith(tag):
            old.unlink()
    return directory / "checkpoint.json"


def read_checkpoint(directory: Path, recipe: Recipe, data: Data) -> dict | None:
    """The payload of the checkpoint in ``directory`` (``None`` if there is none); refuses one made
    with another recipe or other data, or whose parts do not match their digests."""
    path = Path(directory) / "checkpoint.json"
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    free = ("log_every", "precision")  # may change between runs
    differ = sorted(k for k, v in asdict(recipe).items() if k not in free and manifest["recipe"].get(k) != v)
    if differ:
        changes = ", ".join(f"{k}: {manifest['recipe'].get(k)!r} -> {getattr(recipe, k)!r}" for k in differ)
        raise CheckpointError(f"checkpoint {path} was made with another recipe ({changes}); use another directory")
    if manifest["data"] != data.digest:
        raise CheckpointError(f"checkpoint {path} was made on other data (the token cache or labels changed)")
    blob = bytearray()
    for part in manifest["parts"]:
        file = Path(directory) / part["file"]
        chunk = file.read_bytes() if file.is_file() else b""
        if hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise CheckpointError(f"checkpoint part {file} is missing or damaged")
        blob += chunk
    return torch.load(io.BytesIO(bytes(blob)), map_location="cpu", weights_only=True)


def restore(payload: dict, model, opt, device: torch.device):
    """Load a checkpoint payload into ``model`` and ``opt``; returns (state, running sums, counted)."""
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["rng"])
    if device.type == "cuda" and len(payload["cuda_rng"]):
        torch.cuda.set_rng_state(payload["cuda_rng"])
    return State(**payload["state"]), payload["running"].to(device), int(payload["counted"])


class Trainer:
    """One run: the model, optimizer and state, resumed from ``checkpoint_dir`` when it holds one."""

    def __init__(self, data: Data, recipe: Recipe, checkpoint_dir: Path, device: torch.device, log=print):
        self.data, self.recipe, self.checkpoint_dir, self.device, self.log = data, recipe, checkpoint_dir, device, log
        torch.manual_seed(recipe.seed)
        self.model = build_model(recipe, data).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=recipe.lr)
        self.state, self.running, self.counted = State(), torch.zeros(5, dtype=torch.float64, device=device), 0
        payload = read_checkpoint(checkpoint_dir, recipe, data)
        if payload is not None:
            self.state, self.running, self.counted = restore(payload, self.model, self.opt, device)
            log(f"resumed from {checkpoint_dir} at step {self.state.step} (epoch {self.state.epoch})")
        self.state.runs += 1
        self.precision = recipe.precision

    def step(self, idx: np.ndarray) -> None:
        for group in self.opt.param_groups:
            group["lr"] = self.recipe.lr_at(self.state.step)
        self.model.train()
        try:
            loss, parts = forward_loss(
                self.model, self.data, idx, self.recipe, self.state.step, autocast_for(self.device, self.precision)
            )
        except RuntimeError as exc:  # an op without bf16 support on this device: the run goes on in fp32
            if self.precision == "fp32":
                raise
            self.log(f"bf16 autocast failed ({str(exc).splitlines()[0][:120]}); training in fp32")
            self.precision = "fp32"
            fp32 = autocast_for(self.device, "fp32")
            loss, parts = forward_loss(self.model, self.data, idx, self.recipe, self.state.step, fp32)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.running += parts
        self.counted += 1
        self.state.step += 1
        self.state.batch += 1
        self.state.seen += len(idx)
        if self.state.step % self.recipe.log_every == 0:
            self.log_row()

    def log_row(self) -> None:
        means = (self.running / max(self.counted, 1)).tolist()
        row = {k: round(v, 4) for k, v in zip(("loss", "recon", "kl", "prop", "acc"), means)}
        row.update(
            step=self.state.step,
            molecules=self.state.seen,
            epoch=self.state.epoch,
            beta=round(self.recipe.beta_at(self.state.step), 4),
            lr=float(f"{self.recipe.lr_at(self.state.step):.3g}"),
        )
        self.state.history.append(row)
        self.log(json.dumps(row))
        self.running, self.counted = torch.zeros_like(self.running), 0

    def save(self) -> Path:
        self.state.precision_used = self.precision
        return save_checkpoint(
            self.checkpoint_dir, self.model, self.opt, self.state, self.recipe, self.data, self.running, self.counted
        )

    def run(self, seconds: float, until_step: int | None = None, checkpoint_seconds: float = 60.0) -> dict:
        """Train until ``seconds`` have passed (or step ``until_step``), with a checkpoint every
        ``checkpoint_seconds`` and one at the end. Returns this run's figures."""
        start = last = time.perf_counter()
        first_step, first_seen = self.state.step, self.state.seen
        while not self._done(start, seconds, until_step):
            batches = epoch_batches(self.data.lengths, self.recipe.batch_size, self.recipe.seed, self.state.epoch)
            while self.state.batch < len(batches) and not self._done(start, seconds, until_step):
                self.step(batches[self.state.batch])
                if time.perf_counter() - last >= checkpoint_seconds:
                    self.save()
                    last = time.perf_counter()
            if self.state.batch >= len(batches):
                self.state.epoch, self.state.batch = self.state.epoch + 1, 0
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        self.state.seconds += elapsed
        self.save()
        steps, seen = self.state.step - first_step, self.state.seen - first_seen
        return {
            "run": self.state.runs,
            "steps": steps,
            "first_step": first_step,
            "seconds": round(elapsed, 1),
            "molecules_per_second": round(seen / elapsed, 1) if elapsed > 0 else None,
            "steps_per_second": round(steps / elapsed, 2) if elapsed > 0 else None,
            "device": device_name(self.device),
            "precision": self.precision,
        }

    def _done(self, start: float, seconds: float, until_step: int | None) -> bool:
        if until_step is not None and self.state.step >= until_step:
            return True
        return time.perf_counter() - start >= seconds


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu, {torch.get_num_threads()} threads"


@torch.no_grad()
def held_out_figures(model: SequenceVAE, data: Data, batch: int = 500) -> dict:
    """Reconstruction of the held-out molecules without RDKit: token accuracy under teacher forcing
    and exact greedy reconstruction of the token sequence from the posterior mean; and how well the
    aggregate posterior covers the prior: mean over dimensions of Var(mu) + E[sigma^2] (1 when the
    second moments match N(0, I)) and the active dimensions (Var(mu) > 0.01, Burda et al. 2016)."""
    model.eval()
    if len(data.held_lengths) == 0:
        return {"molecules": 0}
    correct = total = exact = 0
    mus, variances = [], []
    for i in range(0, len(data.held_lengths), batch):
        lens_np = data.held_lengths[i : i + batch]
        ids = data.held_ids[i : i + batch, : int(lens_np.max())].long()
        lens = torch.from_numpy(lens_np)
        logits, mu, logvar, _ = model(ids, lens, sample=False)
        target, mask = ids[:, 1:], ids[:, 1:] != model.tokenizer.pad
        correct += int(((logits.argmax(2) == target) & mask).sum())
        total += int(mask.sum())
        out = model.generate(mu, max_len=ids.shape[1] + 1)
        width = min(out.shape[1], target.shape[1])
        same = (out[:, :width] == target[:, :width]) | ~mask[:, :width]
        exact += int((same.all(1) & (mask.sum(1) <= width)).sum())
        mus.append(mu.float().cpu())
        variances.append(logvar.float().exp().cpu())
    mu, var = torch.cat(mus), torch.cat(variances)
    return {
        "molecules": len(data.held_lengths),
        "token_accuracy": round(correct / total, 4),
        "exact_token_reconstruction": round(exact / len(data.held_lengths), 4),
        "aggregate_second_moment": round(float((mu.var(0) + var.mean(0)).mean()), 4),
        "active_dimensions": int((mu.var(0) > 0.01).sum()),
    }


def train(
    cache: str | Path,
    checkpoint_dir: str | Path,
    output_dir: str | Path,
    recipe: Recipe | None = None,
    minutes: float = 10.0,
    device: str = "cpu",
    labels: str | Path | None = None,
    until_step: int | None = None,
    checkpoint_seconds: float = 60.0,
    log=print,
) -> dict:
    """Train (or go on training from ``checkpoint_dir``) for ``minutes`` or up to step ``until_step``,
    then export the weights and the training record to ``output_dir`` as ``<recipe.name>.safetensors``
    and ``.json``. Returns the record."""
    recipe = (recipe or Recipe()).check()
    if minutes <= 0:
        raise InputError(f"minutes must be > 0, got {minutes}")
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    t0 = time.perf_counter()
    loaded = load_cache(cache)
    data = training_data(loaded, labels, device, recipe.train_size)
    data_seconds = time.perf_counter() - t0
    log(
        f"{data.meta['train']} training molecules ({data.meta['labelled']} labelled), {data.meta['held_out']} held out, "
        f"vocabulary {len(data.tokens)}, max_len {data.ids.shape[1]}, data {data_seconds:.1f} s"
    )
    trainer = Trainer(data, recipe, Path(checkpoint_dir), device, log)
    this_run = trainer.run(minutes * 60.0, until_step, checkpoint_seconds)
    this_run["data_seconds"] = round(data_seconds, 1)
    log(json.dumps(this_run))
    held = held_out_figures(trainer.model, data)
    log(json.dumps({"held_out": held}))
    return export(trainer, loaded, data, this_run, held, Path(output_dir))


def export(trainer: Trainer, cache: TokenCache, data: Data, this_run: dict, held: dict, output_dir: Path) -> dict:
    """Weights and training record (``registry.save``); the record keeps every run's figures."""
    recipe, state = trainer.recipe, trainer.state
    previous = output_dir / f"{recipe.name}.json"
    runs = []
    if previous.is_file():
        runs = [r for r in json.loads(previous.read_text())["training"].get("runs", []) if r["run"] < this_run["run"]]
    runs.append(this_run)
    info = {
        "data": {
            "name": f"MOSES training set, tokenised ({cache.meta['source']}, sha256 {cache.meta['source_sha256'][:16]})",
            "license": "MOSES (Polykovskiy et al. 2020), MIT, Copyright (c) 2018 Insilico Medicine",
            "cache_arrays_sha256": cache.digest,
            "data_sha256": data.digest,
            "train_size": data.meta["train"],
            "labelled": data.meta["labelled"],
            "held_out": data.meta["held_out"],
            "not_tokenised": cache.meta["failed"],
            "split": "held out: the rows of plugen.molecules.data.load_subset('validation') (moses_row)",
        },
        "property_head": {
            "labels": list(LABELS),
            "mean": np.round(data.label_mean, 4).tolist(),
            "std": np.round(data.label_std, 4).tolist(),
        },
        "training": {
            "recipe": asdict(recipe),
            "steps": state.step,
            "molecules_seen": state.seen,
            "epochs": round(state.seen / max(data.meta["train"], 1), 3),
            "seconds": round(state.seconds, 1),
            "optimizer": "Adam, gradient norm clipped at 1",
            "runs": runs,
            "history": state.history,
            "held_out": held,
            "final": None,
        },
        "torch_version": torch.__version__,
        "reproduce": "bash benchmarks/gpu_backbone.sh (see docs/guide/molecule-backbone-gpu.md)",
    }
    model = trainer.model.cpu().eval()
    kwargs = {"tokens": data.tokens[3:], "tokenizer": "selfies", **model_kwargs(recipe, data)}
    registry.save(model, recipe.name, "molecules", recipe.latent_dim, [kwargs["max_len"]], kwargs, info, output_dir)
    return registry.describe(recipe.name, output_dir)


def recipe_from(args) -> Recipe:
    values = {f.name: getattr(args, f.name) for f in fields(Recipe) if getattr(args, f.name, None) is not None}
    return Recipe(**values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", required=True, help="token cache (python -m plugen.molecules.token_cache)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (resumed from when it holds one)")
    parser.add_argument("--output", required=True, help="directory for the weights and training record")
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget of this run (default 10)")
    parser.add_argument("--until-step", type=int, default=None, help="stop at this step (total, not this run's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--labels", default=None, help="labelled subset CSV (default: the shipped MOSES subset)")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    defaults = Recipe()
    for f in fields(Recipe):
        flag = "--" + f.name.replace("_", "-")
        kind = type(getattr(defaults, f.name))
        parser.add_argument(flag, type=kind, default=None, help=f"recipe (default {getattr(defaults, f.name)})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plugen.molecules.train_full", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = recipe_from(args)
    if args.precision is None and not str(args.device).startswith("cuda"):
        recipe.precision = "fp32"  # bf16 autocast is for the GPU; on a CPU it is slower
    meta = train(
        args.cache,
        args.checkpoint,
        args.output,
        recipe,
        args.minutes,
        args.device,
        args.labels,
        args.until_step,
        args.checkpoint_seconds,
    )
    training = meta["training"]
    summary = {k: training[k] for k in ("steps", "molecules_seen", "epochs", "seconds", "held_out")}
    print(json.dumps({"name": meta["name"], **summary, "this_run": training["runs"][-1]}, indent=2))


if __name__ == "__main__":
    main()
