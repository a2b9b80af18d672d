import dataclasses

import pytest
import torch
from torch import nn

from plugen import InputError, TrainingError
from plugen.batches import InMemoryRows
from plugen.training import TrainingConfig, resolve_device, train

CONFIG = TrainingConfig(batch_size=64, lr=1e-2, max_epochs=200, patience=5, val_fraction=0.2, progress=False)


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
    summary = train(model, gaussian_nll(model), rows(Z), CONFIG)
    assert model.mu.item() == pytest.approx(3.0, abs=0.15)
    assert summary["stopped"] == "early_stopping" and summary["epochs"] < 200
    assert summary["n_val"] == 200 and summary["monitor"] == "validation"
    assert len(summary["history"]["val_nll"]) == summary["epochs"]


def nan_after(model, calls: int):
    """The Gaussian NLL of ``model``, NaN from its ``calls + 1``-th call on."""
    count = {"n": 0}

    def nll(z, t):
        count["n"] += 1
        loss = 0.5 * (z[:, 0] - model.mu) ** 2
        return loss * float("nan") if count["n"] > calls else loss

    return nll


def test_non_finite_loss_keeps_last_good_weights():
    model = Gaussian()
    Z = torch.randn(1000, 1) + 3.0
    with pytest.warns(RuntimeWarning, match="non-finite loss at epoch .*kept the last good weights"):
        summary = train(model, nan_after(model, 300), rows(Z), CONFIG)
    assert summary["stopped"].startswith("non-finite loss") and torch.isfinite(model.mu).all()
    assert model.mu.item() > 0.5  # it had learned something before the divergence


def test_non_finite_loss_read_every_few_steps_as_on_a_gpu(monkeypatch):
    monkeypatch.setattr("plugen.training.loss_read_interval", lambda device: 4)
    model = Gaussian()
    Z = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0)) + 3.0
    with pytest.warns(RuntimeWarning, match=r"non-finite loss at epoch \d+, batches \d+-\d+\).*kept the last good"):
        summary = train(model, nan_after(model, 300), rows(Z), CONFIG)
    first, last = map(int, summary["stopped"].split("batches ")[1].split("-"))
    assert last - first < 4 and torch.isfinite(model.mu).all() and model.mu.item() > 0.5
    assert summary["epochs"] == len(summary["history"]["seconds"])


def test_divergence_before_any_good_weights_raises():
    model = Gaussian()
    with pytest.raises(TrainingError, match="diverged"):
        train(model, lambda z, t: model.mu * float("inf") * z[:, 0], rows(torch.randn(100, 1)), CONFIG)


def test_tiny_data_trains_without_a_held_out_split():
    model = Gaussian()
    summary = train(model, gaussian_nll(model), rows(torch.randn(40, 1)), CONFIG)
    assert summary["n_val"] == 0 and summary["monitor"] == "training"


def test_callback_can_stop_training():
    model = Gaussian()
    seen = []
    summary = train(model, gaussian_nll(model), rows(torch.randn(500, 1)), CONFIG,
                    on_epoch=lambda epoch, stats: seen.append(epoch) or epoch == 3)
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


class Spread(nn.Module):
    """NLL of N(mu, sigma^2) with a learnt sigma: how wide the model thinks the data are."""

    def __init__(self):
        super().__init__()
        self.mu, self.log_sigma = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))

    def nll(self, z, t):
        return 0.5 * ((z[:, 0] - self.mu) / self.log_sigma.exp()) ** 2 + self.log_sigma


def test_latent_noise_widens_the_learnt_density_and_is_scored_on_held_out_rows():
    Z = 0.5 * torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    config = dataclasses.replace(CONFIG, patience=20)
    clean, noisy = Spread(), Spread()
    train(clean, clean.nll, rows(Z), config)
    summary = train(noisy, noisy.nll, rows(Z), config, latent_noise=torch.tensor([0.5]))
    # data spread 0.5, noise 0.5: the noisy objective's optimum is sqrt(0.5^2 + 0.5^2) = 0.707
    assert clean.log_sigma.exp().item() == pytest.approx(0.5, abs=0.05)
    assert noisy.log_sigma.exp().item() == pytest.approx(0.707, abs=0.06)
    assert summary["best_nll"] == pytest.approx(0.153, abs=0.05)  # held-out scored with noise (clean: -0.097)


def test_plugins_take_latent_noise(small):
    from plugen import FPN

    Z, Y, labels = small
    fitted = FPN(labels, latent_noise=0.1, max_epochs=2, progress=False, device="cpu").fit(Z, Y)
    assert fitted.get_params()["latent_noise"] == 0.1 and fitted.history_["epochs"] == 2
    with pytest.raises(InputError, match="latent_noise must be in"):
        FPN(labels, latent_noise=-0.1, progress=False).fit(Z, Y)
