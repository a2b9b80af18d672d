"""The FPN paper's point-cloud experiments (sections 5.1.2 and 5.2.2) on Shapes3D and ``shapes3d-ae``.

ShapeNet and PointFlow are not available offline; :mod:`plugen.data.shapes3d` (eight procedural
solids) and the shipped PointNet autoencoder ``shapes3d-ae`` (128-dim latents, as PointFlow's) stand
in for them. Everything is judged on *decoded* clouds by :func:`shapes3d_judge`: the class by the
independent ``shapes3d-shape`` PointNet (trained on raw clouds, never on latents), size and
elongation measured from the points (:func:`plugen.data.shapes3d.measure`).

:func:`run_pointcloud_experiments` encodes Shapes3D clouds, fits PluGeN and FPN with the labels
``{"shape": "categorical", "size": "continuous", "elongation": "continuous"}`` (both with
``latent_noise=0.1``: the autoencoder's codes lie near a low-dimensional manifold, see
:func:`plugen.training.train`) and measures

- *generation* (FPN section 5.1.2, Fig. 13): clouds sampled per class at temperature 0.8 (and, for
  the accuracy alone, 0.5, 0.65 and 1.0), the share the evaluator reads as requested
  (:func:`plugen.lab.evaluation.images.generation_table`);
- *classification* (FPN section 5.2.2, Table 2): FPN (MAF, RealNVP) as a Bayes classifier against
  logistic regression, linear and RBF SVMs (C by 5-fold grid search) on the same latent split
  (:func:`plugen.lab.evaluation.images.classification_table`);
- *edits* (PluGeN Tables 1-2 protocol): class edits judged by the evaluator, and size / elongation
  requested at their 10th / 50th / 90th training percentiles: the correlation of requested and
  measured values on the decoded clouds (:func:`plugen.lab.evaluation.images.edit_table`);
- *pictures*: generated clouds per class, traversals, the latent map (3-D matplotlib scatters).

>>> results = run_pointcloud_experiments("/tmp/pc", scale="smoke")   # doctest: +SKIP
>>> results["methods"]["FPN"]["generation"]["mean_accuracy"]           # doctest: +SKIP
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCALES = {
    "smoke": {
        "n_train": 300,
        "n_test": 60,
        "edit_rows": 10,
        "per_request": 6,
        "plugin": {"max_epochs": 3, "latent_noise": 0.1},
        "classification": {"max_epochs": 2},
        "styles": 1,
    },
    "full": {
        "n_train": 5000,
        "n_test": 1000,
        "edit_rows": 300,
        "per_request": 100,
        "plugin": {"latent_noise": 0.1},
        "classification": {},
        "styles": 4,
    },
}
#: seeds of the experiment's clouds, disjoint from the autoencoder's (0, 10,000) and the evaluator's (202, 303)
TRAIN_SEED, TEST_SEED = 1, 2
TEMPERATURE = 0.8
#: other temperatures at which generation accuracy is also reported
SWEEP = (0.5, 0.65, 1.0)


def shapes3d_judge():
    """Reads every Shapes3D label from raw clouds: ``shape`` by the shipped ``shapes3d-shape`` PointNet,
    ``size`` and ``elongation`` measured. Tolerances (how far a kept label may drift): about a tenth
    of each label's range."""
    from plugen.data.shapes3d import LABELS, measure
    from plugen.lab.evaluation.judges import Judge
    from plugen.lab.evaluation.pointcloud_classifier import load_pointcloud_evaluator

    return Judge(
        "shapes3d",
        dict(LABELS),
        {"shape": load_pointcloud_evaluator()},
        measure,
        tolerance={"size": 0.05, "elongation": 0.1},
        features_from="shape",
    )


