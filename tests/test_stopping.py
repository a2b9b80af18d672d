"""Held-out checks every ``check_rows`` training rows, the relative improvement threshold and the
learning rate that halves with each stale check (plugen.training, issue 30)."""

import dataclasses

import pytest
import torch
from torch import nn

from plugen import InputError, PluGeN
from plugen.batches import InMemoryRows
from plugen.data import entangled
from plugen.resume import load_state, save_state
from plugen.training import (
    EarlyStopping,
    FitState,
    TrainingConfig,
    make_schedules,
    restore,
    resume_key,
    snapshot,
    split_rows,
    train,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small fits stall on two threads of a busy machine

CONFIG = TrainingConfig(batch_size=50, lr=1e-2, max_epochs=200, patience=5, val_fraction=0.2, progress=False)


class Gaussian(nn.Module):
    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(1))


def gaussian_fit(config, n=1000, **options):
    model = Gaussian()
    Z = torch.randn(n, 1, generator=torch.Generator().manual_seed(0)) + 3.0
    data = InMemoryRows(Z, torch.zeros(n, 1), torch.device("cpu"))
    return model, train(model, lambda z, t: 0.5 * (z[:, 0] - model.mu) ** 2, data, config, **options)


def test_checks_come_every_check_rows_training_rows_across_epoch_boundaries():
    config = dataclasses.replace(CONFIG, check_rows=300, max_epochs=3, patience=10**6)
    _, summary = gaussian_fit(config)  # 800 training rows: 16 steps of 50 per epoch, 2400 rows in all
    assert summary["checks"] == len(summary["history"]["val_nll"]) == 2400 // 300
    assert summary["epochs"] == 3 and summary["stopped"] == "max_epochs"
    seconds = summary["history"]["seconds"]
    assert seconds == sorted(seconds)


def test_a_check_can_end_the_fit_inside_an_epoch():
    config = dataclasses.replace(CONFIG, lr=0.1, warmup_steps=10, check_rows=100, patience=2, max_epochs=50)
    model, summary = gaussian_fit(config, n=5000)  # 4000 training rows: 40 checks per epoch
    assert summary["stopped"] == "early_stopping"
    assert summary["checks"] % 40 != 0 or summary["checks"] < 40  # not at an epoch's end
    assert model.mu.item() == pytest.approx(3.0, abs=0.1)


def test_the_learning_rate_halves_after_each_stale_check_once_warmed_up():
    config = dataclasses.replace(CONFIG, lr=0.1, warmup_steps=4, check_rows=100)
    assert config.lr_patience == 1 and dataclasses.replace(CONFIG, patience=9).lr_patience == 3
    schedules = make_schedules(Gaussian(), config)
    for steps in range(4):
        schedules.optimizer.step()
        schedules.after_step(steps)
    schedules.after_check(steps=2, stale=1)  # still warming up
    assert schedules.lr == pytest.approx(0.1)
    schedules.after_check(steps=4, stale=0)
    assert schedules.lr == pytest.approx(0.1)
    for stale in (1, 2):
        schedules.after_check(steps=4, stale=stale)
    assert schedules.lr == pytest.approx(0.025)


def test_the_relative_threshold_asks_for_a_share_of_the_progress_so_far():
    rule, state, model = EarlyStopping(patience=2, min_delta=0.0, min_improvement=0.1), FitState(), Gaussian()
    rule.update(state, 1, 10.0, model)  # the first scoring: the reference
    rule.update(state, 2, 5.0, model)  # progress 5: the next must beat 5 - 0.5
    assert (state.first_score, state.best, state.stale) == (10.0, 5.0, 0)
    rule.update(state, 3, 4.6, model)
    assert (state.best, state.stale) == (5.0, 1)
    rule.update(state, 4, 4.4, model)
    assert (state.best, state.best_epoch, state.stale) == (4.4, 4, 0)
    rule.update(state, 5, 4.0, model)  # progress 5.6: 4.0 is not below 4.4 - 0.56
    rule.update(state, 6, 4.0, model)
    assert rule.exhausted(state)


@pytest.mark.slow
def test_the_relative_threshold_ends_a_real_fit_sooner_at_a_close_likelihood():
    data = entangled(n=1500, latent_dim=6, seed=3)
    fits = {}
    for name, rel in (("absolute", 0.0), ("relative", 0.05)):
        options = dict(batch_size=128, lr=3e-3, max_epochs=30, check_rows=1000, patience=3, min_improvement=rel)
        model = PluGeN(data.labels, transforms=2, hidden_features=16, progress=False, device="cpu", **options)
        fits[name] = model.fit(data.Z, data.Y).history_
    assert fits["relative"]["stopped"] == "early_stopping"
    assert fits["relative"]["steps"] < fits["absolute"]["steps"]
    assert fits["relative"]["best_nll"] < fits["absolute"]["best_nll"] + 0.1 * abs(fits["absolute"]["best_nll"])


def test_earlier_settings_keep_their_resume_key_and_old_states_restore(tmp_path):
    model = Gaussian()
    data = InMemoryRows(torch.randn(500, 1), torch.zeros(500, 1), torch.device("cpu"))
    split_rows(data, CONFIG)
    key = resume_key(data, CONFIG, model, 1, 50, None, None)
    earlier = dataclasses.replace(CONFIG, check_rows=0, min_improvement=0.0, decay_patience=None)
    assert resume_key(data, earlier, model, 1, 50, None, None) == key
    assert resume_key(data, dataclasses.replace(CONFIG, check_rows=100), model, 1, 50, None, None) != key
    schedules, generators = make_schedules(model, CONFIG), split_rows(data, CONFIG)
    saved = snapshot(FitState(steps=7, best=1.5), key, model, schedules, generators)
    for name in ("first_score", "window_nll", "window_rows"):  # a state written before these existed
        del saved[name]
    save_state(tmp_path / "state.pt", saved)
    state = FitState()
    restore(load_state(tmp_path / "state.pt", key), state, model, schedules, generators)
    assert (state.steps, state.best, state.window_rows) == (7, 1.5, 0)


def test_plugins_check_their_scoring_settings():
    with pytest.raises(InputError, match="min_improvement"):
        PluGeN({"a": "binary"}, min_improvement=1.5).fit(torch.randn(50, 4).numpy(), torch.ones(50, 1).numpy())
    with pytest.raises(InputError, match="check_rows"):
        PluGeN({"a": "binary"}, check_rows=-1).fit(torch.randn(50, 4).numpy(), torch.ones(50, 1).numpy())
