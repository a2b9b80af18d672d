"""Molecular properties from RDKit: logP, TPSA, SA score and QED.

- ``logP``: Wildman-Crippen octanol/water partition coefficient (``Crippen.MolLogP``);
- ``TPSA``: topological polar surface area in A^2 (``rdMolDescriptors.CalcTPSA``);
- ``SAS``: synthetic accessibility score, 1 (easy) to 10 (hard), Ertl & Schuffenhauer 2009
  (``rdkit.Contrib.SA_Score.sascorer``, shipped inside the RDKit wheel);
- ``QED``: quantitative estimate of drug-likeness, 0 to 1 (``QED.qed``).

:func:`compute` works on a list of SMILES in parallel worker processes with a progress bar; an
invalid SMILES (or one over :data:`MAX_SMILES_CHARS` characters) gives a row of NaN and its error in
the ``error`` column, never an exception.

>>> compute(["CCO", "not a molecule"], workers=1, progress=False)[["logP", "TPSA"]].round(4).values.tolist()  # doctest: +SKIP
[[-0.0014, 20.23], [nan, nan]]
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

import numpy as np

#: property columns, in this order everywhere (labels of the molecule plugins)
PROPERTIES = ("logP", "TPSA", "SAS", "QED")
#: longest SMILES read (a longer one gets an error row: RDKit's SA score alone takes minutes on 100,000 atoms)
MAX_SMILES_CHARS = 1000

_SASCORER = None


def _sascorer():
    global _SASCORER
    if _SASCORER is None:
        from rdkit.Chem import RDConfig

        path = os.path.join(RDConfig.RDContribDir, "SA_Score")
        if path not in sys.path:
            sys.path.append(path)
        import sascorer  # noqa: E402  (rdkit.Contrib is not a package)

        _SASCORER = sascorer
    return _SASCORER


def quiet_rdkit() -> None:
    """Silence RDKit's parse warnings on stderr (errors are reported per row instead)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def mol_from_smiles(smiles):
    """An RDKit molecule, or ``None`` for an empty, non-string or unparsable SMILES."""
    from rdkit import Chem

    if not isinstance(smiles, str) or not smiles.strip():
        return None
    try:
        return Chem.MolFromSmiles(smiles.strip())
    except Exception:  # RDKit raises on some malformed inputs instead of returning None
        return None


def canonical(smiles) -> str | None:
    """RDKit canonical SMILES, or ``None`` if it does not parse."""
    from rdkit import Chem

    mol = mol_from_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def mol_properties(mol, which: Sequence[str] = PROPERTIES) -> dict[str, float]:
    """The requested properties of one RDKit molecule."""
    from rdkit.Chem import QED, Crippen, rdMolDescriptors

    out = {}
    for name in which:
        if name == "logP":
            out[name] = float(Crippen.MolLogP(mol))
        elif name == "TPSA":
            out[name] = float(rdMolDescriptors.CalcTPSA(mol))
        elif name == "SAS":
            out[name] = float(_sascorer().calculateScore(mol))
        elif name == "QED":
            out[name] = float(QED.qed(mol))
        else:
            raise ValueError(f"unknown property {name!r}; known: {PROPERTIES}")
    return out


def _row(args) -> tuple:
    smiles, which = args
    quiet_rdkit()
    from rdkit import Chem

    if isinstance(smiles, str) and len(smiles.strip()) > MAX_SMILES_CHARS:
        return (
            None,
            *([math.nan] * len(which)),
            f"{len(smiles.strip())} characters; at most {MAX_SMILES_CHARS} are read",
        )
    mol = mol_from_smiles(smiles)
    if mol is None:
        reason = (
            "empty or not a string" if not isinstance(smiles, str) or not smiles.strip() else "RDKit cannot parse it"
        )
        return (None, *([math.nan] * len(which)), f"invalid SMILES: {reason}")
    try:
        values = mol_properties(mol, which)
        return (Chem.MolToSmiles(mol), *[values[w] for w in which], "")
    except Exception as exc:  # a property that fails on an odd molecule: report it on the row
        return (Chem.MolToSmiles(mol), *([math.nan] * len(which)), f"property failed: {exc}")


def compute(
    smiles: Sequence[str],
    which: Sequence[str] = PROPERTIES,
    workers: int | None = None,
    progress: bool = True,
    chunksize: int = 500,
):
    """Properties of each SMILES as a pandas DataFrame with columns ``smiles`` (as given),
    ``canonical``, one per property, and ``error`` (empty when fine).

    ``workers``: processes (default: all CPU cores; 1 computes in this process).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    which = tuple(which)
    for name in which:
        if name not in PROPERTIES:
            raise ValueError(f"unknown property {name!r}; known: {PROPERTIES}")
    smiles = list(smiles)
    workers = (os.cpu_count() or 1) if workers is None else max(int(workers), 1)
    jobs = [(s, which) for s in smiles]
    bar = dict(total=len(jobs), desc="properties", disable=not progress, leave=False)
    if workers == 1 or len(jobs) < 2 * chunksize:
        rows = [_row(j) for j in tqdm(jobs, **bar)]
    else:
        import multiprocessing as mp

        with mp.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(workers) as pool:
            rows = list(tqdm(pool.imap(_row, jobs, chunksize=chunksize), **bar))
    frame = pd.DataFrame(rows, columns=["canonical", *which, "error"])
    frame.insert(0, "smiles", smiles)
    return frame


def properties_array(smiles: Sequence[str], which: Sequence[str] = PROPERTIES, workers: int = 1) -> np.ndarray:
    """(n, len(which)) float array, NaN rows for invalid SMILES (``None`` allowed)."""
    frame = compute([s if s is not None else "" for s in smiles], which, workers=workers, progress=False)
    return frame[list(which)].to_numpy(dtype=np.float64)
