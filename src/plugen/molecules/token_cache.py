"""A tokenised molecule set on disk, for training a molecule VAE where RDKit and SELFIES are missing.

``python -m plugen.molecules.token_cache --source ../shared/data/moses/train.csv.gz --output moses-train.npz``
reads the ``SMILES`` column of a CSV, tokenises every row with the
tokenizer of :mod:`plugen.molecules.tokenizers` (the same ``split`` that :meth:`Tokenizer.encode`
uses, so RDKit must parse the molecule and SELFIES encode it) in worker processes, and writes one
zlib-compressed ``.npz``:

- ``ids``: ``(n, T)`` uint8 (uint16 past 255 tokens) token ids ``[bos, ..., eos]`` padded with 0;
- ``lengths``: ``(n,)`` uint16, tokens of each row including ``bos`` and ``eos``;
- ``rows``: ``(n,)`` int32, the row of each kept molecule in the source CSV (0-based);
- ``failed_rows`` / ``failed_reasons``: the rows that did not tokenise and why (never silently dropped);
- ``meta``: JSON with the vocabulary (``tokens``, specials first), the tokenizer kind, the source's
  sha256 and row count, the digest of the arrays (:func:`array_digest`), the versions and timings.

The vocabulary is built from the data (sorted tokens, as :meth:`Tokenizer.build` does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plugen.errors import CheckpointError, InputError
from plugen.molecules.tokenizers import SPECIALS, TOKENIZERS, EncodeError

#: molecules per work unit sent to a worker process
CHUNK = 5_000


@dataclass
class TokenCache:
    """A loaded cache: padded ids, lengths, source rows and the description (``meta``)."""

    ids: np.ndarray
    lengths: np.ndarray
    rows: np.ndarray
    failed_rows: np.ndarray
    failed_reasons: np.ndarray
    meta: dict

    @property
    def tokens(self) -> list[str]:
        return self.meta["tokens"]

    @property
    def digest(self) -> str:
        return self.meta["arrays_sha256"]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_digest(ids: np.ndarray, lengths: np.ndarray, rows: np.ndarray) -> str:
    """sha256 of the arrays a model trains on (what a resumed run checks it still reads)."""
    digest = hashlib.sha256()
    for a in (ids, lengths, rows):
        digest.update(str((a.dtype.str, a.shape)).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _tokenize_chunk(job: tuple[str, int, list[str]]):
    """Worker: (kind, first row, SMILES) -> local vocabulary, flat local ids, lengths, kept and failed rows."""
    kind, first, smiles = job
    from plugen.molecules.properties import quiet_rdkit

    quiet_rdkit()
    tok = TOKENIZERS[kind]([])
    vocab: dict[str, int] = {}
    flat, lengths, kept, failed, reasons = [], [], [], [], []
    for i, s in enumerate(smiles):
        try:
            tokens = tok.split(s.strip()) if isinstance(s, str) and s.strip() else None
            if tokens is None:
                raise EncodeError("empty or not a string")
        except EncodeError as exc:
            failed.append(first + i)
            reasons.append(str(exc))
            continue
        flat.extend(vocab.setdefault(t, len(vocab)) for t in tokens)
        lengths.append(len(tokens))
        kept.append(first + i)
    return list(vocab), np.asarray(flat, np.int32), np.asarray(lengths, np.int32), kept, failed, reasons


def _tokenize_parallel(smiles: list[str], kind: str, workers: int, progress: bool) -> list:
    from tqdm.auto import tqdm

    jobs = [(kind, i, smiles[i : i + CHUNK]) for i in range(0, len(smiles), CHUNK)]
    bar = tqdm(total=len(smiles), desc=f"tokenize ({workers} processes)", disable=not progress, mininterval=5)
    results = []
    if workers <= 1:
        for job in jobs:
            results.append(_tokenize_chunk(job))
            bar.update(len(job[2]))
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for result in pool.imap(_tokenize_chunk, jobs):
                results.append(result)
                bar.update(len(result[2]) + len(result[4]))
    bar.close()
    return results


def _assemble(results: list) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Global sorted vocabulary and the padded id matrix from the workers' local vocabularies."""
    vocabulary = sorted({t for r in results for t in r[0]} - set(SPECIALS))
    tokens = [*SPECIALS, *vocabulary]
    index = {t: i for i, t in enumerate(tokens)}
    pad, bos, eos = (index[t] for t in SPECIALS)
    lengths = np.concatenate([r[2] for r in results]) + 2 if results else np.zeros(0, np.int32)
    rows = np.asarray([k for r in results for k in r[3]], dtype=np.int32)
    width = int(lengths.max()) if len(lengths) else 2
    ids = np.full((len(lengths), width), pad, dtype=np.uint8 if len(tokens) <= 256 else np.uint16)
    at = 0
    for local, flat, lens, *_ in results:
        remap = np.asarray([index[t] for t in local], dtype=ids.dtype)
        ends = np.cumsum(lens)
        for j, (end, n) in enumerate(zip(ends, lens)):
            ids[at + j, 0] = bos
            ids[at + j, 1 : n + 1] = remap[flat[end - n : end]]
            ids[at + j, n + 1] = eos
        at += len(lens)
    return tokens, ids, lengths.astype(np.uint16), rows


