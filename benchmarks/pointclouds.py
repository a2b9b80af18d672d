"""Point-cloud benchmark (issue 7): the FPN paper's ShapeNet experiments on procedural Shapes3D clouds.

    python benchmarks/pointclouds.py            # full size (see benchmarks/README.md for the time)
    python benchmarks/pointclouds.py --quick    # smoke run: checks every part runs

Encodes Shapes3D clouds with the shipped ``shapes3d-ae`` PointNet autoencoder (128-dim latents),
fits PluGeN and FPN on the latents with labels shape (categorical), size and elongation
(continuous), and writes (:mod:`plugen.lab.evaluation.pointclouds`):

- ``benchmarks/results/pointclouds.json`` and ``.md``: class-conditional generation judged by the
  independent ``shapes3d-shape`` PointNet; FPN Table 2 (FPN with MAF and RealNVP vs logistic
  regression, linear and RBF SVMs, C by 5-fold grid search, same latent split); size / elongation
  edits, requested vs measured on the decoded clouds;
- ``benchmarks/results/pointclouds/*.png``: generated clouds per class, edits, latent maps.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from plugen.lab.evaluation.pointclouds import run_pointcloud_experiments, write

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke scale, written under results/pointclouds_quick*")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the cores are shared)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "benchmarks/pointclouds.py", *sys.argv[1:]])
    stem = "pointclouds_quick" if args.quick else "pointclouds"
    results = run_pointcloud_experiments(RESULTS / stem, scale="smoke" if args.quick else "full")
    results["machine"] = {
        "command": command,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    write(results, RESULTS / f"{stem}.json", RESULTS / f"{stem}.md", command)
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
