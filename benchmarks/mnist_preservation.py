"""Where plain MNIST digit edits lose the other labels (issue 32).

    python benchmarks/mnist_preservation.py --seeds 0 1 2                       # the main job's settings
    python benchmarks/mnist_preservation.py --seeds 0 1 2 --options '{"sigma": 0.2, "latent_noise": 0}'
    python benchmarks/mnist_preservation.py --table                             # only rewrite md / json / png

One PluGeN flow per seed with the main job's MNIST settings (``every_seed.settings_for``, ``--options``
on top). The first ``--edit-rows`` test latents are edited into every other digit (plain edits, no
re-encoding) and judged as ``benchmarks/every_seed.py`` judges them: a label is kept when the judge's
thickness / slant of the edited image lies within its tolerance of the reconstruction's. Two references
on the same rows say how much of the loss the change of digit causes:

- *identity edit*: the digit coordinates set to the class the judge reads in the reconstruction (the
  edit without a change of class);
- *round trip*: decode, encode, decode with no edit (what the backbone and judge lose by themselves).

Also: how far the flow's own slant (``predict``) lies from the judge's, and the slant kept per source
and target digit (the figure: mean over the seeds of each options). Each seed appends one line to
``results/mnist_preservation.jsonl``; ``mnist_preservation.{md,json}`` and
``mnist_preservation/slant_kept.png`` are rewritten from all lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import every_seed
import numpy as np
import torch

from plugen.lab.evaluation.images import generation_table

RESULTS = Path(__file__).parent / "results"
LINES = RESULTS / "mnist_preservation.jsonl"
KEPT = ("thickness", "slant")


def kept(judge, before: dict, after: dict) -> dict[str, float]:
    """Share of rows whose thickness / slant stayed within the judge's tolerance."""
    return {k: float(np.mean(np.abs(after[k] - before[k]) <= judge.tolerance[k])) for k in KEPT}


