"""Pictures of results: image grids (generation, traversals) and a 2-D map of the latent space.

Needs matplotlib (``pip install "plugen[viz]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(images: np.ndarray, path: Path, row_titles: Sequence[str] = (), col_titles: Sequence[str] = (),
               title: str = "", cell: float = 0.9) -> Path:
    """Save images (rows, cols, C, H, W) in [0, 1] as one PNG grid with optional titles."""
    plt = _plt()
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell + 1.2, rows * cell + 0.6), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            img = np.clip(images[r, c], 0, 1)
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=8)
            if c == 0 and r < len(row_titles):
                ax.set_ylabel(row_titles[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9 if cols > 4 else 7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def generation_grid(method, backbone, label: str, values: Sequence, path: Path, styles: int = 6,
                    temperature: float = 0.8, seed: int = 0, fixed: dict | None = None, title: str = "") -> Path:
    """A row per style (the same base noise across the row), a column per requested value."""
    columns = [backbone.decode(method.sample(styles, {**(fixed or {}), label: v}, temperature=temperature, seed=seed))
               for v in values]
    grid = np.stack(columns, axis=1)
    return image_grid(grid, path, col_titles=[f"{label}={_fmt(v)}" for v in values], title=title)


def traversal_grid(method, backbone, Z: np.ndarray, label: str, values: Sequence, path: Path, title: str = "") -> Path:
    """A row per input (its reconstruction first), a column per requested value."""
    recon = backbone.decode(Z)
    edited = [backbone.decode(method.edit(Z, {label: v})) for v in values]
    grid = np.stack([recon] + edited, axis=1)
    return image_grid(grid, path, col_titles=["input"] + [f"{label}={_fmt(v)}" for v in values], title=title)


def latent_map(Z_real: np.ndarray, classes_real: np.ndarray, Z_generated: np.ndarray, classes_generated: np.ndarray,
               path: Path, title: str = "") -> Path:
    """FPN Fig. 9: real latents and generated ones on the first two principal components of the
    real latents (PCA, not UMAP: it needs no extra package and maps new points), coloured by class."""
    plt = _plt()
    mean = Z_real.mean(axis=0)
    _, _, vt = np.linalg.svd(Z_real - mean, full_matrices=False)
    real, gen = (Z_real - mean) @ vt[:2].T, (Z_generated - mean) @ vt[:2].T
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, points, classes, name in ((axes[0], real, classes_real, "real latents"), (axes[1], gen, classes_generated, "generated latents")):
        for i, c in enumerate(np.unique(classes_real)):
            sel = classes == c
            ax.scatter(points[sel, 0], points[sel, 1], s=4, alpha=0.6, color=cmap(i % 10), label=_fmt(c))
        ax.set_title(name)
        ax.set_xlabel("PC 1")
    axes[0].set_ylabel("PC 2")
    axes[1].legend(markerscale=3, fontsize=7, loc="best", title="class")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _fmt(v) -> str:
    v = float(v)
    return f"{int(v)}" if v.is_integer() else f"{v:.3g}"