def run_pointcloud_experiments(
    output: str | Path,
    scale: str = "full",
    seed: int = 0,
    classification: bool = True,
    figures: bool = True,
    log: bool = True,
) -> dict:
    """Run every experiment of the module docstring; write figures under ``output``; return the results.
    ``classification=False`` / ``figures=False`` skip the classification table / the pictures."""
    from plugen.backbones import load as load_backbone
    from plugen.data.shapes3d import CLASSES, make_shapes3d
    from plugen.lab.evaluation.images import (
        classification_table,
        edit_table,
        generation_table,
    )
    from plugen.plugins import FPN, PluGeN

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    settings = SCALES[scale]
    say = (lambda msg: print(f"[pointclouds] {msg}", file=sys.stderr, flush=True)) if log else (lambda msg: None)
    start = time.perf_counter()
    train, test = make_shapes3d(settings["n_train"], seed=TRAIN_SEED), make_shapes3d(settings["n_test"], seed=TEST_SEED)
    bb = load_backbone("shapes3d-ae")
    judge = shapes3d_judge()
    Z_train, Z_test = bb.encode(train.points), bb.encode(test.points)
    labels = dict(train.labels)
    results: dict[str, Any] = {
        "scale": scale,
        "settings": settings,
        "backbone": bb.name,
        "latent_dim": bb.latent_dim,
        "n_train": len(train),
        "n_test": len(test),
        "labels": labels,
        "classes": list(CLASSES),
        "data": f"make_shapes3d({len(train)}, seed={TRAIN_SEED}) / make_shapes3d({len(test)}, seed={TEST_SEED})",
        "evaluator": {"name": "shapes3d-shape", "test_accuracy": _evaluator_accuracy()},
        "reconstruction": _reconstruction(bb, judge, test.points),
        "methods": {},
    }
    options = {"seed": seed, "backbone": bb.name, "progress": False, **settings["plugin"]}
    methods = {}
    for name, make in (("PluGeN", lambda: PluGeN(labels, **options)), ("FPN", lambda: FPN(labels, **options))):
        say(f"fitting {name}")
        t = time.perf_counter()
        methods[name] = make().fit(Z_train, train.Y)
        results["methods"][name] = {"fit_seconds": round(time.perf_counter() - t, 2)}
    schema = methods["PluGeN"].schema_
    requests = [{"shape": c} for c in range(len(CLASSES))]
    for name, method in methods.items():
        say(f"judging {name}")
        r = results["methods"][name]
        r["generation"] = generation_table(
            method, bb, judge, requests, settings["per_request"], test.points, temperature=TEMPERATURE, seed=seed
        )
        r["generation_by_temperature"] = {
            str(t): generation_table(
                method, bb, judge, requests, settings["per_request"], test.points, temperature=t, seed=seed
            )["mean_accuracy"]
            for t in SWEEP
        }
        r["edits"] = edit_table(method, bb, Z_test[: settings["edit_rows"]], judge, schema)
    if classification:
        say("classification table (FPN Table 2 protocol)")
        results["classification"] = classification_table(
            Z_train,
            train.column("shape"),
            Z_test,
            test.column("shape"),
            seed=seed,
            fpn_options=settings["classification"],
        )
    if figures:
        say("figures")
        results["figures"] = _figures(methods, bb, Z_test, test, output, seed, settings["styles"])
    results["seconds"] = round(time.perf_counter() - start, 1)
    return results


def _evaluator_accuracy() -> float | None:
    from plugen.backbones.registry import describe
    from plugen.lab.evaluation.evaluators import WEIGHTS

    return describe("shapes3d-shape", WEIGHTS)["training"].get("test_accuracy")


def _reconstruction(bb, judge, points: np.ndarray) -> dict:
    """How much of each label survives encode -> decode: evaluator accuracy on the reconstructions,
    correlation of measured size / elongation before and after, mean Chamfer distance."""
    import torch

    from plugen.backbones.pointcloud import chamfer_distance

    recon = bb.decode(bb.encode(points))
    before, after = judge(points), judge(recon)
    chamfer = chamfer_distance(torch.as_tensor(recon), torch.as_tensor(points)).mean().item()
    return {
        "chamfer": chamfer,
        "shape_accuracy": float(np.mean(before["shape"] == after["shape"])),
        **{f"{k}_correlation": float(np.corrcoef(before[k], after[k])[0, 1]) for k in ("size", "elongation")},
    }


