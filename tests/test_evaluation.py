"""Evaluation tools that need no shipped weights: metrics and the linear baseline."""

import numpy as np
import pytest

from plugen.lab.evaluation import edit_report
from plugen.lab.evaluation.baselines import LinearDirections
from plugen.lab.evaluation.metrics import exact_mcnemar_p, f1_auc, frechet_distance, mcnemar


def test_frechet_distance_of_gaussians_matches_closed_form(rng):
    a = rng.standard_normal((20000, 3))
    b = rng.standard_normal((20000, 3)) * 2 + 1
    # mu diff^2 = 3; traces 3 + 12; 2 tr(sqrt(1 * 4 I)) = 12  ->  3 + 15 - 12 = 6
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_f1_auc_perfect_and_chance(rng):
    requested = np.repeat([0, 1, 2], 100)
    perfect = np.eye(3)[requested]
    assert f1_auc(requested, perfect, np.array([0, 1, 2])) == (1.0, 1.0)
    f1, auc = f1_auc(requested, rng.dirichlet(np.ones(3), 300), np.array([0, 1, 2]))
    assert f1 < 0.5 and 0.35 < auc < 0.65


def test_mcnemar_counts_disagreements_and_gives_the_exact_binomial_p():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 0], bool)
    b = np.array([1, 0, 0, 0, 1, 0, 1, 0], bool)
    assert mcnemar(a, b) == {"a_only": 3, "b_only": 1, "p_value": pytest.approx(0.625)}  # 2 * (1 + 4) / 16
    assert exact_mcnemar_p(0, 0) == 1.0 and exact_mcnemar_p(5, 5) == 1.0
    assert exact_mcnemar_p(0, 10) == pytest.approx(2 / 1024)
    assert exact_mcnemar_p(3, 12) == pytest.approx(0.03515625)  # scipy.stats.binomtest(3, 15).pvalue
    with pytest.raises(ValueError, match="different rows"):
        mcnemar(a, b[:5])


def test_linear_directions_edit_and_predict(probes, data):
    train, test = data
    model = LinearDirections(train.labels).fit(train.Z, train.Y)
    report = edit_report(model, test.Z[:300], probes)
    assert report["mean_success"] >= 0.8 and report["mean_preserved"] >= 0.9
    P = model.predict(test.Z)
    assert np.mean(P[:, 0] == test.Y[:, 0]) > 0.9 and np.corrcoef(P[:, 2], test.Y[:, 2])[0, 1] > 0.9
    Z = model.sample(200, {"shape": 1}, seed=0)
    assert np.mean(probes["shape"](Z) == 1) > 0.8


def test_linear_directions_gradual_binary_edit(data):
    train, test = data
    model = LinearDirections(train.labels).fit(train.Z, train.Y)
    d = model.directions_[(0, 1.0)]
    scores = [(model.edit(test.Z[:50], {"a": v}) @ d[0] + d[1]).mean() for v in (0, 0.5, 1)]
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.slow
def test_classification_cv_tests_every_row_once_and_averages_the_folds():
    from plugen.data import entangled
    from plugen.lab.evaluation.images import classification_cv

    d = entangled(n=400, latent_dim=8, seed=2)
    y = d.Y[:, list(d.labels).index("shape")].astype(int)
    out = classification_cv(
        d.Z, y, folds=4, fpn_flows=("realnvp",), classifier_weights=(0.0, 5.0), fpn_options={"max_epochs": 5}
    )
    assert len(out["folds"]) == 4
    models = [r["model"] for r in out["folds"][0]]
    assert models == ["logistic regression", "linear SVM", "RBF SVM", "FPN (realnvp)", "FPN (realnvp), hybrid beta=5"]
    for model, summary in out["summary"].items():
        accuracies = [next(r["test_accuracy"] for r in fold if r["model"] == model) for fold in out["folds"]]
        assert summary["mean_test_accuracy"] == pytest.approx(np.mean(accuracies))
        assert summary["fold_min"] == min(accuracies) and summary["fold_max"] == max(accuracies)
        # each fold's test part is a quarter of the rows: accuracies come in steps of 1/100
        assert all(abs(a * 100 - round(a * 100)) < 1e-9 for a in accuracies)
        for baseline, test in summary.get("against", {}).items():  # McNemar pooled over the folds
            folds = [next(r for r in fold if r["model"] == model)["against"][baseline] for fold in out["folds"]]
            assert test["a_only"] == sum(f["a_only"] for f in folds) and test["b_only"] == sum(
                f["b_only"] for f in folds
            )
            assert test["p_value"] == pytest.approx(exact_mcnemar_p(test["a_only"], test["b_only"]))
            difference = sum(f["a_only"] - f["b_only"] for f in folds) / len(y)  # = the accuracy difference
            assert difference == pytest.approx(
                summary["mean_test_accuracy"] - out["summary"][baseline]["mean_test_accuracy"]
            )
    assert set(out["summary"]["FPN (realnvp)"]["against"]) == {"logistic regression", "linear SVM", "RBF SVM"}
    assert out["summary"]["RBF SVM"]["mean_test_accuracy"] > 0.8
    assert out["summary"]["FPN (realnvp)"]["mean_test_accuracy"] > 0.8


