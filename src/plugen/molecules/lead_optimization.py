"""Constrained lead optimisation: the best molecule near a start that moves the requested properties.

For each start molecule a plugin-guided local search in the backbone's latent space, scored with
RDKit on the decoded molecules:

1. *First round.* The start's latent ``z`` (the encoder's posterior mean) is edited with the plugin
   (PluGeN's inference: set the requested label coordinates of ``F^-1(z)``, map back with ``F``) to
   targets at several fractions of the requested change (``SearchSettings.sizes``; the decoded
   property tends to fall short of the plugin's target, so fractions above 1 are tried too), every
   other label held at the plugin's reading of ``z``. Each edit is also tried from latents with a
   little Gaussian noise added (``SearchSettings.noise``, in latent units): with the labels set
   after the noise, the noise moves only the style, i.e. the structure around the molecule.
2. *Later rounds.* The most promising distinct molecules found so far (largest progress that keeps
   the similarity bound) are encoded again and edited once more from their own latents, with their
   own noise (an edit from a latent the encoder produces, as :func:`plugen.reencode.reencoded_edit`).

Every candidate is decoded; distinct valid molecules get their requested RDKit properties and the
Tanimoto similarity of their Morgan fingerprints (radius 2, 2048 bits) to the start. The answer is
the candidate with the largest *progress* among those with similarity >= ``min_similarity``:
progress is, per requested property, the change achieved in the requested direction as a fraction
of the requested change, capped at 1, averaged over the requested properties (a joint request
counts each property alike; overshooting a change earns nothing). Ties go to the more similar
molecule. The decodes spent per molecule are at most ``max_decodes``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from plugen.errors import InputError
from plugen.labels import targets_checked


@dataclass(frozen=True)
class SearchSettings:
    """The search's knobs: edit sizes (fractions of the requested change, added to the start's
    RDKit values or, with ``from_reading``, to the plugin's reading of the latent edited), noise
    levels (latent sd) of the first round and of the later ones, each round's share of the decode
    budget and how many molecules found so far are encoded again as a later round's starts."""

    sizes: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0)
    noise: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    second_noise: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    shares: tuple[float, ...] = (0.4, 0.6)
    reencode_top: int = 8
    from_reading: bool = False


@dataclass
class Candidates:
    """Distinct valid molecules decoded so far for one start, with their scores."""

    smiles: list[str]
    similarity: np.ndarray
    values: np.ndarray  # (n, properties)
    progress: np.ndarray


@dataclass
class Start:
    """One start molecule: its canonical SMILES, latent, fingerprint, requested values and changes."""

    smiles: str
    z: np.ndarray
    fp: object
    values: np.ndarray
    changes: np.ndarray


def check_search_args(min_similarity, max_decodes) -> tuple[float, int]:
    """``(min_similarity, max_decodes)`` checked: a similarity in [0, 1] and at least 10 decodes."""
    if isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float, np.floating, np.integer)):
        raise InputError(f"min_similarity must be a number in [0, 1], got {min_similarity!r}")
    if not 0.0 <= float(min_similarity) <= 1.0:
        raise InputError(f"min_similarity must lie in [0, 1] (a Tanimoto similarity), got {min_similarity}")
    if isinstance(max_decodes, bool) or not isinstance(max_decodes, (int, np.integer)) or max_decodes < 10:
        raise InputError(f"max_decodes must be an integer of at least 10, got {max_decodes!r}")
    return float(min_similarity), int(max_decodes)


def fingerprints(smiles: Sequence[str | None]) -> list:
    """Morgan fingerprints (radius 2, 2048 bits) as :func:`plugen.molecules.metrics.fingerprint`."""
    from plugen.molecules.metrics import fingerprint

    return [fingerprint(s) for s in smiles]


