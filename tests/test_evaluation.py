"""Evaluation tools that need no shipped weights: metrics and the linear baseline."""

import numpy as np
import pytest

from plugen.evaluation import edit_report
from plugen.evaluation.baselines import LinearDirections
from plugen.evaluation.metrics import f1_auc, frechet_distance


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
