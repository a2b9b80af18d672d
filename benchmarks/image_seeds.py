"""How much PluGeN's image figures depend on the seed (and the flow) at the benchmark's full size.

    python benchmarks/image_seeds.py shapes --seed 1                      # ~9 min on 1 CPU thread
    python benchmarks/image_seeds.py shapes --seed 0 --options '{"flow": "realnvp"}'
    python benchmarks/image_seeds.py --table                              # only rewrite the table

One run fits PluGeN on the experiment's training latents (``plugen.lab.experiments``: the same data,
backbone, judge, requests and PluGeN settings as ``benchmarks/images.py`` at full scale; ``--options``
overrides settings), then judges edits of the first 500 test latents and 300 samples per request at
temperature 0.8. The seed sets the flow's initialisation, the held-out split and batching; the data
stay the same. Each run appends one line to ``benchmarks/results/image_seeds.jsonl`` (so several runs
can go in parallel), and ``image_seeds.md`` is rewritten from all lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from plugen.backbones import load
from plugen.lab.evaluation.images import edit_table, generation_table
from plugen.lab.experiments import SCALES, experiments
from plugen.plugins import PluGeN

RESULTS = Path(__file__).parent / "results"
LINES = RESULTS / "image_seeds.jsonl"


def run(name: str, seed: int, options: dict) -> dict:
    spec, settings = experiments()[name], SCALES["full"]
    train, test = spec.load(settings)
    bb, judge = load(spec.backbone), spec.judge()
    Z_train, Z_test = bb.encode(train.images), bb.encode(test.images)
    labels, Y = spec.plugin_labels(train)
    restarts = {"restarts": spec.restarts} if spec.restarts > 1 else {}
    kwargs = {**spec.plugen_options, **restarts, **options, "seed": seed, "progress": False}
    start = time.perf_counter()
    plugin = PluGeN(labels, **kwargs).fit(Z_train, Y)
    fit_seconds = time.perf_counter() - start
    edits = edit_table(plugin, bb, Z_test[: settings["edit_rows"]], judge, plugin.schema_)
    generation = generation_table(
        plugin,
        bb,
        judge,
        spec.requests,
        settings["per_request"],
        test.images,
        temperature=0.8,
        seed=seed,
        unseen=spec.unseen,
    )
    return {
        "experiment": name,
        "seed": seed,
        "options": {k: v for k, v in kwargs.items() if k not in ("seed", "progress")},
        "threads": torch.get_num_threads(),
        "fit_seconds": round(fit_seconds, 1),
        "epochs": plugin.history_["epochs"],
        **({"chosen_seed": plugin.history_["chosen_seed"]} if "chosen_seed" in plugin.history_ else {}),
        "edit_success": round(edits["mean_success"], 3),
        "preserved": round(edits["mean_preserved"], 3),
        "per_edit": {f"{r['label']}={r['value']}": round(r["success"], 2) for r in edits["edits"]},
        "generation": round(generation["mean_accuracy"], 3),
        "seen": round(generation.get("seen_accuracy", float("nan")), 3),
        "unseen": round(generation.get("unseen_accuracy", float("nan")), 3),
        "frechet_distance": round(generation["frechet_distance"], 2),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "# PluGeN image figures across seeds",
        "",
        "Command: `python benchmarks/image_seeds.py EXPERIMENT --seed S [--options JSON]`, one line each in "
        "`image_seeds.jsonl`; full benchmark size (500 edited test latents, 300 samples per request, "
        "temperature 0.8). Settings are those given to PluGeN beyond its defaults (NICE, 4 couplings): `{}` "
        "is the defaults; with `restarts` k the seeds are S to S + k - 1 and the one kept is named. Seed 0 with the experiment's own settings is what `benchmarks/images.py` reports.",
        "",
        "| experiment | PluGeN settings | seed | epochs | fit s (threads) | edit success | preserved | per edit | generation | seen / unseen | Fréchet |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["experiment"], json.dumps(r["options"], sort_keys=True), r["seed"])):
        per = " ".join(f"{k} {v:.2f}" for k, v in r["per_edit"].items())
        seed = f"{r['seed']} (kept {r['chosen_seed']})" if "chosen_seed" in r else r["seed"]
        lines.append(
            f"| {r['experiment']} | `{json.dumps(r['options'], sort_keys=True)}` | {seed} | {r['epochs']} | "
            f"{r['fit_seconds']} ({r['threads']}) | {r['edit_success']:.3f} | {r['preserved']:.3f} | {per} | "
            f"{r['generation']:.3f} | {r['seen']:.3f} / {r['unseen']:.3f} | {r['frechet_distance']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", choices=sorted(experiments()))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", default="{}", help="PluGeN settings (JSON) over the experiment's own")
    parser.add_argument("--table", action="store_true", help="only rewrite image_seeds.md")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.table:
        if args.experiment is None:
            parser.error("name an experiment, or pass --table")
        row = run(args.experiment, args.seed, json.loads(args.options))
        with LINES.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), file=sys.stderr)
    rows = [json.loads(line) for line in LINES.read_text().splitlines() if line.strip()] if LINES.exists() else []
    (RESULTS / "image_seeds.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
