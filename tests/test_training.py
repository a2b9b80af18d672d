import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from plugen import InputError, TrainingError
from plugen.batches import InMemoryRows
from plugen.resume import load_state, save_state
from plugen.training import (
    LARGE_BATCH,
    LARGE_BATCH_LR,
    MIN_STEPS_PER_EPOCH,
    SMALL_BATCH,
    SMALL_BATCH_LR,
    EarlyStopping,
    FitState,
    Generators,
    Loop,
    TrainingConfig,
    evaluate,
    held_out_rows,
    make_schedules,
    resolve,
    resolve_batch_size,
    resolve_device,
    restore,
    resume_key,
    run_epoch,
    snapshot,
    split_rows,
    train,
)

CONFIG = TrainingConfig(
    batch_size=64, lr=1e-2, max_epochs=200, patience=5, val_fraction=0.2, warmup_steps=100, progress=False
)


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
    Z = (
        torch.randn(1000, 1, generator=torch.Generator().manual_seed(0)) + 3.0
    )  # not the global RNG: other tests move it
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
    summary = train(
        model,
        gaussian_nll(model),
        rows(torch.randn(500, 1)),
        CONFIG,
        on_epoch=lambda epoch, stats: seen.append(epoch) or epoch == 3,
    )
    assert seen == [1, 2, 3] and summary["stopped"] == "callback"


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.slow
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


@pytest.mark.slow
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


# ---------------------------------------------------------------------- the pieces of the loop
def gaussian_rows(n=500, seed=0, groups=None):
    Z = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed)) + 3.0
    return InMemoryRows(Z, torch.zeros(n, 1), torch.device("cpu"), groups)


def test_split_rows_holds_out_the_same_rows_for_every_restart_seed():
    held_out = []
    for seed in (0, 1):
        data = gaussian_rows()
        generators = split_rows(data, dataclasses.replace(CONFIG, seed=seed, split_seed=5))
        held_out.append(data.validation()[0])
        assert data.n_val == 100 and data.n_train == 400
        assert generators.augment is generators.batches  # one process: one generator for both
        first = torch.randperm(10, generator=generators.batches)
        assert torch.equal(first, torch.randperm(10, generator=torch.Generator().manual_seed(seed)))
    assert torch.equal(held_out[0], held_out[1])


def test_split_rows_gives_each_process_its_own_augmentation_generator():
    generators = [split_rows(gaussian_rows(), CONFIG, rank, world=2) for rank in (0, 1)]
    order = [torch.randperm(100, generator=g.batches) for g in generators]
    noise = [torch.randn(5, generator=g.augment) for g in generators]
    assert torch.equal(order[0], order[1]) and not torch.equal(noise[0], noise[1])


def test_held_out_rows_carry_one_fixed_draw_of_the_latent_noise():
    data = gaussian_rows()
    split_rows(data, CONFIG)
    Z_val, _ = data.validation()
    assert held_out_rows(data, None, seed=0)[0] is Z_val
    noisy = [held_out_rows(data, torch.tensor([0.5]), seed=0)[0] for _ in range(2)]
    assert torch.equal(noisy[0], noisy[1])
    assert (noisy[0] - Z_val).std().item() == pytest.approx(0.5, rel=0.2)
    tiny = gaussian_rows(n=40)
    split_rows(tiny, CONFIG)
    assert held_out_rows(tiny, torch.tensor([0.5]), seed=0) is None


AUTOMATIC = dataclasses.replace(CONFIG, batch_size=None, lr=None, warmup_steps=None)
#: the fewest training rows that get the large automatic batch
ENOUGH = MIN_STEPS_PER_EPOCH * LARGE_BATCH


def test_the_automatic_batch_is_large_once_the_training_rows_fill_enough_large_batches():
    assert resolve_batch_size(AUTOMATIC, ENOUGH) == LARGE_BATCH
    assert resolve_batch_size(AUTOMATIC, ENOUGH - 1) == SMALL_BATCH
    assert resolve_batch_size(dataclasses.replace(AUTOMATIC, batch_size=100), ENOUGH) == 100


