"""A short measured comparison of KL schedules for the molecule VAE, on a CPU at tiny scale (issue 31).

    python benchmarks/kl_schedules.py --cache .gpu/moses-train-selfies.npz --minutes 4 --train-size 100000

Trains the same :class:`~plugen.molecules.backbone.SequenceVAE` (the shipped architecture) with
each schedule of :mod:`plugen.molecules.train_full` for the same wall-clock minutes on the same
molecules, then scores each: held-out reconstruction (token accuracy, exact greedy reconstruction of
the token sequence), how the aggregate posterior covers the prior (mean of Var(mu) + E[sigma^2] per
dimension, active dimensions), and the MOSES metrics of ``n`` decoded N(0, I) draws against ``ref``
MOSES test molecules: a decoder with holes between posteriors gives prior samples unlike the data.
Writes ``results/kl_schedules.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from backbone_moses import MOSES_DATA, RESULTS, reference_sets  # noqa: E402

from plugen.molecules import train_full  # noqa: E402

#: the schedules compared: the shipped recipe's (annealing to 0.25), free bits, aggregate-posterior match
SCHEDULES = {
    "anneal to 0.25 (shipped)": {"kl": "anneal", "kl_weight": 0.25},
    "free bits 0.3, weight 1": {"kl": "free-bits", "kl_weight": 1.0, "free_bits": 0.3},
    "MMD 100 + KL 0.1": {"kl": "mmd", "kl_weight": 0.1, "mmd_weight": 100.0},
}
COLUMNS = ("valid", "unique@1k", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "Filters")


def run_one(label: str, settings: dict, args, folder: Path) -> dict:
    from plugen.backbones import registry
    from plugen.molecules import moses

    recipe = train_full.Recipe(
        name="kl",
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=20,
        total_steps=args.steps,
        anneal_steps=args.steps // 3,
        train_size=args.train_size,
        precision="fp32",
        log_every=50,
        **settings,
    )
    meta = train_full.train(args.cache, folder / "ck", folder, recipe, args.minutes, "cpu", log=lambda line: None)
    bb = registry.load("kl", directory=folder)
    prior = np.random.default_rng(args.seed).standard_normal((args.n, bb.latent_dim)).astype(np.float32)
    row = moses.moses_metrics(bb.decode(prior), args.reference, ks=(1_000,))
    last = meta["training"]["history"][-1] if meta["training"]["history"] else {}
    return {
        "schedule": label,
        "recipe": asdict(recipe),
        "steps": meta["training"]["steps"],
        "molecules_seen": meta["training"]["molecules_seen"],
        "final_training_batch": last,
        "held_out": meta["training"]["held_out"],
        "prior_samples": row,
    }


def markdown(results: dict) -> str:
    def cell(v):
        return "-" if v is None or v != v else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [
        "# KL schedules compared (molecule VAE, CPU, tiny scale)",
        "",
        f"Command: `{results['command']}`. Each schedule: the shipped architecture, {results['minutes']} minutes on "
        f"one CPU thread, the same {results['train_size']:,} MOSES training molecules; held-out: the shipped subset's "
        f"validation molecules; prior samples: {results['n']:,} decoded N(0, I) draws against {results['reference']}.",
        "",
        "| schedule | steps | training KL | held-out token accuracy | exact reconstruction | Var(mu) + E[sigma^2] "
        "| active dims | " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * (7 + len(COLUMNS)),
    ]
    for r in results["rows"]:
        held, last, prior = r["held_out"], r["final_training_batch"], r["prior_samples"]
        lines.append(
            f"| {r['schedule']} | {r['steps']} | {cell(last.get('kl'))} | {held['token_accuracy']} | "
            f"{held['exact_token_reconstruction']} | {held['aggregate_second_moment']} | {held['active_dimensions']} | "
            + " | ".join(cell(prior.get(c)) for c in COLUMNS)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--train-size", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=300, help="total_steps of the schedules (a CPU's few minutes)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--ref", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fcd", action="store_true")
    parser.add_argument("--output", default=str(RESULTS), help="folder of kl_schedules.json / .md")
    parser.add_argument("--only", default=None, help="comma-separated schedule numbers (0-based) to run")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    args.reference, _ = reference_sets(MOSES_DATA, args.ref, args.seed, args.fcd)
    chosen = list(SCHEDULES.items())
    if args.only:
        chosen = [chosen[int(i)] for i in args.only.split(",")]
    rows = []
    for label, settings in chosen:
        with tempfile.TemporaryDirectory() as folder:
            rows.append(run_one(label, settings, args, Path(folder)))
        print(json.dumps(rows[-1], default=float), flush=True)
    results = {
        "command": "python benchmarks/kl_schedules.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "minutes": args.minutes,
        "train_size": args.train_size,
        "n": args.n,
        "reference": f"{args.ref:,} molecules of the MOSES test set",
        "rows": rows,
    }
    out = Path(args.output)
    (out / "kl_schedules.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (out / "kl_schedules.md").write_text(markdown(results))
    print(f"wrote {out / 'kl_schedules.md'}")


if __name__ == "__main__":
    main()
