"""Held-out NLL against wall time for a few batch sizes and learning rates, and where the stopping
rules end a fit: the measurements behind ``plugen.training.ROW_CHECKS`` (``batch_size``, ``lr``,
``check_rows``) and the default ``min_gain`` (issue 30).

    python benchmarks/fit_curves.py                # ~6 min on one thread of a busy 2-core machine
    python benchmarks/fit_curves.py --quick        # a smoke run (~30 s)

Every run fits PluGeN with its default flow on the same synthetic entangled latents
(``plugen.data.entangled``, seed 11, 85% of the rows; the same held-out split for every run) on one
torch thread. The constant-rate curves score the held-out rows every 4,096 training rows and never
stop early (``min_gain=0``: they run for a fixed budget); the stopping runs are the fit with
``ROW_CHECKS``, a few other stopping settings on top of it (``min_gain``, ``check_rows``),
PluGeN's default (at this size a batch of 768 at Adam 4e-3, ``plugen.training.resolve_batch_size``;
one scoring per epoch, plateau decay, a stop after 10 epochs without an improvement or once the second
half gained less than ``min_gain``) and the default with patience alone (``min_gain=0``).

Writes ``benchmarks/results/fit_curves.json``, ``fit_curves.md`` and ``fit_curves/fit_curves.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from plugen import PluGeN
from plugen.data import entangled
from plugen.training import ROW_CHECKS

RESULTS = Path(__file__).parent / "results"
CURVES = [(256, 1e-3), (1024, 1e-3), (1024, 2e-3), (1024, 4e-3), (4096, 4e-3)]
#: other stopping settings on top of ROW_CHECKS
STOPPING = [dict(min_gain=0.005), dict(min_gain=0.02), dict(check_rows=4096), dict(check_rows=16384)]
SHOWN = ("batch_size", "lr", "patience", "check_rows", "min_gain")


def fit(train, budget_s: float | None, **options) -> dict:
    """One fit; with ``budget_s``, it is stopped (by its callback) once that much time has passed."""
    start = time.perf_counter()
    model = PluGeN(train.labels, progress=False, device="cpu", seed=0, **options)
    model.fit(train.Z, train.Y, on_epoch=(lambda e, s: time.perf_counter() - start > budget_s) if budget_s else None)
    wall = time.perf_counter() - start
    h = model.history_
    dim = train.Z.shape[1]
    return {
        "options": options,
        "batch_size": h["batch_size"],
        "learning_rate": h["lr"],
        "wall_seconds": round(wall, 2),
        "epochs": h["epochs"],
        "checks": h["checks"],
        "stopped": h["stopped"],
        "best_nll_per_dim": round(h["best_nll_per_dim"], 5),
        "seconds": [round(s, 3) for s in h["history"]["seconds"]],
        "val_nll_per_dim": [round(v / dim, 5) for v in h["history"]["val_nll"]],
        "lr": h["history"]["lr"],
    }


def time_to_within(run: dict, target: float) -> float | None:
    for s, v in zip(run["seconds"], run["val_nll_per_dim"]):
        if v <= target:
            return s
    return None


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for run in result["curves"]:
        o = run["options"]
        ax.plot(run["seconds"], run["val_nll_per_dim"], lw=1.2, label=f"batch {o['batch_size']}, lr {o['lr']:g}")
    for run, colour, name in (
        (result["row_checks"], "black", "ROW_CHECKS fit (stops)"),
        (result["default"], "grey", "default fit, per epoch (stops)"),
        (result["patience_only"], "tab:brown", "patience alone, per epoch (stops)"),
    ):
        ax.plot(run["seconds"], run["val_nll_per_dim"], "o-", ms=3, color=colour, label=name)
        ax.axvline(run["wall_seconds"], color=colour, ls=":", lw=1)
    best = result["best_nll_per_dim"]
    ax.set_ylim(best - 0.01, best + 0.15)
    ax.axhline(best * 1.01, color="tab:red", ls="--", lw=0.8, label="best + 1%")
    ax.set_xlabel("wall time (s), one torch thread")
    ax.set_ylabel("held-out NLL per dimension (nats)")
    ax.set_title(f"PluGeN on {result['n_train']} x {result['latent_dim']} entangled latents")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: dict) -> str:
    best = result["best_nll_per_dim"]
    lines = [
        "# Held-out NLL against wall time: batch size, learning rate and stopping",
        "",
        f"`{result['command']}`: PluGeN (default flow) on {result['n_train']} x {result['latent_dim']} "
        f"entangled latents, one torch thread; machine load (1-minute average) {result['load']}. "
        f"Best held-out NLL of all runs: {best:.4f} nats per dimension; 'to 1%': the first scoring within 1% "
        "of it.",
        "",
        "| run | batch | lr | scoring | stops when | wall time | epochs | best held-out NLL / dim | to 1% | stopped |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    named = [(f"constant rate, {result['budget_s']:.0f} s budget", r) for r in result["curves"]]
    named += [("ROW_CHECKS fit", result["row_checks"])]
    named += [("stopping variant", r) for r in result["stopping"]]
    named += [("default fit (per epoch)", result["default"]), ("patience alone (per epoch)", result["patience_only"])]
    for name, r in named:
        o = {**result["default_options"], **r["options"]}
        scoring = f"every {o['check_rows']} rows or epoch" if o["check_rows"] else "every epoch"
        half_gain = f"second half gained < {o['min_gain']:g} / dim"
        patience = f"{o['patience']} stale epochs"
        rule = half_gain if o["check_rows"] else f"{patience} or {half_gain}" if o["min_gain"] else patience
        reach = time_to_within(r, best * 1.01)
        lines.append(
            f"| {name} | {r['batch_size']} | {r['learning_rate']:g} | {scoring} | {rule} | "
            f"{r['wall_seconds']:.1f} s | {r['epochs']} | "
            f"{r['best_nll_per_dim']:.4f} | {'-' if reach is None else f'{reach:.1f} s'} | {r['stopped']} |"
        )
    lines += ["", "![held-out NLL against wall time](fit_curves/fit_curves.png)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data and budgets: checks that it runs")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per constant-rate curve")
    parser.add_argument("--output", default=str(RESULTS / "fit_curves"), help="output path without suffix")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n, dim, budget = (3000, 16, 3.0) if args.quick else (20000, 64, args.budget)
    train, _ = entangled(n=n, latent_dim=dim, seed=11).split(0.85)
    curves = []
    for batch_size, lr in CURVES:
        run = fit(train, budget, batch_size=batch_size, lr=lr, check_rows=4096, min_gain=0.0)
        print(
            f"batch {batch_size} lr {lr:g}: {run['best_nll_per_dim']:.4f} in {run['wall_seconds']} s", file=sys.stderr
        )
        curves.append(run)
    row_checks, default, patience_only = (
        fit(train, None, **ROW_CHECKS),
        fit(train, None),
        fit(train, None, min_gain=0.0),
    )
    variants = [fit(train, None, **{**ROW_CHECKS, **options}) for options in STOPPING]
    defaults = PluGeN({"a": "binary"}).get_params()
    result = {
        "command": " ".join(["python", "benchmarks/fit_curves.py", *sys.argv[1:]]),
        "load": round(__import__("os").getloadavg()[0], 2),
        "n_train": len(train.Z),
        "latent_dim": dim,
        "budget_s": budget,
        "default_options": {k: defaults[k] for k in SHOWN},
        "curves": curves,
        "row_checks": row_checks,
        "default": default,
        "patience_only": patience_only,
        "stopping": variants,
        "best_nll_per_dim": min(
            r["best_nll_per_dim"] for r in [*curves, row_checks, default, patience_only, *variants]
        ),
    }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / "fit_curves.png")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
