"""The speed-and-scale benchmark suite (issue: speed and scale). One command, one JSON, one table:

    python benchmarks/suite.py                     # everything (~25 min on 2 CPU cores)
    python benchmarks/suite.py --quick             # small sizes: checks every part runs (~2 min)
    python benchmarks/suite.py --parts throughput,latency --device cuda

Parts (``--parts``, comma-separated):

- ``quality``: time to the same edit success as the PluGeN paper's recipe (``core.time_to_quality``:
  same latents, same probes, same run), at latent sizes 64 and 512.
- ``throughput``: fit throughput (training rows per second, held-out scoring included) of the
  512-dim default NICE at several batch sizes (and with bf16 autocast, and with ``torch.compile``,
  its compile time included), against the machine's matrix-multiply limit measured in the same run
  (best float32 GEMM rate). Training FLOPs per row are counted from the flow's
  matrix multiplies (forward 2, backward 4 multiply-adds per weight).
- ``latency``: ``edit`` and ``sample`` on one row (median ms) and rows per second at batch 4096,
  PluGeN (NICE) and FPN (RealNVP), 512-dim latents.
- ``scaling``: one fit epoch at n = 10k...1M rows, latent size N = 16...2048 and K = 1...40 binary
  labels: seconds, rows per second, peak memory. Each point runs in a fresh process so that its
  peak resident memory (``ru_maxrss``) is its own.
- ``distributed``: the same fit with 1 and 2 processes (``torchrun``, gloo on CPU, or NCCL with
  ``--device cuda`` and 2 GPUs): best held-out NLL and wall time.
- ``memory``: fit one epoch from a memory-mapped ``.npy`` of n x 512 float32 latents (n up to 10M
  = 20 GB, written to ``--scratch``) with a small flow (``SMALL_FLOW``, so the epoch is bound by
  reading the file): peak memory must not grow with n. The file is deleted after.

Writes ``benchmarks/results/suite.json`` and ``suite.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from core import machine, median_ms, time_to_quality  # noqa: E402

from plugen import FPN, PluGeN  # noqa: E402
from plugen.flows.linear import InvertibleLinear  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: the memory part's flow: small, so that one epoch over 10M rows is bound by reading the file
#: (the model's own memory does not depend on n)
SMALL_FLOW = {"transforms": 2, "hidden_features": 64, "depth": 1}


# ---------------------------------------------------------------- data
def latents_with_labels(n: int, N: int, K: int, seed: int = 0, chunk: int = 1 << 18, out=None):
    """Gaussian latents (n, N) float32 and K binary labels, each the sign of a random projection
    (so the labels are learnable). ``out``: an array (e.g. a memory map) to fill in chunks."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(N, K)).astype(np.float32)
    Z = np.empty((n, N), dtype=np.float32) if out is None else out
    Y = np.empty((n, K))
    for s in range(0, n, chunk):
        block = rng.standard_normal((min(n, s + chunk) - s, N), dtype=np.float32)
        Z[s : s + len(block)] = block
        Y[s : s + len(block)] = block @ W > 0
    return Z, Y


def labels_of(K: int) -> dict[str, str]:
    return {f"y{k}": "binary" for k in range(K)}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ``ru_maxrss`` it is not inherited from
    the parent across ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- one measured fit (run in a child)
