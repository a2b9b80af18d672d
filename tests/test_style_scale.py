"""PluGeN's label-dependent style scale (``style_scale=True``, :mod:`plugen.flows.style`)."""

import numpy as np
import pytest
import torch

from plugen import InputError
from plugen.flows.style import StyleScale
from plugen.plugins import PluGeN

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def randomised(layer: StyleScale) -> StyleScale:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return layer


def test_starts_as_the_identity_and_inverts_exactly():
    u = torch.randn(32, 6, dtype=torch.float64)
    layer = StyleScale(6, label_width=2).double()
    out, log_det = layer(u)
    assert torch.equal(out, u) and torch.equal(log_det, torch.zeros(32, dtype=torch.float64))
    layer = randomised(layer)
    out, _ = layer(u)
    assert torch.equal(out[:, :2], u[:, :2])  # the label coordinates pass unchanged
    assert not torch.allclose(out, u)
    assert (layer.inverse(out) - u).abs().max() < 1e-12


def test_log_det_matches_autograd_jacobian():
    layer = randomised(StyleScale(5, label_width=2).double())
    z = torch.randn(3, 5, dtype=torch.float64)
    _, log_det = layer(z)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda x: layer(x.unsqueeze(0))[0][0], z[i])
        assert torch.isclose(torch.slogdet(jac).logabsdet, log_det[i], atol=1e-10)


def test_log_scale_is_bounded():
    layer = StyleScale(4, label_width=1)
    with torch.no_grad():
        layer.weight.fill_(100.0)
    assert layer.log_scale(torch.tensor([[10.0], [-10.0]])).abs().max() <= layer.scale_bound


def test_label_width_must_leave_style():
    with pytest.raises(ValueError, match="label_width"):
        StyleScale(4, label_width=4)


def test_style_scale_must_be_a_bool():
    with pytest.raises(InputError, match="style_scale"):
        PluGeN({"a": "binary"}, style_scale="yes").fit(np.zeros((10, 3)), np.zeros((10, 1)))


def _thin_class(n: int = 800, seed: int = 0):
    """Two classes whose three style dimensions vary 1.0 (class 0) and 0.25 (class 1); the label
    shifts the first latent, and a fixed rotation mixes everything."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    style = rng.normal(size=(n, 3)) * np.where(y == 1, 0.25, 1.0)[:, None]
    Z = np.column_stack([3.0 * y + 0.3 * rng.normal(size=n), style])
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]
    return Z @ rotation, y.astype(float).reshape(-1, 1)


def _style_spread(model: PluGeN, Z: np.ndarray, y: np.ndarray) -> list[float]:
    with torch.inference_mode():
        u = model.module_.flow(model._tensor(Z))[0].numpy()
    return [float(u[y[:, 0] == k, 1:].std()) for k in (0, 1)]


def _spread(A: np.ndarray) -> float:
    return float(np.linalg.svd(A - A.mean(0), compute_uv=False)[1:].mean())


def test_a_nice_flow_gives_each_class_unit_style_only_with_it():
    """NICE preserves volume: without the layer the thin class keeps a thin style in the base
    space; with it both classes' style spreads approach the prior's N(0, I) (eq. 1), the learnt
    scale ratio is the classes' spread ratio, and an edit into the thin class takes its spread."""
    Z, y = _thin_class()
    options = dict(transforms=2, hidden_features=16, max_epochs=15, batch_size=100, lr=2e-2, progress=False, seed=0)
    plain = PluGeN({"a": "binary"}, **options).fit(Z, y)
    scaled = PluGeN({"a": "binary"}, style_scale=True, **options).fit(Z, y)
    assert _style_spread(plain, Z, y)[1] < 0.5
    assert all(0.75 < spread < 1.3 for spread in _style_spread(scaled, Z, y))
    assert scaled.history_["best_nll"] < plain.history_["best_nll"] - 0.5
    g = scaled.module_.flow.flows[-1].log_scale(torch.tensor([[1.0], [-1.0]])).detach().numpy()
    assert np.all((np.exp(g[0] - g[1]) > 2.5) & (np.exp(g[0] - g[1]) < 6))
    edited = scaled.edit(Z[y[:, 0] == 0][:300], {"a": 1})
    assert _spread(edited) < 1.5 * _spread(Z[y[:, 0] == 1][:300])
    assert _spread(plain.edit(Z[y[:, 0] == 0][:300], {"a": 1})) > 2 * _spread(Z[y[:, 0] == 1][:300])
