"""The shipped molecule data: a fixed 250k subset of the MOSES training set with its properties.

``plugen/molecules/data/moses-250k.csv.gz`` holds 250,000 molecules drawn without replacement (seed
0) from MOSES ``train.csv.gz`` (Polykovskiy et al. 2020, MIT license, Copyright (c) 2018 Insilico
Medicine; see the README next to it), each with its RDKit canonical SMILES and the labels logP,
TPSA, SAS and QED computed once by :mod:`plugen.molecules.properties`, so nothing is recomputed at
run time. Reproduce it with::

    python -m plugen.molecules.data --moses ../shared/data/moses/train.csv.gz

A fixed validation split (the last 5% of the shuffled subset) is what backbones report on.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from plugen.errors import InputError
from plugen.molecules.properties import PROPERTIES, compute

DATA = Path(__file__).parent / "data"
SUBSET = DATA / "moses-250k.csv.gz"
SUBSET_SIZE = 250_000
SUBSET_SEED = 0
VALIDATION_FRACTION = 0.05


def make_subset(
    moses_csv: str | Path,
    output: str | Path = SUBSET,
    n: int = SUBSET_SIZE,
    seed: int = SUBSET_SEED,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Draw ``n`` rows of the MOSES CSV (column ``SMILES``) with ``seed``, compute their properties
    and write a gzip CSV (``SMILES`` canonical, then the properties, 4 decimals) plus a JSON
    description next to it. Returns the description."""
    import pandas as pd

    start = time.perf_counter()
    source = pd.read_csv(moses_csv)["SMILES"]
    if n > len(source):
        raise InputError(f"asked for {n} molecules, {moses_csv} has {len(source)}")
    index = np.sort(np.random.default_rng(seed).choice(len(source), size=n, replace=False))
    smiles = source.iloc[index].tolist()
    frame = compute(smiles, PROPERTIES, workers=workers, progress=progress)
    bad = frame["error"] != ""
    frame = frame.loc[~bad, ["canonical", *PROPERTIES]].rename(columns={"canonical": "SMILES"})
    frame.insert(1, "moses_row", index[~bad.to_numpy()])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.4f", compression={"method": "gzip", "mtime": 0})
    tmp.replace(output)
    info = {
        "source": "MOSES train.csv.gz (molsets 0.3.1 data, MIT, Copyright (c) 2018 Insilico Medicine)",
        "rows": int(len(frame)),
        "dropped_invalid": int(bad.sum()),
        "seed": seed,
        "sampling": "numpy default_rng(seed).choice(len(train), n, replace=False), sorted",
        "columns": {
            "SMILES": "RDKit canonical SMILES",
            "moses_row": "row in MOSES train.csv.gz (0-based)",
            **{p: "RDKit, see plugen.molecules.properties" for p in PROPERTIES},
        },
        "seconds": round(time.perf_counter() - start, 1),
        "reproduce": "python -m plugen.molecules.data --moses ../shared/data/moses/train.csv.gz",
    }
    import rdkit

    info["rdkit_version"] = rdkit.__version__
    output.with_name(output.name.replace(".csv.gz", ".json")).write_text(json.dumps(info, indent=2) + "\n")
    return info


@lru_cache(maxsize=2)
def _read(path: str):
    import pandas as pd

    if not Path(path).is_file():
        raise InputError(
            f"molecule data {path} is missing; reproduce it with: python -m plugen.molecules.data "
            "--moses ../shared/data/moses/train.csv.gz"
        )
    return pd.read_csv(path)


def load_subset(split: str = "all", path: str | Path = SUBSET):
    """The shipped subset as a DataFrame (columns SMILES, moses_row, logP, TPSA, SAS, QED).

    ``split``: "all", "train" (first 95% of a fixed permutation) or "validation" (the rest)."""
    frame = _read(str(path))
    if split == "all":
        return frame.copy()
    order = np.random.default_rng(SUBSET_SEED + 1).permutation(len(frame))
    n_val = int(round(VALIDATION_FRACTION * len(frame)))
    if split == "train":
        return frame.iloc[np.sort(order[n_val:])].reset_index(drop=True)
    if split == "validation":
        return frame.iloc[np.sort(order[:n_val])].reset_index(drop=True)
    raise InputError(f"split must be 'all', 'train' or 'validation', got {split!r}")


@lru_cache(maxsize=2)
def training_set(path: str | Path = SUBSET) -> frozenset:
    """Canonical SMILES of the whole shipped subset (what novelty is measured against)."""
    return frozenset(_read(str(path))["SMILES"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plugen.molecules.data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--moses", required=True, help="MOSES train.csv.gz")
    parser.add_argument("--output", default=str(SUBSET))
    parser.add_argument("-n", type=int, default=SUBSET_SIZE)
    parser.add_argument("--seed", type=int, default=SUBSET_SEED)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    print(json.dumps(make_subset(args.moses, args.output, args.n, args.seed, args.workers), indent=2))


if __name__ == "__main__":
    main()
