"""De novo design and lead optimisation with a PluGeN plugin on a molecule VAE (PluGeN Fig. 7, 8).

>>> from plugen.molecules import design                                     # doctest: +SKIP
>>> bb, plugin = design.load_shipped()                                      # doctest: +SKIP
>>> design.generate(plugin, bb, 100, {"logP": 3.0})                          # DataFrame, one row a molecule
>>> design.optimize(plugin, bb, ["CCOc1ccccc1"], {"logP": +3.0}, steps=6)   # the property path

The shipped plugin (``plugen/molecules/weights/selfies-vae.plugin``) is PluGeN with the continuous
labels logP, TPSA and SAS, fitted on the ``selfies-vae`` latents of the shipped MOSES subset;
:func:`fit_plugin` reproduces it (``plugen molecules fit``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from plugen.errors import InputError
from plugen.labels import targets_checked
from plugen.molecules.properties import PROPERTIES, compute

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_BACKBONE = "selfies-vae"
DEFAULT_PLUGIN = WEIGHTS / "selfies-vae.plugin"
LABELS = ("logP", "TPSA", "SAS")
#: how the shipped plugin was trained (one held-out scoring per epoch, patience alone), pinned so that
#: ``plugen molecules fit`` reproduces it whatever the plugins' defaults;
#: ``fit_plugin(..., **plugen.training.ROW_CHECKS)`` trains with held-out checks instead
SHIPPED_TRAINING = {"batch_size": 256, "lr": 1e-3, "warmup_steps": 100, "check_rows": 0, "min_gain": 0.0}


def load_shipped(backbone: str = DEFAULT_BACKBONE, plugin: str | Path | None = None):
    """(backbone, plugin): the shipped molecule VAE and the PluGeN fitted on its latents."""
    import plugen
    from plugen.backbones import load

    bb = load(backbone)
    path = Path(plugin) if plugin else DEFAULT_PLUGIN
    if not path.exists():
        raise InputError(f"no fitted plugin at {path}; fit one with: plugen molecules fit -o {path}")
    return bb, plugen.load(path, backbone=bb.name)


def fit_plugin(
    backbone=DEFAULT_BACKBONE,
    n: int = 100_000,
    labels: Sequence[str] = LABELS,
    seed: int = 0,
    progress: bool = True,
    **plugin_kwargs,
):
    """PluGeN with continuous ``labels`` fitted on the latents of the first ``n`` training molecules
    of the shipped subset (the backbone's own training split). Returns ``(plugin, info)``."""
    from plugen import PluGeN
    from plugen.backbones import load
    from plugen.molecules.data import load_subset

    bb = load(backbone) if isinstance(backbone, str) else backbone
    frame = load_subset("train").iloc[:n]
    start = time.perf_counter()
    Z = bb.encode(frame["SMILES"].tolist())
    ok = ~np.isnan(Z).any(axis=1)
    encode_seconds = time.perf_counter() - start
    Y = frame[list(labels)].to_numpy(np.float64)[ok]
    kwargs = {"seed": seed, "progress": progress, "device": "cpu", **SHIPPED_TRAINING, **plugin_kwargs}
    plugin = PluGeN(labels={name: "continuous" for name in labels}, backbone=bb.name, **kwargs)
    start = time.perf_counter()
    plugin.fit(Z[ok], Y)
    info = {
        "molecules": int(ok.sum()),
        "skipped": int((~ok).sum()),
        "encode_seconds": round(encode_seconds, 1),
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    return plugin, info


def _decode(backbone, Z, progress: bool, chunk: int = 2048) -> list[str | None]:
    from tqdm.auto import tqdm

    out: list[str | None] = []
    with tqdm(total=len(Z), desc="decode", unit="mol", disable=not progress, leave=False) as bar:
        for i in range(0, len(Z), chunk):
            out += backbone.decode(Z[i : i + chunk])
            bar.update(len(Z[i : i + chunk]))
    return out


def _reencoded(plugin, backbone, Z, targets: dict, rounds: int, progress: bool) -> np.ndarray:
    """``rounds`` of :func:`plugen.reencode.reencode` setting the targets, one bar step each."""
    from tqdm.auto import tqdm

    from plugen.reencode import reencode

    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
        raise InputError(f"reencode must be an integer >= 0, got {rounds!r}")
    with targets_checked():  # the targets were checked when the samples were drawn
        for _ in tqdm(range(rounds), desc="re-encode", unit="round", disable=not progress, leave=False):
            Z = reencode(plugin, backbone, Z, targets)
    return Z


def _frame(smiles: Sequence[str | None], which=PROPERTIES, progress: bool = False):
    frame = compute([s or "" for s in smiles], which, workers=1, progress=progress)
    frame["valid"] = frame["error"] == ""
    frame.loc[~frame["valid"], "error"] = "decoding failed: no molecule"
    frame["smiles"] = frame["canonical"]
    return frame.drop(columns=["canonical"])


def generate(
    plugin,
    backbone,
    n: int,
    targets: Mapping[str, float],
    temperature: float = 1.0,
    properties: Sequence[str] = PROPERTIES,
    seed: int | None = 0,
    oversample: int = 1,
    reencode: int = 0,
    progress: bool = False,
    tolerance: Mapping[str, float] | None = None,
    max_decodes: int | None = None,
    drug_like: bool = False,
    sas_max: float | None = None,
):
    """``n`` molecules sampled with the requested label values (unnamed labels follow their
    training distribution). DataFrame: ``smiles`` (None if decoding failed), ``valid``, the
    properties, ``error`` and one ``target_<label>`` column per request.

    ``oversample`` > 1 is generate-and-filter on top of the plugin: sample ``oversample * n``,
    compute the RDKit properties and keep the ``n`` valid, distinct molecules closest to the targets
    (sum of |value - target| / training sd); fewer rows if fewer qualify.

    ``reencode`` > 0 pulls the samples towards molecules the VAE encodes: that many times, decode,
    encode and set the targets again (:func:`plugen.reencode.reencode`; the unrequested labels
    follow the re-encoded molecule): samples nearer their targets and with a more realistic
    synthetic accessibility (the molecule results page measures it); each round costs a decode and
    an encode.
    ``progress`` shows bars for decoding and for the properties.

    ``tolerance`` (``{"logP": 0.25}``) and/or ``drug_like`` make it verified generation
    (:mod:`plugen.molecules.verified`): batches are drawn until ``n`` distinct valid molecules have
    RDKit values within the tolerance of their targets (and, with ``drug_like``, pass the MOSES
    filters and have ``SAS <= sas_max``), or ``max_decodes`` latents have been decoded (fewer rows
    and a :class:`~plugen.molecules.verified.DecodeBudgetWarning`). It adds a ``decodes`` column and
    ``attrs["verified"]`` (decodes per kept molecule and the rest of the summary)."""
    unknown = [k for k in targets if k not in plugin.label_names]
    if unknown:
        raise InputError(f"the plugin has no label {unknown}; it controls {plugin.label_names}")
    if tolerance is not None or drug_like:
        from plugen.molecules import verified

        if oversample != 1 or reencode:
            raise InputError("oversample and reencode do not combine with tolerance / drug_like (verified generation)")
        request = verified.check_request(n, targets, tolerance, max_decodes, drug_like, sas_max)
        return verified.generate(plugin, backbone, request, temperature, properties, seed, progress=progress)
    if max_decodes is not None or sas_max is not None:
        raise InputError("max_decodes and sas_max apply to verified generation: give a tolerance or drug_like=True")
    if int(oversample) < 1:
        raise InputError(f"oversample must be at least 1, got {oversample}")
    oversample = int(oversample)
    Z = plugin.sample(int(n) * oversample, dict(targets), temperature=temperature, seed=seed)
    Z = _reencoded(plugin, backbone, Z, dict(targets), reencode, progress)
    which = list(dict.fromkeys([*properties, *targets]))
    frame = _frame(_decode(backbone, Z, progress), which, progress)
    if oversample > 1:
        stats = {label.name: label.std for label in plugin.schema_.labels}
        distance = sum((frame[k] - float(v)).abs() / float(stats.get(k) or 1.0) for k, v in targets.items())
        frame = frame.assign(_d=distance if targets else 0.0)[frame["valid"]]
        frame = frame.drop_duplicates("smiles").sort_values("_d", kind="stable").head(int(n))
        frame = frame.drop(columns="_d").reset_index(drop=True)
    for k, v in targets.items():
        frame[f"target_{k}"] = float(v)
    return frame


def check_steps(steps, name: str = "steps") -> int:
    """``steps`` as an int of at least 1, else :class:`~plugen.errors.InputError`."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"{name} must be an integer of at least 1 (the path's number of edits), got {steps!r}")
    return int(steps)


def optimize(
    plugin,
    backbone,
    smiles: Sequence[str],
    changes: Mapping[str, float],
    steps: int = 6,
    relative: bool = True,
    properties: Sequence[str] = PROPERTIES,
    reencode: int = 0,
    input_errors: Sequence[str] | None = None,
    min_similarity: float | None = None,
    max_decodes: int = 400,
    seed: int | None = 0,
    progress: bool = False,
):
    """Lead optimisation: encode each molecule, move the labels in ``changes`` to their targets in
    ``steps`` equal steps (``relative``: the change is added to the molecule's own RDKit value),
    decode every step. ``reencode`` > 0 closes each step's edit through the backbone that many
    times (:func:`plugen.reencode.reencoded_edit`: decode, encode, edit again holding the other
    labels). DataFrame, one row per molecule and step (step 0: the decoded input):
    ``input``, ``step``, ``target_<label>``, ``smiles``, ``valid``, properties, ``similarity``
    (Tanimoto, Morgan radius 2, to the input) and ``error``; an unreadable input gives one row with
    its error and no exception. ``input_errors``: per molecule, a reason found while reading it
    ('' if none; e.g. an empty line); a molecule with one gets its error row without being parsed.

    ``min_similarity`` (a Tanimoto similarity, e.g. 0.4) asks for constrained lead optimisation
    instead: per molecule a seeded plugin-guided search of at most ``max_decodes`` decoded candidates,
    one row per input with the candidate that moves the properties furthest while keeping the
    similarity (:func:`plugen.molecules.lead_optimization.optimize`; ``steps``, ``properties`` and
    ``reencode`` serve the path only). ``progress`` shows a bar over the molecules."""
    if min_similarity is not None:
        from plugen.molecules import lead_optimization

        return lead_optimization.optimize(
            plugin, backbone, smiles, changes, min_similarity, relative, max_decodes, seed, input_errors, progress
        )
    import pandas as pd

    from plugen.molecules.lead_optimization import read_inputs
    from plugen.molecules.metrics import tanimoto
    from plugen.reencode import reencoded_edit

    unknown = [k for k in changes if k not in plugin.label_names]
    if unknown:
        raise InputError(f"the plugin has no label {unknown}; it controls {plugin.label_names}")
    steps = check_steps(steps)
    smiles = [smiles] if isinstance(smiles, str) else list(smiles)
    start_props, Z, errors = read_inputs(backbone, smiles, PROPERTIES, input_errors)
    base = {i: {k: float(start_props[k][i]) for k in changes} for i, e in enumerate(errors) if not e}
    final = {i: {k: b[k] + float(v) if relative else float(v) for k, v in changes.items()} for i, b in base.items()}
    if final:  # one check of all the final targets (the steps lie between them and the molecules' own values)
        plugin.schema_.requests({k: [f[k] for f in final.values()] for k in changes}, len(final))
    rows = []
    for i, s in enumerate(smiles):
        if errors[i]:
            rows.append({"input": s, "step": None, "smiles": None, "valid": False, "error": errors[i]})
            continue
        targets = [{k: base[i][k] + (final[i][k] - base[i][k]) * j / steps for k in changes} for j in range(steps + 1)]
        Zi = np.repeat(Z[i : i + 1], steps + 1, axis=0)
        with targets_checked():
            edited = np.concatenate(
                [
                    reencoded_edit(plugin, backbone, Zi[j : j + 1], targets[j], reencode) if j else Zi[:1]
                    for j in range(steps + 1)
                ]
            )
        decoded = backbone.decode(edited)
        props = _frame(decoded, properties)
        for j in range(steps + 1):
            row = {
                "input": s,
                "step": j,
                **{f"target_{k}": round(v, 4) for k, v in targets[j].items()},
                "smiles": decoded[j],
                "valid": bool(props["valid"][j]),
                **{p: props[p][j] for p in properties},
                "similarity": tanimoto(start_props["canonical"][i], decoded[j]),
                "error": props["error"][j],
            }
            rows.append(row)
    return pd.DataFrame(rows)


def property_table(smiles: Sequence[str], properties: Sequence[str] = PROPERTIES, workers: int = 1):
    """Properties of SMILES, one row each, invalid ones reported in ``error`` (never raises)."""
    return compute(list(smiles), properties, workers=workers, progress=False)
