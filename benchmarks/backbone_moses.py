"""MOSES metrics of molecule backbones' prior samples, side by side (issue 31: the retrained backbone vs the shipped one).

    python benchmarks/backbone_moses.py selfies-vae selfies-vae-moses@DIR --n 10000 --ref 10000 --fcd

Each backbone is a name (a shipped one) or ``name@directory`` (weights written by
``benchmarks/gpu_backbone.sh`` or ``python -m plugen.molecules.train_full``). For each, ``n`` latents
drawn from N(0, I) (the same draws for every backbone of one latent size) are decoded and scored with
:mod:`plugen.molecules.moses` against ``ref`` molecules of the MOSES test set, novelty against the
whole MOSES training set; beside them the backbone's reconstruction of 1,000 validation molecules of
the shipped subset (:func:`plugen.molecules.train_backbone.evaluate`). Writes ``--tag``.json / .md
(default ``results/backbone_moses``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# the shared MOSES files, next to the checkout (../shared) or next to a worktree's folder (../../shared)
MOSES_DATA = next(
    (p / "shared/data/moses" for p in Path(__file__).resolve().parents[2:4] if (p / "shared/data/moses").is_dir()),
    Path("shared/data/moses"),
)
COLUMNS = ("valid", "unique@1k", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "Filters", "novelty")
#: the MOSES VAE baseline (Polykovskiy et al. 2020, Table 2; FCD, SNN, Frag, Scaf on Test)
MOSES_VAE = {"valid": 0.977, "unique@1k": 1.0, "FCD/Test": 0.099, "SNN/Test": 0.626, "Frag/Test": 0.999}
MOSES_VAE |= {"Scaf/Test": 0.939, "IntDiv": 0.856, "Filters": 0.997, "novelty": 0.695}


def load_backbone(spec: str):
    from plugen.backbones import registry

    name, _, folder = spec.partition("@")
    return registry.load(name, directory=Path(folder)) if folder else registry.load(name)


def reference_sets(moses: Path, ref: int, seed: int, fcd: bool):
    import pandas as pd

    from plugen.molecules import moses as metrics

    test = pd.read_csv(moses / "test.csv.gz")["SMILES"].sample(ref, random_state=seed).tolist()
    reference = metrics.Reference(test, fcd=fcd)
    return reference, frozenset(pd.read_csv(moses / "train.csv.gz")["SMILES"])


def score(spec: str, n: int, seed: int, reference, training) -> dict:
    from plugen.molecules import moses as metrics
    from plugen.molecules.data import load_subset
    from plugen.molecules.train_backbone import evaluate

    bb = load_backbone(spec)
    t0 = time.perf_counter()
    prior = np.random.default_rng(seed).standard_normal((n, bb.latent_dim)).astype(np.float32)
    row = metrics.moses_metrics(bb.decode(prior), reference, training, ks=(1_000,))
    validation = load_subset("validation")["SMILES"].tolist()[:1000]
    row["reconstruction"] = evaluate(bb.model, validation, seed, n_prior=10)["validation"]
    row["training"] = {k: bb.meta["training"].get(k) for k in ("steps", "molecules_seen", "seconds")}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def markdown(results: dict) -> str:
    def cell(value):
        return "-" if value is None or value != value else f"{value:.3f}"

    head = "| backbone | " + " | ".join(COLUMNS) + " | exact reconstruction | token accuracy |"
    lines = [
        "# Molecule backbones: MOSES metrics of prior samples",
        "",
        f"Command: `{results['command']}`. {results['n']:,} decoded N(0, I) latents per backbone against "
        f"{results['reference']}; novelty against the whole MOSES training set; reconstruction of 1,000 validation "
        "molecules of the shipped subset (exact canonical SMILES, teacher-forced token accuracy). The last row is "
        "the published MOSES VAE (30,000 samples against the whole test set).",
        "",
        head,
        "|" + "---|" * (len(COLUMNS) + 3),
    ]
    for spec, row in results["rows"].items():
        rec = row["reconstruction"]
        values = " | ".join(cell(row.get(c)) for c in COLUMNS)
        lines.append(f"| {spec} | {values} | {rec['exact_reconstruction']} | {rec['token_accuracy']} |")
    lines.append("| MOSES VAE (published) | " + " | ".join(cell(MOSES_VAE.get(c)) for c in COLUMNS) + " | - | - |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backbones", nargs="+", help="NAME (shipped) or NAME@DIRECTORY")
    parser.add_argument("--n", type=int, default=10_000, help="prior samples per backbone")
    parser.add_argument("--ref", type=int, default=10_000, help="MOSES test molecules in the reference")
    parser.add_argument("--fcd", action="store_true", help="also FCD/Test (fcd-torch's ChemNet)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--moses-data", default=str(MOSES_DATA))
    parser.add_argument("--tag", default=str(RESULTS / "backbone_moses"), help="output path without suffix")
    args = parser.parse_args(argv)
    reference, training = reference_sets(Path(args.moses_data), args.ref, args.seed, args.fcd)
    rows = {}
    for spec in args.backbones:
        rows[spec] = score(spec, args.n, args.seed, reference, training)
        print(json.dumps({"backbone": spec, **rows[spec]}, default=float), flush=True)
    results = {
        "command": "python benchmarks/backbone_moses.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "n": args.n,
        "reference": f"{args.ref:,} molecules of the MOSES test set",
        "rows": rows,
        "published_moses_vae": MOSES_VAE,
    }
    Path(args.tag).with_suffix(".json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    Path(args.tag).with_suffix(".md").write_text(markdown(results))
    print(f"wrote {Path(args.tag).with_suffix('.md')}")


if __name__ == "__main__":
    main()
