"""Pictures of results: image grids (generation, traversals) and a 2-D map of the latent space.

Needs matplotlib (``pip install "plugen[viz]"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(
    images: np.ndarray,
    path: Path,
    row_titles: Sequence[str] = (),
    col_titles: Sequence[str] = (),
    title: str = "",
    cell: float = 0.9,
) -> Path:
    """Save images (rows, cols, C, H, W) in [0, 1] as one PNG grid with optional titles.

    The tiles are laid out in one array and drawn on one axis (one axis per tile made the demo's
    figures take seconds each)."""
    plt = _plt()
    rows, cols, _, height, width = images.shape
    gap = max(1, height // 14)
    mosaic = np.ones((rows * (height + gap) - gap, cols * (width + gap) - gap, 3))
    for r in range(rows):
        for c in range(cols):
            tile = np.clip(images[r, c], 0, 1)
            tile = np.repeat(tile, 3, axis=0) if tile.shape[0] == 1 else tile
            y, x = r * (height + gap), c * (width + gap)
            mosaic[y : y + height, x : x + width] = tile.transpose(1, 2, 0)
    fig, ax = plt.subplots(figsize=(cols * cell + 1.2, rows * cell + 0.6))
    ax.imshow(mosaic, interpolation="nearest")
    ax.xaxis.tick_top()
    ax.set_xticks([c * (width + gap) + width / 2 for c in range(len(col_titles))], list(col_titles), fontsize=8)
    ax.set_yticks([r * (height + gap) + height / 2 for r in range(len(row_titles))], list(row_titles), fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=9 if cols > 4 else 7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def generation_grid(
    method,
    backbone,
    label: str,
    values: Sequence,
    path: Path,
    styles: int = 6,
    temperature: float = 0.8,
    seed: int = 0,
    fixed: dict | None = None,
    title: str = "",
) -> Path:
    """A row per style (the same base noise across the row), a column per requested value."""
    columns = [
        backbone.decode(method.sample(styles, {**(fixed or {}), label: v}, temperature=temperature, seed=seed))
        for v in values
    ]
    grid = np.stack(columns, axis=1)
    return image_grid(grid, path, col_titles=[value_title(method, label, v) for v in values], title=title)


def traversal_grid(method, backbone, Z: np.ndarray, label: str, values: Sequence, path: Path, title: str = "") -> Path:
    """A row per input (its reconstruction first), a column per requested value."""
    recon = backbone.decode(Z)
    edited = [backbone.decode(method.edit(Z, {label: v})) for v in values]
    grid = np.stack([recon] + edited, axis=1)
    return image_grid(grid, path, col_titles=["input"] + [value_title(method, label, v) for v in values], title=title)


def latent_map(
    Z_real: np.ndarray,
    classes_real: np.ndarray,
    Z_generated: np.ndarray,
    classes_generated: np.ndarray,
    path: Path,
    title: str = "",
    class_names: Sequence[str] | None = None,
) -> Path:
    """FPN Fig. 9: real latents and generated ones on the first two principal components of the
    real latents (PCA, not UMAP: it needs no extra package and maps new points), coloured by class.
    ``class_names``: the legend's name of class code ``i`` (default: the codes)."""
    plt = _plt()
    mean = Z_real.mean(axis=0)
    _, _, vt = np.linalg.svd(Z_real - mean, full_matrices=False)
    real, gen = (Z_real - mean) @ vt[:2].T, (Z_generated - mean) @ vt[:2].T
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, points, classes, panel in (
        (axes[0], real, classes_real, "real latents"),
        (axes[1], gen, classes_generated, "generated latents"),
    ):
        for i, c in enumerate(np.unique(classes_real)):
            sel = classes == c
            name = class_names[int(c)] if class_names is not None else _fmt(c)
            ax.scatter(points[sel, 0], points[sel, 1], s=4, alpha=0.6, color=cmap(i % 10), label=name)
        ax.set_title(panel)
        ax.set_xlabel("PC 1")
    axes[0].set_ylabel("PC 2")
    axes[1].legend(markerscale=3, fontsize=7, loc="best", title="class")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def value_title(method, label: str, value) -> str:
    """How a requested label value reads in a figure: the class name of a categorical label that has
    names (``"square"``), else ``label=value`` (``"digit=3"``, ``"size=5.5"``)."""
    schema = getattr(method, "schema_", None)
    if schema is not None and label in schema.index:
        lab = schema.label(label)
        if lab.kind == "categorical" and lab.names is not None:
            return lab.names[int(lab.class_index(lab.encode(value))[0])]
    return f"{label}={_fmt(value)}"


def _fmt(v) -> str:
    v = float(v)
    return f"{int(v)}" if v.is_integer() else f"{v:.3g}"
