"""Shared fixtures: one synthetic entangled data set, independent probes, fitted plugins.

Fitting is the slow part of the suite, so each plugin is fitted once per session and reused by
every test that only reads it.
"""

import numpy as np
import pytest
import torch

from plugen import FPN, PluGeN
from plugen.data import entangled

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a whole test module, restored after (``pytestmark =
    pytest.mark.usefixtures("one_torch_thread")``): small batches through convolutions, GRUs and
    PointNets gain nothing from a second thread and stall badly when the two cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded_global_rng():
    """Every test starts from the same torch global RNG state, whatever ran before it."""
    torch.manual_seed(0)


#: fast but real training settings for the suite: one scoring per epoch, batch 256 (the earlier defaults;
#: tests/test_stopping.py tests the held-out checks)
FAST = dict(max_epochs=60, patience=8, progress=False, device="cpu", batch_size=256, check_rows=0)


@pytest.fixture(scope="session")
def data():
    """Train / test splits of 16-dim latents with labels a, b (binary), size, shape."""
    return entangled(n=5000, latent_dim=16, seed=3).split(0.8)


@pytest.fixture(scope="session")
def probes(data):
    from plugen.lab.evaluation import train_probes

    train, _ = data
    return train_probes(train.Z, train.Y, train.labels)


@pytest.fixture(scope="session")
def fitted(data):
    train, _ = data
    return {
        "plugen": PluGeN(train.labels, **FAST).fit(train.Z, train.Y),
        "fpn": FPN(train.labels, **FAST).fit(train.Z, train.Y),
    }


@pytest.fixture(params=["plugen", "fpn"])
def model(request, fitted):
    return fitted[request.param]


@pytest.fixture(scope="session")
def small():
    """A tiny data set for tests that fit their own plugin."""
    d = entangled(n=600, latent_dim=8, seed=5)
    return d.Z, d.Y, d.labels


def quick(cls, labels, **kw):
    return cls(labels, **{**FAST, "max_epochs": 3, **kw})


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def without_wall_times(history: dict) -> dict:
    """A fit's per-epoch history without its wall times, which differ between identical fits."""
    assert len(history["seconds"]) == len(history["train_nll"])
    return {k: v for k, v in history.items() if k != "seconds"}
