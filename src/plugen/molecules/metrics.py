"""Generation metrics: validity, uniqueness, novelty (MOSES definitions), property error to target,
Tanimoto similarity, and the Frechet ChemNet Distance when ``fcd-torch`` is installed. The full set of
MOSES metrics (SNN, Frag, Scaf, IntDiv, Filters, unique@k) is in :mod:`plugen.molecules.moses`.

- validity: fraction of generated strings that are molecules (``None`` counts as invalid);
- uniqueness: distinct valid canonical SMILES / valid;
- novelty: distinct valid molecules absent from the training set / distinct valid;
- MAE to target: mean |property - target| over valid molecules.

>>> summary(["CCO", "CCO", None, "c1ccccc1"], training={"CCO"})["novelty"]
0.5
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def validity(smiles: Sequence[str | None]) -> float:
    return float(np.mean([bool(s) for s in smiles])) if len(smiles) else float("nan")


def uniqueness(smiles: Sequence[str | None]) -> float:
    valid = [s for s in smiles if s]
    return len(set(valid)) / len(valid) if valid else float("nan")


def novelty(smiles: Sequence[str | None], training: Iterable[str]) -> float:
    unique = {s for s in smiles if s}
    if not unique:
        return float("nan")
    training = training if isinstance(training, (set, frozenset)) else set(training)
    return len(unique - training) / len(unique)


def summary(
    smiles: Sequence[str | None],
    training: Iterable[str] | None = None,
    properties: Mapping[str, np.ndarray] | None = None,
    targets: Mapping[str, float] | None = None,
) -> dict:
    """Validity, uniqueness, novelty (if ``training`` given) and, per property, mean, sd and the
    mean absolute error to its target (over valid molecules)."""
    out = {"n": len(smiles), "validity": validity(smiles), "uniqueness": uniqueness(smiles)}
    if training is not None:
        out["novelty"] = novelty(smiles, training)
    for name, values in (properties or {}).items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        row = {"mean": float(v.mean()) if len(v) else float("nan"), "sd": float(v.std()) if len(v) else float("nan")}
        if targets and name in targets:
            row["target"] = float(targets[name])
            row["mae"] = float(np.abs(v - targets[name]).mean()) if len(v) else float("nan")
        out[name] = row
    return out


def fingerprint(smiles: str | None, radius: int = 2, bits: int = 2048):
    """Morgan fingerprint (ECFP4 by default), or ``None`` for an invalid SMILES."""
    from rdkit.Chem import rdFingerprintGenerator

    from plugen.molecules.properties import mol_from_smiles

    mol = mol_from_smiles(smiles) if smiles else None
    if mol is None:
        return None
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits).GetFingerprint(mol)


def tanimoto(a: str | None, b: str | None) -> float:
    """Tanimoto similarity of Morgan fingerprints (radius 2, 2048 bits); NaN if either is invalid."""
    from rdkit import DataStructs

    fa, fb = fingerprint(a), fingerprint(b)
    if fa is None or fb is None:
        return float("nan")
    return float(DataStructs.TanimotoSimilarity(fa, fb))


def fcd(generated: Sequence[str | None], reference: Sequence[str], device: str = "cpu") -> float:
    """Frechet ChemNet Distance (Preuer et al. 2018) between valid generated molecules and a reference
    set, with ``fcd-torch`` and the ChemNet weights it ships (nothing is downloaded)."""
    try:
        from fcd_torch import FCD
    except ImportError as exc:
        raise ImportError("FCD needs fcd-torch: pip install fcd-torch") from exc
    valid = [s for s in generated if s]
    return float(FCD(device=device, n_jobs=1)(valid, list(reference)))
