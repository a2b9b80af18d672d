"""Train the molecule VAEs: ``python -m plugen.molecules.train_backbone selfies-vae``.

Trainable names: ``selfies-vae`` (SELFIES tokens, shipped) and ``smiles-char-vae`` (the same
:class:`~plugen.molecules.backbone.SequenceVAE` on SMILES characters, CharVAE's representation;
not shipped, train it to compare). Data: the shipped MOSES subset (:mod:`plugen.molecules.data`),
its fixed train / validation split, optionally only the first ``train_size`` training rows.

Training is bounded by wall-clock time (``minutes``), so a CPU and a GPU run the same command and
the GPU simply sees more steps: Adam, linear warm-up then cosine decay of the learning rate over the
time budget, KL annealing from 0 to ``kl_weight`` over the first ``anneal`` fraction of it, word
dropout on the teacher-forced decoder inputs, gradient clipping, and an auxiliary property head
(standardised logP, TPSA, SAS from the posterior mean; CharVAE's joint training). The JSON written
next to the weights records the steps and molecules seen, the losses, validation reconstruction and
prior-sample validity / uniqueness, and the command that reproduces it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from plugen.backbones import registry
from plugen.errors import InputError
from plugen.molecules.backbone import MoleculeBackbone, SequenceVAE, length_sorted_batches, pad
from plugen.molecules.tokenizers import TOKENIZERS, EncodeError

LABELS = ("logP", "TPSA", "SAS")
#: validation molecules scored after training
VALIDATION_MOLECULES = 1000


@dataclass
class MoleculeSpec:
    tokenizer: str
    kwargs: dict[str, Any] = field(default_factory=lambda: {"latent_dim": 100, "hidden": 256, "layers": 2, "embed": 64})
    minutes: float = 50.0
    batch_size: int = 128
    lr: float = 1e-3
    kl_weight: float = 0.25
    anneal: float = 0.3
    word_dropout: float = 0.1
    property_weight: float = 1.0
    train_size: int | None = None
    max_len: int | None = None  # default: longest training sequence


MOLECULE_SPECS: dict[str, MoleculeSpec] = {
    "selfies-vae": MoleculeSpec("selfies"),
    "smiles-char-vae": MoleculeSpec("smiles"),
}


def tokenize_all(smiles, tok, progress: bool = True):
    from tqdm.auto import tqdm

    ids, keep = [], []
    for i, s in enumerate(tqdm(smiles, desc="tokenize", leave=False, disable=not progress, mininterval=5)):
        try:
            ids.append(tok.encode(s))
            keep.append(i)
        except EncodeError:
            continue
    return ids, np.asarray(keep)


def tokenized(smiles: list[str], kind: str, cache: str | Path | None = None, progress: bool = True):
    """The tokenizer built on ``smiles``, their token ids and the indices of the SMILES kept.

    Tokenizing 250k molecules takes minutes (RDKit parses every one). With ``cache`` (an ``.npz``
    path) the result is read from there when it was made from the same SMILES and tokenizer, and
    written there otherwise (atomically), so that a second run, or a run on a machine without
    RDKit (a GPU node), starts training at once."""
    digest = hashlib.sha256(("\n".join([kind, *smiles])).encode()).hexdigest()
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as saved:
            if str(saved["digest"]) == digest:
                ends = saved["ends"]
                flat = saved["ids"].tolist()
                ids = [flat[a:b] for a, b in zip(np.r_[0, ends[:-1]], ends)]
                return TOKENIZERS[kind](json.loads(str(saved["tokens"]))[3:]), ids, saved["keep"]
    tok = TOKENIZERS[kind].build(smiles)
    ids, keep = tokenize_all(smiles, tok, progress)
    if cache is not None:
        temporary = Path(f"{cache}.partial.npz")
        np.savez_compressed(
            temporary,
            digest=digest,
            tokens=json.dumps(tok.tokens),
            keep=keep,
            ids=np.concatenate(ids).astype(np.int16),
            ends=np.cumsum([len(i) for i in ids]),
        )
        temporary.replace(cache)
    return tok, ids, keep


def _bucketed(lengths: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Batches of similar length (less padding): shuffle, sort within windows of 50 batches."""
    batches = length_sorted_batches(rng.permutation(len(lengths)), lengths, batch_size)
    rng.shuffle(batches)
    return batches


