"""PluGeN's base density (eq. 1-3) against hand computation."""

import math

import numpy as np
import pytest
import torch

from plugen.labels import LabelSchema
from plugen.priors import PluGeNPrior, encode_targets

NAN = np.nan


def gauss(x, m, s):
    return math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))


@pytest.fixture
def schema():
    Y = np.array([[0, 1.0, 3], [1, 3.0, 5], [1, 5.0, 3], [1, 7.0, 7]], dtype=float)
    return LabelSchema({"smile": "binary", "age": "continuous", "digit": "categorical"}).fit(Y)


def test_encode_targets(schema):
    t = encode_targets(schema, np.array([[1, 4.0, 5], [NAN, NAN, NAN]]))
    age = schema.labels[1]
    assert t[0].tolist() == pytest.approx([1, (4 - age.mean) / age.std, 0, 1, 0])
    assert np.isnan(t[1]).all()


def test_observed_log_prob_is_eq_3(schema):
    prior = PluGeNPrior(schema, sigma=0.4, continuous_sigma=0.3, balanced=False).double()
    u = torch.tensor([[0.7, -0.2, 1.1, -0.8, -1.3, 0.5, -0.4]], dtype=torch.float64)
    Y = np.array([[1, 3.0, 5]])
    t = torch.as_tensor(encode_targets(schema, Y))
    age = schema.labels[1]
    expected = (
        math.log(gauss(0.7, 1, 0.4))
        + math.log(gauss(-0.2, (3.0 - age.mean) / age.std, 0.3))
        + math.log(gauss(1.1, -1, 0.4) * gauss(-0.8, 1, 0.4) * gauss(-1.3, -1, 0.4))
        + math.log(gauss(0.5, 0, 1) * gauss(-0.4, 0, 1))
    )
    assert prior.log_prob(u, t).item() == pytest.approx(expected, rel=1e-10)


def test_missing_labels_are_marginalised(schema):
    prior = PluGeNPrior(schema, sigma=0.4, continuous_sigma=0.3, balanced=False).double()
    c = [0.2, 0.6, 0.9, -1.0, 0.1]
    u = torch.tensor([c + [0.0, 0.0]], dtype=torch.float64)
    t = torch.as_tensor(encode_targets(schema, np.array([[NAN, NAN, NAN]])))
    smile, age, digit = schema.labels
    p1 = smile.frequencies[0]
    binary = (1 - p1) * gauss(0.2, -1, 0.4) + p1 * gauss(0.2, 1, 0.4)
    q = [(v - age.mean) / age.std for v in age.quantiles]
    continuous = sum(gauss(0.6, m, 0.3) for m in q) / len(q)
    categorical = sum(
        pk * math.prod(gauss(x, 1 if j == k else -1, 0.4) for j, x in enumerate(c[2:]))
        for k, pk in enumerate(digit.frequencies)
    )
    expected = math.log(binary) + math.log(continuous) + math.log(categorical) + 2 * math.log(gauss(0, 0, 1))
    assert prior.log_prob(u, t).item() == pytest.approx(expected, rel=1e-10)


def test_missing_targets_do_not_poison_gradients(schema):
    prior = PluGeNPrior(schema, 0.4, 0.3, False).double()
    u = torch.zeros(2, 7, dtype=torch.float64, requires_grad=True)
    t = torch.as_tensor(encode_targets(schema, np.array([[NAN, NAN, NAN], [1, 3.0, 5]])))
    prior.log_prob(u, t).sum().backward()
    assert torch.isfinite(u.grad).all()


def test_balanced_sigmas_follow_the_papers_code(schema):
    prior = PluGeNPrior(schema, sigma=0.4, continuous_sigma=0.3, balanced=True)
    p = schema.labels[0].frequencies[0]
    assert prior.binary.sigma[:, 0].tolist() == pytest.approx([0.4 * math.sqrt(2 * (1 - p)), 0.4 * math.sqrt(2 * p)])
    freqs = schema.labels[2].frequencies
    assert prior.categorical[0].sigma[1].tolist() == pytest.approx([0.4 * math.sqrt(2 * f) for f in freqs])


def test_posteriors_are_bayes_rule(schema):
    prior = PluGeNPrior(schema, 0.4, 0.3, False).double()
    c = torch.tensor([[0.1, 0.0, 0.8, 0.2, -1.0]], dtype=torch.float64)
    p1 = schema.labels[0].frequencies[0]
    num = p1 * gauss(0.1, 1, 0.4)
    assert prior.binary.proba(c).item() == pytest.approx(num / (num + (1 - p1) * gauss(0.1, -1, 0.4)))
    freqs = schema.labels[2].frequencies
    scores = [
        f * math.prod(gauss(x, 1 if j == k else -1, 0.4) for j, x in enumerate([0.8, 0.2, -1.0]))
        for k, f in enumerate(freqs)
    ]
    expected = [s / sum(scores) for s in scores]
    assert prior.categorical[0].proba(c)[0].tolist() == pytest.approx(expected)


def test_means_and_component_sigmas(schema):
    prior = PluGeNPrior(schema, 0.4, 0.3, False).float()
    t = torch.as_tensor(encode_targets(schema, np.array([[0.75, 5.0, 7]])), dtype=torch.float32)
    age = schema.labels[1]
    assert prior.means(t)[0].tolist() == pytest.approx([0.5, (5 - age.mean) / age.std, -1, -1, 1])
    assert prior.component_sigmas(t)[0].tolist() == pytest.approx([0.4, 0.3, 0.4, 0.4, 0.4])
