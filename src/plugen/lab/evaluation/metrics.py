"""Metrics for generated samples: Fréchet distance in an evaluator's feature space, and the
per-attribute F1 / AUC of PluGeN Table 3; McNemar's test for two classifiers on the same rows."""

from __future__ import annotations

import math

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


def mcnemar(correct_a, correct_b) -> dict:
    """Exact McNemar test of two classifiers on the same test rows (McNemar 1947).

    ``correct_a``, ``correct_b``: per row, whether each classifier was right. Only the rows on
    which they disagree count: ``a_only`` (a right, b wrong) and ``b_only``; under "equally
    accurate" each such row is a fair coin, so the two-sided p-value is
    ``min(1, 2 P[Binomial(a_only + b_only, 1/2) <= min(a_only, b_only)])``.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"the two classifiers were scored on different rows: {a.shape} vs {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return {"a_only": a_only, "b_only": b_only, "p_value": exact_mcnemar_p(a_only, b_only)}


def exact_mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided p-value of McNemar's exact test from the two discordant counts."""
    n = a_only + b_only
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2**n
    return min(1.0, 2 * tail)
