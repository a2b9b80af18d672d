"""Train the molecule backbone on the full MOSES training set on a GPU machine, resumably (issue 31).

    bash benchmarks/gpu_backbone.sh [MINUTES]    # on the GPU machine: writes under $OUT
    python benchmarks/gpu_backbone.py --dry-run  # on a CPU: the same steps with a tiny configuration

What it does, in order:

1. the token cache: ``.gpu/moses-train-selfies.npz`` (carried to the GPU machine; build it on a CPU
   with ``python -m plugen.molecules.token_cache``); if it is missing it is built here from
   ``--moses`` with every core (this needs RDKit and SELFIES, which the GPU image lacks);
2. the checkpoint of the previous run: ``.gpu/checkpoint/`` (the ``checkpoint`` folder an earlier
   run wrote under $OUT, carried back) is copied to ``$OUT/checkpoint`` and training resumes from it;
   ``.gpu/<name>.json``, the earlier training record, keeps the list of runs going;
3. trains for MINUTES (:mod:`plugen.molecules.train_full`, checkpoint every minute), then writes
   ``$OUT/<name>.safetensors`` + ``.json`` (weights and training record) and ``$OUT/train.log``.

``--dry-run`` builds a cache of the first molecules of the shipped subset in a temporary folder,
trains a tiny model for a few steps in two runs (the second resumes the first) and checks that the
step count went on; it prints the files it made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from plugen.molecules import token_cache, train_full  # noqa: E402

CARRY = ROOT / ".gpu"
CACHE = "moses-train-selfies.npz"
MOSES = next(
    (p / "shared/data/moses/train.csv.gz" for p in ROOT.parents[:2] if (p / "shared/data/moses").is_dir()),
    ROOT / "shared/data/moses/train.csv.gz",
)
#: the tiny configuration of the dry run
TINY = {"hidden": 16, "layers": 1, "embed": 8, "latent_dim": 4, "batch_size": 16, "log_every": 2, "warmup_steps": 2}


def prepare(carry: Path, out: Path, name: str, moses: Path, workers: int | None) -> Path:
    """The cache path (building it when missing) and the earlier checkpoint and record copied to ``out``."""
    cache = carry / CACHE
    if not cache.is_file():
        print(f"no token cache at {cache}: tokenising {moses} with {workers or os.cpu_count()} processes", flush=True)
        meta = token_cache.build_cache(moses, cache, workers=workers, progress=False)
        print(json.dumps({k: v for k, v in meta.items() if k != "tokens"}), flush=True)
    if (carry / "checkpoint" / "checkpoint.json").is_file() and not (out / "checkpoint").exists():
        shutil.copytree(carry / "checkpoint", out / "checkpoint")
    if (carry / f"{name}.json").is_file() and not (out / f"{name}.json").exists():
        shutil.copy(carry / f"{name}.json", out / f"{name}.json")
    return cache


def train(out: Path, cache: Path, recipe: train_full.Recipe, minutes: float, device: str, **kw) -> dict:
    log_file = open(out / "train.log", "a")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    try:
        return train_full.train(cache, out / "checkpoint", out, recipe, minutes, device, log=log, **kw)
    finally:
        log_file.close()


def dry_run(out: Path) -> dict:
    """The GPU procedure on a CPU in seconds: tiny cache, tiny model, a run and a resumed run."""
    from plugen.molecules.data import load_subset

    frame = load_subset("all").iloc[:240].reset_index(drop=True)
    frame["moses_row"] = range(len(frame))  # the tiny source's rows stand for MOSES rows
    carry = out / "carry"
    carry.mkdir(parents=True, exist_ok=True)
    frame[["SMILES"]].to_csv(carry / "source.csv", index=False)
    frame.to_csv(carry / "labels.csv", index=False)
    cache = prepare(carry, out, "dry", carry / "source.csv", workers=1)
    recipe = train_full.Recipe(name="dry", total_steps=20, anneal_steps=5, precision="fp32", **TINY)
    first = train(out, cache, recipe, 5.0, "cpu", labels=carry / "labels.csv", until_step=4)
    second = train(out, cache, recipe, 5.0, "cpu", labels=carry / "labels.csv", until_step=8)
    runs = second["training"]["runs"]
    if first["training"]["steps"] != 4 or second["training"]["steps"] != 8 or [r["run"] for r in runs] != [1, 2]:
        raise SystemExit(f"dry run: the second run did not resume the first ({runs})")
    return {
        "steps": second["training"]["steps"],
        "runs": runs,
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=8.5, help="training time of this run (default 8.5)")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="output folder (default: $OUT)")
    parser.add_argument("--carry", default=str(CARRY), help="folder with the cache and the earlier checkpoint")
    parser.add_argument("--moses", default=str(MOSES), help="MOSES train.csv.gz (only when the cache is missing)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="tiny configuration on the CPU, in a temporary folder")
    args, rest = parser.parse_known_args(argv)
    if args.dry_run:
        out = Path(args.out or tempfile.mkdtemp(prefix="gpu-backbone-dry-"))
        print(json.dumps(dry_run(out), indent=2))
        return
    if not args.out:
        raise SystemExit("no output folder: set $OUT or pass --out")
    recipe_parser = argparse.ArgumentParser()
    for f in fields(train_full.Recipe):
        recipe_parser.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(train_full.Recipe(), f.name)))
    recipe_args = recipe_parser.parse_args(rest)
    recipe = train_full.recipe_from(recipe_args)
    if recipe_args.precision is None and not args.device.startswith("cuda"):
        recipe.precision = "fp32"  # bf16 autocast is for the GPU; on a CPU it is much slower
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = prepare(Path(args.carry), out, recipe.name, Path(args.moses), args.workers)
    meta = train(out, cache, recipe, args.minutes, args.device)
    training = meta["training"]
    summary = {k: training[k] for k in ("steps", "molecules_seen", "epochs", "held_out")}
    print(json.dumps({"total": summary, "this_run": training["runs"][-1]}))


if __name__ == "__main__":
    main()
