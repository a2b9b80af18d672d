"""The main job's plugin settings (issue: images, "the main job in at most 3 minutes on 2 cores").

    python benchmarks/demo_settings.py --jobs 2 --threads 1      # every setting, seeds 0 and 1
    python benchmarks/demo_settings.py --jobs 16 --threads 1 --data shapes --seeds 0 1 2  # 16 cores
    python benchmarks/demo_settings.py --settings h128 --seeds 0  # one setting, one seed

Runs ``plugen demo``'s experiments (``run_image_experiments(scale="demo")``) once per setting, data
set and seed, in parallel processes of ``--threads`` torch threads each, and writes
``benchmarks/results/demo_settings.{json,md}``: the judged figures and the stage times of each run.
A setting is the plugins' epoch cap per data set and the settings it changes (width, couplings,
learning rate, batch size); the main job's time is mostly their training. Times from parallel runs are inflated;
measure the chosen setting's time with ``/usr/bin/time plugen demo`` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
#: settings every run states, so that a run does not take the main job's own: the plugins' default
#: learning rate (each setting may change it)
BASE = {"lr": 1e-3}
#: name -> epoch cap per data set, and settings of both plugins ("both") or of one ("PluGeN", "FPN");
#: "former": the main job before this benchmark (width 256, 12 couplings in PluGeN, lr 1e-3). The
#: main job now uses "lr3-45" on Shapes and "lr2-50" (25 epochs, lr 2e-3) on MNIST
CHOSEN = {"mnist": "lr2-50", "shapes": "lr3-45"}
SETTINGS = {
    "former": {"max_epochs": {"mnist": 40, "shapes": 80}},
    "h128": {"max_epochs": {"mnist": 40, "shapes": 80}, "both": {"hidden_features": 128}},
    "h128-long": {"max_epochs": {"mnist": 60, "shapes": 120}, "both": {"hidden_features": 128}},
    "short": {"max_epochs": {"mnist": 25, "shapes": 50}},
    "t8": {"max_epochs": {"mnist": 40, "shapes": 80}, "PluGeN": {"transforms": 8}},
    "lr2-50": {"max_epochs": {"mnist": 25, "shapes": 50}, "both": {"lr": 2e-3}},
    "lr2-60": {"max_epochs": {"mnist": 30, "shapes": 60}, "both": {"lr": 2e-3}},
    "b512": {"max_epochs": {"mnist": 40, "shapes": 80}, "both": {"batch_size": 512, "lr": 2e-3}},
    "lr2-45": {"max_epochs": {"mnist": 25, "shapes": 45}, "both": {"lr": 2e-3}},
    "lr3-45": {"max_epochs": {"mnist": 25, "shapes": 45}, "both": {"lr": 3e-3}},
    "lr3-40": {"max_epochs": {"mnist": 20, "shapes": 40}, "both": {"lr": 3e-3}},
    "lr3-45-b512": {"max_epochs": {"mnist": 25, "shapes": 45}, "both": {"batch_size": 512, "lr": 3e-3}},
    "lr4-45-b512": {"max_epochs": {"mnist": 25, "shapes": 45}, "both": {"batch_size": 512, "lr": 4e-3}},
}
DATA = ("mnist", "shapes")


def run_one(setting: str, data: str, seed: int, output: Path) -> dict:
    """One demo experiment in this process; returns its summary row."""
    from plugen.lab.experiments import run_image_experiments

    s = SETTINGS[setting]
    both = {**BASE, "max_epochs": s["max_epochs"][data], "progress": False, **s.get("both", {})}
    options = {m: {**both, **s.get(m, {})} for m in ("PluGeN", "FPN")}
    res = run_image_experiments([data], output, scale="demo", seed=seed, plugin_options=options)[data]
    row = {"setting": setting, "data": data, "seed": seed, "seconds": res["seconds"]}
    for method, r in res["methods"].items():
        gen = r["generation"]
        row[method] = {
            "edit_success": r["edits"]["mean_success"],
            "edit_preserved": r["edits"]["mean_preserved"],
            "generation": gen.get("seen_accuracy", gen["mean_accuracy"]),
            "frechet": gen["frechet_distance"],
            **({"unseen": gen["unseen_accuracy"]} if "unseen_accuracy" in gen else {}),
            **{k: r[k] for k in ("fit_seconds", "edit_seconds") if k in r},
        }
    return row


def _child(setting: str, data: str, seed: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        cmd = [
            sys.executable,
            __file__,
            "--child",
            setting,
            data,
            str(seed),
            "--threads",
            str(threads),
            "--output",
            tmp,
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{setting} {data} seed {seed} failed:\n{done.stderr[-3000:]}")
        print(f"done: {setting} {data} seed {seed}", file=sys.stderr, flush=True)
        return json.loads(Path(tmp, "row.json").read_text())


def render(rows: list[dict]) -> str:
    lines = [
        "# The main job's plugin settings",
        "",
        "`python benchmarks/demo_settings.py`: `plugen demo`'s experiments per setting (epoch cap and the "
        "settings changed from the plugins' defaults), mean over the seeds named. Edit: success / others preserved; generation: share judged as requested (Shapes: seen, unseen "
        "combinations); FD: Fréchet distance in the judge's feature space. Times from parallel runs.",
        "",
    ]
    for data in DATA:
        mine = [r for r in rows if r["data"] == data]
        if not mine:
            continue
        methods = [m for m in mine[0] if isinstance(mine[0][m], dict) and m != "linear"]  # linear: no settings
        lines += [
            f"## {data}",
            "",
            "| setting | "
            + " | ".join(f"{m} edit | {m} generation | {m} FD" for m in methods)
            + " | fit s (PluGeN, FPN) | total s |",
            "|---" * (3 * len(methods) + 3) + "|",
        ]
        for setting, s in SETTINGS.items():
            runs = [r for r in mine if r["setting"] == setting]
            if not runs:
                continue
            mean = lambda m, k: float(np.mean([r[m][k] for r in runs]))  # noqa: E731
            cells = []
            for m in methods:
                gen = f"{mean(m, 'generation'):.3f}" + (
                    f" ({mean(m, 'unseen'):.3f} unseen)" if "unseen" in runs[0][m] else ""
                )
                cells += [
                    f"{mean(m, 'edit_success'):.3f} / {mean(m, 'edit_preserved'):.3f}",
                    gen,
                    f"{mean(m, 'frechet'):.2f}",
                ]
            fits = f"{mean('PluGeN', 'fit_seconds'):.1f}, {mean('FPN', 'fit_seconds'):.1f}"
            changed = {
                **s.get("both", {}),
                **{f"{m} {k}": v for m in ("PluGeN", "FPN") for k, v in s.get(m, {}).items()},
            }
            name = f"{setting}: {s['max_epochs'][data]} epochs" + "".join(f", {k} {v}" for k, v in changed.items())
            name += f" (seeds {', '.join(str(r['seed']) for r in runs)})" + (
                " **main job**" if CHOSEN[data] == setting else ""
            )
            lines.append(
                f"| {name} | " + " | ".join(cells) + f" | {fits} | {np.mean([r['seconds'] for r in runs]):.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--data", nargs="+", choices=DATA, default=list(DATA))
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--tag", default="demo_settings", help="results file name")
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        setting, data, seed = args.child
        row = run_one(setting, data, int(seed), args.output)
        (args.output / "row.json").write_text(json.dumps(row))
        return
    todo = [(s, d, seed) for s in args.settings for d in args.data for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda job: _child(*job, args.threads), todo))
    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / f"{args.tag}.json"
    if saved.exists():  # earlier runs of other settings, data sets or seeds stay
        rows = [r for r in json.loads(saved.read_text()) if (r["setting"], r["data"], r["seed"]) not in todo] + rows
    saved.write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / f"{args.tag}.md").write_text(render(rows))
    print(render(rows))


if __name__ == "__main__":
    main()
