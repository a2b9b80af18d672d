"""Verified generation: sample from a PluGeN plugin until ``n`` distinct valid molecules meet the request.

A plugin sample only asks the decoder for a property value (PluGeN eq. 6: the label coordinates of the
flow's base space set to the request, the style coordinates drawn); what the decoded molecule has is
measured afterwards with RDKit. Here every decoded molecule is checked: it is kept when RDKit's value
of each property in ``tolerance`` lies within its tolerance of the target (``|value - target| <=
tolerance``) and, with ``drug_like``, when it passes the MOSES filters as
:func:`plugen.molecules.moses.filter_failure` applies them (atoms, charges, rings, MCF and PAINS
alerts) and has a synthetic accessibility score ``SAS <= sas_max``. Batches are drawn until ``n``
molecules are kept or ``max_decodes`` latents have been decoded; in the second case the result has
fewer rows and :class:`DecodeBudgetWarning` says so.

Calibration (on by default): the decoded values of a request spread around a value pulled towards the
training mean, so after each batch the request of every checked label is moved by the gap between the
target and the median decoded value of that batch, divided by the measured response of the median to
the request (secant estimate, bounded), and kept within :data:`CALIBRATION_SDS` training standard
deviations of the target (beyond the training range without a warning: the user's targets were checked
once). The targets reported stay the user's.

While filtering, only the checked properties are computed for each new valid molecule (all of them, for
the calibration), and the MOSES filters and the SAS bound only for those within the tolerance; the full
property table is computed for the kept molecules.

>>> from plugen.molecules import design                                            # doctest: +SKIP
>>> bb, plugin = design.load_shipped()                                             # doctest: +SKIP
>>> frame = design.generate(plugin, bb, 100, {"logP": 3.5}, tolerance={"logP": 0.25})  # doctest: +SKIP
>>> frame.attrs["verified"]  # decodes per kept molecule, budget, final requests     # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from plugen.errors import InputError
from plugen.labels import targets_checked
from plugen.molecules.properties import PROPERTIES

#: the SAS bound of ``drug_like`` requests when none is given (1 easy to 10 hard; most MOSES molecules lie below it)
SAS_MAX = 4.0
#: default decode budget per requested molecule
DECODES_PER_MOLECULE = 100
#: largest first batch; later batches aim at the molecules still missing, at least FIRST_BATCH // 4, at most MAX_BATCH
FIRST_BATCH = 256
MAX_BATCH = 4096
#: a calibrated request stays within this many training standard deviations of the target
CALIBRATION_SDS = 2.0
#: bounds of the measured response of the decoded median to the request (secant slope)
SLOPE_BOUNDS = (0.2, 1.0)
#: properties in the order they are checked (cheapest first)
CHECK_ORDER = ("logP", "TPSA", "QED", "SAS")


class DecodeBudgetWarning(UserWarning):
    """The decode budget ended before the requested number of molecules met the request."""


@dataclass
class Request:
    """A checked request of verified generation."""

    n: int
    targets: dict[str, float]
    tolerance: dict[str, float]
    max_decodes: int
    drug_like: bool
    sas_max: float | None

    @property
    def checked(self) -> list[str]:
        return sorted(self.tolerance, key=CHECK_ORDER.index)


def _positive_finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_tolerance(tolerance, targets: Mapping[str, float]) -> dict[str, float]:
    """``{property: tolerance}``: every key a requested target, every value positive and finite."""
    if not isinstance(tolerance, Mapping):
        raise InputError(f"tolerance must be a dict property -> tolerance, got {type(tolerance).__name__}")
    unrequested = [k for k in tolerance if k not in targets]
    if unrequested:
        raise InputError(
            f"tolerance for {unrequested}, which is not requested; requested: {list(targets)} "
            "(a tolerance needs a target for the same property)"
        )
    return {k: _positive_finite(v, f"tolerance of {k}") for k, v in tolerance.items()}


def check_request(n, targets: Mapping[str, float], tolerance, max_decodes, drug_like: bool, sas_max) -> Request:
    """The arguments of verified generation, checked (:class:`~plugen.errors.InputError` names the problem)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be an integer of at least 1, got {n!r}")
    tol = check_tolerance({} if tolerance is None else tolerance, targets)
    unknown = [k for k in tol if k not in CHECK_ORDER]
    if unknown:
        raise InputError(f"no RDKit property {unknown} to check; known: {list(CHECK_ORDER)}")
    if not tol and not drug_like:
        raise InputError("verified generation needs a tolerance for a requested property, or drug_like=True")
    if sas_max is not None and not drug_like:
        raise InputError("sas_max bounds the SAS of drug_like requests; pass drug_like=True with it")
    bound = None if not drug_like else SAS_MAX if sas_max is None else _positive_finite(sas_max, "sas_max")
    budget = DECODES_PER_MOLECULE * int(n) if max_decodes is None else max_decodes
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise InputError(f"max_decodes must be an integer, got {max_decodes!r}")
    if budget < n:
        raise InputError(f"max_decodes ({budget}) must be at least n ({n}): each kept molecule takes a decode")
    return Request(int(n), {k: float(v) for k, v in targets.items()}, tol, int(budget), bool(drug_like), bound)


