"""MOSES distribution-learning metrics (Polykovskiy et al. 2020, "Molecular Sets (MOSES)", section 3).

Written from the paper's definitions (``molsets`` does not install on current Python). ``G`` is the
list of valid generated molecules (duplicates kept, as MOSES keeps them), ``R`` a reference set
(the MOSES test set or a sample of it); ``T(a, b)`` is the Tanimoto similarity of Morgan
fingerprints, radius 2, 1024 bits, with ``T = 1`` when both fingerprints are empty.

- ``valid``: fraction of the generated strings that RDKit parses;
- ``unique@k``: distinct canonical SMILES among the first ``k`` valid molecules, divided by ``k``
  (NaN when fewer than ``k`` are valid);
- ``FCD/Test``: Frechet ChemNet Distance to ``R`` (:func:`plugen.molecules.metrics.fcd`);
- ``SNN/Test``: ``mean_{g in G} max_{r in R} T(g, r)``;
- ``Frag/Test``: cosine similarity of the count vectors of BRICS fragments (the pieces of
  ``FragmentOnBRICSBonds``, as canonical SMILES with their dummy atoms) of ``G`` and ``R``;
- ``Scaf/Test``: cosine similarity of the count vectors of Bemis-Murcko scaffolds of ``G`` and ``R``;
  as in the MOSES code that produced the published table, scaffolds with fewer than ``min_rings=2``
  rings (and acyclic molecules) are left out of both vectors;
- ``IntDiv_p``: ``1 - mean_{a in G} (mean_{b in G} T(a, b)^p)^(1/p)``, all ordered pairs including
  ``a = b``; for ``p = 1`` this is the paper's ``1 - (1/|G|^2) sum T``; for ``p = 2`` the root is taken
  per molecule, as in the MOSES code behind the published IntDiv2 (the paper writes the root outside
  the mean, which gives a slightly lower value);
- ``Filters``: fraction of ``G`` that passes :func:`passes_filters`;
- ``novelty``: distinct valid canonical molecules absent from the training set / distinct valid.

:func:`passes_filters` applies the rules MOSES used to build its data set and scores as Filters:
only the atoms C, N, S, O, F, Cl, Br, H; no atom with a formal charge; no ring of 8 or more atoms;
and no match, on the molecule with explicit hydrogens, of MOSES's structural alerts: its 22
medicinal-chemistry filters (MCF) and the 479 WEHI PAINS SMARTS (Baell & Holloway 2010), shipped in
``plugen/molecules/data/moses_filters.csv`` from the ``molsets`` 0.3.1 package (MIT).

>>> round(snn(fingerprints(["CCO"]), fingerprints(["CCO", "c1ccccc1"])), 3)
1.0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
#: a ring of this many atoms or more fails the filters
MAX_RING_SIZE = 8
#: the MOSES Table 2 "Train" row (``data/samples/train_metrics.csv`` of the MOSES repository): the
#: training set against the test set (its Frag and Scaf are those of the whole training set, 1,584,663)
MOSES_TRAIN_ROW = {
    "FCD/Test": 0.008,
    "SNN/Test": 0.6419,
    "Frag/Test": 0.99998,
    "Scaf/Test": 0.9907,
    "IntDiv": 0.8567,
    "IntDiv2": 0.8508,
    "Filters": 1.0,
}


def molecules(smiles: Sequence[str | None]) -> list:
    """RDKit molecules, ``None`` where a string does not parse."""
    from plugen.molecules.properties import mol_from_smiles

    return [mol_from_smiles(s) if s else None for s in smiles]


def valid_fraction(smiles: Sequence[str | None]) -> float:
    return float(np.mean([m is not None for m in molecules(smiles)])) if len(smiles) else float("nan")


def unique_at(canonical: Sequence[str], k: int) -> float:
    """Distinct molecules among the first ``k`` valid canonical SMILES, over ``k``; NaN if fewer."""
    return len(set(canonical[:k])) / k if len(canonical) >= k else float("nan")


def fingerprints(mols_or_smiles: Iterable, radius: int = 2, bits: int = 1024) -> np.ndarray:
    """Morgan bit fingerprints as a 0/1 ``float32`` matrix, one row per valid molecule."""
    from rdkit.Chem import rdFingerprintGenerator

    from plugen.molecules.properties import mol_from_smiles

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    mols = [mol_from_smiles(m) if isinstance(m, str) else m for m in mols_or_smiles]
    rows = [generator.GetFingerprintAsNumPy(m) for m in mols if m is not None]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), bits)


def _tanimoto_rows(a: np.ndarray, b: np.ndarray, cells: int = 1 << 24):
    """Yield ``(start, T)``: the Tanimoto matrix of a block of rows of ``a`` (from ``start``) against all of
    ``b``, blocks of about ``cells`` entries; ``T = 1`` where both fingerprints are empty."""
    nb = b.sum(1)
    block = max(1, cells // max(len(b), 1))
    for start in range(0, len(a), block):
        x = a[start : start + block]
        inter = x @ b.T
        union = x.sum(1)[:, None] + nb[None, :] - inter
        yield start, np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)


def snn(generated: np.ndarray, reference: np.ndarray) -> float:
    """SNN: mean over generated fingerprints of the largest Tanimoto similarity to a reference one."""
    if not len(generated) or not len(reference):
        return float("nan")
    return float(np.mean(np.concatenate([t.max(1) for _, t in _tanimoto_rows(generated, reference)])))


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    """IntDiv_p: one minus the mean over molecules of the p-th root of their mean ``T^p`` to the set."""
    if not len(fps):
        return float("nan")
    per_row = np.concatenate([(t**p).mean(1) ** (1.0 / p) for _, t in _tanimoto_rows(fps, fps)])
    return float(1.0 - per_row.mean())


def fragment_counts(mols: Iterable) -> Counter:
    """Counts of BRICS fragments (canonical SMILES with dummy atoms) over the valid molecules."""
    from rdkit import Chem

    counts: Counter = Counter()
    for mol in mols:
        if mol is not None:
            counts.update(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))
    return counts


def scaffold_counts(mols: Iterable, min_rings: int = 2) -> Counter:
    """Counts of Bemis-Murcko scaffolds (canonical SMILES) with at least ``min_rings`` rings."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    counts: Counter = Counter()
    for mol in mols:
        if mol is None:
            continue
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        if scaffold.GetNumAtoms() and scaffold.GetRingInfo().NumRings() >= min_rings:
            counts[Chem.MolToSmiles(scaffold)] += 1
    return counts


