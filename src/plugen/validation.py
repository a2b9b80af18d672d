"""Checks at the edges of the plugins' methods: what comes in, and that what goes out is finite.

A request can be valid number by number and still be one the flow cannot answer: a label value of
1e300, a temperature of 1e300, latents of 1e39 given to a float32 plugin. Such requests are
refused with :class:`~plugen.errors.InputError` instead of returning NaN or Inf.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from plugen.errors import InputError


def _bad_rows(bad: Tensor) -> tuple[int, int, int]:
    """Rows with any True in ``bad`` (first axis = rows): how many, of how many, the first."""
    rows = bad.reshape(bad.shape[0], -1).any(dim=1) if bad.ndim else bad.reshape(1)
    return int(rows.sum()), rows.numel(), int(torch.nonzero(rows)[0, 0])


def finite_output(x: Tensor, what: str = "the result") -> Tensor:
    """``x`` unchanged, or an :class:`InputError` when any of it is NaN or Inf."""
    bad = ~torch.isfinite(x)
    if bad.any():
        k, n, first = _bad_rows(bad)
        raise InputError(
            f"{what} is not finite in {k} of {n} rows (first: row {first}): the latents or the requested values lie "
            f"too far outside what the plugin was fitted on for {str(x.dtype).replace('torch.', '')} arithmetic; "
            "request values nearer the labels' training range, a smaller temperature, or latents of the "
            "backbone's usual size"
        )
    return x


def finite_posteriors(posteriors: list[Tensor]) -> list[Tensor]:
    """Per-label posteriors unchanged, or an :class:`InputError` when any is NaN or Inf (a
    prediction thresholded from NaN would otherwise read as class 0)."""
    for p in posteriors:
        finite_output(p, "the prediction")
    return posteriors


def representable(z: Tensor, name: str = "Z") -> Tensor:
    """Latents converted to the plugin's dtype, refused when the conversion overflowed."""
    bad = ~torch.isfinite(z)
    if bad.any():
        k, n, first = _bad_rows(bad)
        limit = torch.finfo(z.dtype).max
        raise InputError(
            f"{name} has values beyond the range of the plugin's {str(z.dtype).replace('torch.', '')} "
            f"(|z| <= {limit:.3g}) in {k} of {n} rows (first: row {first}); latents must be finite in it"
        )
    return z


def check_edit_options(plugin, kwargs: Mapping[str, Any]) -> None:
    """Refuse keyword arguments that this plugin's edit does not take (``y_source`` is FPN's)."""
    accepted = set(inspect.signature(plugin._edit).parameters) - {"z", "requests"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        takes = f"it takes {sorted(accepted)}" if accepted else "it takes no options"
        raise InputError(
            f"{type(plugin).__name__}.edit does not take {unknown} ({takes}; y_source is FPN's: "
            "PluGeN needs no source labels)"
        )


def traverse_values(values) -> np.ndarray:
    """The values of a traversal as a flat float array, refused when empty or not numeric."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"traverse values must be numbers, got {values!r}") from None
    if array.size == 0:
        raise InputError("traverse needs at least one value, got none")
    return array
