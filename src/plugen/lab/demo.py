"""``plugen demo``: both plugins end to end on a synthetic entangled latent space, with a report.

The latent space stands in for a pre-trained model's (``plugen.data.entangled``: two correlated
binary labels, a continuous and a categorical one, pushed through a random invertible nonlinear
mixing). Independent probes, trained on the latents and labels alone, judge every result.
The report folder gets ``metrics.json``, ``report.md`` and, with matplotlib installed, PNG figures.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from plugen.data import entangled
from plugen.errors import PlugenError
from plugen.lab.evaluation import edit_report, train_probes
from plugen.plugins import FPN, PluGeN

RARE = {"a": 1, "b": 0}  # the two binary labels are positively correlated: this pair is rare


def run_demo(output: Path, n: int = 8000, latent_dim: int = 32, quick: bool = False, seed: int = 0) -> dict:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise PlugenError(
            'plugen demo needs scikit-learn for its independent probes: pip install "plugen[all]"'
        ) from None
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    data = entangled(n=n, latent_dim=latent_dim, seed=seed)
    train, test = data.split(0.8, seed=seed)
    rare_share = float(np.mean((train.Y[:, 0] == 1) & (train.Y[:, 1] == 0)))
    log(f"latents: {len(train.Z)} train / {len(test.Z)} test, size {latent_dim}; labels {data.labels}")
    log("training independent probes (MLPs on latents) ...")
    probes = train_probes(train.Z, train.Y, data.labels, seed=seed)
    metrics: dict = {
        "data": {
            "n_train": len(train.Z),
            "n_test": len(test.Z),
            "latent_dim": latent_dim,
            "labels": data.labels,
            "rare_combination": RARE,
            "rare_share_in_training": rare_share,
        }
    }
    models = {}
    options = {"max_epochs": 15} if quick else {}
    for cls in (PluGeN, FPN):
        name = cls.__name__
        log(f"fitting {name} ...")
        start = time.perf_counter()
        model = cls(data.labels, seed=seed, **options).fit(train.Z, train.Y)
        fit_s = time.perf_counter() - start
        report = edit_report(model, test.Z[:1000], probes)
        generated = model.sample(1000, RARE, seed=seed)
        rare_ok = float(np.mean(np.all([probes[k](generated) == v for k, v in RARE.items()], axis=0)))
        pred = model.predict(test.Z)
        metrics[name] = {
            "fit_seconds": round(fit_s, 2),
            "epochs": model.history_["epochs"],
            "edit_success": report["mean_success"],
            "edit_preserved": report["mean_preserved"],
            "edits": report["edits"],
            "continuous_edits": report["continuous"],
            "rare_combination_generated": rare_ok,
            "accuracy": {
                lab: float(np.mean(pred[:, k] == test.Y[:, k]))
                for k, lab in enumerate(data.labels)
                if data.labels[lab] != "continuous"
            },
            "size_correlation": float(np.corrcoef(pred[:, 2], test.Y[:, 2])[0, 1]),
        }
        log(
            f"  {name}: edit success {report['mean_success']:.3f}, preserved {report['mean_preserved']:.3f}, "
            f"rare combination generated {rare_ok:.3f} ({fit_s:.1f} s)"
        )
        models[name] = model
        model.save(output / f"{name.lower()}.plugin")
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    figures = _figures(output, models, metrics, test, probes)
    (output / "report.md").write_text(_report(metrics, figures))
    log(f"report written to {output / 'report.md'}")
    return metrics


def _report(m: dict, figures: list[str]) -> str:
    d = m["data"]
    lines = [
        "# plugen demo",
        "",
        f"Synthetic entangled latents ({d['latent_dim']}-dim, {d['n_train']} train / {d['n_test']} test rows) "
        f"with labels {', '.join(f'{k} ({v})' for k, v in d['labels'].items())}. Every number below is judged by "
        "independent probes (MLPs trained on the latents and labels, not on the plugins).",
        "",
        "| | PluGeN | FPN |",
        "|---|---|---|",
    ]
    rows = [
        ("fit time", lambda r: f"{r['fit_seconds']} s ({r['epochs']} epochs)"),
        ("edit success (mean over requested values)", lambda r: f"{r['edit_success']:.3f}"),
        ("other labels preserved", lambda r: f"{r['edit_preserved']:.3f}"),
        (
            f"generated rare combination {d['rare_combination']} (share in training {d['rare_share_in_training']:.3f})",
            lambda r: f"{r['rare_combination_generated']:.3f}",
        ),
        ("size edits: requested vs probed correlation", lambda r: f"{r['continuous_edits'][0]['correlation']:.3f}"),
        ("classification accuracy (a, b, shape)", lambda r: ", ".join(f"{v:.3f}" for v in r["accuracy"].values())),
        ("size prediction correlation", lambda r: f"{r['size_correlation']:.3f}"),
    ]
    for title, fmt in rows:
        lines.append(f"| {title} | {fmt(m['PluGeN'])} | {fmt(m['FPN'])} |")
    lines += [
        "",
        "## Edit success per requested value",
        "",
        "| label = value | PluGeN success / preserved | FPN success / preserved |",
        "|---|---|---|",
    ]
    for p, f in zip(m["PluGeN"]["edits"], m["FPN"]["edits"]):
        lines.append(
            f"| {p['label']} = {p['value']} | {p['success']:.3f} / {p['preserved']:.3f} | {f['success']:.3f} / {f['preserved']:.3f} |"
        )
    lines += [""] + [f"![{name}]({name})" for name in figures]
    if not figures:
        lines.append('(install matplotlib, e.g. `pip install "plugen[all]"`, for the figures)')
    return "\n".join(lines) + "\n"


def _figures(output: Path, models: dict, metrics: dict, test, probes) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, models):
        edits = metrics[name]["edits"]
        ax.bar(
            [f"{r['label']}={r['value']}" for r in edits],
            [r["success"] for r in edits],
            color="tab:blue",
            label="success",
        )
        ax.plot(
            [f"{r['label']}={r['value']}" for r in edits],
            [r["preserved"] for r in edits],
            "o",
            color="tab:orange",
            label="others preserved",
        )
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{name}: edits judged by independent probes")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output / "edit_success.png", dpi=110)
    plt.close(fig)
    names.append("edit_success.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    values = np.linspace(6, 14, 9)
    for ax, (name, model) in zip(axes, models.items()):
        path = model.traverse(test.Z[:200], "size", values)
        measured = np.stack([probes["size"](path[:, j]) for j in range(len(values))], axis=1)
        ax.plot(values, values, "k--", lw=1, label="requested")
        ax.errorbar(values, measured.mean(0), yerr=measured.std(0), fmt="o-", capsize=3, label="probed (mean, sd)")
        ax.set_xlabel("requested size")
        ax.set_ylabel("size read by the probe")
        ax.set_title(f"{name}: gradual edit of a continuous label")
        ax.legend()
    fig.tight_layout()
    fig.savefig(output / "size_traversal.png", dpi=110)
    plt.close(fig)
    names.append("size_traversal.png")

    plugin = models["PluGeN"]
    import torch

    with torch.inference_mode():
        u, _ = plugin.module_.flow(plugin._tensor(test.Z))
    c = u[:, :2].cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for (a, b), colour in zip([(0, 0), (0, 1), (1, 0), (1, 1)], ["tab:blue", "tab:green", "tab:red", "tab:purple"]):
        rows = (test.Y[:, 0] == a) & (test.Y[:, 1] == b)
        ax.scatter(c[rows, 0], c[rows, 1], s=4, alpha=0.5, color=colour, label=f"a={a}, b={b} ({rows.sum()})")
    ax.set_xlabel("PluGeN label coordinate c_a")
    ax.set_ylabel("PluGeN label coordinate c_b")
    ax.set_title("Test latents in PluGeN's base space")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(output / "plugen_label_space.png", dpi=110)
    plt.close(fig)
    names.append("plugen_label_space.png")
    return names
