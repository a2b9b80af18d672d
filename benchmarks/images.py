"""Image benchmark (issue: images): the papers' image protocols at full size.

    python benchmarks/images.py                 # ~50 min on 2 CPU cores (MNIST, Shapes, classification)
    python benchmarks/images.py --parts gan     # the GAN experiment alone (~10 min)
    python benchmarks/images.py --quick         # smoke run

Writes ``benchmarks/results/images/`` (report.md, metrics.json, figures from
``plugen.experiments``) and ``benchmarks/results/images_classification.{json,md}``: FPN Table 1,
FPN (MAF, RealNVP) as Bayes classifiers against logistic regression, linear SVM and RBF SVM
(C by 5-fold grid search) on the latents of the shipped MNIST VAE and autoencoder, same split.
``--parts gan`` writes ``benchmarks/results/images_gan/``: the same protocol on the shipped MNIST
GAN (fitted on its own labelled samples, real digits edited through its inversion).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from plugen.backbones import load
from plugen.data.mnist import load_mnist
from plugen.evaluation.images import classification_table
from plugen.experiments import run_image_experiments

RESULTS = Path(__file__).parent / "results"


def classification(quick: bool) -> dict:
    train, test = load_mnist().split(0.9, seed=0)
    out = {}
    for name in ("mnist-vae", "mnist-ae"):
        bb = load(name)
        Z_train, Z_test = bb.encode(train.images), bb.encode(test.images)
        y_train, y_test = train.column("digit"), test.column("digit")
        if quick:
            Z_train, y_train = Z_train[:600], y_train[:600]
        print(f"classification on {name} latents", file=sys.stderr, flush=True)
        out[name] = classification_table(Z_train, y_train, Z_test, y_test,
                                         fpn_options={"max_epochs": 3} if quick else None)
    return out


def markdown(table: dict, command: str) -> str:
    lines = ["# FPN Table 1 protocol: digit classification from latents", "",
             f"Command: `{command}`; torch {torch.__version__}, {torch.get_num_threads()} threads. "
             "4,500 training / 500 test digits (the backbones' own split).", ""]
    for name, rows in table.items():
        lines += [f"## {name}", "", "| model | train acc. | test acc. | C | seconds |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['train_accuracy']:.4f} | {r['test_accuracy']:.4f} | {r.get('C', '-')} | {r['seconds']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="classification,experiments",
                        help="comma-separated subset of classification, experiments, gan")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    command = " ".join(["python", "benchmarks/images.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "classification" in parts:
        table = classification(args.quick)
        (RESULTS / "images_classification.json").write_text(json.dumps(table, indent=2) + "\n")
        (RESULTS / "images_classification.md").write_text(markdown(table, command))
        print((RESULTS / "images_classification.md").read_text())
    if "experiments" in parts:
        run_image_experiments(["mnist", "shapes"], RESULTS / "images", scale="smoke" if args.quick else "full")
        print(f"see {RESULTS / 'images' / 'report.md'}")
    if "gan" in parts:
        run_image_experiments(["mnist-gan"], RESULTS / "images_gan", scale="smoke" if args.quick else "full")
        print(f"see {RESULTS / 'images_gan' / 'report.md'}")


if __name__ == "__main__":
    main()
