"""The two linear layers that start the plugins' flows: PluGeN's LU layer and FPN's context layer."""

import numpy as np
import pytest
import torch

from plugen.flows.context import ContextLinear
from plugen.flows.linear import InvertibleLinear

N, C = 5, 3


def randomised(layer, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return layer


def layers():
    return {
        "lu": lambda: InvertibleLinear(N),
        "context-per-class": lambda: ContextLinear(N, C, [0, 2]),
        "context-shared": lambda: ContextLinear(N, C),
    }


@pytest.mark.parametrize("name", sorted(layers()))
def test_inverse_and_log_det(name):
    layer = randomised(layers()[name]().double())
    z = 2 * torch.randn(16, N, dtype=torch.float64)
    c = torch.randn(16, C, dtype=torch.float64)
    u, log_det = layer(z, c)
    assert not torch.allclose(u, z)
    shared = c[torch.arange(16) % 3]  # three distinct contexts: the context layer's grouped solve
    for grad in (True, False):  # the LU layer has a cached inference path
        with torch.set_grad_enabled(grad):
            for context in (c, shared):
                assert (layer.inverse(layer(z, context)[0], context) - z).abs().max() < 1e-10
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda x: layer(x[None], c[i : i + 1])[0][0], z[i])
        assert torch.isclose(torch.slogdet(jac).logabsdet, log_det[i], atol=1e-8)


@pytest.mark.parametrize("name", ["lu", "context-per-class"])
def test_inference_caches_follow_parameter_updates(name):
    layer = randomised(layers()[name]().double())
    z, c = torch.randn(4, N, dtype=torch.float64), torch.randn(4, C, dtype=torch.float64)
    with torch.no_grad():
        before = layer(z, c)[0]
        layer.lower.add_(0.5)
        after = layer(z, c)[0]
    assert not torch.allclose(before, after)
    assert torch.allclose(after, layer(z.requires_grad_(), c)[0].detach())  # the uncached path


def test_context_layer_starts_as_quadratic_discriminant_analysis():
    """With one categorical label, the initialised layer alone is a Gaussian per class with its
    own covariance: its Bayes decisions agree with scikit-learn's QDA."""
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    rng = np.random.default_rng(0)
    classes, n = 3, 1500
    y = rng.integers(0, classes, n)
    x = np.einsum("nij,nj->ni", rng.normal(size=(classes, N, N))[y], rng.normal(size=(n, N)))
    x = x + rng.normal(size=(classes, N))[y]
    x = torch.as_tensor((x - x.mean(0)) / x.std(0))
    context = torch.as_tensor(np.concatenate([np.eye(classes)[y], np.ones((n, 1))], axis=1))

    def decisions(class_columns):
        layer = ContextLinear(N, classes + 1, class_columns).double()
        layer.initialize(x, context)
        scores = []
        with torch.no_grad():
            for k in range(classes):
                u, log_det = layer(x, torch.as_tensor(np.r_[np.eye(classes)[k], 1.0]).expand(n, -1))
                scores.append((-0.5 * (u**2).sum(1) + log_det).numpy())
        return np.argmax(scores, axis=0)

    ours = decisions(range(classes))
    qda = QuadraticDiscriminantAnalysis(reg_param=0.1).fit(x.numpy(), y).predict(x.numpy())
    assert np.mean(ours == y) > 0.9
    assert np.mean(ours == qda) > 0.97
    # a shared covariance cannot express per-class correlations and does worse
    assert np.mean(decisions(()) == y) < np.mean(ours == y)
