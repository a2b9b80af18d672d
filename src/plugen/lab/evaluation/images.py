"""The papers' image protocols, judged on decoded images by a :class:`~plugen.lab.evaluation.judges.Judge`.

- :func:`edit_table`: PluGeN Tables 1-2. For every categorical label and value, the test images
  whose reconstruction the judge does not already read as that value are edited to it; *success*
  is the share the judge then reads as requested, *preserved* the share of the other labels kept
  (categorical: same class as the reconstruction; continuous: within the judge's tolerance).
  Continuous labels are requested at their 10th / 50th / 90th training percentiles: the correlation
  and mean absolute error between requested and measured values.
- :func:`generation_table`: PluGeN Table 3 and the unseen-combination claim. For each request
  (e.g. every shape x colour pair), new latents are sampled, decoded and judged: the share with
  every requested label right, macro F1 / AUC per categorical label, and the Fréchet distance of
  all generated images to real ones in the judge's feature space (not Inception FID).
- :func:`classification_table`: FPN Table 1. FPN (MAF, RealNVP) as a Bayes classifier against
  logistic regression, linear SVM and RBF SVM (C by 5-fold grid search) on the same latent split;
  :func:`classification_cv` repeats it on stratified folds of all rows.

A *method* is anything with ``edit(Z, changes)`` and ``sample(n, conditions, temperature=, seed=)``
(PluGeN, FPN, :class:`~plugen.lab.evaluation.baselines.LinearDirections`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from plugen.lab.evaluation.metrics import exact_mcnemar_p, f1_auc, frechet_distance, mcnemar
from plugen.plugins import FPN


def _kept(judge, label: str, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    if judge.labels[label] == "continuous":
        return np.abs(after - before) <= judge.tolerance[label]
    return after == before


def edit_table(
    method,
    backbone,
    Z: np.ndarray,
    judge,
    schema,
    values: Mapping[str, list] | None = None,
    before: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Edit success and preservation per requested value (see module docstring). ``before``: the
    judge's reading of ``backbone.decode(Z)``, when already known (it is the same for every method)."""
    before = judge(backbone.decode(Z)) if before is None else before
    judged = [lab.name for lab in schema.labels if lab.name in judge.labels]
    # FPN infers every row's source labels with its Bayes classifier on each edit call; the rows here
    # are edited once per requested value, so they are inferred once (the same edits, less time)
    source = method.predict(Z) if isinstance(method, FPN) else None

    def edit(rows: np.ndarray, changes: dict) -> np.ndarray:
        return method.edit(Z[rows], changes, **({} if source is None else {"y_source": source[rows]}))

    rows = []
    for label in schema.labels:
        if label.kind == "continuous" or label.name not in judge.labels:
            continue
        for value in (values or {}).get(label.name, [0, 1] if label.kind == "binary" else label.classes):
            todo = before[label.name] != value
            if not todo.any():
                continue
            after = judge(backbone.decode(edit(todo, {label.name: value})))
            others = [name for name in judged if name != label.name]
            kept = {name: float(np.nanmean(_kept(judge, name, before[name][todo], after[name]))) for name in others}
            rows.append(
                {
                    "label": label.name,
                    "value": value,
                    "rows": int(todo.sum()),
                    "success": float(np.mean(after[label.name] == value)),
                    "preserved": float(np.mean(list(kept.values()))) if kept else 1.0,
                    "kept": kept,
                }
            )
    continuous = []
    for label in schema.labels:
        if label.kind != "continuous" or label.name not in judge.labels:
            continue
        targets = np.quantile(label.quantiles, [0.1, 0.5, 0.9])
        requested, measured, kept_all = [], [], []
        for target in targets:
            after = judge(backbone.decode(edit(np.arange(len(Z)), {label.name: target})))
            requested.append(np.full(len(Z), target))
            measured.append(after[label.name])
            kept_all += [np.nanmean(_kept(judge, o, before[o], after[o])) for o in judged if o != label.name]
        requested, measured = np.concatenate(requested), np.concatenate(measured)
        ok = ~np.isnan(measured)
        continuous.append(
            {
                "label": label.name,
                "targets": targets.tolist(),
                "measured_means": [float(np.nanmean(m)) for m in np.split(measured, len(targets))],
                "correlation": float(np.corrcoef(requested[ok], measured[ok])[0, 1]),
                "mae": float(np.mean(np.abs(requested[ok] - measured[ok]))),
                "preserved": float(np.mean(kept_all)),
            }
        )
    return {
        "edits": rows,
        "continuous": continuous,
        "mean_success": float(np.mean([r["success"] for r in rows])) if rows else float("nan"),
        "mean_preserved": float(np.mean([r["preserved"] for r in rows])) if rows else float("nan"),
    }


