"""``plugen molecules ...``: generate, optimise, compute properties and fit the plugin, with CSV out.

Examples::

    plugen molecules generate --logp 3.0 -n 1000 -o out.csv
    plugen molecules generate --logp 4.5 --tpsa 40 -n 500 -o joint.csv
    plugen molecules generate --logp 4.5 -n 500 --oversample 10 -o filtered.csv   # generate-and-filter
    plugen molecules generate --logp 4.5 -n 500 --reencode 4 -o reencoded.csv     # re-encoded samples
    plugen molecules generate --logp 3.5 --tolerance 0.25 -n 1000 -o verified.csv  # every logP within 0.25
    plugen molecules generate --logp 2.5 --tpsa 70 --tolerance logP=0.3 --tolerance TPSA=5 --drug-like -o v.csv
    plugen molecules optimize --smiles "CCOc1ccccc1" --logp +2 --steps 4 -o path.csv --grid path.png
    plugen molecules optimize --input starts.smi --logp +1.5 --min-similarity 0.4 -o best.csv --grid best.png
    plugen molecules properties --input molecules.txt -o props.csv
    plugen molecules fit -o my.plugin          # reproduces the shipped plugin

Every input molecule gets its rows in the output, in input order: one per line of a ``.txt`` /
``.smi`` file (blank ones too), one per row of a ``.csv``. An input that cannot be used (a blank
line, bytes that are not UTF-8, a line over :data:`MAX_SMILES_CHARS` characters, a SMILES that RDKit
or the backbone cannot read) is reported in the ``error`` column of its row (and on stderr),
never a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from plugen.errors import InputError
from plugen.molecules.properties import MAX_SMILES_CHARS

TARGET_FLAGS = (("logp", "logP"), ("tpsa", "TPSA"), ("sas", "SAS"))


def add_parser(sub) -> None:
    mol = sub.add_parser(
        "molecules",
        help="molecules: generate with target properties, optimise leads (needs [molecules])",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = mol.add_subparsers(dest="molecules_command", metavar="action", required=True)

    def common(p):
        p.add_argument("--backbone", default="selfies-vae", help="molecule backbone (default: selfies-vae)")
        p.add_argument("--plugin", default=None, help="fitted plugin directory (default: the shipped one)")

    gen = msub.add_parser("generate", help="sample molecules with requested property values")
    for flag, label in TARGET_FLAGS:
        gen.add_argument(f"--{flag}", type=float, help=f"requested {label}")
    gen.add_argument("-n", type=int, default=1000)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--oversample",
        type=int,
        default=1,
        metavar="K",
        help="generate-and-filter: sample K x n, keep the n valid distinct molecules whose RDKit "
        "properties are closest to the targets (default 1: the plugin's samples as they come)",
    )
    gen.add_argument(
        "--reencode",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="decode, encode and set the targets again ROUNDS times: samples nearer the targets and "
        "more like real molecules, one decode and encode per round (default 0)",
    )
    gen.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="[PROPERTY=]TOL",
        help="verified generation: draw until n distinct valid molecules have RDKit values within TOL of the "
        "target; a bare number with one requested property, else PROPERTY=TOL per property (repeat)",
    )
    gen.add_argument(
        "--max-decodes",
        type=int,
        default=None,
        help="verified generation: stop after this many decoded latents, with fewer rows (default 100 x n)",
    )
    gen.add_argument(
        "--drug-like",
        action="store_true",
        help="verified generation: keep only molecules that pass the MOSES filters (atoms, charges, rings, MCF and PAINS alerts) "
        "and have SAS <= --sas-max",
    )
    gen.add_argument("--sas-max", type=float, default=None, help="SAS bound of --drug-like (default 4.0)")
    gen.add_argument("-o", "--output", required=True, help="CSV: smiles, valid, logP, TPSA, SAS, QED, error, targets")
    common(gen)
    gen.set_defaults(run=_generate)

    opt = msub.add_parser("optimize", help="move properties of given molecules step by step")
    opt.add_argument("--smiles", action="append", default=[], help="a starting molecule; repeat")
    opt.add_argument("--input", help="file of starting molecules: .csv with a SMILES/smiles column, or one per line")
    for flag, label in TARGET_FLAGS:
        opt.add_argument(
            f"--{flag}", type=str, help=f"{label} change (+2, -1.5: relative to the molecule) or absolute value (=4.5)"
        )
    opt.add_argument(
        "--steps", type=int, default=None, help="edits along the path (default 6; not with --min-similarity)"
    )
    opt.add_argument(
        "--reencode",
        type=int,
        default=None,
        metavar="ROUNDS",
        help="close each step's edit through the backbone: decode, encode, edit again (default 0; "
        "not with --min-similarity, whose search re-encodes by itself)",
    )
    opt.add_argument(
        "--min-similarity",
        type=float,
        default=None,
        metavar="SIM",
        help="constrained lead optimisation: per molecule, search for the candidate that moves the properties "
        "furthest while keeping this Tanimoto similarity (Morgan radius 2) to it; one row per molecule",
    )
    opt.add_argument("--max-decodes", type=int, default=400, help="with --min-similarity: decodes per molecule")
    opt.add_argument("--seed", type=int, default=0, help="with --min-similarity: the search's seed")
    opt.add_argument("-o", "--output", required=True, help="CSV: one row per molecule and step (or per molecule)")
    opt.add_argument("--grid", help="also draw the paths (or start -> result pairs) as a PNG grid")
    common(opt)
    opt.set_defaults(run=_optimize)

    prop = msub.add_parser("properties", help="logP, TPSA, SAS and QED of molecules")
    prop.add_argument("--smiles", action="append", default=[])
    prop.add_argument("--input")
    prop.add_argument("-o", "--output", required=True)
    prop.add_argument("--workers", type=int, default=1)
    prop.set_defaults(run=_properties)

    fit = msub.add_parser("fit", help="fit PluGeN (logP, TPSA, SAS) on the backbone's latents of the shipped subset")
    fit.add_argument("-n", type=int, default=100_000, help="training molecules (default 100,000)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the plugin's; early stopping)")
    fit.add_argument("-o", "--output", required=True)
    fit.add_argument("--backbone", default="selfies-vae")
    fit.set_defaults(run=_fit)


def _need_extra():
    try:
        import pandas  # noqa: F401
        import rdkit  # noqa: F401
        import selfies  # noqa: F401
    except ImportError as exc:
        raise InputError(
            f"molecules need the [molecules] extra ({exc.name} is missing): pip install 'plugen[molecules]'"
        ) from None


def _read_smiles(args) -> tuple[list[str], list[str]]:
    """The input molecules, one per ``--smiles``, line of a text file or row of a CSV, and per
    molecule the reason it cannot be used ('' when it can): ``(smiles, errors)``."""
    texts = list(args.smiles)
    if args.input:
        texts += _read_file(Path(args.input))
    if not texts:
        raise InputError("give molecules with --smiles or --input")
    checked = [_check_smiles(text) for text in texts]
    return [c[0] for c in checked], [c[1] for c in checked]


def _read_file(path: Path) -> list[str]:
    """The lines of a text file, or the SMILES column of a CSV (undecodable bytes kept as lone
    surrogates, for :func:`_check_smiles` to report)."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if path.suffix == ".csv" or path.name.endswith(".csv.gz"):
        import pandas as pd

        try:
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding_errors="surrogateescape"
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError, EOFError) as exc:
            raise InputError(f"cannot read {path} as CSV: {exc}") from None
        column = next((c for c in frame.columns if c.lower() == "smiles"), None)
        if column is None:
            raise InputError(f"{path} has no SMILES column (columns: {list(frame.columns)})")
        return frame[column].tolist()
    text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")  # a byte-order mark starts no SMILES
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the newline that ends the last line starts no line
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _check_smiles(text: str) -> tuple[str, str]:
    """``(smiles as shown, error)``; the error is '' for a line worth giving to RDKit."""
    raw = text.encode("utf-8", errors="surrogateescape")
    shown = raw.decode("utf-8", errors="backslashreplace").strip()
    if shown != text.strip():
        return shown, "not UTF-8 text"
    if not shown:
        return "", "empty: no SMILES"
    if len(shown) > MAX_SMILES_CHARS:
        return shown[:40] + "...", f"{len(shown)} characters; at most {MAX_SMILES_CHARS} are read"
    return shown, ""


