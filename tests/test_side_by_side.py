"""Plugins fitted side by side in worker processes: the same plugins as fitted here, errors raised here."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from plugen.data import entangled
from plugen.errors import InputError, NotFittedError
from plugen.lab.side_by_side import SideBySide
from plugen.plugins import FPN, PluGeN

pytestmark = pytest.mark.distributed  # starts worker processes

DATA = entangled(n=600, latent_dim=8, seed=3)
OPTIONS = {"max_epochs": 4, "seed": 5}


@contextmanager
def one_thread():
    """The workers compute on one thread; a second one may sum in another order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def unfitted():
    return {"PluGeN": PluGeN(DATA.labels, **OPTIONS), "FPN": FPN(DATA.labels, **OPTIONS)}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 1])
def test_side_by_side_fits_are_the_fits_made_here(workers):
    plugins = unfitted()
    with SideBySide(workers) as pool:
        fitted = pool.fit(plugins, DATA.Z, DATA.Y)
    assert list(fitted) == ["PluGeN", "FPN"] and set(pool.seconds) == {"PluGeN", "FPN"}
    with one_thread():
        for name, plugin in unfitted().items():
            here = plugin.fit(DATA.Z, DATA.Y)
            assert fitted[name].history_["best_nll"] == here.history_["best_nll"]
            assert np.array_equal(fitted[name].predict(DATA.Z[:50]), here.predict(DATA.Z[:50]), equal_nan=True)
            assert np.array_equal(fitted[name].sample(5, {"a": 1}, seed=0), here.sample(5, {"a": 1}, seed=0))
    for plugin in plugins.values():  # the plugins passed in stay as they were
        with pytest.raises(NotFittedError):
            plugin.predict(DATA.Z[:2])
    assert fitted["PluGeN"].progress is True  # the setting comes back as given


def test_an_error_in_a_worker_is_raised_here_and_the_pool_goes_on():
    bad = DATA.Z.copy()
    bad[4, 1] = np.nan
    with SideBySide(2) as pool:
        with pytest.raises(InputError, match="NaN"):
            pool.fit(unfitted(), bad, DATA.Y)
        assert set(pool.fit(unfitted(), DATA.Z, DATA.Y)) == {"PluGeN", "FPN"}


def test_fit_options_reach_every_fit_but_on_epoch_cannot():
    groups = np.arange(len(DATA.Z)) // 6
    with SideBySide(2) as pool:
        fitted = pool.fit(unfitted(), DATA.Z, DATA.Y, groups=groups)
        with pytest.raises(InputError, match="on_epoch"):
            pool.fit(unfitted(), DATA.Z, DATA.Y, on_epoch=lambda epoch, stats: None)
    with one_thread():
        here = FPN(DATA.labels, **OPTIONS).fit(DATA.Z, DATA.Y, groups=groups)
    assert fitted["FPN"].history_["best_nll"] == here.history_["best_nll"]


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
def test_a_bad_number_of_workers_is_named(workers):
    with pytest.raises(InputError, match="workers must be a whole number >= 1"):
        SideBySide(workers)
