"""Compare molecule VAEs from the descriptions their training command writes (issue: SMILES vs SELFIES).

    python benchmarks/molecule_backbones.py A.json B.json ...   # e.g. a selfies-vae and a smiles-char-vae

Each JSON is what ``python -m plugen.backbones.train <name>`` or ``python -m plugen.molecules.train_backbone <name>`` writes next to the weights. The table
gives the training budget and the final validation (exact reconstruction of unseen molecules,
teacher-forced token accuracy, validity and uniqueness of decoded prior samples); the learning
curves compare the training-batch token accuracy at the same number of molecules seen. Writes
``results/molecule_backbones.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def row(name: str, meta: dict) -> str:
    t = meta["training"]
    final = t.get("final") or {}
    val, prior = final.get("validation", {}), final.get("prior_samples", {})
    return (
        f"| {name} | {meta['architecture']['kwargs']['tokenizer']} | {t['device']}, {t['threads']} threads, "
        f"{t['seconds'] / 60:.1f} min | {t['kl_weight']:g} | {t['steps']:,} x {t['batch_size']} | {t['molecules_seen']:,} | "
        f"{val.get('exact_reconstruction', '-')} | {val.get('token_accuracy', '-')} | "
        f"{prior.get('validity', '-')} | {prior.get('uniqueness', '-')} |"
    )


def curves(metas: dict[str, dict], points: int = 10) -> list[str]:
    """Training token accuracy of each model, interpolated at molecule counts all of them reached."""
    logged = {
        name: ([h["molecules"] for h in m["training"]["history"]], [h["acc"] for h in m["training"]["history"]])
        for name, m in metas.items()
    }
    low = max(seen[0] for seen, _ in logged.values())
    high = min(seen[-1] for seen, _ in logged.values())
    lines = ["| molecules seen | " + " | ".join(metas) + " |", "|---|" + "---|" * len(metas)]
    for k in np.linspace(low, high, points):
        lines.append(f"| {k:,.0f} | " + " | ".join(f"{np.interp(k, *logged[name]):.3f}" for name in metas) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("descriptions", nargs="+", help="backbone JSON files")
    parser.add_argument("--output", default=str(RESULTS / "molecule_backbones.md"))
    args = parser.parse_args()
    metas = {Path(p).name: json.loads(Path(p).read_text()) for p in args.descriptions}
    lines = [
        "# Molecule VAEs compared",
        "",
        f"Command: `python benchmarks/molecule_backbones.py {' '.join(args.descriptions)}`",
        "",
        "| description | tokens | trained on | KL weight | steps | molecules seen | exact reconstruction "
        "| token accuracy | prior validity | prior uniqueness |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(name, meta) for name, meta in metas.items()]
    lines += [
        "",
        "Token accuracy on training batches (teacher forcing; the logged means of 200 steps, interpolated), at equal molecules seen:",
        "",
    ]
    lines += curves(metas)
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