def _write(frame, path: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.4f")


def _targets(args, parse=float) -> dict:
    return {label: parse(getattr(args, flag)) for flag, label in TARGET_FLAGS if getattr(args, flag) is not None}


def parse_tolerances(texts: list[str], targets: dict) -> dict | None:
    """``--tolerance`` values as ``{property: tolerance}`` (None when none was given): a bare number
    applies to the one requested property, ``PROPERTY=TOL`` (case-insensitive) to that property."""
    if not texts:
        return None
    names = {label.lower(): label for _, label in TARGET_FLAGS}
    out = {}
    for text in texts:
        name, _, number = text.rpartition("=")
        if not name:
            if len(targets) != 1:
                raise InputError(
                    f"--tolerance {text}: a bare number needs exactly one requested property (requested: "
                    f"{list(targets) or 'none'}); give one per property, e.g. --tolerance logP=0.3 --tolerance TPSA=5"
                )
            name = next(iter(targets))
        label = names.get(name.strip().lower())
        if label is None:
            raise InputError(f"--tolerance {text}: unknown property {name!r}; known: {list(names.values())}")
        try:
            out[label] = float(number)
        except ValueError:
            raise InputError(f"--tolerance {text}: expected a number like 0.25 or logP=0.25") from None
    return out


def _generate(args) -> int:
    _need_extra()
    import warnings

    from plugen.molecules import design
    from plugen.molecules.verified import DecodeBudgetWarning

    targets = _targets(args)
    if args.n < 1:
        raise InputError("-n must be at least 1")
    tolerance = parse_tolerances(args.tolerance, targets)
    verified = dict(tolerance=tolerance, max_decodes=args.max_decodes, drug_like=args.drug_like, sas_max=args.sas_max)
    bb, plugin = design.load_shipped(args.backbone, args.plugin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecodeBudgetWarning)  # said below, in the CLI's words
        frame = design.generate(
            plugin,
            bb,
            args.n,
            targets,
            args.temperature,
            seed=args.seed,
            oversample=args.oversample,
            reencode=args.reencode,
            progress=True,
            **verified,
        )
    _write(frame, args.output)
    _report_generated(frame, args, targets)
    return 0


def _report_generated(frame, args, targets) -> None:
    from plugen.molecules import design
    from plugen.molecules.metrics import summary

    checked = frame.attrs.get("verified")
    if checked and checked["budget_exhausted"]:
        print(
            f"plugen molecules generate: the decode budget ended: only {checked['kept']} of {args.n} molecules "
            f"met the request in {checked['decodes']} decodes; raise --max-decodes or widen --tolerance",
            file=sys.stderr,
        )
    elif len(frame) < args.n:
        print(
            f"plugen molecules generate: only {len(frame)} of {args.n} molecules were valid and distinct "
            f"among {args.n * args.oversample} samples; raise --oversample for more",
            file=sys.stderr,
        )
    smiles = [s if v else None for s, v in zip(frame["smiles"], frame["valid"])]
    stats = summary(smiles, properties={k: frame[k].to_numpy() for k in design.LABELS}, targets=targets)
    if checked:
        stats["verified"] = {k: checked[k] for k in ("kept", "decodes", "decodes_per_kept", "budget_exhausted")}
    print(json.dumps({"output": args.output, **_rounded(stats)}, indent=2))


def _optimize(args) -> int:
    _need_extra()
    from plugen.molecules import design

    changes, relative = {}, None
    for flag, label in TARGET_FLAGS:
        value = getattr(args, flag)
        if value is None:
            continue
        is_abs = value.startswith("=")
        if relative is not None and relative == is_abs:
            raise InputError("give all changes as relative (+2) or all as absolute (=4.5)")
        relative = not is_abs
        try:
            changes[label] = float(value.lstrip("="))
        except ValueError:
            raise InputError(f"--{flag} {value!r}: expected a number like +2, -1.5 or =4.5") from None
    if not changes:
        raise InputError("give at least one change: --logp +2, --tpsa -20, --sas =3")
    if args.min_similarity is not None:
        path_only = [
            flag for flag, value in (("--steps", args.steps), ("--reencode", args.reencode)) if value is not None
        ]
        if path_only:
            raise InputError(f"{' and '.join(path_only)} apply to the step path only, not to --min-similarity's search")
        return _optimize_constrained(args, *_read_smiles(args), changes, relative)
    args.steps = 6 if args.steps is None else args.steps
    args.reencode = 0 if args.reencode is None else args.reencode
    design.check_steps(args.steps, "--steps")
    smiles, errors = _read_smiles(args)
    bb, plugin = design.load_shipped(args.backbone, args.plugin)
    frame = design.optimize(
        plugin, bb, smiles, changes, steps=args.steps, relative=relative, reencode=args.reencode, input_errors=errors
    )
    _write(frame, args.output)
    bad = frame[frame["step"].isna()]
    for _, row in bad.iterrows():
        print(f"plugen molecules optimize: {row['input']!r}: {row['error']}", file=sys.stderr)
    if args.grid:
        from plugen.molecules.plots import grid_image

        ok = frame[frame["step"].notna()]
        label = next(iter(changes))
        legends = [
            f"step {int(r.step)}: {label} {getattr(r, label):.2f}" if r.valid else f"step {int(r.step)}: invalid"
            for r in ok.itertuples()
        ]
        grid_image(ok["smiles"].tolist(), legends, args.grid, per_row=args.steps + 1)
    print(
        json.dumps(
            {"output": args.output, "molecules": len(smiles), "invalid_inputs": int(len(bad)), "rows": int(len(frame))},
            indent=2,
        )
    )
    return 0


def _optimize_constrained(args, smiles, errors, changes, relative) -> int:
    """``plugen molecules optimize --min-similarity``: one row per input, the best candidate found."""
    from plugen.molecules import design
    from plugen.molecules.lead_optimization import check_search_args

    check_search_args(args.min_similarity, args.max_decodes)
    bb, plugin = design.load_shipped(args.backbone, args.plugin)
    frame = design.optimize(
        plugin,
        bb,
        smiles,
        changes,
        relative=relative,
        input_errors=errors,
        min_similarity=args.min_similarity,
        max_decodes=args.max_decodes,
        seed=args.seed,
        progress=True,
    )
    _write(frame, args.output)
    for _, row in frame[frame["error"] != ""].iterrows():
        print(f"plugen molecules optimize: {row['input']!r}: {row['error']}", file=sys.stderr)
    if args.grid:
        from plugen.molecules.plots import pairs_grid

        if pairs_grid(frame, list(changes), args.grid) is None:
            print(f"plugen molecules optimize: no valid start molecule; {args.grid} not drawn", file=sys.stderr)
    found = frame["smiles"] != ""
    summary = {"output": args.output, "molecules": len(frame), "found": int(found.sum())}
    summary["invalid_inputs"] = int((frame["decodes"] == 0).sum())
    summary["mean_similarity"] = round(float(frame["similarity"][found].mean()), 4) if found.any() else None
    print(json.dumps(summary, indent=2))
    return 0


def _properties(args) -> int:
    _need_extra()
    from plugen.molecules.properties import compute

    smiles, errors = _read_smiles(args)
    workers = min(args.workers, os.cpu_count() or 1)  # more processes than cores only cost memory
    frame = compute([s if not e else "" for s, e in zip(smiles, errors)], workers=workers, progress=False)
    frame["smiles"] = smiles
    unread = [i for i, e in enumerate(errors) if e]
    frame.loc[unread, "error"] = [errors[i] for i in unread]
    _write(frame, args.output)
    bad = frame[frame["error"] != ""]
    for _, row in bad.iterrows():
        print(f"plugen molecules properties: {row['smiles']!r}: {row['error']}", file=sys.stderr)
    print(json.dumps({"output": args.output, "molecules": len(frame), "invalid": int(len(bad))}))
    return 0


def _fit(args) -> int:
    _need_extra()
    from plugen.molecules import design

    extra = {"max_epochs": args.epochs} if args.epochs else {}
    plugin, info = design.fit_plugin(args.backbone, n=args.n, seed=args.seed, **extra)
    plugin.save(args.output)
    info = {
        "backbone": args.backbone,
        "labels": list(design.LABELS),
        "n": args.n,
        "seed": args.seed,
        **info,
        "reproduce": f"plugen molecules fit --backbone {args.backbone} -n {args.n} --seed {args.seed}"
        + (f" --epochs {args.epochs}" if args.epochs else "")
        + f" -o {args.output}",
    }
    Path(str(Path(args.output)) + ".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({"output": args.output, **info}))
    return 0


def _rounded(obj):
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return round(obj, 4) if isinstance(obj, float) else obj
