"""Where training rows come from: tensors in memory, or a memory-mapped ``.npy`` streamed from disk.

Both sources split the rows into a held-out part (for early stopping) and a training part, and hand
out mini-batches of ``(latents, encoded labels)``. Given group codes (one per row), they hold out
whole groups, so rows that are not independent (augmented copies of one image, molecules of one
scaffold) never sit on both sides of the split, where they would make early stopping trust an
overfitted flow. Under ``torch.distributed`` every process draws
the same global batches from the same seeded generator and keeps its own share (``rank::world``),
so P processes take the same optimisation path as one process with the same ``batch_size``.

The streamed source never holds more than one shuffle buffer of latents in memory: each epoch it
visits contiguous blocks of rows in random order, several blocks at a time, and shuffles within
that buffer. Blocks are read with plain file reads (``os.pread``) rather than through the memory
map, so pages of a file larger than RAM do not pile up in the process's resident memory.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from plugen.errors import InputError

#: a held-out split smaller than this is not trusted for early stopping
MIN_VALIDATION_ROWS = 32
#: rows per contiguous read of a streamed file, and blocks mixed in one shuffle buffer
BLOCK_ROWS = 4096
BUFFER_BLOCKS = 16
#: the streamed source holds out at most this many rows (held in memory) for early stopping
MAX_STREAMED_VALIDATION_ROWS = 50_000

Batch = tuple[Tensor, Tensor]
#: a training batch: this process's latents and labels, and the rows in the global batch
Share = tuple[Tensor, Tensor, int]


def validation_size(n: int, val_fraction: float) -> int:
    """Rows to hold out: ``val_fraction`` of ``n``, or 0 when either part would be too small."""
    n_val = int(round(n * val_fraction))
    if n_val < MIN_VALIDATION_ROWS or n - n_val < MIN_VALIDATION_ROWS:
        return 0  # too small to hold out: stop on the training loss instead
    return n_val


def held_out_groups(groups: np.ndarray, n_val: int, generator: torch.Generator) -> np.ndarray:
    """Sorted indices of the rows of whole groups, drawn in random order until they hold at least
    ``n_val`` rows; none when that leaves fewer than ``MIN_VALIDATION_ROWS`` to train on.
    ``groups``: integer codes 0..G-1, one per row."""
    if n_val == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(groups)
    order = torch.randperm(len(counts), generator=generator).numpy()
    taken = order[: int(np.searchsorted(np.cumsum(counts[order]), n_val)) + 1]
    idx = np.flatnonzero(np.isin(groups, taken))
    return idx if len(groups) - len(idx) >= MIN_VALIDATION_ROWS else np.zeros(0, dtype=np.int64)


def _share(idx, rank: int, world: int):
    """This process's part of a global batch's row indices."""
    return idx if world == 1 else idx[rank::world]


class InMemoryRows:
    """Latents ``Z`` (n, N) and encoded labels ``T`` (n, W) as tensors, moved to ``device`` once;
    ``groups``: optional integer codes (n,) of rows to hold out together."""

    def __init__(self, Z: Tensor, T: Tensor, device: torch.device, groups: np.ndarray | None = None):
        self.Z, self.T, self.device, self.groups = Z, T, device, groups
        self.n, self.features = Z.shape

    def split(self, val_fraction: float, generator: torch.Generator) -> None:
        n_val = validation_size(self.n, val_fraction)
        if self.groups is None:
            order = torch.randperm(self.n, generator=generator)
            val_idx, train_idx = order[:n_val], order[n_val:]
        else:
            held_out = torch.zeros(self.n, dtype=torch.bool)
            held_out[torch.as_tensor(held_out_groups(self.groups, n_val, generator))] = True
            val_idx, train_idx = held_out.nonzero()[:, 0], (~held_out).nonzero()[:, 0]
            n_val = len(val_idx)
        self.Z_train, self.T_train = self.Z[train_idx].to(self.device), self.T[train_idx].to(self.device)
        self.Z_val, self.T_val = self.Z[val_idx].to(self.device), self.T[val_idx].to(self.device)
        self.n_train, self.n_val = self.Z_train.shape[0], n_val

    def epoch(self, generator: torch.Generator, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[Share]:
        perm = torch.randperm(self.n_train, generator=generator).to(self.device)
        for b in range(math.ceil(self.n_train / batch_size)):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            mine = _share(idx, rank, world)
            yield self.Z_train[mine], self.T_train[mine], idx.numel()

    def validation(self) -> Batch:
        return self.Z_val, self.T_val

    def fingerprint_rows(self) -> Iterator[np.ndarray]:
        """Every row of the latents, then of the encoded labels, block by block (what
        :func:`plugen.resume.fingerprint` hashes to refuse resuming a fit on other data)."""
        for start in range(0, self.n, BLOCK_ROWS):
            yield self.Z[start : start + BLOCK_ROWS].cpu().numpy()
        for start in range(0, self.n, BLOCK_ROWS):
            yield self.T[start : start + BLOCK_ROWS].cpu().numpy().astype(np.float64)


class BlockReader:
    """Contiguous row ranges of a 2-D array; plain file reads for a memory-mapped ``.npy``."""

    def __init__(self, Z: np.ndarray):
        self.n, self.features = Z.shape
        self.dtype = Z.dtype
        # np.load(..., mmap_mode="r") gives an array whose base is the mmap itself; its offset is
        # only right for that array, not for slices of it (those are read through the map)
        direct = isinstance(Z, np.memmap) and isinstance(Z.base, mmap.mmap) and Z.flags.c_contiguous
        self.path = Z.filename if direct else None
        self.offset = Z.offset if direct else 0
        self.array = None if direct else Z
        self._fd: int | None = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a fresh in-memory array."""
        if self.path is None:
            return np.array(self.array[start:stop])
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        row_bytes = self.features * self.dtype.itemsize
        count = (stop - start) * row_bytes
        data = os.pread(self._fd, count, self.offset + start * row_bytes)
        if len(data) != count:
            raise InputError(f"{self.path} is shorter than its header says (truncated file?)")
        return np.frombuffer(data, dtype=self.dtype).reshape(stop - start, self.features).copy()

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, rows)`` of every block, in order."""
        for start in range(0, self.n, BLOCK_ROWS):
            yield start, self.read(start, min(self.n, start + BLOCK_ROWS))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def scan(reader: BlockReader, name: str = "Z") -> tuple[np.ndarray, np.ndarray]:
    """One pass over a streamed array: refuse NaN/Inf, and return the per-column mean and
    standard deviation (float64, Chan et al.'s pairwise update, so no second pass)."""
    count, mean, m2 = 0, np.zeros(reader.features), np.zeros(reader.features)
    for start, block in reader.blocks():
        if not np.isfinite(block).all():
            row = start + int(np.argwhere(~np.isfinite(block))[0][0])
            raise InputError(f"{name} contains NaN or Inf (first in row {row}); latents must be finite")
        block = block.astype(np.float64)
        k, block_mean = block.shape[0], block.mean(axis=0)
        delta = block_mean - mean
        m2 += ((block - block_mean) ** 2).sum(axis=0) + delta**2 * count * k / (count + k)
        mean += delta * k / (count + k)
        count += k
    return mean, np.sqrt(m2 / count)


class StreamedRows:
    """Rows of a large array (typically ``np.load(path, mmap_mode="r")``) read block by block.

    ``Y`` (n, K) labels stay in memory and are encoded per buffer by ``encode``. Memory held:
    one shuffle buffer (``BUFFER_BLOCKS * BLOCK_ROWS`` rows), the held-out rows (at most
    ``MAX_STREAMED_VALIDATION_ROWS``; with ``groups``, plus the rest of the group that reaches it)
    and a one-byte-per-row mask of which rows are held out.
    """

    def __init__(
        self,
        reader: BlockReader,
        Y: np.ndarray,
        encode: Callable[[np.ndarray], np.ndarray],
        device: torch.device,
        dtype: torch.dtype,
        seed: int,
        groups: np.ndarray | None = None,
    ):
        self.reader, self.Y, self.encode, self.groups = reader, Y, encode, groups
        self.device, self.dtype, self.seed = device, dtype, seed
        self.n, self.features = reader.n, reader.features

    def _tensors(self, Z: np.ndarray, Y: np.ndarray) -> Batch:
        z = torch.as_tensor(Z, dtype=self.dtype, device=self.device)
        return z, torch.as_tensor(self.encode(Y), dtype=self.dtype, device=self.device)

    def sample(self, rows: int, seed: int) -> Batch:
        """About ``rows`` rows from randomly chosen blocks (for data-dependent initialisation)."""
        n_blocks = math.ceil(self.n / BLOCK_ROWS)
        chosen = np.random.default_rng(seed).permutation(n_blocks)[: max(1, math.ceil(rows / BLOCK_ROWS))]
        starts = np.sort(chosen) * BLOCK_ROWS
        Z = np.concatenate([self.reader.read(s, min(self.n, s + BLOCK_ROWS)) for s in starts])
        Y = np.concatenate([self.Y[s : s + BLOCK_ROWS] for s in starts])
        return self._tensors(Z, Y)

    def split(self, val_fraction: float, generator: torch.Generator) -> None:
        n_val = min(validation_size(self.n, val_fraction), MAX_STREAMED_VALIDATION_ROWS)
        if self.groups is not None:
            val_idx = held_out_groups(self.groups, n_val, generator)
            n_val = len(val_idx)
        else:
            rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
            val_idx = np.sort(rng.choice(self.n, size=n_val, replace=False)) if n_val else np.zeros(0, dtype=np.int64)
        self.held_out = np.zeros(self.n, dtype=bool)
        self.held_out[val_idx] = True
        self.n_val, self.n_train = n_val, self.n - n_val
        Z_val = (
            np.concatenate([block[self.held_out[s : s + len(block)]] for s, block in self._blocks_with(val_idx)])
            if n_val
            else np.zeros((0, self.features), dtype=self.reader.dtype)
        )
        self.Z_val, self.T_val = self._tensors(Z_val, self.Y[val_idx])

    def _blocks_with(self, idx: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """The blocks that contain any of the sorted row indices ``idx``."""
        for b in np.unique(idx // BLOCK_ROWS):
            start = int(b) * BLOCK_ROWS
            yield start, self.reader.read(start, min(self.n, start + BLOCK_ROWS))

    def epoch(self, generator: torch.Generator, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[Share]:
        n_blocks = math.ceil(self.n / BLOCK_ROWS)
        order = torch.randperm(n_blocks, generator=generator).numpy()
        carry_z = np.zeros((0, self.features), dtype=self.reader.dtype)
        carry_y = np.zeros((0, self.Y.shape[1]))
        for g in range(0, n_blocks, BUFFER_BLOCKS):
            parts_z, parts_y = [carry_z], [carry_y]
            for b in order[g : g + BUFFER_BLOCKS]:
                start = int(b) * BLOCK_ROWS
                stop = min(self.n, start + BLOCK_ROWS)
                keep = ~self.held_out[start:stop]
                parts_z.append(self.reader.read(start, stop)[keep])
                parts_y.append(self.Y[start:stop][keep])
            Z, Y = np.concatenate(parts_z), np.concatenate(parts_y)
            perm = torch.randperm(Z.shape[0], generator=generator).numpy()
            last = g + BUFFER_BLOCKS >= n_blocks
            full = Z.shape[0] if last else (Z.shape[0] // batch_size) * batch_size
            for s in range(0, full, batch_size):
                idx = perm[s : min(full, s + batch_size)]
                mine = _share(idx, rank, world)
                yield (*self._tensors(Z[mine], Y[mine]), idx.size)
            carry_z, carry_y = Z[perm[full:]], Y[perm[full:]]

    def validation(self) -> Batch:
        return self.Z_val, self.T_val

    def fingerprint_rows(self) -> Iterator[np.ndarray]:
        """Every row of the latents (read block by block from disk), then of the encoded labels."""
        for _, block in self.reader.blocks():
            yield block
        for start in range(0, self.n, BLOCK_ROWS):
            yield np.asarray(self.encode(self.Y[start : start + BLOCK_ROWS]), dtype=np.float64)