def by_source_and_target(plugin, data: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """(10, 10) shares of slant and of thickness kept, rows the reconstruction's digit, columns the
    requested one (NaN on the diagonal), the digit success and the mean kept over all edits."""
    bb, judge, Z, before = data["bb"], data["judge"], data["Z_edit"], data["before"]
    source = before["digit"]
    shares = {k: np.full((10, 10), np.nan) for k in KEPT}
    success, kept_all = [], {k: [] for k in KEPT}
    for target in range(10):
        todo = source != target
        after = judge(bb.decode(plugin.edit(Z[todo], {"digit": target})))
        success.append(np.mean(after["digit"] == target))
        for k in KEPT:
            ok = np.abs(after[k] - before[k][todo]) <= judge.tolerance[k]
            kept_all[k].append(ok)
            for digit in np.unique(source[todo]):
                shares[k][int(digit), target] = np.mean(ok[source[todo] == digit])
    means = {"success": float(np.mean(success)), **{k: float(np.mean(np.concatenate(v))) for k, v in kept_all.items()}}
    return shares["slant"], shares["thickness"], means


def run(seed: int, options: dict, data: dict) -> dict:
    """Fit one flow and measure its edits against the two references; one result line."""
    bb, judge, Z, before = data["bb"], data["judge"], data["Z_edit"], data["before"]
    plugin, fit_seconds = every_seed.fit("mnist", "demo", seed, options, data)
    slant, thickness, edits = by_source_and_target(plugin, data)
    identity = kept(judge, before, judge(bb.decode(plugin.edit(Z, {"digit": before["digit"]}))))
    round_trip = kept(judge, before, judge(bb.decode(bb.encode(bb.decode(Z)))))
    flow_slant = plugin.predict(Z)[:, list(data["labels"]).index("slant")]
    generation = generation_table(
        plugin, bb, judge, data["spec"].requests, data["settings"]["per_request"], data["test"].images,
        temperature=0.8, seed=seed,
    )  # fmt: skip
    return {
        "seed": seed,
        "options": options,
        "settings": every_seed.settings_for("mnist", "demo", options),
        "edit_rows": len(Z),
        "per_request": data["settings"]["per_request"],
        "fit_seconds": round(fit_seconds, 1),
        "edit_success": round(edits["success"], 3),
        "kept": {k: round(edits[k], 3) for k in KEPT},
        "identity_kept": {k: round(v, 3) for k, v in identity.items()},
        "round_trip_kept": {k: round(v, 3) for k, v in round_trip.items()},
        "flow_slant_mae": round(float(np.mean(np.abs(flow_slant - before["slant"]))), 4),
        "generation": round(generation["mean_accuracy"], 3),
        "slant_kept": np.round(slant, 3).tolist(),
        "thickness_kept": np.round(thickness, 3).tolist(),
    }


def _options(r: dict) -> str:
    return json.dumps(r["options"], sort_keys=True)


def _shown(r: dict) -> str:
    """A line's settings as people name them: the prior's sigma and the latent noise."""
    settings = r["settings"]
    own = "options " + _options(r) if r["options"] else "the experiment's settings"
    return f"{own}: sigma {settings.get('sigma', 0.2)}, latent noise {settings.get('latent_noise', 0)}"


def table(rows: list[dict]) -> str:
    lines = [
        "# Where plain MNIST digit edits lose the other labels",
        "",
        "Command: `python benchmarks/mnist_preservation.py --seeds 0 1 2 [--options JSON]`. One PluGeN flow "
        "per seed, the main job's MNIST settings with the options on top; each test latent is edited into "
        "every other digit (plain edits) and judged. Kept: the judge's thickness (within 0.5 px) or slant "
        "(within 0.15) of the edited image against the reconstruction's. Identity edit: the digit coordinates "
        "set to the reconstruction's own digit; round trip: decode, encode, decode, no edit. Flow slant "
        "MAE: the flow's predicted slant against the judge's. Generation: samples judged the requested digit "
        "(temperature 0.8, tempered label coordinates). Slant kept by source digit: the mean of each row of the source x target table.",
        "",
        "| settings | seed | edit success | thickness kept | slant kept | identity edit: thickness / slant "
        "| round trip: thickness / slant | flow slant MAE | generation | slant kept by source digit 0-9 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (_options(r), r["seed"])):
        by_source = " ".join(f"{v:.2f}" for v in np.nanmean(np.array(r["slant_kept"], dtype=float), axis=1))
        lines.append(
            f"| {_shown(r)} | {r['seed']} | {r['edit_success']:.3f} | {r['kept']['thickness']:.3f} | "
            f"{r['kept']['slant']:.3f} | {r['identity_kept']['thickness']:.3f} / {r['identity_kept']['slant']:.3f} | "
            f"{r['round_trip_kept']['thickness']:.3f} / {r['round_trip_kept']['slant']:.3f} | "
            f"{r['flow_slant_mae']:.4f} | {r['generation']:.3f} | {by_source} |"
        )
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path) -> None:
    """Heat maps of the slant kept per source and target digit, one panel per options."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(_options(r), []).append(r)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.4 * len(groups), 4.0), squeeze=False)
    for ax, (_, group) in zip(axes[0], sorted(groups.items())):
        shares = np.mean([np.array(r["slant_kept"], dtype=float) for r in group], axis=0)  # NaN diagonal
        image = ax.imshow(shares, vmin=0.5, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("requested digit")
        ax.set_ylabel("digit edited (as the judge reads it)")
        seeds = ", ".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        ax.set_title(f"slant kept, {_shown(group[0])}\nmean of seeds {seeds}", fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of edits with the slant kept")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--options", default="{}", help="PluGeN settings (JSON) over the experiment's own")
    parser.add_argument("--edit-rows", type=int, default=500, help="test latents edited into every other digit")
    parser.add_argument("--per-request", type=int, default=300, help="samples judged per digit")
    parser.add_argument("--table", action="store_true", help="only rewrite mnist_preservation.{md,json,png}")
    args = parser.parse_args()
    if not args.table:
        data = every_seed.prepare("mnist", "demo", {"edit_rows": args.edit_rows, "per_request": args.per_request})
        for seed in args.seeds:
            row = run(seed, json.loads(args.options), data)
            with LINES.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                json.dumps({k: v for k, v in row.items() if k not in ("slant_kept", "thickness_kept")}),
                file=sys.stderr,
                flush=True,
            )
    rows = [json.loads(line) for line in LINES.read_text().splitlines() if line.strip()] if LINES.exists() else []
    (RESULTS / "mnist_preservation.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "mnist_preservation.md").write_text(table(rows))
    figure(rows, RESULTS / "mnist_preservation" / "slant_kept.png")
    print(table(rows))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
