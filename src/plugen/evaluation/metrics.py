"""Metrics for generated samples: Fréchet distance in an evaluator's feature space, and the
per-attribute F1 / AUC of PluGeN Table 3."""

from __future__ import annotations

import numpy as np


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, the square root taken through the
    eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)`` (symmetric, so stable). With features of one of
    plugen's small evaluators this is *not* the Inception FID of the papers: compare methods with
    each other, not with published FIDs.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def f1_auc(requested: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """Macro F1 of the evaluator's decisions and macro one-vs-rest AUC of its probabilities,
    against the *requested* classes of generated samples (PluGeN Table 3)."""
    from sklearn.metrics import f1_score, roc_auc_score

    requested = np.asarray(requested)
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    f1 = f1_score(requested, predicted, average="macro", labels=classes)
    present = [i for i, c in enumerate(classes) if 0 < np.mean(requested == c) < 1]
    auc = np.mean([roc_auc_score(requested == classes[i], proba[:, i]) for i in present]) if present else float("nan")
    return float(f1), float(auc)