def test_the_automatic_learning_rate_and_warm_up_follow_the_resolved_batch():
    large, small = resolve(AUTOMATIC, ENOUGH), resolve(AUTOMATIC, 1000)
    assert (large.batch_size, large.lr, large.warmup_steps) == (LARGE_BATCH, LARGE_BATCH_LR, MIN_STEPS_PER_EPOCH // 2)
    assert (small.batch_size, small.lr, small.warmup_steps) == (SMALL_BATCH, SMALL_BATCH_LR, 2)  # 4 batches an epoch
    assert resolve(dataclasses.replace(AUTOMATIC, batch_size=1024), 1000).lr == LARGE_BATCH_LR
    assert resolve(dataclasses.replace(AUTOMATIC, lr=1e-3), ENOUGH).lr == 1e-3


@pytest.mark.parametrize(
    "n_train, batch_size, lr", [(ENOUGH, LARGE_BATCH, LARGE_BATCH_LR), (4000, SMALL_BATCH, SMALL_BATCH_LR)]
)
def test_a_fit_trains_with_the_automatic_batch_and_rate_and_reports_them(n_train, batch_size, lr):
    model = Gaussian()
    Z = torch.randn(n_train + 1000, 1, generator=torch.Generator().manual_seed(0)) + 3.0
    config = dataclasses.replace(AUTOMATIC, max_epochs=1, val_fraction=1000 / (n_train + 1000))
    summary = train(model, gaussian_nll(model), rows(Z), config)
    assert summary["n_train"] == n_train
    assert (summary["batch_size"], summary["lr"]) == (batch_size, lr)
    assert summary["steps"] == math.ceil(n_train / batch_size)
    assert summary["history"]["lr"][-1] == pytest.approx(lr)  # the warm-up ended within the epoch


def test_warm_up_then_plateau_halving():
    config = dataclasses.replace(CONFIG, lr=0.1, warmup_steps=4, patience=3)
    schedules = make_schedules(Gaussian(), config)
    lrs = []
    for steps in range(6):
        lrs.append(schedules.lr)
        schedules.optimizer.step()
        schedules.after_step(steps)
    assert lrs == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    schedules.after_epoch(steps=2, score=1.0)  # still warming up: the plateau schedule does not count it
    assert schedules.plateau.num_bad_epochs == 0
    for _ in range(3):  # a best, then max(1, 3 // 3) + 1 = 2 epochs without improvement
        schedules.after_epoch(steps=6, score=1.0)
    assert schedules.lr == pytest.approx(0.05)


def test_early_stopping_counts_only_drops_beyond_min_delta_and_keeps_a_copy_of_the_best_weights():
    model, state = Gaussian(), FitState()
    rule = EarlyStopping(patience=2, min_delta=0.1)
    rule.update(state, 1, 1.0, model)
    with torch.no_grad():
        model.mu += 1.0  # the kept weights are a copy, not a view of the live ones
    rule.update(state, 2, 0.95, model)  # a drop, but within min_delta
    assert (state.best, state.best_epoch, state.stale) == (1.0, 1, 1) and not rule.exhausted(state)
    assert state.best_state["mu"].item() == 0.0
    rule.update(state, 3, 0.95, model)
    assert rule.exhausted(state)
    rule.update(state, 4, 0.5, model)
    assert (state.best, state.best_epoch, state.stale) == (0.5, 4, 0) and state.best_state["mu"].item() == 1.0


def make_loop(model, data, config=CONFIG, nll=None, **options):
    generators = split_rows(data, config)
    return Loop(
        model,
        nll or gaussian_nll(model),
        data,
        generators,
        make_schedules(model, config),
        batch_size=config.batch_size,
        grad_clip=config.grad_clip,
        **options,
    )


def test_an_epoch_without_learning_scores_the_training_rows():
    model, data = Gaussian(), gaussian_rows()
    loop = make_loop(model, data, dataclasses.replace(CONFIG, lr=0.0))
    state = FitState()
    train_nll, stopped = run_epoch(loop, state, epoch=1)
    assert stopped is None and state.steps == 7  # 400 training rows in batches of 64
    assert train_nll == pytest.approx(evaluate(model, gaussian_nll(model), data.Z_train, data.T_train))
    assert model.training is False  # evaluate leaves eval mode on


def test_an_epoch_stops_at_the_first_non_finite_batch():
    model, data = Gaussian(), gaussian_rows()
    loop = make_loop(model, data, nll=nan_after(model, 3))
    state = FitState()
    train_nll, stopped = run_epoch(loop, state, epoch=2)
    assert stopped == "non-finite loss at epoch 2, batch 4" and math.isnan(train_nll)
    assert state.steps == 3  # the bad batch takes no step


def test_batches_are_augmented_from_the_batch_generator_in_turn():
    model, data = Gaussian(), gaussian_rows()
    seen = []

    def augment(t, generator):
        seen.append(torch.randint(1000, (1,), generator=generator).item())
        return t + 1

    loop = make_loop(model, data, augment=augment, latent_noise=torch.tensor([0.0]))
    batches = list(loop.batches())
    assert len(seen) == len(batches) == 7 and all(torch.equal(t, torch.ones_like(t)) for _, t, _ in batches)
    assert sum(rows for _, _, rows in batches) == 400


def test_evaluate_in_chunks_equals_one_pass():
    model, Z = Gaussian(), torch.randn(1000, 1)
    T = torch.zeros(1000, 1)
    nll = gaussian_nll(model)
    assert evaluate(model, nll, Z, T, chunk=64) == pytest.approx(evaluate(model, nll, Z, T), rel=1e-6)
    assert evaluate(model, nll, Z, T) == pytest.approx(0.5 * (Z[:, 0] ** 2).mean().item(), rel=1e-6)


def test_a_restored_snapshot_goes_on_exactly_as_the_fit_it_was_taken_from(tmp_path):
    runs = []
    for _ in range(2):
        model = Gaussian()
        loop = make_loop(model, gaussian_rows(), latent_noise=torch.tensor([0.1]))
        state = FitState()
        run_epoch(loop, state, 1)
        runs.append((model, loop, state))
    (model, loop, state), (other, other_loop, _) = runs
    with torch.no_grad():
        other.mu.zero_()  # the second fit forgets its weights; the snapshot brings them back
    save_state(tmp_path / "state.pt", snapshot(state, "key", model, loop.schedules, loop.generators))
    restored = FitState()
    restore(load_state(tmp_path / "state.pt", "key"), restored, other, other_loop.schedules, other_loop.generators)
    assert restored.steps == state.steps == 7
    run_epoch(loop, state, 2)
    run_epoch(other_loop, restored, 2)
    assert torch.equal(model.mu, other.mu) and model.mu.item() != 0.0


def test_resume_key_names_the_data_settings_and_grouping():
    model = Gaussian()

    def key(config=CONFIG, groups=None, latent_noise=None, objective=None):
        data = gaussian_rows(groups=groups)
        split_rows(data, config)
        return resume_key(data, config, model, 1, 64, latent_noise, objective)

    same = key()
    assert same == key()
    groups = np.repeat(np.arange(100), 5)
    others = [
        key(dataclasses.replace(CONFIG, lr=0.5)),
        key(dataclasses.replace(CONFIG, split_seed=3)),
        key(groups=groups),
        key(latent_noise=torch.tensor([0.1])),
        key(objective={"classifier_weight": 1.0}),
    ]
    assert len({same, *others}) == 6


def test_generators_state_round_trips_through_a_snapshot():
    model, data = Gaussian(), gaussian_rows()
    loop = make_loop(model, data)
    state = FitState()
    saved = snapshot(state, "key", model, loop.schedules, loop.generators)
    expected = torch.randperm(50, generator=loop.generators.batches)
    fresh = Generators(torch.Generator(), torch.Generator())
    restore(saved, FitState(), model, make_schedules(model, CONFIG), fresh)
    assert torch.equal(torch.randperm(50, generator=fresh.batches), expected)


class RelativeThreshold(EarlyStopping):
    """An improvement is a drop of more than ``min_delta`` times the best NLL so far."""

    def improved(self, score, best):
        return math.isinf(best) or score < best - self.min_delta * abs(best)


def test_another_stopping_rule_plugs_into_the_loop():
    Z = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0)) + 3.0
    first = Gaussian()
    default = train(first, gaussian_nll(first), rows(Z), CONFIG)
    model = Gaussian()
    summary = train(model, gaussian_nll(model), rows(Z), CONFIG, stopping=RelativeThreshold(patience=2, min_delta=0.3))
    assert summary["stopped"] == "early_stopping" and summary["epochs"] < default["epochs"]
    val = summary["history"]["val_nll"]
    assert summary["epochs"] == summary["best_epoch"] + 2
    assert all(score >= 0.7 * summary["best_nll"] for score in val[summary["best_epoch"] :])
