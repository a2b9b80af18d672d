"""Pictures: property densities of generated vs training molecules (PluGeN Fig. 7) and a grid of
molecules with their values (Fig. 8). Need matplotlib and RDKit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def plot_range(training: np.ndarray, generated: Mapping[float, np.ndarray]) -> tuple[float, float]:
    """The x range of :func:`density_plot`: 99% of each set, whatever its size, and every target."""
    sets = [training] + [np.asarray(v, float)[np.isfinite(v)] for v in generated.values()]
    ends = np.array([np.percentile(v, [0.5, 99.5]) for v in sets if len(v)])
    return float(min(ends[:, 0].min(), *generated)), float(max(ends[:, 1].max(), *generated))


def density_plot(
    training: np.ndarray, generated: Mapping[float, np.ndarray], label: str, path: str | Path, bins: int = 80
) -> Path:
    """Histogram densities of one property: the training set in grey and one curve per requested
    value, each mean marked with a solid vertical line and its target with a dotted one. The range
    covers 99% of every set (and every target), so no curve is cut at the training set's edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    training = np.asarray(training, dtype=float)
    training = training[np.isfinite(training)]
    lo, hi = plot_range(training, generated)
    edges = np.linspace(lo, hi, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(training, bins=edges, density=True, color="0.75", label="training set")
    ax.axvline(training.mean(), color="0.5", ls="--", lw=1)
    for (target, values), color in zip(generated.items(), plt.cm.tab10.colors):
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        ax.hist(v, bins=edges, density=True, histtype="step", lw=1.8, color=color, label=f"requested {target:g}")
        ax.axvline(v.mean(), color=color, lw=1.2)
        ax.axvline(target, color=color, lw=1.2, ls=":")
    ax.set_xlabel(label)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def grid_image(
    smiles: Sequence[str | None], legends: Sequence[str], path: str | Path, per_row: int = 7, size: int = 220
) -> Path:
    """A PNG grid of molecule drawings with a legend under each (invalid ones drawn empty)."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    mols = [m if m is not None else Chem.Mol() for m in mols]
    image = Draw.MolsToGridImage(mols, molsPerRow=per_row, subImgSize=(size, size), legends=list(legends))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(path))
    return path


def pairs_grid(frame, names: Sequence[str], path: str | Path, pairs_per_row: int = 2, size: int = 260) -> Path | None:
    """Start -> result pairs of :func:`plugen.molecules.lead_optimization.optimize`'s rows with a
    valid start, legends naming the requested property values and the similarity (``None``, and no
    file, when no row has a valid start)."""
    from plugen.molecules.properties import canonical

    smiles, legends = [], []
    for _, row in frame[frame["decodes"] > 0].iterrows():
        start = ", ".join(f"{k} {row[f'{k}_start']:.2f}" for k in names)
        smiles.append(canonical(row["input"]))
        legends.append(f"start: {start}")
        values = ", ".join(f"{k} {row[k]:.2f}" for k in names)
        smiles.append(row["smiles"] or None)
        legends.append(f"{values}, sim {row['similarity']:.2f}" if row["smiles"] else "none kept the similarity")
    return grid_image(smiles, legends, path, per_row=2 * pairs_per_row, size=size) if smiles else None
