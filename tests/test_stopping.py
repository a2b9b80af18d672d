"""Held-out checks every ``check_rows`` training rows and the rules that end a fit once the second
half of its training has not paid (plugen.training.HalfGainStopping, PatienceOrHalfGain; issue 30)."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from plugen import InputError, PluGeN
from plugen.batches import InMemoryRows
from plugen.data import entangled
from plugen.resume import load_state, save_state
from plugen.training import (
    DECAY_CHECKS,
    EPOCH_WARMUP_STEPS,
    WARMUP_ROWS,
    Checks,
    EarlyStopping,
    FitState,
    HalfGainStopping,
    PatienceOrHalfGain,
    TrainingConfig,
    make_schedules,
    restore,
    resume_key,
    snapshot,
    split_rows,
    train,
    warmup_steps,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small fits stall on two threads of a busy machine

CONFIG = TrainingConfig(
    batch_size=50, lr=1e-2, max_epochs=200, patience=5, val_fraction=0.2, warmup_steps=100, progress=False
)


class Gaussian(nn.Module):
    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(1))


def gaussian_fit(config, n=1000, **options):
    model = Gaussian()
    Z = torch.randn(n, 1, generator=torch.Generator().manual_seed(0)) + 3.0
    data = InMemoryRows(Z, torch.zeros(n, 1), torch.device("cpu"))
    return model, train(model, lambda z, t: 0.5 * (z[:, 0] - model.mu) ** 2, data, config, **options)


def test_the_automatic_warm_up_ends_in_the_first_half_epoch_or_covers_the_rows_of_checks():
    auto = dataclasses.replace(CONFIG, warmup_steps=None, batch_size=256)
    assert warmup_steps(auto, n_train=15_300) == 30  # 60 batches an epoch
    assert warmup_steps(auto, n_train=10**6) == EPOCH_WARMUP_STEPS
    assert warmup_steps(auto, n_train=100) == 1  # one batch of all 100 rows
    assert warmup_steps(dataclasses.replace(auto, batch_size=1024, check_rows=8192), 10**6) == WARMUP_ROWS // 1024
    assert warmup_steps(dataclasses.replace(auto, warmup_steps=7), n_train=15_300) == 7


def test_with_the_automatic_warm_up_the_first_scoring_sees_the_full_rate():
    config = dataclasses.replace(CONFIG, warmup_steps=None, max_epochs=2, min_gain=0.0)
    _, summary = gaussian_fit(config, n=5000)  # 4000 training rows: 80 batches of 50
    assert summary["warmup_steps"] == 40
    assert summary["history"]["lr"][0] == pytest.approx(config.lr)
    _, pinned = gaussian_fit(dataclasses.replace(config, warmup_steps=100), n=5000)
    assert pinned["warmup_steps"] == 100 and pinned["history"]["lr"][0] == pytest.approx(0.81 * config.lr)


def test_the_half_gain_test_waits_for_the_warm_up_rows_however_short_the_warm_up():
    config = dataclasses.replace(CONFIG, warmup_steps=1, min_gain=100.0, patience=10**6, max_epochs=1000)
    _, summary = gaussian_fit(config, n=500)  # 400 training rows an epoch; any gain is less than 100
    rows = summary["history"]["rows"]
    assert summary["stopped"] == "early_stopping" and rows[-2] < WARMUP_ROWS <= rows[-1]


def test_checks_come_every_check_rows_training_rows_across_epoch_boundaries():
    config = dataclasses.replace(CONFIG, check_rows=300, max_epochs=3, min_gain=0.0)
    _, summary = gaussian_fit(config)  # 800 training rows: 16 steps of 50 per epoch, 2400 rows in all
    assert summary["checks"] == len(summary["history"]["val_nll"]) == 2400 // 300
    assert summary["epochs"] == 3 and summary["stopped"] == "max_epochs"
    seconds = summary["history"]["seconds"]
    assert seconds == sorted(seconds)


def test_checks_come_at_least_once_per_epoch_and_further_apart_in_long_fits():
    checks = Checks(rows=8192, epoch_rows=10**7, run=lambda train_nll, epoch: None)
    assert not checks.due(8191, 8191) and checks.due(8192, 8192)
    assert not checks.due(8192, 16 * 10**6) and checks.due(10**6, 16 * 10**6)  # a sixteenth of the rows so far
    assert Checks(rows=8192, epoch_rows=4000, run=checks.run).due(4000, 4000)  # small data: every epoch


def test_a_check_can_end_the_fit_inside_an_epoch():
    config = dataclasses.replace(CONFIG, lr=0.1, warmup_steps=10, check_rows=100, max_epochs=50)
    model, summary = gaussian_fit(config, n=5000)  # 4000 training rows: 40 checks per epoch
    assert summary["stopped"] == "early_stopping"
    assert summary["checks"] % 40 != 0 or summary["checks"] < 40  # not at an epoch's end
    assert model.mu.item() == pytest.approx(3.0, abs=0.1)


def test_the_learning_rate_halves_after_every_few_checks_without_a_new_best_once_warmed_up():
    config = dataclasses.replace(CONFIG, lr=0.1, warmup_steps=4, check_rows=100)
    schedules = make_schedules(Gaussian(), config)
    for steps in range(4):
        schedules.optimizer.step()
        schedules.after_step(steps)
    schedules.after_check(steps=2, stale=DECAY_CHECKS)  # still warming up
    assert schedules.lr == pytest.approx(0.1)
    for stale in range(2 * DECAY_CHECKS + 1):
        schedules.after_check(steps=4, stale=stale)
    assert schedules.lr == pytest.approx(0.025)


def rule_after(bests, rows_per_check=100, min_gain=0.05, min_rows=0):
    """A rule and the state it sees after scorings with these best NLLs, one every ``rows_per_check``."""
    rule, state = HalfGainStopping(patience=1, min_delta=0.0, min_gain=min_gain, min_rows=min_rows), FitState()
    for k, best in enumerate(bests, 1):
        state.rows, state.best = k * rows_per_check, best
        state.record(0.0, best, 1e-3, float(k))
    return rule, state


def test_the_rule_stops_once_the_second_half_gained_less_than_min_gain():
    rule, state = rule_after([5.0, 4.0, 3.9, 3.9, 3.9])  # the best at 200 rows 4.0, at 500 rows 3.9
    assert not rule.exhausted(state)
    rule, state = rule_after([5.0, 4.0, 3.99, 3.98, 3.97, 3.97])  # at 300 rows 3.99, at 600 rows 3.97
    assert rule.exhausted(state)


def test_a_slow_steady_fall_goes_on_and_the_warm_up_is_waited_for():
    # the NLL falls by 0.1 per doubling of the rows, 0.0002 per check by the end: not stopped
    bests = [-0.1 * math.log2(k) for k in range(1, 400)]
    assert not any(rule_after(bests[:k])[0].exhausted(rule_after(bests[:k])[1]) for k in range(1, 400))
    rule, state = rule_after([5.0, 5.0, 5.0])
    assert rule.exhausted(state)
    rule, state = rule_after([5.0, 5.0, 5.0], min_rows=400)
    assert not rule.exhausted(state)


def test_the_rule_ends_a_real_fit_before_its_epoch_budget_with_the_best_weights():
    data = entangled(n=1500, latent_dim=6, seed=3)
    options = dict(batch_size=128, lr=3e-3, max_epochs=200, check_rows=1000)
    model = PluGeN(data.labels, transforms=2, hidden_features=16, progress=False, device="cpu", **options)
    history = model.fit(data.Z, data.Y).history_
    assert history["stopped"] == "early_stopping" and history["epochs"] < 200
    assert history["best_nll"] == min(history["history"]["val_nll"])
    rows, best = history["history"]["rows"], history["history"]["best"]
    half = max(k for k, r in enumerate(rows) if r <= rows[-1] / 2)
    assert best[half] - best[-1] < 0.01 * data.Z.shape[1]  # why it stopped: the second half gained too little


def test_per_epoch_scoring_stops_at_the_first_of_patience_and_the_half_gain_test():
    either = PatienceOrHalfGain(patience=3, min_delta=0.0, min_gain=0.05, min_rows=0)
    creeping = [5.0, 4.0, 3.99, 3.98, 3.97, 3.96]  # a new best every epoch, 0.03 over the second half
    rule, state = rule_after(creeping)
    assert rule.exhausted(state) and either.exhausted(state) and not EarlyStopping.exhausted(either, state)
    rule, state = rule_after([5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0])  # flat for 3 epochs after a steep fall
    state.stale = 3
    assert either.exhausted(state) and not rule.exhausted(state)


def test_the_half_gain_test_ends_a_per_epoch_fit_before_patience_would():
    data = entangled(n=2000, latent_dim=6, seed=3)
    options = dict(transforms=2, hidden_features=16, batch_size=128, lr=5e-3, patience=10, progress=False)
    quick = PluGeN(data.labels, **options).fit(data.Z, data.Y).history_
    patient = PluGeN(data.labels, min_gain=0.0, **options).fit(data.Z, data.Y).history_
    assert quick["stopped"] == patient["stopped"] == "early_stopping"
    assert quick["epochs"] < patient["epochs"]
    assert quick["history"]["val_nll"] == patient["history"]["val_nll"][: quick["epochs"]]  # the same fit, cut short
    rows, best = quick["history"]["rows"], quick["history"]["best"]
    half = max(k for k, r in enumerate(rows) if r <= rows[-1] / 2)
    assert best[half] - best[-1] < 0.01 * data.Z.shape[1]
    assert quick["best_nll"] - patient["best_nll"] < 0.01 * data.Z.shape[1]


def test_earlier_settings_keep_their_resume_key_and_old_states_restore(tmp_path):
    model = Gaussian()
    data = InMemoryRows(torch.randn(500, 1), torch.zeros(500, 1), torch.device("cpu"))
    split_rows(data, CONFIG)
    patience_only = dataclasses.replace(CONFIG, min_gain=0.0)  # per-epoch fits before the half-gain test
    key = resume_key(data, patience_only, model, 1, 50, None, None)
    assert resume_key(data, CONFIG, model, 1, 50, None, None) != key
    checks = dataclasses.replace(CONFIG, check_rows=100)
    assert resume_key(data, checks, model, 1, 50, None, None) != key
    assert resume_key(data, dataclasses.replace(checks, min_gain=0.5), model, 1, 50, None, None) != key
    schedules, generators = make_schedules(model, patience_only), split_rows(data, patience_only)
    saved = snapshot(FitState(steps=7, best=1.5), key, model, schedules, generators)
    for name in ("rows", "window_nll", "window_rows"):  # a state written before these existed
        del saved[name]
    for name in ("rows", "best"):
        del saved["history"][name]
    save_state(tmp_path / "state.pt", saved)
    state = FitState()
    restore(load_state(tmp_path / "state.pt", key), state, model, schedules, generators)
    assert (state.steps, state.best, state.window_rows, state.rows, state.history["best"]) == (7, 1.5, 0, 0, [])


def test_plugins_check_their_scoring_settings():
    with pytest.raises(InputError, match="min_gain"):
        PluGeN({"a": "binary"}, min_gain=-0.1).fit(torch.randn(50, 4).numpy(), torch.ones(50, 1).numpy())
    with pytest.raises(InputError, match="check_rows"):
        PluGeN({"a": "binary"}, check_rows=-1).fit(torch.randn(50, 4).numpy(), torch.ones(50, 1).numpy())