@pytest.mark.slow
def test_edit_table_infers_fpn_source_labels_once_and_edits_the_same(fitted, probes, data):
    from plugen.lab.evaluation.images import edit_table
    from plugen.lab.evaluation.judges import Judge

    _, test = data
    fpn, Z = fitted["fpn"], test.Z[:120]
    judge = Judge(
        "probes",
        dict(test.labels),
        {},
        lambda X: {k: probes[k](X).astype(float) for k in test.labels},
        tolerance={"size": 1.0},
    )
    identity = type("Identity", (), {"decode": staticmethod(lambda X: X)})()
    hidden = type("Hidden", (), {"edit": staticmethod(fpn.edit)})()  # not seen as FPN: infers on every call
    calls = []
    posteriors = fpn._posteriors
    fpn._posteriors = lambda z: calls.append(len(z)) or posteriors(z)
    try:
        once = edit_table(fpn, identity, Z, judge, fpn.schema_)
        n_once = len(calls)
        every = edit_table(hidden, identity, Z, judge, fpn.schema_)
    finally:
        del fpn._posteriors
    assert n_once == 1 and len(calls) - n_once == len(every["edits"]) + 3 * len(every["continuous"])
    assert once == every
    assert once["mean_success"] > 0.7  # the probes read FPN's edits as requested


def test_figure_titles_name_classes(small):
    from conftest import quick

    from plugen import PluGeN
    from plugen.lab.evaluation.figures import value_title

    Z, Y, labels = small
    named = quick(
        PluGeN, {**labels, "shape": ["circle", "square", "triangle"]}, max_epochs=1, transforms=2, hidden_features=32
    ).fit(Z, Y)
    assert [value_title(named, "shape", v) for v in (0, 1.0, "triangle")] == ["circle", "square", "triangle"]
    assert value_title(named, "size", 5.5) == "size=5.5"
    unnamed = quick(PluGeN, labels, max_epochs=1, transforms=2, hidden_features=32).fit(Z, Y)
    assert value_title(unnamed, "shape", 2) == "shape=2"  # a label without names keeps its codes


def test_latent_map_names_its_panels_and_classes(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from plugen.lab.evaluation.figures import latent_map

    seen = {}

    def keep(fig, path, **kwargs):
        seen["titles"] = [ax.get_title() for ax in fig.axes]
        seen["legend"] = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]

    monkeypatch.setattr(Figure, "savefig", keep)
    rng = np.random.default_rng(0)
    classes = np.arange(30) % 3
    latent_map(
        rng.standard_normal((30, 4)),
        classes,
        rng.standard_normal((30, 4)),
        classes,
        tmp_path / "m.png",
        class_names=["square", "circle", "triangle"],
    )
    assert seen["titles"] == ["real latents", "generated latents"]
    assert seen["legend"] == ["square", "circle", "triangle"]