def train_molecule_backbone(
    name: str,
    output_dir=registry.WEIGHTS,
    minutes: float | None = None,
    train_size: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    log=print,
    batch_size: int | None = None,
    lr: float | None = None,
    token_cache: str | Path | None = None,
    evaluation: bool = True,
    kl_weight: float | None = None,
    word_dropout: float | None = None,
) -> dict:
    """Train ``name`` (a :data:`MOLECULE_SPECS` entry; ``minutes``, ``train_size``, ``batch_size``,
    ``lr``, ``kl_weight`` and ``word_dropout`` override the spec) and save it to ``output_dir``.
    ``token_cache``: see :func:`tokenized`. ``evaluation=False`` skips the final validation (it needs RDKit); run
    :func:`record_evaluation` later."""
    from plugen.molecules.data import load_subset

    spec = MOLECULE_SPECS[name]
    minutes = spec.minutes if minutes is None else float(minutes)
    train_size = spec.train_size if train_size is None else int(train_size)
    batch_size = spec.batch_size if batch_size is None else int(batch_size)
    lr = spec.lr if lr is None else float(lr)
    kl_weight = spec.kl_weight if kl_weight is None else float(kl_weight)
    word_dropout = spec.word_dropout if word_dropout is None else float(word_dropout)
    if not 0.0 <= word_dropout < 1.0:
        raise InputError(f"word_dropout must be in [0, 1), got {word_dropout}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    train_df, val_df = load_subset("train"), load_subset("validation")
    if train_size:
        train_df = train_df.iloc[:train_size]
    tok, train_ids, keep = tokenized(train_df["SMILES"].tolist(), spec.tokenizer, token_cache, progress)
    props = train_df[list(LABELS)].to_numpy(np.float32)[keep]
    mean, std = props.mean(0), props.std(0)
    props_t = torch.from_numpy((props - mean) / std)
    lengths = np.array([len(s) for s in train_ids])
    max_len = spec.max_len or int(lengths.max())
    data_seconds = time.perf_counter() - t0
    log(f"{len(train_ids)} training sequences, vocabulary {len(tok)}, max_len {max_len}, data {data_seconds:.0f} s")

    model = SequenceVAE(tok.tokens[3:], spec.tokenizer, max_len=max_len, n_properties=len(LABELS), **spec.kwargs).to(
        device
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    budget = minutes * 60.0
    start = time.perf_counter()
    step = seen = epoch = 0
    history = []
    # loss, recon, kl, prop, acc summed over the steps since the last log line: kept on the
    # device and read every 200 steps (reading every step would make the host wait for a GPU)
    running, counted = torch.zeros(5, dtype=torch.float64, device=device), 0
    stop = False
    while not stop:
        epoch += 1
        for idx in _bucketed(lengths, batch_size, rng):
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                stop = True
                break
            frac = elapsed / budget
            step_lr = lr * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g["lr"] = step_lr
            beta = kl_weight * min(1.0, frac / spec.anneal) if spec.anneal > 0 else kl_weight
            ids, lens = pad([train_ids[i] for i in idx], tok.pad)
            ids, lens = ids.to(device), lens.to(device)
            inputs = ids[:, :-1]
            if word_dropout > 0:
                drop = (torch.rand(inputs.shape, device=device) < word_dropout) & (inputs != tok.bos)
                inputs = inputs.masked_fill(drop, tok.pad)
            model.train()
            logits, mu, logvar, prop = model(ids, lens, inputs)
            target = ids[:, 1:]
            mask = target != tok.pad
            ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
            recon = (ce * mask).sum(1).mean()
            kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).mean()
            prop_loss = ((prop - props_t[idx].to(device)) ** 2).sum(1).mean()
            loss = recon + beta * kl + spec.property_weight * prop_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seen += len(idx)
            with torch.no_grad():
                acc = ((logits.argmax(2) == target) & mask).sum() / mask.sum()
                running += torch.stack([loss, recon, kl, prop_loss, acc]).double()
            counted += 1
            if step % 200 == 0:
                means = (running / counted).tolist()
                row = {k: round(v, 4) for k, v in zip(("loss", "recon", "kl", "prop", "acc"), means)}
                row.update(
                    step=step,
                    molecules=seen,
                    epoch=epoch,
                    minutes=round(elapsed / 60, 2),
                    beta=round(beta, 4),
                    lr=float(f"{step_lr:.3g}"),
                )
                history.append(row)
                log(json.dumps(row))
                running, counted = torch.zeros_like(running), 0
    seconds = time.perf_counter() - start
    model.eval().cpu()
    final = evaluate(model, val_df["SMILES"].tolist()[:VALIDATION_MOLECULES], seed) if evaluation else None
    log(json.dumps(final))
    reproduce = f"python -m plugen.molecules.train_backbone {name} --threads {torch.get_num_threads()}"
    for flag, value, default in (
        ("minutes", minutes, spec.minutes),
        ("train-size", train_size, spec.train_size),
        ("batch-size", batch_size, spec.batch_size),
        ("lr", lr, spec.lr),
        ("kl-weight", kl_weight, spec.kl_weight),
        ("word-dropout", word_dropout, spec.word_dropout),
        ("seed", seed, 0),
    ):
        if value != default:
            reproduce += f" --{flag} {value:g}" if isinstance(value, float) else f" --{flag} {value}"  # 1e+06 is no int
    if str(device) != "cpu":
        reproduce += f" --device {device}"
    kwargs = {
        "tokens": tok.tokens[3:],
        "tokenizer": spec.tokenizer,
        "max_len": max_len,
        "n_properties": len(LABELS),
        **spec.kwargs,
    }
    info = {
        "data": {
            "name": "MOSES 250k subset (plugen/molecules/data/moses-250k.csv.gz)",
            "license": "MOSES (Polykovskiy et al. 2020), MIT, Copyright (c) 2018 Insilico Medicine",
            "train_size": len(train_ids),
            "validation_size": len(val_df),
            "split": "plugen.molecules.data.load_subset('train' / 'validation')",
        },
        "property_head": {"labels": list(LABELS), "mean": mean.round(4).tolist(), "std": std.round(4).tolist()},
        "training": {
            "minutes_budget": minutes,
            "steps": step,
            "molecules_seen": seen,
            "epochs_started": epoch,
            "batch_size": batch_size,
            "optimizer": "Adam",
            "lr": lr,
            "schedule": "warm-up 200 steps, cosine to 0.1 lr over the time budget",
            "kl_weight": kl_weight,
            "kl_anneal_fraction": spec.anneal,
            "word_dropout": word_dropout,
            "property_weight": spec.property_weight,
            "seed": seed,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "seconds": round(seconds, 1),
            "data_seconds": round(data_seconds, 1),
            "history": history,
            "final": final,
        },
        "torch_version": torch.__version__,
        "reproduce": reproduce,
    }
    registry.save(model, name, "molecules", spec.kwargs["latent_dim"], [max_len], kwargs, info, Path(output_dir))
    return registry.describe(name, Path(output_dir))


def record_evaluation(name: str, output_dir=registry.WEIGHTS, seed: int = 0) -> dict:
    """Evaluate saved weights (:func:`evaluate` on the validation molecules) and write the result
    into their JSON as ``training.final``: for weights trained with ``evaluation=False``."""
    from plugen.molecules.data import load_subset

    model, _ = registry.load_model(name, directory=Path(output_dir))
    final = evaluate(model, load_subset("validation")["SMILES"].tolist()[:VALIDATION_MOLECULES], seed)
    path = Path(output_dir) / f"{name}.json"
    meta = json.loads(path.read_text())
    meta["training"]["final"] = final
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(json.dumps(meta, indent=2))
    temporary.replace(path)
    return final


@torch.no_grad()
def evaluate(model: SequenceVAE, smiles: list[str], seed: int = 0, n_prior: int = 1000) -> dict:
    """Validation reconstruction (greedy decoding of the posterior mean; exact canonical match and
    token accuracy under teacher forcing) and validity / uniqueness of decodings of z ~ N(0, I)."""
    from plugen.molecules.properties import canonical

    bb = MoleculeBackbone(model, "eval")
    z = bb.encode(smiles)
    ok = ~np.isnan(z).any(1)
    decoded = bb.decode(z[ok])
    originals = [canonical(s) for s, k in zip(smiles, ok) if k]
    exact = float(np.mean([d == o for d, o in zip(decoded, originals)]))
    ids, _ = bb.tokenize([s for s, k in zip(smiles, ok) if k])
    batch, lens = pad(ids, bb.tokenizer.pad)
    logits, *_ = model(batch, lens, sample=False)
    target = batch[:, 1:]
    mask = target != bb.tokenizer.pad
    token_acc = float(((logits.argmax(2) == target) & mask).sum() / mask.sum())
    gen = torch.Generator().manual_seed(seed)
    prior = bb.decode(torch.randn(n_prior, model.latent_dim, generator=gen))
    valid = [s for s in prior if s]
    return {
        "validation": {
            "molecules": int(ok.sum()),
            "exact_reconstruction": round(exact, 4),
            "token_accuracy": round(token_acc, 4),
        },
        "prior_samples": {
            "n": n_prior,
            "validity": round(len(valid) / n_prior, 4),
            "uniqueness": round(len(set(valid)) / max(len(valid), 1), 4),
        },
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=None, help="molecule VAEs: training time budget (default 50)")
    parser.add_argument(
        "--train-size", type=int, default=None, help="molecule VAEs: use only this many training molecules"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="molecule VAEs: molecules per step (default 128)")
    parser.add_argument("--lr", type=float, default=None, help="molecule VAEs: peak learning rate (default 1e-3)")
    parser.add_argument(
        "--kl-weight", type=float, default=None, help="molecule VAEs: weight of the KL term (default 0.25)"
    )
    parser.add_argument(
        "--word-dropout",
        type=float,
        default=None,
        help="molecule VAEs: share of decoder input tokens hidden in training (default 0.1)",
    )
    parser.add_argument(
        "--token-cache", default=None, help="molecule VAEs: .npz file that keeps the tokenized training set"
    )
    parser.add_argument(
        "--no-evaluation",
        action="store_true",
        help="molecule VAEs: skip the final validation (needs RDKit); run --evaluate-only later",
    )
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="molecule VAEs: evaluate the saved weights in --output and record it in their JSON",
    )


def run(args) -> None:
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    output = getattr(args, "output", registry.WEIGHTS)
    if args.evaluate_only:
        print(json.dumps(record_evaluation(args.name, output, getattr(args, "seed", 0)), indent=2))
        return
    meta = train_molecule_backbone(
        args.name,
        output,
        args.minutes,
        args.train_size,
        getattr(args, "seed", 0),
        getattr(args, "device", "cpu"),
        batch_size=args.batch_size,
        lr=args.lr,
        token_cache=args.token_cache,
        evaluation=not args.no_evaluation,
        kl_weight=args.kl_weight,
        word_dropout=args.word_dropout,
    )
    print(
        json.dumps(
            {"name": meta["name"], "seconds": meta["training"]["seconds"], "final": meta["training"]["final"]}, indent=2
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m plugen.molecules.train_backbone",
        description="Train a molecule backbone (a GRU VAE on SELFIES or SMILES).",
    )
    parser.add_argument("name", choices=sorted(MOLECULE_SPECS))
    parser.add_argument(
        "--output", default=str(registry.WEIGHTS), help="directory for the weights (default: the package's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's; use 1 when another process shares the cores)",
    )
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
