"""Molecule benchmark (PluGeN Fig. 7 and 8) on the shipped selfies-vae and its PluGeN plugin.

De novo design: for logP in {1.5, 3.0, 4.5}, TPSA in {40, 60, 80}, SAS in {2, 3, 4} and a few joint
requests, sample ``--n`` molecules each and report validity, uniqueness, novelty against the
training subset, mean and sd of the property and the MAE to the target; density plots against the
training distribution. Lead optimisation: raise logP by +3 in 6 steps from a few validation
molecules; property path, Tanimoto similarity to the start, validity and a grid picture. Also: the
time to decode 25,000 latents, and FCD against the MOSES test set when fcd-torch is installed.

    python benchmarks/molecules.py                 # --n 25000 per target (the paper's setting)
    python benchmarks/molecules.py --n 2000 --quick
    python benchmarks/molecules.py --n 5000 --reencode 4 --tag molecules_reencoded   # re-encoded samples
    python benchmarks/molecules.py --moses 10000 --moses-only    # MOSES metrics table only

Writes benchmarks/results/molecules.json, molecules.md and molecules/*.png; with ``--moses N`` also
molecules_moses.json and molecules_moses.md: the MOSES metrics (plugen.molecules.moses) of N backbone
prior samples, N unconditional plugin samples and N samples of every request, beside a sample of the
MOSES training set scored the same way and the published MOSES rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from plugen.molecules import design
from plugen.molecules.data import load_subset, training_set
from plugen.molecules.metrics import summary, tanimoto
from plugen.molecules.properties import compute, quiet_rdkit
from plugen.reencode import reencode

SINGLE = (
    [{"logP": v} for v in (1.5, 3.0, 4.5)]
    + [{"TPSA": v} for v in (40.0, 60.0, 80.0)]
    + [{"SAS": v} for v in (2.0, 3.0, 4.0)]
)
JOINT = [{"logP": 4.5, "TPSA": 40.0}, {"logP": 1.5, "TPSA": 80.0}, {"logP": 3.0, "SAS": 2.0}]
GOALS = {"logP": 0.25, "TPSA": 5.0, "SAS": 0.25}
PROPS = ("logP", "TPSA", "SAS")
ROOT = Path(__file__).resolve().parent / "results"
# the shared MOSES files, next to the checkout (../shared) or next to a worktree's folder (../../shared)
MOSES_DATA = next(
    (p / "shared/data/moses" for p in Path(__file__).resolve().parents[2:4] if (p / "shared/data/moses").is_dir()),
    Path("shared/data/moses"),
)


def name_of(targets: dict) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in targets.items())


def run_targets(
    bb,
    plugin,
    targets: dict,
    n: int,
    temperature: float,
    train: frozenset,
    seed: int,
    oversample: int = 1,
    reencode: int = 0,
) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    if oversample > 1 or reencode:  # filtered by RDKit properties, or re-encoded samples (design.generate)
        frame = design.generate(
            plugin, bb, n, targets, temperature, PROPS, seed=seed, oversample=oversample, reencode=reencode
        )
        smiles = frame["smiles"].tolist()
        t1 = t2 = time.perf_counter()
        values = {p: frame[p].to_numpy() for p in PROPS}
        stats = summary(smiles, train, values, targets)
        stats["n_kept"] = len(frame)
        stats["seconds"] = {"total": round(t2 - t0, 2)}
        return stats, values
    Z = plugin.sample(n, targets, temperature=temperature, seed=seed)
    t1 = time.perf_counter()
    smiles = bb.decode(Z)
    t2 = time.perf_counter()
    frame = compute([s or "" for s in smiles], PROPS, workers=1, progress=False)
    values = {p: frame[p].to_numpy() for p in PROPS}
    stats = summary(smiles, train, values, targets)
    stats["seconds"] = {
        "sample": round(t1 - t0, 2),
        "decode": round(t2 - t1, 2),
        "properties": round(time.perf_counter() - t2, 2),
    }
    return stats, values


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=25_000, help="molecules per request")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--plugin", default=None, help="plugin directory (default: the shipped one)")
    parser.add_argument("--quick", action="store_true", help="skip the joint requests and FCD")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--oversample",
        type=int,
        default=1,
        help="generate-and-filter: sample this many times n, keep the n closest to the targets (RDKit)",
    )
    parser.add_argument(
        "--reencode",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="re-encoded samples: decode, encode and set the targets again ROUNDS times",
    )
    parser.add_argument("--fcd-n", type=int, default=10_000, help="molecules on each side of FCD")
    parser.add_argument(
        "--moses",
        type=int,
        default=0,
        metavar="N",
        help="also the MOSES metrics table on N molecules per set (0: skip)",
    )
    parser.add_argument("--moses-ref", type=int, default=10_000, help="MOSES test molecules in the reference")
    parser.add_argument("--moses-only", action="store_true", help="only the MOSES table")
    parser.add_argument("--moses-data", default=str(MOSES_DATA), help="folder with MOSES train.csv.gz and test.csv.gz")
    parser.add_argument("--output", default=str(ROOT))
    parser.add_argument("--tag", default="molecules", help="file name stem of the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet_rdkit()
    out = Path(args.output)
    pics = out / args.tag
    pics.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bb, plugin = design.load_shipped(plugin=args.plugin)
    if args.moses:
        moses_table(bb, plugin, args, out)
        if args.moses_only:
            return
    train = training_set()
    subset = load_subset("all")
    results = {
        "command": "python " + " ".join(sys.argv),
        "n": args.n,
        "temperature": args.temperature,
        "oversample": args.oversample,
        "reencode": args.reencode,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)",
        "torch": torch.__version__,
        "backbone": bb.name,
        "backbone_training": bb.meta["training"]["final"],
        "training_set": {p: {"mean": float(subset[p].mean()), "sd": float(subset[p].std())} for p in PROPS},
        "goals": {"mae": GOALS, "validity": 0.95, "uniqueness": 0.90},
    }

    # decoding speed: 25,000 latents drawn by the plugin (the benchmark's own case)
    Z = plugin.sample(25_000, {}, temperature=args.temperature, seed=args.seed)
    t0 = time.perf_counter()
    uncond = bb.decode(Z)
    results["decode_25k_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"decoded 25,000 latents in {results['decode_25k_seconds']} s", flush=True)
    if args.reencode:  # the unconditional samples re-encoded too (no targets: decode and encode only)
        uncond = bb.decode(reencode(plugin, bb, Z, {}, rounds=args.reencode))
    frame = compute([s or "" for s in uncond[: args.n]], PROPS, workers=1, progress=False)
    results["unconditional"] = summary(uncond[: args.n], train, {p: frame[p].to_numpy() for p in PROPS})

    requests = SINGLE + ([] if args.quick else JOINT)
    rows, by_label = [], {p: {} for p in PROPS}
    for i, targets in enumerate(requests):
        stats, values = run_targets(
            bb, plugin, targets, args.n, args.temperature, train, args.seed + 1 + i, args.oversample, args.reencode
        )
        stats["request"] = name_of(targets)
        rows.append(stats)
        if len(targets) == 1:
            ((label, value),) = targets.items()
            by_label[label][value] = values[label]
        print(
            json.dumps(
                {
                    "request": stats["request"],
                    "validity": round(stats["validity"], 4),
                    **{k: {kk: round(vv, 3) for kk, vv in stats[k].items()} for k in targets},
                }
            ),
            flush=True,
        )
    results["de_novo"] = rows
    for label in PROPS:
        design_plot = pics / f"density_{label}.png"
        from plugen.molecules.plots import density_plot

        density_plot(subset[label].to_numpy(), by_label[label], label, design_plot)

    # lead optimisation: 5 validation molecules with logP <= 2, +3 in 6 steps; plain and re-encoded edits
    val = load_subset("validation")
    starts = val[val["logP"] <= 2.0].sample(5, random_state=args.seed)["SMILES"].tolist()
    start_logp = compute(starts, ("logP",), workers=1, progress=False)["logP"].mean()
    for key, rounds in (("lead_optimization", 0), ("lead_optimization_reencoded", 1)):
        path = design.optimize(plugin, bb, starts, {"logP": 3.0}, steps=6, reencode=rounds)
        suffix = "_reencoded" if rounds else ""
        path.to_csv(pics / f"lead_optimization{suffix}.csv", index=False, float_format="%.4f")
        draw_paths(path, pics / f"lead_optimization{suffix}.png")
        by_step = [path[path["step"] == j] for j in range(7)]
        results[key] = {
            "starts": starts,
            "steps": 6,
            "change": "+3 logP",
            "reencode_rounds": rounds,
            "validity": float(path["valid"].mean()),
            "mean_logP_by_step": [round(float(step["logP"].mean()), 3) for step in by_step],
            "mean_target_by_step": [round(float(step["target_logP"].mean()), 3) for step in by_step],
            "mean_similarity_by_step": [round(float(step["similarity"].mean()), 3) for step in by_step],
            "reconstructed_inputs": int(sum(tanimoto(a, b) == 1.0 for a, b in zip(starts, by_step[0]["smiles"]))),
            "final_logP_gain": round(float(by_step[6]["logP"].mean() - start_logp), 3),
        }

    if not args.quick and args.fcd_n > 0:
        try:
            import pandas as pd

            from plugen.molecules.metrics import fcd

            test = pd.read_csv(Path(args.moses_data) / "test.csv.gz")["SMILES"]
            ref = test.sample(args.fcd_n, random_state=0).tolist()
            t0 = time.perf_counter()
            results["fcd"] = {
                "n": args.fcd_n,
                "unconditional_vs_moses_test": round(fcd(uncond[: args.fcd_n], ref), 3),
                "training_subset_vs_moses_test": round(
                    fcd(subset["SMILES"].sample(args.fcd_n, random_state=0).tolist(), ref), 3
                ),
            }
            results["fcd"]["seconds"] = round(time.perf_counter() - t0, 1)
        except Exception as exc:  # fcd-torch missing or failing: say so in the results
            results["fcd"] = f"not computed: {exc}"
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out / f"{args.tag}.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (out / f"{args.tag}.md").write_text(markdown(results, args.tag))
    print(f"wrote {out / (args.tag + '.md')} in {results['seconds']} s")


# MOSES Table 2 (Polykovskiy et al. 2020) as quoted in GUIDE section 7; "Train" from the MOSES repository's
# data/samples/train_metrics.csv (the whole training set against the whole test set). None: not quoted.
MOSES_PUBLISHED = {
    "Train (MOSES)": {
        "valid": 1.0,
        "unique@10k": 1.0,
        "FCD/Test": 0.008,
        "SNN/Test": 0.642,
        "Frag/Test": 1.0,
        "Scaf/Test": 0.991,
        "IntDiv": 0.857,
        "IntDiv2": 0.851,
        "Filters": 1.0,
    },
    "CharRNN": {
        "valid": 0.975,
        "unique@10k": 0.999,
        "FCD/Test": 0.073,
        "SNN/Test": 0.601,
        "Scaf/Test": 0.924,
        "Filters": 0.994,
        "novelty": 0.842,
    },
    "VAE": {
        "valid": 0.977,
        "unique@10k": 0.998,
        "FCD/Test": 0.099,
        "SNN/Test": 0.626,
        "Scaf/Test": 0.939,
        "Filters": 0.997,
        "novelty": 0.695,
    },
    "AAE": {
        "valid": 0.937,
        "unique@10k": 0.997,
        "FCD/Test": 0.556,
        "SNN/Test": 0.608,
        "Scaf/Test": 0.902,
        "Filters": 0.996,
        "novelty": 0.793,
    },
    "JTN-VAE": {
        "valid": 1.0,
        "unique@10k": 1.0,
        "FCD/Test": 0.395,
        "SNN/Test": 0.548,
        "Scaf/Test": 0.896,
        "Filters": 0.976,
        "novelty": 0.914,
    },
    "LatentGAN": {
        "valid": 0.897,
        "unique@10k": 0.997,
        "FCD/Test": 0.297,
        "SNN/Test": 0.537,
        "Scaf/Test": 0.887,
        "Filters": 0.973,
        "novelty": 0.950,
    },
}
MOSES_COLUMNS = (
    "valid",
    "unique@1k",
    "unique@10k",
    "FCD/Test",
    "SNN/Test",
    "Frag/Test",
    "Scaf/Test",
    "IntDiv",
    "IntDiv2",
    "Filters",
    "novelty",
)


def moses_sets(bb, plugin, args) -> dict:
    """SMILES of every set the MOSES table scores: backbone prior, plugin unconditional, each request."""
    import numpy as np

    n = args.moses
    prior = np.random.default_rng(args.seed).standard_normal((n, bb.latent_dim)).astype(np.float32)
    sets = {
        "backbone prior N(0, I)": bb.decode(prior),
        "plugin, unconditional": bb.decode(plugin.sample(n, {}, temperature=args.temperature, seed=args.seed)),
    }
    for i, targets in enumerate(SINGLE + JOINT):
        Z = plugin.sample(n, targets, temperature=args.temperature, seed=args.seed + 1 + i)
        sets[f"plugin, {name_of(targets)}"] = bb.decode(Z)
    return sets


def moses_table(bb, plugin, args, out: Path) -> None:
    """MOSES metrics of the backbone's and the plugin's samples against a MOSES test sample; a MOSES
    training sample of the same size scored the same way; the published rows beside them."""
    import pandas as pd

    from plugen.molecules import moses

    t0 = time.perf_counter()
    data = Path(args.moses_data)
    train = pd.read_csv(data / "train.csv.gz")["SMILES"]
    test = pd.read_csv(data / "test.csv.gz")["SMILES"].sample(args.moses_ref, random_state=args.seed).tolist()
    try:
        reference = moses.Reference(test, fcd=True)
    except ImportError:
        reference = moses.Reference(test)
    train_set = frozenset(train)
    sets = {"MOSES train sample (this code)": train.sample(args.moses, random_state=args.seed + 1).tolist()}
    sets.update(moses_sets(bb, plugin, args))
    rows = {}
    for label, smiles in sets.items():
        rows[label] = moses.moses_metrics(smiles, reference, train_set)
        print(json.dumps({"set": label, **{k: round(v, 4) for k, v in rows[label].items()}}), flush=True)
    results = {
        "command": "python " + " ".join(sys.argv),
        "n": args.moses,
        "reference": f"{args.moses_ref:,} molecules of the MOSES test set",
        "temperature": args.temperature,
        "backbone": bb.name,
        "rows": rows,
        "published": MOSES_PUBLISHED,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "molecules_moses.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (out / "molecules_moses.md").write_text(moses_markdown(results))
    print(f"wrote {out / 'molecules_moses.md'} in {results['seconds']} s")


def moses_markdown(r: dict) -> str:
    def cell(row, key):
        v = row.get(key)
        return "-" if v is None or v != v else f"{v:.3f}"

    lines = [
        f"# MOSES metrics ({r['backbone']} + PluGeN)",
        "",
        f"Command: `{r['command']}`. {r['n']:,} molecules per set against {r['reference']} "
        f"(plugen.molecules.moses; definitions in its docstring). Filters here: the MOSES atom, charge and "
        "ring rules and its MCF and PAINS alerts. SNN and the cosines "
        "(Frag, Scaf) fall with smaller samples, so compare a row with the MOSES training sample scored "
        "here at the same sizes; the published rows use 30,000 samples (the Train row the whole training "
        "set) against the whole test set (176,074). unique@10k: '-' with fewer than 10,000 valid.",
        "",
        "| set | " + " | ".join(MOSES_COLUMNS) + " |",
        "|---|" + "---|" * len(MOSES_COLUMNS),
    ]
    for label, row in r["rows"].items():
        lines.append(f"| {label} | " + " | ".join(cell(row, k) for k in MOSES_COLUMNS) + " |")
    for label, row in r["published"].items():
        lines.append(f"| *{label}, published* | " + " | ".join(cell(row, k) for k in MOSES_COLUMNS) + " |")
    return "\n".join(lines + ["", f"Total {r['seconds']} s."]) + "\n"


def draw_paths(path, file) -> None:
    """Grid: per row the input molecule, then the decoded molecule of every step, with logP and
    Tanimoto similarity to the input."""
    from plugen.molecules.plots import grid_image

    smiles, legends = [], []
    for start, rows in path.groupby("input", sort=False):
        first = compute([start], ("logP",), workers=1, progress=False)
        smiles.append(first["canonical"][0])
        legends.append(f"input: logP {first['logP'][0]:.2f}")
        for r in rows.itertuples():
            smiles.append(r.smiles if r.valid else None)
            legends.append(
                f"{int(r.step)}: logP {r.logP:.2f} sim {r.similarity:.2f}" if r.valid else f"{int(r.step)}: invalid"
            )
    grid_image(smiles, legends, file, per_row=int(path["step"].max()) + 2)


def markdown(r: dict, tag: str) -> str:
    lines = [
        f"# Molecules: de novo design and lead optimisation ({r['backbone']} + PluGeN)",
        "",
        f"Command: `{r['command']}`; {r['machine']}, torch {r['torch']}; {r['n']:,} molecules per request, "
        f"temperature {r['temperature']}."
        + (
            f" **Generate-and-filter**: {r['oversample']} x n plugin samples, the n valid distinct ones closest "
            "to the targets by RDKit kept (validity is then 1 by construction)."
            if r.get("oversample", 1) > 1
            else ""
        )
        + (
            f" **Re-encoded samples**: each sample decoded, encoded and given its targets again, {r['reencode']} "
            "times (the unconditional row too)."
            if r.get("reencode")
            else ""
        ),
        "",
        f"Decoding 25,000 latents: **{r['decode_25k_seconds']} s**. Goals: validity >= 95%, uniqueness >= 90%, "
        f"MAE to target <= {GOALS['logP']} (logP), {GOALS['TPSA']} (TPSA), {GOALS['SAS']} (SAS).",
        "",
        "| request | validity | uniqueness | novelty | " + " | ".join(f"{p} mean ± sd (MAE)" for p in PROPS) + " |",
        "|---|---|---|---|" + "---|" * len(PROPS),
    ]
    train = r["training_set"]
    lines.append(
        "| training subset | 1.000 | - | - | "
        + " | ".join(f"{train[p]['mean']:.2f} ± {train[p]['sd']:.2f}" for p in PROPS)
        + " |"
    )
    u = r["unconditional"]
    lines.append(
        f"| unconditional | {u['validity']:.3f} | {u['uniqueness']:.3f} | {u['novelty']:.3f} | "
        + " | ".join(f"{u[p]['mean']:.2f} ± {u[p]['sd']:.2f}" for p in PROPS)
        + " |"
    )
    for row in r["de_novo"]:
        cells = []
        for p in PROPS:
            s = row[p]
            cell = f"{s['mean']:.2f} ± {s['sd']:.2f}"
            if "mae" in s:
                ok = "" if s["mae"] <= GOALS[p] else " ✗"
                cell = f"**{cell} ({s['mae']:.2f}{ok})**"
            cells.append(cell)
        lines.append(
            f"| {row['request']} | {row['validity']:.3f} | {row['uniqueness']:.3f} | {row['novelty']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    lead = r["lead_optimization"]
    lines += [
        "",
        "✗: MAE above the goal. Bold: the requested property.",
        "",
        f"Lead optimisation ({lead['change']} in {lead['steps']} steps, 5 validation molecules with logP <= 2; "
        f"validity {lead['validity']:.3f}; inputs reconstructed exactly at step 0: {lead['reconstructed_inputs']}/5):",
        "",
        "| step | " + " | ".join(str(j) for j in range(lead["steps"] + 1)) + " |",
        "|---|" + "---|" * (lead["steps"] + 1),
        "| requested logP (mean) | " + " | ".join(f"{v:.2f}" for v in lead["mean_target_by_step"]) + " |",
        "| decoded logP (mean) | " + " | ".join(f"{v:.2f}" for v in lead["mean_logP_by_step"]) + " |",
        "| Tanimoto to start (mean) | " + " | ".join(f"{v:.2f}" for v in lead["mean_similarity_by_step"]) + " |",
    ]
    again = r.get("lead_optimization_reencoded")
    if again:
        lines += [
            "| decoded logP, re-encoded edits (mean) | "
            + " | ".join(f"{v:.2f}" for v in again["mean_logP_by_step"])
            + " |",
            "| Tanimoto to start, re-encoded edits | "
            + " | ".join(f"{v:.2f}" for v in again["mean_similarity_by_step"])
            + " |",
            "",
            f"Re-encoded edits: each step's edit decoded, encoded and edited again once (`reencode=1`; "
            f"validity {again['validity']:.3f}).",
            "",
        ]
    else:
        lines.append("")
    if isinstance(r.get("fcd"), dict):
        f = r["fcd"]
        lines.append(
            f"FCD against {f['n']:,} MOSES test molecules (fcd-torch): unconditional samples "
            f"{f['unconditional_vs_moses_test']}, the training subset itself {f['training_subset_vs_moses_test']}."
        )
        lines.append("")
    elif "fcd" in r:
        lines += [f"FCD: {r['fcd']}", ""]
    lines.append(
        f"Pictures: `{tag}/density_logP.png`, `density_TPSA.png`, `density_SAS.png`, `lead_optimization.png` "
        f"(`lead_optimization_reencoded.png`); paths in `{tag}/lead_optimization*.csv`. Total {r['seconds']} s."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