# ---------------------------------------------------------------- pictures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def cloud_grid(
    clouds: np.ndarray,
    path: Path,
    col_titles: Sequence[str] = (),
    row_titles: Sequence[str] = (),
    title: str = "",
    cell: float = 1.5,
    max_points: int = 512,
) -> Path:
    """Save clouds (rows, cols, P, 3) as one PNG of 3-D scatter plots (same axis limits in every cell;
    points coloured by height)."""
    plt = _plt()
    rows, cols = clouds.shape[:2]
    lim = float(np.abs(clouds).max()) * 0.6
    fig = plt.figure(figsize=(cols * cell, rows * cell + 0.5))
    for r in range(rows):
        for c in range(cols):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1, projection="3d")
            p = clouds[r, c][:: max(1, clouds.shape[2] // max_points)]
            ax.scatter(
                p[:, 0], p[:, 1], p[:, 2], s=1.5, c=p[:, 2], cmap="viridis", vmin=-lim, vmax=lim, depthshade=False
            )
            ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
            ax.set_box_aspect((1, 1, 1))
            ax.view_init(elev=30, azim=35)
            ax.set_axis_off()
            label = []
            if r == 0 and c < len(col_titles):
                label.append(col_titles[c])
            if c == 0 and r < len(row_titles):
                label.append(row_titles[r])
            if label:
                ax.set_title(" / ".join(label), fontsize=7, pad=0)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.93, wspace=0, hspace=0.05)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def _figures(methods: dict, bb, Z_test: np.ndarray, test, output: Path, seed: int, styles: int = 4) -> list[str]:
    from plugen.data.shapes3d import CLASSES
    from plugen.lab.evaluation.figures import latent_map

    names = []
    shape = test.column("shape")
    present = [c for c in range(len(CLASSES)) if np.any(shape == c)]
    real = test.points[[int(np.flatnonzero(shape == c)[0]) for c in present]]
    cloud_grid(
        np.stack([real, bb.decode(bb.encode(real))]),
        output / "reconstruction.png",
        col_titles=[CLASSES[c] for c in present],
        row_titles=["real", "decoded"],
        title="Shapes3D test clouds (top) and their shapes3d-ae reconstructions (bottom)",
    )
    names.append("reconstruction.png")
    schema = methods["PluGeN"].schema_
    for name, method in methods.items():
        columns = [
            bb.decode(method.sample(styles, {"shape": c}, temperature=TEMPERATURE, seed=seed))
            for c in range(len(CLASSES))
        ]
        file = f"{name.lower()}_generation.png"
        cloud_grid(
            np.stack(columns, axis=1),
            output / file,
            col_titles=list(CLASSES),
            title=f"{name}: generated clouds per class (decoded by shapes3d-ae; T = {TEMPERATURE})",
        )
        names.append(file)
        for label in ("size", "elongation"):
            stats = schema.labels[schema.index[label]]
            steps = np.linspace(stats.quantiles[1], stats.quantiles[-2], 4)
            Z = Z_test[: min(styles, 3)]
            grid = np.stack([bb.decode(Z)] + [bb.decode(method.edit(Z, {label: v})) for v in steps], axis=1)
            file = f"{name.lower()}_edit_{label}.png"
            cloud_grid(
                grid,
                output / file,
                col_titles=["input"] + [f"{label}={v:.2f}" for v in steps],
                title=f"{name}: edit {label} (reconstruction first)",
            )
            names.append(file)
        classes = np.repeat(np.arange(len(CLASSES)), 15 * styles)
        Z_gen = method.sample(len(classes), {"shape": classes}, temperature=TEMPERATURE, seed=seed)
        file = f"{name.lower()}_latent_map.png"
        latent_map(
            Z_test,
            test.column("shape"),
            Z_gen,
            classes,
            output / file,
            title=f"{name}: shapes3d-ae latents (PCA) and generated latents by class",
        )
        names.append(file)
    return names


# ---------------------------------------------------------------- report


def render_report(results: dict, command: str = "") -> str:
    """The results as Markdown."""
    methods = results["methods"]
    rec = results["reconstruction"]
    lines = [
        "# plugen: point-cloud experiments (FPN sections 5.1.2 and 5.2.2 on Shapes3D)",
        "",
        (f"Command: `{command}`. " if command else "")
        + f"Scale {results['scale']}; backbone {results['backbone']} ({results['latent_dim']}-dim latents); "
        f"{results['n_train']} training / {results['n_test']} test clouds ({results['data']}). Shapes3D is a "
        "procedural stand-in for ShapeNet (not available offline). Every figure is judged on decoded clouds: "
        f"class by the independent `shapes3d-shape` PointNet (test accuracy on real clouds "
        f"{_f(results['evaluator']['test_accuracy'])}), size and elongation measured from the points.",
        "",
        (
            f"Autoencoder round trip on the test clouds: Chamfer {rec['chamfer']:.4g}; the evaluator reads the same "
            f"class after decoding for {rec['shape_accuracy']:.3f}; size / elongation measured before vs after "
            f"correlate {rec['size_correlation']:.3f} / {rec['elongation_correlation']:.3f}."
        ),
        "",
        "## Generation, edits (goals: class accuracy >= 0.9, continuous-edit correlation >= 0.9)",
        "",
        "| | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    rows = [
        ("fit time", lambda m: f"{m['fit_seconds']} s"),
        (
            f"**generation: evaluator reads the requested class** (T = {TEMPERATURE})",
            lambda m: f"**{m['generation']['mean_accuracy']:.3f}**",
        ),
        (
            "generation accuracy at T = " + " / ".join(str(t) for t in sorted((*SWEEP, TEMPERATURE))),
            lambda m: " / ".join(
                f"{m['generation_by_temperature'][str(t)]:.3f}"
                if t != TEMPERATURE
                else f"{m['generation']['mean_accuracy']:.3f}"
                for t in sorted((*SWEEP, TEMPERATURE))
            ),
        ),
        (
            "generation: shape F1 / AUC",
            lambda m: (
                f"{m['generation']['per_label']['shape']['f1']:.3f} / "
                f"{m['generation']['per_label']['shape']['auc']:.3f}"
            ),
        ),
        (
            "Fréchet distance to real clouds (evaluator features)",
            lambda m: f"{m['generation']['frechet_distance']:.3f}",
        ),
        ("class edit success (mean over target classes)", lambda m: f"{m['edits']['mean_success']:.3f}"),
        ("class edit: size / elongation kept", lambda m: f"{m['edits']['mean_preserved']:.3f}"),
    ]
    for title, fmt in rows:
        lines.append(f"| {title} | " + " | ".join(fmt(m) for m in methods.values()) + " |")
    first = next(iter(methods.values()))
    for i, cont in enumerate(first["edits"]["continuous"]):
        lines.append(
            f"| **edit {cont['label']}: requested vs measured correlation** (MAE) | "
            + " | ".join(
                f"**{m['edits']['continuous'][i]['correlation']:.3f}** ({m['edits']['continuous'][i]['mae']:.3g})"
                for m in methods.values()
            )
            + " |"
        )
        lines.append(
            f"| edit {cont['label']}: targets -> measured means | "
            + " | ".join(
                ", ".join(
                    f"{t:.2f}->{v:.2f}"
                    for t, v in zip(
                        m["edits"]["continuous"][i]["targets"], m["edits"]["continuous"][i]["measured_means"]
                    )
                )
                for m in methods.values()
            )
            + " |"
        )
        lines.append(
            f"| edit {cont['label']}: class and other label kept | "
            + " | ".join(f"{m['edits']['continuous'][i]['preserved']:.3f}" for m in methods.values())
            + " |"
        )
    lines += [
        "",
        "Generation accuracy per class:",
        "",
        "| class | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for i, row in enumerate(first["generation"]["requests"]):
        lines.append(
            f"| {results['classes'][row['request']['shape']]} | "
            + " | ".join(f"{m['generation']['requests'][i]['accuracy']:.2f}" for m in methods.values())
            + " |"
        )
    lines += [
        "",
        "Class edit success / size-elongation kept, per target class:",
        "",
        "| target | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for i, row in enumerate(first["edits"]["edits"]):
        lines.append(
            f"| {results['classes'][int(row['value'])]} | "
            + " | ".join(
                f"{m['edits']['edits'][i]['success']:.2f} / {m['edits']['edits'][i]['preserved']:.2f}"
                for m in methods.values()
            )
            + " |"
        )
    if "classification" in results:
        table = results["classification"]
        sklearn = [r for r in table if not r["model"].startswith("FPN")]
        best = max(r["test_accuracy"] for r in sklearn)
        lines += [
            "",
            (
                "## Classification from latents (FPN Table 2 protocol; goal: FPN within 0.02 of the best "
                "scikit-learn model)"
            ),
            "",
            "| model | train acc. | test acc. | C | seconds |",
            "|---|---|---|---|---|",
        ]
        for r in table:
            lines.append(
                f"| {r['model']} | {r['train_accuracy']:.4f} | {r['test_accuracy']:.4f} | {r.get('C', '-')} | {r['seconds']} |"
            )
        gaps = ", ".join(
            f"{r['model']} {r['test_accuracy'] - best:+.4f}" for r in table if r["model"].startswith("FPN")
        )
        lines += ["", f"Best scikit-learn test accuracy {best:.4f}; FPN minus best: {gaps}."]
    lines += [
        "",
        "Figures: " + ", ".join(f"`{f}`" for f in results.get("figures", [])),
        "",
        f"Total time {results['seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def write(results: dict, json_path: Path, md_path: Path, command: str = "") -> None:
    """Write ``results`` as JSON and Markdown."""
    Path(json_path).write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    Path(md_path).write_text(render_report(results, command))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))