def fit_point(spec: dict) -> dict:
    """One fit of ``spec["epochs"]`` epochs; returns seconds, rows/s and peak memory."""
    torch.set_num_threads(spec.get("threads", torch.get_num_threads()))
    if spec.get("file"):
        Z = np.load(spec["file"], mmap_mode="r")
        Y = np.load(spec["labels"])
    else:
        Z, Y = latents_with_labels(spec["n"], spec["N"], spec["K"])
    before = peak_rss_mb()
    settings = dict(
        max_epochs=spec["epochs"],
        patience=10**6,
        progress=False,
        device=spec.get("device", "cpu"),
        batch_size=spec.get("batch_size", 256),
        **spec.get("model", {}),
    )
    model = PluGeN(labels_of(Y.shape[1]), **settings).fit(Z, Y)
    h = model.history_
    gpu = {"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20} if settings["device"] == "cuda" else {}
    return {
        **{k: v for k, v in spec.items() if k not in ("file", "labels")},
        "n_train": h["n_train"],
        "fit_seconds": h["seconds"],
        "rows_per_s": h["n_train"] * h["epochs"] / h["seconds"],
        "peak_rss_mb_before_fit": before,
        "peak_rss_mb": peak_rss_mb(),
        **gpu,
        "nll_per_dim": h["best_nll_per_dim"],
    }


def run_point(spec: dict) -> dict:
    """:func:`fit_point` in a fresh Python process (clean peak memory)."""
    done = subprocess.run([sys.executable, __file__, "--point", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"point {spec} failed:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {row}", file=sys.stderr)
    return row


# ---------------------------------------------------------------- parts
def matmul_limit(device: str, sizes=(1024, 2048, 4096)) -> dict:
    """Best float32 GEMM rate (GFLOP/s) over square sizes: the machine's matrix-multiply limit."""
    best = {}
    for s in sizes:
        a = torch.randn(s, s, device=device)
        b = torch.randn(s, s, device=device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        a @ b
        sync()
        reps, t = 0, time.perf_counter()
        while reps < 3 or time.perf_counter() - t < 2.0:
            a @ b
            reps += 1
        sync()
        best[s] = 2 * s**3 * reps / (time.perf_counter() - t) / 1e9
    return {"gflops_by_size": best, "gflops": max(best.values())}


def training_flops_per_row(module: nn.Module) -> float:
    """Multiply-adds of the flow's weight matrices per row, times 6 (forward 2, backward 4)."""
    macs = sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))
    macs += sum(m.features**2 for m in module.modules() if isinstance(m, InvertibleLinear))
    return 6.0 * macs


#: fit throughput variants (batch size, options): the CPU's, and a GPU's (larger batches)
CPU_VARIANTS = [(256, {}), (1024, {}), (4096, {}), (1024, {"autocast": "bf16"}), (1024, {"compile": True})]
GPU_VARIANTS = [
    (1024, {}),
    (4096, {}),
    (16384, {}),
    (4096, {"autocast": "bf16"}),
    (16384, {"autocast": "bf16"}),
    (16384, {"compile": True}),
]


def throughput(quick: bool, device: str) -> dict:
    """Rows per second over the whole fit (first epoch, compilation and held-out scoring
    included) and after the first epoch (steady state); a variant that fails (say
    ``torch.compile`` without a working compiler) is recorded with its error."""
    gpu = device == "cuda"
    limit = matmul_limit(device, sizes=(512, 1024) if quick else (1024, 2048, 4096) if not gpu else (4096, 8192))
    n = 20_000 if quick else 1_000_000 if gpu else 200_000
    epochs = 2 if quick else 5 if gpu else 3
    Z, Y = latents_with_labels(n, 512, 4)
    rows = []
    for batch_size, options in GPU_VARIANTS if gpu else CPU_VARIANTS:
        row = {"batch_size": batch_size, "options": options}
        try:
            model = PluGeN(
                labels_of(4),
                max_epochs=epochs,
                patience=10**6,
                progress=False,
                device=device,
                batch_size=batch_size,
                **options,
            ).fit(Z, Y)
        except Exception as error:  # noqa: BLE001 - a benchmark records what failed and goes on
            rows.append({**row, "error": f"{type(error).__name__}: {error}"[:500]})
            print(f"  {rows[-1]}", file=sys.stderr)
            continue
        h = model.history_
        ends = h["history"]["seconds"]
        flops = training_flops_per_row(model.module_)
        rate = h["n_train"] * h["epochs"] / h["seconds"]
        steady = h["n_train"] * (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else rate
        rows.append(
            {
                **row,
                "epochs": h["epochs"],
                "rows_per_s": rate,
                "rows_per_s_after_first_epoch": steady,
                "flops_per_row": flops,
                "gflops": rate * flops / 1e9,
                "fraction_of_matmul_limit": rate * flops / 1e9 / limit["gflops"],
                "fraction_after_first_epoch": steady * flops / 1e9 / limit["gflops"],
            }
        )
        print(f"  {rows[-1]}", file=sys.stderr)
    return {
        "model": "PluGeN default: NICE 4 couplings x 2 hidden layers of 256 + LU linear, N=512",
        "n": n,
        "matmul_limit": limit,
        "rows": rows,
    }


def latency(quick: bool, device: str) -> list[dict]:
    Z, Y = latents_with_labels(5000, 512, 4)
    out = []
    for cls, flow in ((PluGeN, "nice"), (FPN, "realnvp")):
        model = cls(labels_of(4), flow=flow, max_epochs=1, progress=False, device=device).fit(Z, Y)
        kwargs = {"y_source": Y[:1]} if cls is FPN else {}
        big = Z[:4096]
        big_kwargs = {"y_source": Y[:4096]} if cls is FPN else {}
        repeats = 20 if quick else 200
        row = {
            "estimator": cls.__name__,
            "flow": flow,
            "latent_dim": 512,
            "edit_ms_batch1": median_ms(lambda: model.edit(Z[:1], {"y0": 1}, **kwargs), repeats),
            "sample_ms_batch1": median_ms(lambda: model.sample(1, {"y0": 1}), repeats),
        }
        edit_4096 = median_ms(lambda: model.edit(big, {"y0": 1}, **big_kwargs), 5 if quick else 20)
        sample_4096 = median_ms(lambda: model.sample(4096, {"y0": 1}), 5 if quick else 20)
        row.update(
            edit_rows_per_s_batch4096=4096 / edit_4096 * 1000, sample_rows_per_s_batch4096=4096 / sample_4096 * 1000
        )
        print(f"  {row}", file=sys.stderr)
        out.append(row)
    return out


def scaling(quick: bool, device: str) -> dict:
    ns = (10_000, 30_000) if quick else (10_000, 100_000, 1_000_000)
    Ns = (16, 128) if quick else (16, 64, 256, 512, 1024, 2048)
    Ks = (1, 8) if quick else (1, 5, 10, 20, 40)
    base = {"epochs": 1, "device": device, "batch_size": 4096 if device == "cuda" else 256}
    return {
        "n": [run_point({**base, "n": n, "N": 512, "K": 4}) for n in ns],
        "N": [run_point({**base, "n": 10_000 if quick else 50_000, "N": N, "K": 4}) for N in Ns],
        "K": [run_point({**base, "n": 10_000 if quick else 50_000, "N": 512, "K": K}) for K in Ks],
    }


def distributed_fit(quick: bool, device: str) -> list[dict]:
    """``plugen fit`` on the same files with 1 and 2 processes; held-out NLL and wall time."""
    import plugen
    from plugen.io import write_array

    folder = Path(tempfile.mkdtemp(prefix="plugen-ddp-"))
    n = 20_000 if quick else 200_000
    Z, Y = latents_with_labels(n, 64, 4)
    np.save(folder / "z.npy", Z)
    write_array(folder / "y.csv", Y, header=list(labels_of(4)))
    rows = []
    for processes in (1, 2):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        command = launcher + [
            "-m",
            "plugen",
            "fit",
            "--latents",
            "z.npy",
            "--labels",
            "y.csv",
            "--quiet",
            "--device",
            device,
            "--epochs",
            "3" if quick else "20",
            "-o",
            f"p{processes}.plugin",
        ]
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, torch.get_num_threads() // processes)))
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        h = plugen.load(folder / f"p{processes}.plugin").history_
        rows.append(
            {
                "processes": processes,
                "n": n,
                "threads_each": env["OMP_NUM_THREADS"],
                "wall_seconds": time.perf_counter() - start,
                "fit_seconds": h["seconds"],
                "epochs": h["epochs"],
                "best_val_nll": h["best_nll"],
            }
        )
        print(f"  {rows[-1]}", file=sys.stderr)
    rows[1]["nll_relative_to_one_process"] = rows[1]["best_val_nll"] / rows[0]["best_val_nll"] - 1
    shutil.rmtree(folder)
    return rows


def memory(quick: bool, device: str, scratch: str) -> list[dict]:
    rows = []
    for n in (20_000, 200_000) if quick else (100_000, 1_000_000, 10_000_000):
        folder = Path(tempfile.mkdtemp(prefix="plugen-suite-", dir=scratch))
        try:
            path, labels = folder / "z.npy", folder / "y.npy"
            print(f"  writing {n} x 512 latents to {path}", file=sys.stderr)
            Z = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 512))
            _, Y = latents_with_labels(n, 512, 4, out=Z)
            Z.flush()
            del Z
            np.save(labels, Y)
            rows.append(
                run_point(
                    {
                        "n": n,
                        "N": 512,
                        "K": 4,
                        "epochs": 1,
                        "device": device,
                        "batch_size": 4096,
                        "model": SMALL_FLOW,
                        "file": str(path),
                        "labels": str(labels),
                        "file_gb": path.stat().st_size / 1e9,
                    }
                )
            )
        finally:
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
    return rows


