"""Encode a whole data set through a backbone into one latents ``.npy``, in shards when parallel.

Under ``torchrun --nproc_per_node=P -m plugen encode ...`` each process encodes a contiguous slice
of the inputs and writes its own shard file; once all are written, the first process concatenates
them into the output (streamed, so the merge holds one shard at a time) and removes the shards.
Every file appears atomically: an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from plugen import distributed
from plugen.errors import InputError


def read_inputs(path: str | Path):
    """Samples to encode: an ``.npy`` array (images (n, C, H, W) in [0, 1], memory-mapped), or
    SMILES, one per line (``.smi``/``.txt``: the first field) or a ``.csv`` with a ``smiles`` column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"inputs file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise InputError(f"cannot read {path} as a numeric .npy array ({exc})") from None
    if suffix in (".smi", ".txt"):
        return _smiles_lines(path)
    if suffix == ".csv":
        import csv

        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or "smiles" not in {k.strip().lower() for k in rows[0]}:
            raise InputError(f"{path} needs a 'smiles' column")
        key = next(k for k in rows[0] if k.strip().lower() == "smiles")
        return [row[key].strip() for row in rows]
    raise InputError(f"unsupported inputs file {path.name}; use .npy (images), .smi, .txt or .csv (SMILES)")


def _smiles_lines(path: Path) -> list[str]:
    """The first field of every line of a SMILES file, in order: a blank line is an empty SMILES
    (encoded as a NaN row, so that row i of the latents is line i of the file)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():  # the end of the file, not a line
        lines.pop()
    return [line.split()[0] if line.strip() else "" for line in lines]


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of process ``rank`` of ``world``: contiguous, sizes differ by at most 1."""
    return rank * n // world, (rank + 1) * n // world


def encode_to_file(backbone, inputs, output: str | Path, batch_size: int = 256, progress: bool = True) -> Path | None:
    """Encode ``inputs`` with ``backbone.encode`` into ``output`` (.npy, float32 (n, latent_dim)).

    Returns the output path in the process that wrote it, None in the others.
    """
    output = Path(output)
    if output.suffix.lower() != ".npy":
        raise InputError(f"the latents output must be a .npy file, got {output.name}")
    rank, world = distributed.rank_and_world()
    start, stop = shard_bounds(len(inputs), rank, world)
    shard = _shard_path(output, rank, world) if world > 1 else output
    latents = np.empty((stop - start, backbone.latent_dim), dtype=np.float32)
    bar = tqdm(
        total=stop - start,
        desc=f"encode {rank}/{world}" if world > 1 else "encode",
        unit="sample",
        disable=not progress,
        leave=False,
    )
    for i in range(start, stop, batch_size):
        j = min(stop, i + batch_size)
        latents[i - start : j - start] = np.asarray(backbone.encode(inputs[i:j]), dtype=np.float32)
        bar.update(j - i)
    bar.close()
    _save_atomically(shard, latents)
    distributed.barrier()
    if world == 1:
        return output
    if rank == 0:
        _merge([_shard_path(output, r, world) for r in range(world)], output, len(inputs), backbone.latent_dim)
    distributed.barrier()
    return output if rank == 0 else None


def _shard_path(output: Path, rank: int, world: int) -> Path:
    return output.with_name(f"{output.stem}.shard-{rank}-of-{world}.npy")


def _save_atomically(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _merge(shards: list[Path], output: Path, n: int, latent_dim: int) -> None:
    """Concatenate shard files into ``output`` one shard at a time, then delete the shards."""
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".npy", dir=output.parent)
    os.close(fd)
    try:
        merged = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, latent_dim))
        row = 0
        for path in shards:
            part = np.load(path, mmap_mode="r")
            merged[row : row + len(part)] = part
            row += len(part)
        merged.flush()
        del merged
        if row != n:
            raise InputError(f"the shards hold {row} rows, expected {n}")
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for path in shards:
        path.unlink()