def judge(mol, request: Request) -> tuple[bool, dict[str, float]]:
    """``(kept, values)``: the checked properties of ``mol`` (all of them, for calibration) and whether
    they lie within tolerance and, for drug-like requests, the MOSES filters and the SAS bound pass."""
    from plugen.molecules.properties import mol_properties

    values = mol_properties(mol, request.checked)
    ok = all(abs(values[k] - request.targets[k]) <= t for k, t in request.tolerance.items())
    if ok and request.drug_like:
        from plugen.molecules.moses import filter_failure

        ok = filter_failure(mol) is None
        if ok:
            sas = values["SAS"] if "SAS" in values else mol_properties(mol, ["SAS"])["SAS"]
            ok = sas <= request.sas_max
    return ok, values


@dataclass
class Calibration:
    """The label values asked of the plugin, moved after each batch so the decoded medians meet the targets."""

    targets: dict[str, float]
    limits: dict[str, tuple[float, float]]
    asked: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def start(cls, plugin, request: Request, on: bool) -> Calibration:
        sds = {label.name: float(label.std or 1.0) for label in plugin.schema_.labels}
        limits = {
            k: (v - CALIBRATION_SDS * sds[k], v + CALIBRATION_SDS * sds[k]) if on and k in request.tolerance else (v, v)
            for k, v in request.targets.items()
        }
        return cls(dict(request.targets), limits, dict(request.targets))

    def update(self, values: Mapping[str, list[float]]) -> None:
        """Move each calibrated request by (target - median decoded value) / response of the median."""
        for k, seen in values.items():
            low, high = self.limits.get(k, (0.0, 0.0))
            if low == high or len(seen) < 8:
                continue
            points = self.history.setdefault(k, [])
            points.append((self.asked[k], float(np.median(seen))))
            slope = 0.5
            if len(points) >= 2 and abs(points[-1][0] - points[-2][0]) > 1e-9:
                slope = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
            slope = float(np.clip(slope, *SLOPE_BOUNDS))
            self.asked[k] = float(np.clip(self.asked[k] + (self.targets[k] - points[-1][1]) / slope, low, high))


@dataclass
class Progress:
    """What verified generation has found so far."""

    kept: list[str] = field(default_factory=list)
    decodes: list[int] = field(default_factory=list)
    seen: set = field(default_factory=set)
    examined: int = 0
    decoded: int = 0
    since_last: int = 0


