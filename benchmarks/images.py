"""Image benchmark (issue: images): the papers' image protocols at full size.

    python benchmarks/images.py                 # ~50 min on 2 CPU cores (MNIST, Shapes, classification)
    python benchmarks/images.py --parts gan     # the GAN experiment alone (~10 min)
    python benchmarks/images.py --parts classification-cv   # FPN Table 1 on 5 folds of all 5,000 digits
    python benchmarks/images.py --parts classification-seeds   # FPN's spread over 5 seeds, same split
    python benchmarks/images.py --quick         # smoke run

Writes ``benchmarks/results/images/`` (report.md, metrics.json, figures from
``plugen.lab.experiments``) and ``benchmarks/results/images_classification.{json,md}``: FPN Table 1,
FPN (MAF, RealNVP) as Bayes classifiers against logistic regression, linear SVM and RBF SVM
(C by 5-fold grid search) on the latents of the shipped MNIST VAE and autoencoder, same split;
FPN both as in the paper and with its hybrid objective (``classifier_weight=10``).
``--parts classification-cv`` writes ``images_classification_cv.{json,md}``: the same models
(FPN RealNVP) on 5 stratified folds of all 5,000 digits, so that every digit is a test digit once
(one 500-digit test split tells models apart only to about +-0.01).
``--parts classification-seeds`` writes ``images_classification_seeds.{json,md}``: FPN (RealNVP) on the
same split with seeds 0-4, its spread from the seed alone against the (deterministic) RBF SVM's.
``--parts gan`` writes ``benchmarks/results/images_gan/``: the same protocol on the shipped MNIST
GAN (fitted on its own labelled samples, real digits edited through its inversion).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from plugen.backbones import load
from plugen.data.mnist import load_mnist
from plugen.lab.evaluation.images import classification_cv, classification_table
from plugen.lab.experiments import run_image_experiments

RESULTS = Path(__file__).parent / "results"
#: FPN's classifier_weight in the classification tables: the paper's objective, and the hybrid
HYBRID_WEIGHTS = (0.0, 10.0)


def split_latents(quick: bool):
    """Per MNIST backbone: its name and the latents and digits of its own 4,500 / 500 split
    (600 training digits with ``quick``)."""
    train, test = load_mnist().split(0.9, seed=0)
    y_train, y_test = train.column("digit"), test.column("digit")
    for name in ("mnist-vae", "mnist-ae"):
        bb = load(name)
        Z_train, Z_test = bb.encode(train.images), bb.encode(test.images)
        rows = slice(600) if quick else slice(None)
        yield name, Z_train[rows], y_train[rows], Z_test, y_test


def classification(quick: bool) -> dict:
    out = {}
    for name, Z_train, y_train, Z_test, y_test in split_latents(quick):
        print(f"classification on {name} latents", file=sys.stderr, flush=True)
        out[name] = classification_table(
            Z_train,
            y_train,
            Z_test,
            y_test,
            classifier_weights=HYBRID_WEIGHTS,
            fpn_options={"max_epochs": 3} if quick else None,
        )
    return out


def classification_folds(quick: bool) -> dict:
    digits = load_mnist()
    y = digits.column("digit")
    out = {}
    for name in ("mnist-vae", "mnist-ae"):
        Z = load(name).encode(digits.images)
        print(f"5-fold classification on {name} latents", file=sys.stderr, flush=True)
        some = np.random.default_rng(0).choice(len(y), 1000, replace=False) if quick else slice(None)
        out[name] = classification_cv(
            Z[some],
            y[some],
            fpn_flows=("realnvp",),
            classifier_weights=HYBRID_WEIGHTS,
            fpn_options={"max_epochs": 3} if quick else None,
        )
    return out


def classification_seeds(quick: bool, seeds=range(5)) -> dict:
    """FPN (RealNVP; the paper's objective and the hybrid) on the split of :func:`classification`
    with several seeds (initialisation, batches and its held-out rows), each against the RBF SVM
    by McNemar's test on the same test digits."""
    out = {}
    for name, Z_train, y_train, Z_test, y_test in split_latents(quick):
        print(f"classification over seeds on {name} latents", file=sys.stderr, flush=True)
        rows = {}
        for seed in seeds:
            for r in classification_table(
                Z_train,
                y_train,
                Z_test,
                y_test,
                fpn_flows=("realnvp",),
                seed=seed,
                classifier_weights=HYBRID_WEIGHTS,
                fpn_options={"max_epochs": 3} if quick else None,
            ):
                if r["model"] == "RBF SVM" or "against" in r:
                    rows.setdefault(r["model"], []).append(
                        {"test_accuracy": r["test_accuracy"], "against_rbf_svm": r.get("against", {}).get("RBF SVM")}
                    )
        rows["RBF SVM"] = rows["RBF SVM"][:1]  # the same every time: it does not depend on a seed
        out[name] = rows
    return out


def markdown_seeds(table: dict, command: str) -> str:
    lines = [
        "# FPN Table 1 protocol: the spread from the seed alone",
        "",
        f"Command: `{command}`; torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "4,500 training / 500 test digits (the split of images_classification.md); test accuracy "
        "per seed (0, 1, ...), their mean and standard deviation, and per seed the digits only FPN / "
        "only the RBF SVM got right with McNemar's exact p. The RBF SVM (C by 5-fold grid "
        "search) does not depend on a seed.",
        "",
        "| latents | model | test accuracy per seed | mean | sd | against the RBF SVM per seed |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in table.items():
        for model, runs in rows.items():
            accuracies = [run["test_accuracy"] for run in runs]
            tests = "; ".join(_mcnemar_cell(run["against_rbf_svm"]) for run in runs if run["against_rbf_svm"]) or "-"
            lines.append(
                f"| {name} | {model} | {' '.join(f'{a:.3f}' for a in accuracies)} | "
                f"{np.mean(accuracies):.4f} | "
                + (f"{np.std(accuracies, ddof=1):.4f}" if len(accuracies) > 1 else "-")
                + f" | {tests} |"
            )
    return "\n".join(lines) + "\n"


def markdown(table: dict, command: str) -> str:
    lines = [
        "# FPN Table 1 protocol: digit classification from latents",
        "",
        f"Command: `{command}`; torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "4,500 training / 500 test digits (the backbones' own split).",
        "",
    ]
    for name, rows in table.items():
        best = max((r for r in rows if "against" not in r), key=lambda r: r["test_accuracy"])["model"]
        lines += [
            f"## {name}",
            "",
            f"| model | train acc. | test acc. | C | seconds | against the {best}: digits only "
            "FPN / only it got right, McNemar p |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['model']} | {r['train_accuracy']:.4f} | {r['test_accuracy']:.4f} | {r.get('C', '-')} | "
                f"{r['seconds']} | {_against(r, best)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _against(row: dict, baseline: str) -> str:
    """An FPN row's McNemar test against ``baseline``, as 'a / b, p'."""
    return _mcnemar_cell(row["against"][baseline]) if "against" in row else "-"


def _mcnemar_cell(test: dict) -> str:
    """A McNemar test (:func:`plugen.lab.evaluation.metrics.mcnemar`) as 'a / b, p'."""
    return f"{test['a_only']} / {test['b_only']}, p = {test['p_value']:.3g}"


def markdown_cv(table: dict, command: str) -> str:
    lines = [
        "# FPN Table 1 protocol on 5 stratified folds of all digits",
        "",
        f"Command: `{command}`; torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "Each fold: the models fitted on the other four (C by 5-fold grid search inside them), "
        "tested on it. The backbones were trained on 4,500 of these digits.",
        "",
        "Against the best baseline: the digits (of all of them) only FPN / only the baseline got right, "
        "and McNemar's exact p on them.",
        "",
        "| model | "
        + " | ".join(f"{name} mean test acc. (fold range); against the best baseline" for name in table)
        + " |",
        "|---|" + "---|" * len(table),
    ]
    best = {
        name: max(
            (m for m, c in t["summary"].items() if "against" not in c),
            key=lambda m: t["summary"][m]["mean_test_accuracy"],
        )
        for name, t in table.items()
    }
    for model in next(iter(table.values()))["summary"]:
        cells = {name: table[name]["summary"][model] for name in table}
        lines.append(
            f"| {model} | "
            + " | ".join(
                f"{c['mean_test_accuracy']:.4f} ({c['fold_min']:.3f}-{c['fold_max']:.3f})"
                + (f"; vs {best[name]}: {_against(c, best[name])}" if "against" in c else "")
                for name, c in cells.items()
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--parts",
        default="classification,experiments",
        help="comma-separated subset of classification, classification-cv, classification-seeds, experiments, gan",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    command = " ".join(["python", "benchmarks/images.py", *sys.argv[1:]])
    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = {
        "classification": (classification, markdown, "images_classification"),
        "classification-cv": (classification_folds, markdown_cv, "images_classification_cv"),
        "classification-seeds": (classification_seeds, markdown_seeds, "images_classification_seeds"),
    }
    for part, (run, write_markdown, stem) in tables.items():
        if part in parts:
            table = run(args.quick)
            (RESULTS / f"{stem}.json").write_text(json.dumps(table, indent=2) + "\n")
            (RESULTS / f"{stem}.md").write_text(write_markdown(table, command))
            print((RESULTS / f"{stem}.md").read_text())
    if "experiments" in parts:
        run_image_experiments(["mnist", "shapes"], RESULTS / "images", scale="smoke" if args.quick else "full")
        print(f"see {RESULTS / 'images' / 'report.md'}")
    if "gan" in parts:
        run_image_experiments(["mnist-gan"], RESULTS / "images_gan", scale="smoke" if args.quick else "full")
        print(f"see {RESULTS / 'images_gan' / 'report.md'}")


if __name__ == "__main__":
    main()