def generation_table(
    method,
    backbone,
    judge,
    requests: list[dict[str, Any]],
    n: int,
    real_images: np.ndarray,
    temperature: float = 1.0,
    seed: int = 0,
    unseen: list[dict] | None = None,
) -> dict:
    """Conditional generation judged per request, F1 / AUC per label, Fréchet distance."""
    rows, probas, features, requested = [], [], [], {}
    unseen_keys = [tuple(sorted(u.items())) for u in (unseen or [])]
    for i, request in enumerate(requests):
        generated = backbone.decode(method.sample(n, request, temperature=temperature, seed=seed + i))
        read, proba, feats = judge.read(generated)
        probas.append(proba)
        features.append(feats)
        hits = [read[k] == v if judge.labels[k] != "continuous" else np.ones(n, bool) for k, v in request.items()]
        row = {
            "request": request,
            "unseen": tuple(sorted(request.items())) in unseen_keys,
            "accuracy": float(np.mean(np.all(hits, axis=0))),
        }
        for k, v in request.items():
            if judge.labels[k] == "continuous":
                row[f"{k}_mean"] = float(np.nanmean(read[k]))
                row[f"{k}_mae"] = float(np.nanmean(np.abs(read[k] - v)))
        rows.append(row)
        for k, v in request.items():
            requested.setdefault(k, []).append(np.full(n, v))
    scores = {}
    for k, vals in requested.items():
        if k in judge.classifiers:
            proba = np.concatenate([p[k] for p in probas])
            f1, auc = f1_auc(np.concatenate(vals), proba, judge.classifiers[k].classes)
            scores[k] = {"f1": f1, "auc": auc}
    fd = frechet_distance(judge.reference_features(real_images), np.concatenate(features))
    seen = [r["accuracy"] for r in rows if not r["unseen"]]
    out = {
        "requests": rows,
        "per_label": scores,
        "frechet_distance": fd,
        "mean_accuracy": float(np.mean([r["accuracy"] for r in rows])),
    }
    if unseen:
        out["unseen_accuracy"] = float(np.mean([r["accuracy"] for r in rows if r["unseen"]]))
        out["seen_accuracy"] = float(np.mean(seen)) if seen else float("nan")
    return out


def classification_table(
    Z_train,
    y_train,
    Z_test,
    y_test,
    fpn_flows=("maf", "realnvp"),
    seed: int = 0,
    fpn_options: Mapping[str, Any] | None = None,
    classifier_weights: Sequence[float] = (0.0,),
) -> list[dict]:
    """Train / test accuracy of FPN Bayes classifiers and scikit-learn baselines (FPN Table 1).

    One FPN row per flow and ``classifier_weight`` (0: the paper's maximum likelihood; > 0: the
    hybrid objective of :class:`~plugen.FPN`). Each FPN row's ``against`` holds, per baseline,
    :func:`~plugen.lab.evaluation.metrics.mcnemar` on the test rows (``a_only``: digits only FPN got
    right)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    rows, correct = [], {}
    grid = {
        "logistic regression": (LogisticRegression(max_iter=3000), [0.01, 0.1, 1, 10]),
        "linear SVM": (LinearSVC(max_iter=20000), [0.001, 0.01, 0.1, 1]),
        "RBF SVM": (SVC(kernel="rbf"), [1, 3, 10, 30, 100]),
    }
    for name, (model, Cs) in grid.items():
        start = time.perf_counter()
        pipe = make_pipeline(StandardScaler(), model)
        key = f"{pipe.steps[-1][0]}__C"
        search = GridSearchCV(pipe, {key: Cs}, cv=5, n_jobs=1).fit(Z_train, y_train)
        correct[name] = search.predict(Z_test) == y_test
        rows.append(
            {
                "model": name,
                "C": search.best_params_[key],
                "train_accuracy": float(search.score(Z_train, y_train)),
                "test_accuracy": float(np.mean(correct[name])),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    for flow in fpn_flows:
        for weight in classifier_weights:
            start = time.perf_counter()
            fpn = FPN(
                {"class": "categorical"},
                flow=flow,
                seed=seed,
                progress=False,
                classifier_weight=weight,
                **(fpn_options or {}),
            )
            fpn.fit(Z_train, y_train)
            right = fpn.predict(Z_test)[:, 0] == y_test
            rows.append(
                {
                    "model": f"FPN ({flow})" + (f", hybrid beta={weight:g}" if weight else ""),
                    "train_accuracy": float(np.mean(fpn.predict(Z_train)[:, 0] == y_train)),
                    "test_accuracy": float(np.mean(right)),
                    "seconds": round(time.perf_counter() - start, 1),
                    "against": {name: mcnemar(right, c) for name, c in correct.items()},
                }
            )
    return rows


def classification_cv(Z, y, folds: int = 5, seed: int = 0, **table_options) -> dict:
    """:func:`classification_table` on each of ``folds`` stratified folds of all rows: every row is
    a test row once, so accuracies rest on all of them rather than on one small test split.
    Returns the per-fold tables and, per model, the mean test accuracy and its fold range."""
    from sklearn.model_selection import StratifiedKFold

    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(Z, y)
    tables = [classification_table(Z[tr], y[tr], Z[te], y[te], seed=seed, **table_options) for tr, te in splits]
    summary = {}
    for row in tables[0]:
        fold_rows = [next(r for r in table if r["model"] == row["model"]) for table in tables]
        accuracies = [r["test_accuracy"] for r in fold_rows]
        summary[row["model"]] = {
            "mean_test_accuracy": float(np.mean(accuracies)),
            "fold_min": float(min(accuracies)),
            "fold_max": float(max(accuracies)),
        }
        if "against" in row:  # McNemar over all rows: the folds' disagreements added up
            summary[row["model"]]["against"] = {}
            for baseline in row["against"]:
                a_only = sum(r["against"][baseline]["a_only"] for r in fold_rows)
                b_only = sum(r["against"][baseline]["b_only"] for r in fold_rows)
                summary[row["model"]]["against"][baseline] = {
                    "a_only": a_only,
                    "b_only": b_only,
                    "p_value": exact_mcnemar_p(a_only, b_only),
                }
    return {"folds": tables, "summary": summary}