def examine(smiles: Sequence[str | None], request: Request, state: Progress) -> dict[str, list[float]]:
    """Check the decoded molecules in order until ``request.n`` are kept; returns the checked values of
    the new valid molecules (for calibration)."""
    from rdkit import Chem

    from plugen.molecules.properties import mol_from_smiles

    values: dict[str, list[float]] = {k: [] for k in request.tolerance}
    for s in smiles:
        if len(state.kept) >= request.n:
            break
        state.examined += 1
        state.since_last += 1
        mol = mol_from_smiles(s) if s else None
        if mol is None:
            continue
        key = Chem.MolToSmiles(mol)
        if key in state.seen:
            continue
        state.seen.add(key)
        ok, found = judge(mol, request)
        for k in values:
            values[k].append(found[k])
        if ok:
            state.kept.append(key)
            state.decodes.append(state.since_last)
            state.since_last = 0
    return values


def next_batch(request: Request, state: Progress) -> int:
    """Latents to decode next: enough for the molecules still missing at the rate seen so far (+20%)."""
    left = request.max_decodes - state.decoded
    if not state.decoded:  # small requests start small; the calibration needs a few dozen molecules
        return min(left, FIRST_BATCH, max(64, 10 * request.n))
    rate = max(len(state.kept) / max(state.examined, 1), 1.0 / MAX_BATCH)
    wanted = math.ceil(1.2 * (request.n - len(state.kept)) / rate)
    return int(min(left, MAX_BATCH, max(wanted, FIRST_BATCH // 4)))


def generate(
    plugin,
    backbone,
    request: Request,
    temperature: float = 1.0,
    properties: Sequence[str] = PROPERTIES,
    seed: int | None = 0,
    calibrate: bool = True,
    progress: bool = False,
):
    """Verified generation (see the module docstring) of a checked :class:`Request`. DataFrame with
    the columns of :func:`plugen.molecules.design.generate` plus ``decodes`` (latents decoded since
    the previous kept molecule, this one included); ``attrs["verified"]``: the summary."""
    from tqdm.auto import tqdm

    plugin.schema_.requests(request.targets, 1)  # the targets checked once, extrapolation warned once
    rng = np.random.default_rng(seed)
    calibration = Calibration.start(plugin, request, calibrate)
    state = Progress()
    with tqdm(total=request.n, desc="verified", unit="mol", disable=not progress, leave=False) as bar:
        while len(state.kept) < request.n and state.decoded < request.max_decodes:
            size = next_batch(request, state)
            with targets_checked():
                Z = plugin.sample(size, calibration.asked, temperature=temperature, seed=int(rng.integers(2**32)))
            state.decoded += size
            before = len(state.kept)
            calibration.update(examine(backbone.decode(Z), request, state))
            bar.update(len(state.kept) - before)
            bar.set_postfix(decodes=state.decoded)
    return _result(state, request, calibration, properties)


def _result(state: Progress, request: Request, calibration: Calibration, properties: Sequence[str]):
    from plugen.molecules.properties import compute

    which = list(dict.fromkeys([*properties, *request.targets]))
    frame = compute(state.kept, which, workers=1, progress=False)
    frame["smiles"] = frame["canonical"]
    frame = frame.drop(columns=["canonical"])
    frame.insert(1, "valid", True)
    for k, v in request.targets.items():
        frame[f"target_{k}"] = v
    frame["decodes"] = np.asarray(state.decodes, dtype=np.int64)
    kept = len(state.kept)
    frame.attrs["verified"] = {
        "requested": request.n,
        "kept": kept,
        "decodes": state.examined,
        "decoded": state.decoded,
        "decodes_per_kept": state.examined / kept if kept else None,
        "max_decodes": request.max_decodes,
        "budget_exhausted": kept < request.n,
        "tolerance": dict(request.tolerance),
        "drug_like": request.drug_like,
        "sas_max": request.sas_max,
        "asked": dict(calibration.asked),
    }
    if kept < request.n:
        warnings.warn(
            f"verified generation kept {kept} of {request.n} molecules: the decode budget of "
            f"{request.max_decodes} ended; raise max_decodes (--max-decodes) or widen the tolerance",
            DecodeBudgetWarning,
            stacklevel=4,  # the caller of design.generate
        )
    return frame