# ---------------------------------------------------------------- report
def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# Speed and scale suite\n\n{m['cpu']}, {m['torch_threads']} torch threads, torch {m['torch']}, "
        f"device {result['device']}{', ' + m['gpu'] if m.get('gpu') else ''}; command `{result['command']}`\n"
    ]
    if "quality" in result:
        lines += [
            "## Time to quality (vs the PluGeN paper recipe, same run)\n",
            "| latent size | target edit success | recipe s | default s | ratio |",
            "|---|---|---|---|---|",
        ]
        for q in result["quality"]:
            lines.append(
                f"| {q['latent_dim']} | {q['target_success']:.3f} | {q['recipe_seconds_to_target']} | "
                f"{q['default_seconds_to_target']} | {q['speedup'] and round(q['speedup'], 1)}x |"
            )
    if "throughput" in result:
        t = result["throughput"]
        lines += [
            f"\n## Fit throughput: {t['model']}\n",
            f"Matrix-multiply limit (best float32 GEMM, same run): {t['matmul_limit']['gflops']:.1f} GFLOP/s\n",
            "Whole fit: every epoch, compilation and held-out scoring included; steady: after the first epoch.\n",
            "| batch | options | rows/s (whole fit) | GFLOP/s | fraction of limit | rows/s (steady) | fraction (steady) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in t["rows"]:
            if "error" in r:
                lines.append(f"| {r['batch_size']} | {r['options']} | failed: {r['error'][:200]} | | | | |")
                continue
            lines.append(
                f"| {r['batch_size']} | {r['options'] or '-'} | {r['rows_per_s']:,.0f} | {r['gflops']:.1f} | "
                f"{r['fraction_of_matmul_limit']:.2f} | {r['rows_per_s_after_first_epoch']:,.0f} | "
                f"{r['fraction_after_first_epoch']:.2f} |"
            )
    if "latency" in result:
        lines += [
            "\n## Latency and batch throughput (512-dim latents)\n",
            "| estimator | flow | edit ms (1 row) | sample ms (1 row) | edit rows/s (4096) | sample rows/s (4096) |",
            "|---|---|---|---|---|---|",
        ]
        for r in result["latency"]:
            lines.append(
                f"| {r['estimator']} | {r['flow']} | {r['edit_ms_batch1']:.3f} | {r['sample_ms_batch1']:.3f} | "
                f"{r['edit_rows_per_s_batch4096']:,.0f} | {r['sample_rows_per_s_batch4096']:,.0f} |"
            )
    if "scaling" in result:
        for key, title in (("n", "rows n (N=512, K=4)"), ("N", "latent size N (K=4)"), ("K", "labels K (N=512)")):
            points = result["scaling"][key]
            gpu = "peak_gpu_mb" in points[0]
            lines += [
                f"\n## Scaling with {title}: one epoch, batch {points[0]['batch_size']}\n",
                f"| {key} | rows | seconds | rows/s | peak MB |" + (" peak GPU MB |" if gpu else ""),
                "|---|---|---|---|---|" + ("---|" if gpu else ""),
            ]
            for r in points:
                lines.append(
                    f"| {r[key]} | {r['n']:,} | {r['fit_seconds']:.2f} | {r['rows_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} |"
                    + (f" {r['peak_gpu_mb']:,.0f} |" if gpu else "")
                )
    if "distributed" in result:
        lines += [
            f"\n## One process vs two (torchrun + DDP), {result['distributed'][0]['n']:,} x 64 latents, same global batches\n",
            "| processes | threads each | fit s | epochs | best held-out NLL |",
            "|---|---|---|---|---|",
        ]
        for r in result["distributed"]:
            lines.append(
                f"| {r['processes']} | {r['threads_each']} | {r['fit_seconds']:.1f} | {r['epochs']} | {r['best_val_nll']:.5f} |"
            )
        lines.append(
            f"\nTwo processes vs one: held-out NLL {100 * result['distributed'][1]['nll_relative_to_one_process']:+.3f}%."
        )
    if "memory" in result:
        lines += [
            f"\n## Out-of-core fit from a memory-mapped .npy (N=512, batch 4096, one epoch, flow {SMALL_FLOW})\n",
            "| rows | file GB | seconds | rows/s | peak MB |",
            "|---|---|---|---|---|",
        ]
        for r in result["memory"]:
            lines.append(
                f"| {r['n']:,} | {r['file_gb']:.1f} | {r['fit_seconds']:.1f} | {r['rows_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="quality,throughput,latency,scaling,memory")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks every part runs")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--scratch", default=tempfile.gettempdir(), help="folder for the memory part's big file")
    parser.add_argument("--output", help="output path without suffix (default: results/suite, or suite_quick)")
    parser.add_argument("--point", help=argparse.SUPPRESS)  # internal: one measured fit, JSON in and out
    args = parser.parse_args()
    if args.point:
        print(json.dumps(fit_point(json.loads(args.point))))
        return
    parts = args.parts.split(",")
    unknown = set(parts) - {"quality", "throughput", "latency", "scaling", "distributed", "memory"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    info = machine()
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    result: dict = {
        "machine": info,
        "device": args.device,
        "command": " ".join(["python", *sys.argv]),
        "quick": args.quick,
    }
    output = Path(args.output or RESULTS / ("suite_quick" if args.quick else "suite"))
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for part in parts:
        print(f"{part}:", file=sys.stderr)
        if part == "quality":
            budget = 20.0 if args.quick else 120.0
            result["quality"] = [time_to_quality(N, 3000 if args.quick else 12_000, budget) for N in (64, 512)]
            for q in result["quality"]:
                q.pop("recipe_curve"), q.pop("default_curve")
        elif part == "throughput":
            result["throughput"] = throughput(args.quick, args.device)
        elif part == "latency":
            result["latency"] = latency(args.quick, args.device)
        elif part == "scaling":
            result["scaling"] = scaling(args.quick, args.device)
        elif part == "distributed":
            result["distributed"] = distributed_fit(args.quick, args.device)
        elif part == "memory":
            result["memory"] = memory(args.quick, args.device, args.scratch)
        result["seconds"] = time.perf_counter() - start
        # after every part, so that a run cut short keeps what it measured
        output.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float))
        output.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