def cosine(a: Counter, b: Counter) -> float:
    """Cosine similarity of two count vectors given as ``{key: count}`` (absent keys count 0)."""
    if not a or not b:
        return float("nan")
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    norm = np.sqrt(sum(v * v for v in a.values())) * np.sqrt(sum(v * v for v in b.values()))
    return float(dot / norm)


FILTERS_FILE = Path(__file__).parent / "data" / "moses_filters.csv"


@lru_cache(maxsize=1)
def _alerts() -> tuple[tuple[str, object], ...]:
    """MOSES's structural alerts as ``(family name, compiled SMARTS)`` (see the module docstring)."""
    import csv

    from rdkit import Chem

    with FILTERS_FILE.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return tuple((f"{row['family']} {row['name']}", Chem.MolFromSmarts(row["smarts"])) for row in rows)


def filter_failure(mol) -> str | None:
    """Why ``mol`` fails the MOSES filters (see the module docstring), or ``None`` if it passes."""
    from rdkit import Chem

    if mol is None:
        return "invalid"
    atoms = mol.GetAtoms()
    if any(a.GetSymbol() not in ALLOWED_ATOMS for a in atoms):
        return "atom type"
    if any(a.GetFormalCharge() != 0 for a in atoms):
        return "charged atom"
    if any(len(ring) >= MAX_RING_SIZE for ring in mol.GetRingInfo().AtomRings()):
        return f"ring of {MAX_RING_SIZE}+ atoms"
    with_hydrogens = Chem.AddHs(mol)
    return next((name for name, alert in _alerts() if with_hydrogens.HasSubstructMatch(alert)), None)


def passes_filters(mol) -> bool:
    return filter_failure(mol) is None


def novelty(canonical: Iterable[str], training: set | frozenset) -> float:
    unique = set(canonical)
    return len(unique - training) / len(unique) if unique else float("nan")


class Reference:
    """Statistics of a reference set (the MOSES test set or a sample), computed once and reused:
    fingerprints for SNN, fragment and scaffold counts, and ChemNet statistics for FCD when asked."""

    def __init__(self, smiles: Sequence[str], fcd: bool = False, device: str = "cpu"):
        mols = [m for m in molecules(smiles) if m is not None]
        if not mols:
            from plugen.errors import InputError

            raise InputError("the MOSES reference set has no valid molecule")
        self.n = len(mols)
        self.fps = fingerprints(mols)
        self.fragments = fragment_counts(mols)
        self.scaffolds = scaffold_counts(mols)
        self.device = device
        self.chemnet = _fcd_model(device).precalc(list(smiles)) if fcd else None


def _fcd_model(device: str):
    try:
        from fcd_torch import FCD
    except ImportError as exc:
        raise ImportError("FCD needs fcd-torch: pip install fcd-torch") from exc
    return FCD(device=device, n_jobs=1)


def moses_metrics(
    generated: Sequence[str | None],
    reference: Reference,
    training: set | frozenset | None = None,
    ks: Sequence[int] = (1_000, 10_000),
) -> dict:
    """The MOSES metrics of ``generated`` (SMILES, ``None`` for a failed decode) against ``reference``;
    ``novelty`` when ``training`` (canonical SMILES) is given, ``FCD/Test`` when the reference has
    ChemNet statistics. See the module docstring for each definition."""
    from rdkit import Chem

    mols = molecules(generated)
    valid = [m for m in mols if m is not None]
    out = {"n": len(generated), "valid": float(len(valid) / len(generated)) if len(generated) else float("nan")}
    canonical = [Chem.MolToSmiles(m) for m in valid]
    for k in ks:
        out[f"unique@{k // 1000}k" if k % 1000 == 0 else f"unique@{k}"] = unique_at(canonical, k)
    if reference.chemnet is not None:
        model = _fcd_model(reference.device)
        out["FCD/Test"] = (
            float(model.metric(reference.chemnet, model.precalc(canonical))) if len(valid) > 1 else float("nan")
        )
    fps = fingerprints(valid)
    out["SNN/Test"] = snn(fps, reference.fps)
    out["Frag/Test"] = cosine(fragment_counts(valid), reference.fragments)
    out["Scaf/Test"] = cosine(scaffold_counts(valid), reference.scaffolds)
    out["IntDiv"] = internal_diversity(fps, 1)
    out["IntDiv2"] = internal_diversity(fps, 2)
    out["Filters"] = float(np.mean([passes_filters(m) for m in valid])) if valid else float("nan")
    if training is not None:
        out["novelty"] = novelty(canonical, training)
    return out
