import pytest
import torch
from torch import nn

from plugen import InputError, TrainingError
from plugen.batches import InMemoryRows
from plugen.training import resolve_device, train

SETTINGS = dict(batch_size=64, lr=1e-2, max_epochs=200, patience=5, val_fraction=0.2, progress=False)


class Gaussian(nn.Module):
    """A 1-parameter model: NLL of N(mu, 1). Easy to reason about."""

    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(1))


def rows(Z):
    return InMemoryRows(Z, torch.zeros(Z.shape[0], 1), torch.device("cpu"))


def gaussian_nll(model):
    return lambda z, t: 0.5 * ((z[:, 0] - model.mu) ** 2)


def test_converges_and_stops_early():
    model = Gaussian()
    Z = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0)) + 3.0  # not the global RNG: other tests move it
    summary = train(model, gaussian_nll(model), rows(Z), **SETTINGS)
    assert model.mu.item() == pytest.approx(3.0, abs=0.15)
    assert summary["stopped"] == "early_stopping" and summary["epochs"] < 200
    assert summary["n_val"] == 200 and summary["monitor"] == "validation"
    assert len(summary["history"]["val_nll"]) == summary["epochs"]


def test_non_finite_loss_keeps_last_good_weights():
    model = Gaussian()
    calls = {"n": 0}

    def nll(z, t):
        calls["n"] += 1
        loss = 0.5 * (z[:, 0] - model.mu) ** 2
        return loss * float("nan") if calls["n"] > 300 else loss

    Z = torch.randn(1000, 1) + 3.0
    with pytest.warns(RuntimeWarning, match="non-finite loss at epoch .*kept the last good weights"):
        summary = train(model, nll, rows(Z), **SETTINGS)
    assert summary["stopped"].startswith("non-finite loss") and torch.isfinite(model.mu).all()
    assert model.mu.item() > 0.5  # it had learned something before the divergence


def test_divergence_before_any_good_weights_raises():
    model = Gaussian()
    with pytest.raises(TrainingError, match="diverged"):
        train(model, lambda z, t: model.mu * float("inf") * z[:, 0], rows(torch.randn(100, 1)), **SETTINGS)


def test_tiny_data_trains_without_a_held_out_split():
    model = Gaussian()
    summary = train(model, gaussian_nll(model), rows(torch.randn(40, 1)), **SETTINGS)
    assert summary["n_val"] == 0 and summary["monitor"] == "training"


def test_callback_can_stop_training():
    model = Gaussian()
    seen = []
    summary = train(model, gaussian_nll(model), rows(torch.randn(500, 1)),
                    on_epoch=lambda epoch, stats: seen.append(epoch) or epoch == 3, **SETTINGS)
    assert seen == [1, 2, 3] and summary["stopped"] == "callback"


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_bf16_autocast_trains_as_well_as_float32(small):
    from plugen import PluGeN

    Z, Y, labels = small
    settings = dict(max_epochs=10, patience=100, progress=False, device="cpu")
    plain = PluGeN(labels, **settings).fit(Z, Y)
    mixed = PluGeN(labels, autocast="bf16", **settings).fit(Z, Y)
    assert mixed.history_["best_nll"] == pytest.approx(plain.history_["best_nll"], rel=0.02)
    assert mixed.module_.flow.flows[0].mean.dtype == torch.float32  # weights stay float32
    with pytest.raises(InputError, match="autocast must be one of"):
        PluGeN(labels, autocast="fp8", **settings).fit(Z, Y)