def build_cache(
    source: str | Path,
    output: str | Path,
    kind: str = "selfies",
    workers: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Tokenise the ``SMILES`` column of ``source`` (its first ``limit`` rows when given) with
    ``workers`` processes (default: every core) and write the cache to ``output`` (atomically:
    a temporary file, then a rename). Returns the cache's ``meta``."""
    import pandas as pd

    if kind not in TOKENIZERS:
        raise InputError(f"unknown tokenizer {kind!r}; known: {sorted(TOKENIZERS)}")
    if not Path(source).is_file():
        raise InputError(f"molecule source {source} is missing")
    workers = int(workers or os.cpu_count() or 1)
    start = time.perf_counter()
    frame = pd.read_csv(source, nrows=limit)
    if "SMILES" not in frame.columns:
        raise InputError(f"{source} has no SMILES column (columns: {', '.join(map(str, frame.columns))})")
    smiles = frame["SMILES"].tolist()
    read_seconds = time.perf_counter() - start
    results = _tokenize_parallel(smiles, kind, workers, progress)
    tokenize_seconds = time.perf_counter() - start - read_seconds
    tokens, ids, lengths, rows = _assemble(results)
    failed = np.asarray([k for r in results for k in r[4]], dtype=np.int32)
    reasons = np.asarray([k for r in results for k in r[5]], dtype=str)
    meta = _describe(source, kind, tokens, ids, lengths, rows, failed, reasons, len(smiles), limit, workers)
    meta["seconds"] = {"read": round(read_seconds, 1), "tokenize": round(tokenize_seconds, 1)}
    _write(output, ids, lengths, rows, failed, reasons, meta)
    meta["seconds"]["total"] = round(time.perf_counter() - start, 1)
    meta["file_bytes"] = Path(output).stat().st_size
    return meta


def _describe(source, kind, tokens, ids, lengths, rows, failed, reasons, n, limit, workers) -> dict:
    import selfies
    from rdkit import rdBase

    counts: dict[str, int] = {}
    for reason in reasons.tolist():
        counts[reason] = counts.get(reason, 0) + 1
    return {
        "format": "plugen token cache 1",
        "tokenizer": kind,
        "tokens": tokens,
        "source": Path(source).name,
        "source_sha256": file_sha256(source),
        "source_rows_read": n,
        "limit": limit,
        "molecules": int(len(rows)),
        "failed": int(len(failed)),
        "failed_reasons": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "max_len": int(ids.shape[1]),
        "mean_len": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
        "arrays_sha256": array_digest(ids, lengths, rows),
        "workers": workers,
        "versions": {"selfies": selfies.__version__, "rdkit": rdBase.rdkitVersion},
    }


def _write(output, ids, lengths, rows, failed, reasons, meta) -> None:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".partial.npz")
    np.savez_compressed(
        temporary,
        ids=ids,
        lengths=lengths,
        rows=rows,
        failed_rows=failed,
        failed_reasons=reasons,
        meta=np.asarray(json.dumps(meta)),
    )
    temporary.replace(output)


def load_cache(path: str | Path, verify: bool = True) -> TokenCache:
    """Read a cache written by :func:`build_cache`; ``verify`` recomputes the arrays' digest."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"token cache {path} is missing; build it with: python -m plugen.molecules.token_cache")
    try:
        with np.load(path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            parts = {k: saved[k] for k in ("ids", "lengths", "rows", "failed_rows", "failed_reasons")}
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"token cache {path} cannot be read ({exc})") from None
    if verify and array_digest(parts["ids"], parts["lengths"], parts["rows"]) != meta.get("arrays_sha256"):
        raise CheckpointError(f"token cache {path} is damaged: its arrays do not match the digest it was written with")
    return TokenCache(meta=meta, **parts)


def write_record(meta: dict, stem: str | Path, command: str) -> None:
    """``stem``.json (the cache's description without the vocabulary) and ``stem``.md (a table), for the results pages."""
    record = {"command": command, **{k: v for k, v in meta.items() if k != "tokens"}, "vocabulary": meta["tokens"]}
    Path(stem).with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    seconds = meta.get("seconds", {})
    rows = [
        ("source", f"{meta['source']} (sha256 {meta['source_sha256'][:16]}...), {meta['source_rows_read']:,} rows"),
        ("tokenised", f"{meta['molecules']:,}"),
        ("not tokenised (counted, with reasons)", f"{meta['failed']:,} {json.dumps(meta['failed_reasons'])}"),
        ("vocabulary", f"{len(meta['tokens'])} tokens, specials included"),
        ("tokens per molecule", f"mean {meta['mean_len']}, max {meta['max_len']} (bos and eos included)"),
        ("file", f"{meta.get('file_bytes', 0) / 2**20:.1f} MiB (padded uint8 ids, zlib)"),
        ("time", f"{seconds.get('tokenize', '-')} s tokenising with {meta['workers']} processes"),
    ]
    lines = [f"# {meta['source']} tokenised ({meta['tokenizer']})", "", f"Command: `{command}`", ""]
    lines += ["| | |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    Path(stem).with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m plugen.molecules.token_cache", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="CSV with a SMILES column (e.g. MOSES train.csv.gz)")
    parser.add_argument("--output", required=True, help="the cache (.npz)")
    parser.add_argument("--tokenizer", default="selfies", choices=sorted(TOKENIZERS))
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--limit", type=int, default=None, help="only the first LIMIT rows")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--record", default=None, help="also write RECORD.json and RECORD.md (a results page's files)")


def run(args) -> None:
    import sys

    meta = build_cache(args.source, args.output, args.tokenizer, args.workers, args.limit, not args.no_progress)
    if args.record:
        write_record(meta, args.record, "python -m plugen.molecules.token_cache " + " ".join(sys.argv[1:]))
    print(json.dumps({k: v for k, v in meta.items() if k != "tokens"} | {"vocabulary": len(meta["tokens"])}, indent=2))


if __name__ == "__main__":
    main()
