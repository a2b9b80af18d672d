"""Re-encoded edits and samples: edit (or sample), then decode, encode and set the labels again.

A plugin edits latents (PluGeN: set the label coordinates ``c_i`` of ``F^-1(z)`` and map back,
the "Inference" paragraph of the PluGeN paper; FPN: ``u = T^-1(z | y)``, then ``T(u | y')``, its
section 3.5). The decoder then turns the edited latent into a sample whose *other* attributes may
drift although the flow's coordinates for them are unchanged: the edited latent lies where the
flow and the decoder agree less well than on encoded data (the image results page measures it).

:func:`reencoded_edit` closes the loop through the backbone: after the plain edit it ``rounds``
times decodes the latents, encodes the samples again (so the latent is one the encoder produces
for a real-looking sample) and edits that latent with *every* label requested: the changed ones
to the request, the others to the values the plugin read on the source latents
(:meth:`predict`). It needs a backbone that can encode (an autoencoder or VAE, the molecule VAE;
not a GAN without inversion) and costs one decode and one encode per round. :func:`reencode` is
the loop alone, setting only the labels asked for: it pulls a plugin's *samples* towards latents
the encoder produces (on the molecule VAE, de novo molecules nearer their targets and with a more
realistic synthetic accessibility; see the molecule results page).

>>> from plugen.reencode import reencoded_edit                         # doctest: +SKIP
>>> Z2 = reencoded_edit(plugin, backbone, Z, {"digit": 3}, rounds=2)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from plugen.errors import InputError
from plugen.labels import targets_checked


def reencoded_edit(plugin, backbone, Z, changes: Mapping[str, Any], rounds: int = 1, **edit_kwargs) -> np.ndarray:
    """``plugin.edit(Z, changes, **edit_kwargs)`` followed by ``rounds`` rounds of :func:`reencode`
    in which the labels not in ``changes`` are held at ``plugin.predict(Z)`` (FPN's ``y_source=``
    serves the first edit only; the held labels are its classifier's reading). ``rounds=0`` is the
    plain edit."""
    _check(backbone, rounds)
    edited = np.asarray(plugin.edit(Z, changes, **edit_kwargs))
    if not rounds:
        return edited
    source = plugin.predict(Z)
    held = {label.name: source[:, i] for i, label in enumerate(plugin.schema_.labels) if label.name not in changes}
    return _rounds(plugin, backbone, edited, {**held, **changes}, rounds)


def reencode(plugin, backbone, Z, requests: Mapping[str, Any], rounds: int = 1) -> np.ndarray:
    """``rounds`` times: decode the latents, encode the samples again and set the labels in
    ``requests`` (a value or one per row) on the encoded latents; the other labels follow the
    re-encoded sample. Alone it serves de novo samples (:func:`plugen.molecules.design.generate`);
    :func:`reencoded_edit` requests every label. Rows whose decoded sample cannot be encoded again
    (a molecule that failed to decode, or whose tokens the encoder lacks) keep their latest
    latent."""
    _check(backbone, rounds)
    plugin.schema_.requests(requests, len(Z))  # bad requests fail (and far ones warn) before any decoding
    return _rounds(plugin, backbone, Z, requests, rounds)


def _rounds(plugin, backbone, Z, requests: Mapping[str, Any], rounds: int) -> np.ndarray:
    """The loop of :func:`reencode`. Its edits do not warn of extrapolation: the caller's own
    requests have been checked, and held labels read by ``predict`` may lie a little outside the
    training range without anyone having asked for it."""
    Z = np.array(Z)
    with targets_checked():
        for _ in range(rounds):
            again = np.asarray(backbone.encode(backbone.decode(Z)), dtype=Z.dtype)
            ok = np.isfinite(again).all(axis=1)
            if not ok.any():
                break
            Z[ok] = np.asarray(plugin.edit(again[ok], {k: _rows(v, ok) for k, v in requests.items()}))
    return Z


def _check(backbone, rounds) -> None:
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
        raise InputError(f"rounds must be an integer >= 0, got {rounds!r}")
    if rounds and not getattr(backbone, "can_encode", False):
        raise InputError(
            f"backbone {getattr(backbone, 'name', backbone)!r} cannot encode, so its samples cannot be "
            "re-encoded; use rounds=0"
        )


def _rows(value, ok: np.ndarray):
    """A request's value for the rows ``ok``: scalars stay, per-row arrays are subset."""
    array = np.asarray(value)
    return array[ok] if array.ndim and array.shape[0] == ok.shape[0] else value


class Reencoded:
    """A plugin whose ``edit`` is :func:`reencoded_edit` and whose ``sample`` is followed by
    :func:`reencode` with the requested labels (for the evaluation harness, which calls ``edit``
    and ``sample``); everything else is the plugin's own."""

    def __init__(self, plugin, backbone, rounds: int = 1):
        self.plugin, self.backbone, self.rounds = plugin, backbone, rounds

    def edit(self, Z, changes: Mapping[str, Any]):
        return reencoded_edit(self.plugin, self.backbone, Z, changes, self.rounds)

    def sample(self, n: int, conditions: Mapping[str, Any] | None = None, **kwargs):
        conditions = dict(conditions or {})
        return reencode(
            self.plugin, self.backbone, self.plugin.sample(n, conditions, **kwargs), conditions, self.rounds
        )

    def __getattr__(self, name: str):
        return getattr(self.plugin, name)
