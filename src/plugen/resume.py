"""The resumable state of a fit, written after every epoch so that a killed fit loses nothing.

The file holds everything the training loop needs to go on exactly where it stopped: the weights,
the best weights so far, the optimiser and both learning-rate schedulers, the random generators,
the early-stopping counters and the history. It is written atomically (temporary file, then
rename) and carries a fingerprint of the data and settings, so it is never applied to another fit.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from plugen.errors import CheckpointError
from plugen.replace import apply_umask

FORMAT = "plugen-training-state/1"
#: threads that hash blocks of the data for the fingerprint
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))


def fingerprint(settings: dict, rows: Iterable[np.ndarray], n: int, features: int) -> str:
    """sha256 of the training settings, the data's size and every row of the data.

    ``rows``: the data in blocks (latents, then labels), as the row sources hand them out, so a
    memory-mapped file is read once, a block at a time. Blocks are hashed on a few threads
    (hashlib releases the GIL) and their digests hashed in order, so the result does not depend
    on the number of threads.
    """
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(f"{n}x{features}".encode())
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        for group in _groups(iter(rows), HASH_THREADS * 2):
            for digest in pool.map(_digest, group):
                h.update(digest)
    return h.hexdigest()


def _groups(blocks: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive lists of ``size`` blocks: at most that many blocks are in memory at once."""
    while group := list(itertools.islice(blocks, size)):
        yield group


def _digest(block: np.ndarray) -> bytes:
    block = np.ascontiguousarray(block)
    h = hashlib.sha256(f"{block.dtype.str}{block.shape}".encode())
    h.update(block.reshape(-1).view(np.uint8))
    return h.digest()


def save_state(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state, format=FORMAT), f)
        apply_umask(Path(tmp))
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
        raise CheckpointError(
            f"cannot read the training state {path} (corrupted or truncated?): {exc}; "
            "delete it to start the fit from scratch"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a plugen training state; delete it to start from scratch")
    if state.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(
            f"the training state {path} belongs to a fit on other data or with other settings (the latents, "
            "the labels or a setting differ from the interrupted fit's); not resuming it. Delete it (plugen "
            "fit: --restart) to start this fit from scratch, or give the interrupted fit's data and settings"
        )
    return state
