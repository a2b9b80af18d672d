"""Every registered flow, conditional or not: invertibility, log-determinant, dtypes, save/load."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from plugen.flows import FLOWS, Chain, Standardize, build_flow

FEATURES, CONTEXT = 5, 3


def randomised(flow):
    """Flows start at the identity; give them random weights so the checks mean something."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


def make(name, context, dtype=torch.float64):
    return randomised(build_flow(name, FEATURES, context, transforms=3, hidden_features=16).to(dtype))


@pytest.fixture(params=[0, CONTEXT], ids=["unconditional", "conditional"])
def context(request):
    return request.param


@pytest.mark.parametrize("name", sorted(FLOWS))
class TestEveryFlow:
    def test_inverse_is_exact_in_float64(self, name, context):
        flow = make(name, context)
        z = 2 * torch.randn(64, FEATURES, dtype=torch.float64)
        c = torch.randn(64, context, dtype=torch.float64) if context else None
        u, log_det = flow(z, c)
        assert u.shape == z.shape and log_det.shape == (64,)
        assert not torch.allclose(u, z)  # the flow does something
        assert (flow.inverse(u, c) - z).abs().max() < 1e-5
        assert (flow(flow.inverse(z, c), c)[0] - z).abs().max() < 1e-5

    def test_log_det_matches_autograd_jacobian(self, name, context):
        flow = make(name, context)
        z = torch.randn(4, FEATURES, dtype=torch.float64)
        c = torch.randn(4, context, dtype=torch.float64) if context else None
        _, log_det = flow(z, c)
        for i in range(4):
            ci = None if c is None else c[i : i + 1]
            jac = torch.autograd.functional.jacobian(lambda x: flow(x.unsqueeze(0), ci)[0][0], z[i])
            assert torch.isclose(torch.slogdet(jac).logabsdet, log_det[i], atol=1e-8)

    def test_float32_and_dtype_moves(self, name, context):
        flow = make(name, context, torch.float64).float()
        z = torch.randn(8, FEATURES)
        c = torch.randn(8, context) if context else None
        u, log_det = flow(z, c)
        assert u.dtype == torch.float32 and log_det.dtype == torch.float32
        assert (flow.inverse(u, c) - z).abs().max() < 1e-4

    def test_save_load_round_trip(self, name, context, tmp_path):
        flow = make(name, context)
        save_file({k: v.contiguous() for k, v in flow.state_dict().items()}, str(tmp_path / "w.safetensors"))
        fresh = build_flow(name, FEATURES, context, transforms=3, hidden_features=16).double()
        fresh.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
        z = torch.randn(6, FEATURES, dtype=torch.float64)
        c = torch.randn(6, context, dtype=torch.float64) if context else None
        assert torch.equal(flow(z, c)[0], fresh(z, c)[0])


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_context_changes_the_map(name):
    flow = make(name, CONTEXT)
    z = torch.randn(8, FEATURES, dtype=torch.float64)
    c = torch.randn(8, CONTEXT, dtype=torch.float64)
    assert not torch.allclose(flow(z, c)[0], flow(z, c + 1)[0])


def test_chain_with_standardize_adds_log_dets():
    mean, std = torch.arange(4.0).double(), torch.tensor([1.0, 2.0, 0.5, 3.0]).double()
    flow = Chain([Standardize(mean, std), randomised(build_flow("nice", 4, transforms=2, hidden_features=8).double())])
    z = torch.randn(3, 4, dtype=torch.float64)
    u, log_det = flow(z)
    inner_u, inner_ld = flow.flows[1]((z - mean) / std)
    assert torch.allclose(u, inner_u)
    assert torch.allclose(log_det, inner_ld - torch.log(std).sum())
    assert torch.allclose(flow.inverse(u), z)


def test_unknown_flow_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown flow 'glow'.*maf.*nice"):
        build_flow("glow", 4)


def test_coupling_needs_two_dimensions_and_conditional_needs_context():
    with pytest.raises(ValueError, match="at least 2"):
        build_flow("nice", 1)
    with pytest.raises(ValueError, match="needs a context of size 2"):
        build_flow("realnvp", 4, context=2)(torch.randn(3, 4))