def score(smiles: Sequence[str], start: Start, names, min_similarity: float) -> Candidates:
    """The distinct valid molecules among ``smiles`` with their similarity to the start and, for
    those that keep ``min_similarity`` (the others cannot be the answer), the requested properties
    and their progress (see the module's docstring; NaN and -inf for the others)."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from plugen.molecules.properties import mol_from_smiles

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    mols = {s: mol_from_smiles(s) for s in dict.fromkeys(s for s in smiles if s)}
    kept = [s for s, mol in mols.items() if mol is not None]
    fps = [generator.GetFingerprint(mols[s]) for s in kept]
    sim = np.asarray(DataStructs.BulkTanimotoSimilarity(start.fp, fps) if fps else [], dtype=np.float64)
    values = np.full((len(kept), len(names)), np.nan)
    for i in np.flatnonzero(sim >= min_similarity):
        values[i] = _values(mols[kept[i]], names)
    scored = progress(values, start.values, start.changes)
    return Candidates(kept, sim, values, np.where(np.isfinite(scored), scored, -np.inf))


def _values(mol, names) -> list[float]:
    """The requested RDKit properties of a molecule (NaN where RDKit fails on an odd one)."""
    from plugen.molecules.properties import mol_properties

    try:
        props = mol_properties(mol, names)
    except Exception:  # RDKit raises on some odd molecules: such a molecule is no candidate
        return [np.nan] * len(names)
    return [props[k] for k in names]


def progress(values: np.ndarray, start: np.ndarray, changes: np.ndarray) -> np.ndarray:
    """Per row, the mean over properties of the achieved fraction of the requested change, capped at 1
    (a property asked to stay, change 0, counts 1 while it does not move)."""
    moved = values - start
    safe = np.where(changes == 0, 1.0, changes)
    fraction = np.where(changes == 0, 1.0 - np.abs(moved), moved / safe)
    return np.minimum(fraction, 1.0).mean(axis=1) if len(values) else np.zeros(0)


def merged(a: Candidates, b: Candidates) -> Candidates:
    """``a`` and the molecules of ``b`` that ``a`` lacks."""
    new = [i for i, s in enumerate(b.smiles) if s not in set(a.smiles)]
    return Candidates(
        a.smiles + [b.smiles[i] for i in new],
        np.concatenate([a.similarity, b.similarity[new]]),
        np.concatenate([a.values, b.values[new]]),
        np.concatenate([a.progress, b.progress[new]]),
    )


def ranked(found: Candidates, min_similarity: float) -> np.ndarray:
    """Indices of the molecules that keep the bound, best first (progress, then similarity)."""
    ok = np.flatnonzero((found.similarity >= min_similarity) & np.isfinite(found.progress))
    order = np.lexsort((-found.similarity[ok], -found.progress[ok]))
    return ok[order]


def edited(plugin, Z: np.ndarray, targets: Mapping[str, np.ndarray], held: Mapping[str, float]) -> np.ndarray:
    """The plugin's edit of each row to its targets, the other labels set to ``held``."""
    with targets_checked():  # far targets are part of the search, not a request to warn about
        return np.asarray(plugin.edit(Z, {**held, **targets}), dtype=np.float32)


def proposals(z: np.ndarray, count: int, sizes, noise, rng: np.random.Generator):
    """``count`` latents around ``z`` and the edit size of each: the sizes and noise levels in turn,
    the noise-free pairs first (they need one latent each)."""
    plain = [(s, 0.0) for s in sizes] if 0.0 in noise else []
    noisy = [(s, n) for n in noise if n > 0 for s in sizes]
    pairs = (plain + [noisy[i % len(noisy)] for i in range(max(0, count - len(plain)))])[:count] if noisy else plain
    pairs = pairs[:count]
    sd = np.array([n for _, n in pairs], dtype=np.float32)[:, None]
    Z = z[None, :] + sd * rng.standard_normal((len(pairs), z.shape[0])).astype(np.float32)
    return Z, np.array([s for s, _ in pairs], dtype=np.float64)


