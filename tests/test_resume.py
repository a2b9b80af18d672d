"""A killed fit resumes from its per-epoch training state with nothing lost (plugen.resume)."""

import numpy as np
import pytest
import torch
from conftest import FAST, without_wall_times

from plugen import FPN, PluGeN
from plugen.errors import CheckpointError


class Killed(Exception):
    """Stands in for the process being killed after an epoch."""


def kill_at(epoch):
    def on_epoch(e, stats):
        if e == epoch:
            raise Killed

    return on_epoch


def settings():
    return dict(FAST, max_epochs=8, patience=100)


@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_resumed_fit_equals_an_uninterrupted_one(tmp_path, small, cls):
    Z, Y, labels = small
    state = tmp_path / "fit.state"
    whole = cls(labels, **settings()).fit(Z, Y)
    with pytest.raises(Killed):
        cls(labels, **settings()).fit(Z, Y, on_epoch=kill_at(5), checkpoint=state)
    assert state.is_file()  # written after epoch 4, the last finished one
    resumed = cls(labels, **settings()).fit(Z, Y, checkpoint=state)
    assert resumed.history_["resumed_from_epoch"] == 4
    assert without_wall_times(resumed.history_["history"]) == without_wall_times(whole.history_["history"])
    for name, value in whole.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[name]), name
    assert not state.exists()  # a finished fit removes its state


def test_state_of_another_fit_or_a_corrupted_one_is_refused(tmp_path, small):
    Z, Y, labels = small
    state = tmp_path / "fit.state"
    with pytest.raises(Killed):
        PluGeN(labels, **settings()).fit(Z, Y, on_epoch=kill_at(2), checkpoint=state)
    with pytest.raises(CheckpointError, match="other data or with other settings"):
        PluGeN(labels, **settings()).fit(Z[:500], Y[:500], checkpoint=state)
    with pytest.raises(CheckpointError, match="other data or with other settings"):
        PluGeN(labels, **dict(settings(), lr=1e-4)).fit(Z, Y, checkpoint=state)
    grouped = tmp_path / "grouped.state"
    with pytest.raises(Killed):
        PluGeN(labels, **settings()).fit(Z, Y, on_epoch=kill_at(2), checkpoint=grouped, groups=np.arange(600) // 5)
    with pytest.raises(CheckpointError, match="other data or with other settings"):  # other held-out rows
        PluGeN(labels, **settings()).fit(Z, Y, checkpoint=grouped, groups=np.arange(600) // 6)
    fpn_state = tmp_path / "fpn.state"
    with pytest.raises(Killed):
        FPN(labels, **settings()).fit(Z, Y, on_epoch=kill_at(2), checkpoint=fpn_state)
    with pytest.raises(CheckpointError, match="other data or with other settings"):  # another objective
        FPN(labels, **settings(), classifier_weight=2.0).fit(Z, Y, checkpoint=fpn_state)
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        PluGeN(labels, **settings()).fit(Z, Y, checkpoint=state)
