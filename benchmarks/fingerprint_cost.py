"""What the resume fingerprint of a streamed fit costs (plugen.resume.fingerprint over every row).

    python benchmarks/fingerprint_cost.py                     # 1M x 512 float32 memmap, extrapolated to 10M
    python benchmarks/fingerprint_cost.py --rows 200000       # a quick run

Writes a memory-mapped ``.npy`` of random float32 latents (and one binary label) in a temporary
folder, then times ``fingerprint`` over a ``StreamedRows`` of it, the way ``fit(..., checkpoint=)``
computes it: every block of latents read from disk with ``os.pread`` and hashed (sha256 on a few
threads), then the encoded labels. Two passes are timed: the first right after writing the file
(the page cache holds what fits), the second with it warm; both are extrapolated linearly to
``--target`` rows. The peak resident memory of the process is reported too (it must not grow with
the number of rows). Writes ``benchmarks/results/fingerprint_cost.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from plugen.batches import BLOCK_ROWS, BlockReader, StreamedRows
from plugen.resume import HASH_THREADS, fingerprint


def write_latents(path: Path, rows: int, features: int, seed: int = 0) -> None:
    """Random float32 latents (rows, features) as an ``.npy``, written block by block with plain
    file writes (writing through a memory map would count the file's pages in this process's
    resident memory, and hide what the fingerprint itself holds)."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, features)})
        for start in range(0, rows, 8192):
            f.write(rng.standard_normal((min(rows, start + 8192) - start, features), dtype=np.float32).tobytes())


def time_fingerprint(path: Path, labels: np.ndarray) -> float:
    reader = BlockReader(np.load(path, mmap_mode="r"))
    rows = StreamedRows(reader, labels, lambda y: y, torch.device("cpu"), torch.float32, 0)
    try:
        start = time.perf_counter()
        fingerprint({"settings": 1}, rows.fingerprint_rows(), rows.n, rows.features)
        return time.perf_counter() - start
    finally:
        reader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--target", type=int, default=10_000_000, help="rows to extrapolate to")
    parser.add_argument("--dir", help="folder for the temporary .npy (default: the system's temporary folder)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fingerprint_cost"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "z.npy"
        t0 = time.perf_counter()
        write_latents(path, args.rows, args.features)
        written = time.perf_counter() - t0
        labels = np.random.default_rng(1).integers(0, 2, (args.rows, 1)).astype(np.float64)
        first = time_fingerprint(path, labels)
        second = time_fingerprint(path, labels)
        size = path.stat().st_size
    scale = args.target / args.rows
    result = {
        "rows": args.rows,
        "features": args.features,
        "bytes": size,
        "write_seconds": written,
        "fingerprint_seconds": [first, second],
        "gb_per_second": [size / first / 1e9, size / second / 1e9],
        "extrapolated_rows": args.target,
        "extrapolated_seconds": [first * scale, second * scale],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "block_rows": BLOCK_ROWS,
        "hash_threads": HASH_THREADS,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "command": " ".join(sys.argv),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = [
        "# Resume fingerprint cost (every row, streamed)",
        "",
        f"{args.rows:,} x {args.features} float32 ({size / 1e9:.2f} GB), {HASH_THREADS} hashing threads, "
        f"{os.cpu_count()} CPUs; `{result['command']}`",
        "",
        "| pass | seconds | GB/s | extrapolated to " + f"{args.target:,} rows |",
        "|---|---|---|---|",
        f"| first (just written) | {first:.2f} | {result['gb_per_second'][0]:.2f} | {first * scale:.1f} s |",
        f"| second (warm cache) | {second:.2f} | {result['gb_per_second'][1]:.2f} | {second * scale:.1f} s |",
        "",
        f"Peak resident memory of the process: {result['peak_rss_mb']:.0f} MB.",
    ]
    out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