def search(plugin, backbone, start: Start, names, min_similarity, max_decodes, settings, rng) -> tuple:
    """The rounds for one start: ``(candidates, decodes)``. The first edits the start's latent; each
    later one edits the re-encoded best molecules found so far (the start again if none kept the bound)."""
    budgets = np.diff(np.round(np.cumsum([0.0, *settings.shares]) / sum(settings.shares) * max_decodes)).astype(int)
    rounds = (start, names, min_similarity, settings, rng)
    found = _round(plugin, backbone, start.z[None, :], int(budgets[0]), settings.noise, *rounds)
    for count in budgets[1:]:
        top = [found.smiles[i] for i in ranked(found, min_similarity)[: settings.reencode_top]]
        seeds = np.asarray(backbone.encode(top), dtype=np.float32) if top else start.z[None, :]
        seeds = seeds[np.isfinite(seeds).all(axis=1)]
        seeds = seeds if len(seeds) else start.z[None, :]
        found = merged(found, _round(plugin, backbone, seeds, int(count), settings.second_noise, *rounds))
    return found, int(budgets.sum())


def _round(plugin, backbone, seeds, count, noise, start: Start, names, min_similarity, settings, rng) -> Candidates:
    """``count`` decodes spread over the ``seeds`` latents: edits of each size, with noise, scored."""
    shares = np.diff(np.linspace(0, count, len(seeds) + 1).round().astype(int))
    reading = plugin.predict(seeds)
    column = {label.name: c for c, label in enumerate(plugin.schema_.labels)}
    Zs, targets, held = [], {k: [] for k in names}, {}
    for j, (z, n) in enumerate(zip(seeds, shares)):
        if n == 0:
            continue
        Z, size = proposals(z, int(n), settings.sizes, noise, rng)
        Zs.append(Z)
        for i, k in enumerate(names):
            base = reading[j, column[k]] if settings.from_reading else start.values[i]
            targets[k].append(base + start.changes[i] * size)
        for k, c in column.items():
            if k not in names:
                held.setdefault(k, []).append(np.full(len(Z), reading[j, c]))
    if not Zs:  # a round given no decodes
        return score([], start, names, min_similarity)
    merge = {k: np.concatenate(v) for k, v in targets.items()}
    edits = edited(plugin, np.concatenate(Zs), merge, {k: np.concatenate(v) for k, v in held.items()})
    return score(backbone.decode(edits), start, names, min_similarity)


def optimize(
    plugin,
    backbone,
    smiles: Sequence[str],
    changes: Mapping[str, float],
    min_similarity: float = 0.4,
    relative: bool = True,
    max_decodes: int = 400,
    seed: int | None = 0,
    input_errors: Sequence[str] | None = None,
    progress: bool = False,
    settings: SearchSettings | None = None,
):
    """The best molecule per start (see the module's docstring). DataFrame, one row per input in
    input order: ``input``, ``smiles`` (canonical; empty where no candidate kept the bound),
    ``similarity``, ``<property>_start`` and ``<property>`` per requested property, ``progress``,
    ``decodes`` and ``error`` (why an input could not be used, or that nothing kept the bound).
    ``changes`` are added to each start's RDKit values (``relative``) or are the target values.
    ``input_errors``: per molecule a reason found while reading it ('' if none). Seeded: the same
    ``seed`` gives the same row for a molecule, whatever the other inputs (``None``: unseeded)."""
    from tqdm.auto import tqdm

    min_similarity, max_decodes = check_search_args(min_similarity, max_decodes)
    settings = settings or SearchSettings()
    smiles = [smiles] if isinstance(smiles, str) else list(smiles)
    starts, errors = starts_of(plugin, backbone, smiles, changes, relative, input_errors)
    rows = []
    for i, start in enumerate(tqdm(starts, desc="optimise", unit="mol", disable=not progress)):
        if start is None:
            rows.append({"input": smiles[i], "decodes": 0, "error": errors[i]})
            continue
        rng = np.random.default_rng(None if seed is None else [int(seed), zlib.crc32(start.smiles.encode())])
        found, decodes = search(plugin, backbone, start, list(changes), min_similarity, max_decodes, settings, rng)
        rows.append({"input": smiles[i], **best_row(start, found, list(changes), min_similarity), "decodes": decodes})
    return _frame(rows, list(changes))


