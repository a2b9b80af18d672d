"""The resumable state of a fit, written after every epoch so that a killed fit loses nothing.

The file holds everything the training loop needs to go on exactly where it stopped: the weights,
the best weights so far, the optimiser and both learning-rate schedulers, the random generators,
the early-stopping counters and the history. It is written atomically (temporary file, then
rename) and carries a fingerprint of the data and settings, so it is never applied to another fit.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from plugen.errors import CheckpointError

FORMAT = "plugen-training-state/1"


def fingerprint(settings: dict, rows: tuple[np.ndarray, np.ndarray], n: int, features: int) -> str:
    """sha256 of the training settings, the data's size and a few of its rows."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(f"{n}x{features}".encode())
    for array in rows:
        h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return h.hexdigest()


def save_state(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state, format=FORMAT), f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: Path, expected_fingerprint: str) -> dict | None:
    """The state saved at ``path``, or None when there is none. Refuses a corrupted file or one
    written by a fit on other data or with other settings."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read the training state {path} (corrupted or truncated?): {exc}; "
                              "delete it to start the fit from scratch") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a plugen training state; delete it to start from scratch")
    if state.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(
            f"the training state {path} belongs to a fit on other data or with other settings; "
            "delete it (or use another checkpoint path) to start this fit from scratch"
        )
    return state
