"""Edit success judged by independent probes (PluGeN Tables 1-2 protocol, on latents).

A probe is any function ``latents -> predicted label values`` that was trained on the data, not
on the plugin (an independent classifier). For every discrete label and every value it can take,
the rows whose probe prediction differs from that value are edited to it; *success* is the share
the probe then reads as the requested value, *preserved* the share of the other discrete labels
the probe reads as before. Continuous labels are requested at their 10th, 50th and 90th
percentiles; the report gives the correlation and mean absolute error (in label standard
deviations) between requested and probed values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Probe = Callable[[np.ndarray], np.ndarray]


def edit_report(plugin, Z: np.ndarray, probes: Mapping[str, Probe], **edit_kwargs) -> dict:
    """Edit success per requested value, preservation of the other labels, and averages."""
    schema = plugin.schema_
    before = {name: np.asarray(probe(Z)) for name, probe in probes.items()}
    discrete = [lab for lab in schema.labels if lab.kind != "continuous" and lab.name in probes]
    rows: list[dict] = []
    for label in discrete:
        values = [0, 1] if label.kind == "binary" else label.classes
        for value in values:
            todo = before[label.name] != value
            if not todo.any():
                continue
            edited = plugin.edit(Z[todo], {label.name: value}, **edit_kwargs)
            success = float(np.mean(probes[label.name](edited) == value))
            others = [m.name for m in discrete if m.name != label.name]
            kept = [np.mean(probes[o](edited) == before[o][todo]) for o in others]
            rows.append(
                {
                    "label": label.name,
                    "value": value,
                    "rows": int(todo.sum()),
                    "success": success,
                    "preserved": float(np.mean(kept)) if kept else 1.0,
                }
            )
    continuous = []
    for label in schema.labels:
        if label.kind != "continuous" or label.name not in probes:
            continue
        targets = np.quantile(label.quantiles, [0.1, 0.5, 0.9])
        requested, measured = [], []
        for target in targets:
            edited = plugin.edit(Z, {label.name: target}, **edit_kwargs)
            requested.append(np.full(len(Z), target))
            measured.append(np.asarray(probes[label.name](edited)))
        requested, measured = np.concatenate(requested), np.concatenate(measured)
        continuous.append(
            {
                "label": label.name,
                "targets": targets.tolist(),
                "correlation": float(np.corrcoef(requested, measured)[0, 1]),
                "mae_sd": float(np.mean(np.abs(requested - measured)) / label.std),
            }
        )
    return {
        "edits": rows,
        "continuous": continuous,
        "mean_success": float(np.mean([r["success"] for r in rows])) if rows else float("nan"),
        "mean_preserved": float(np.mean([r["preserved"] for r in rows])) if rows else float("nan"),
    }


def train_probes(Z: np.ndarray, Y: np.ndarray, labels: Mapping[str, str], seed: int = 0) -> dict[str, Probe]:
    """Independent probes, one small MLP per label, trained on (Z, Y) with scikit-learn
    (``pip install plugen[dev]``). Rows where a label is missing are skipped for that label."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probes: dict[str, Probe] = {}
    for k, (name, kind) in enumerate(labels.items()):
        seen = ~np.isnan(Y[:, k])
        head = MLPRegressor if kind == "continuous" else MLPClassifier
        model = make_pipeline(
            StandardScaler(), head(hidden_layer_sizes=(64, 64), max_iter=500, early_stopping=True, random_state=seed)
        )
        model.fit(Z[seen], Y[seen, k])
        probes[name] = model.predict
    return probes