def starts_of(plugin, backbone, smiles, changes, relative, input_errors) -> tuple[list, list[str]]:
    """Per input a :class:`Start` (``None`` where it cannot be used) and the reason ('' if none).
    The requests are checked against the plugin once (unknown labels fail, far targets warn)."""
    names = list(changes)
    unknown = [k for k in names if k not in plugin.label_names]
    if unknown or not names:
        raise InputError(f"request a change of at least one of the plugin's labels {plugin.label_names}, got {names}")
    props, Z, errors = read_inputs(backbone, smiles, names, input_errors)
    if not smiles:
        return [], []
    ok = [i for i, e in enumerate(errors) if not e]
    values = props[names].to_numpy(np.float64)
    asked = np.array([float(changes[k]) for k in names])
    moves = {i: asked if relative else asked - values[i] for i in ok}
    if ok:  # the final targets, one check for all (the search's own farther edits do not warn)
        plugin.schema_.requests({k: [values[i, j] + moves[i][j] for i in ok] for j, k in enumerate(names)}, len(ok))
    fps = fingerprints([props["canonical"][i] if i in moves else None for i in range(len(smiles))])
    starts = [
        Start(props["canonical"][i], Z[i], fps[i], values[i], moves[i]) if i in moves else None
        for i in range(len(smiles))
    ]
    return starts, errors


def read_inputs(backbone, smiles: list[str], which, input_errors) -> tuple:
    """``(properties, Z, errors)`` of the input molecules: their RDKit ``which`` properties, latents and
    per molecule the first reason it cannot be used ('' if none): from ``input_errors`` (found while
    reading it; such a molecule is not parsed), from RDKit, or from the backbone's encoder."""
    from plugen.molecules.properties import compute

    known = list(input_errors) if input_errors is not None else [""] * len(smiles)
    if len(known) != len(smiles):
        raise InputError(f"input_errors has {len(known)} entries for {len(smiles)} molecules")
    readable = [s if not known[i] else "" for i, s in enumerate(smiles)]
    props = compute(readable, which, workers=1, progress=False)
    Z, encode_errors = backbone.encode(readable, return_errors=True) if smiles else (np.zeros((0, 0)), [])
    return props, Z, [known[i] or props["error"][i] or encode_errors[i] for i in range(len(smiles))]


def best_row(start: Start, found: Candidates, names, min_similarity: float) -> dict:
    """The output columns of one start: the best candidate's, or empty ones and the reason."""
    best = ranked(found, min_similarity)
    row = {f"{k}_start": float(start.values[j]) for j, k in enumerate(names)}
    if not len(best):
        return {"smiles": "", **row, "error": f"no decoded molecule kept similarity >= {min_similarity:g}"}
    b = best[0]
    row.update({k: float(found.values[b, j]) for j, k in enumerate(names)})
    return {
        "smiles": found.smiles[b],
        "similarity": float(found.similarity[b]),
        **row,
        "progress": float(found.progress[b]),
        "error": "",
    }


def _frame(rows: list[dict], names) -> object:
    """The rows as a DataFrame with the documented columns in order (NaN where a row has no value)."""
    import pandas as pd

    columns = [
        "input",
        "smiles",
        "similarity",
        *[c for k in names for c in (f"{k}_start", k)],
        "progress",
        "decodes",
        "error",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["smiles"] = frame["smiles"].fillna("")
    frame["error"] = frame["error"].fillna("")
    frame["decodes"] = frame["decodes"].astype(int)
    return frame
