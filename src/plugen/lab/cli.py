"""``plugen demo``: the main job, both plugins on shipped image backbones, with a report."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    """Add the ``demo`` subcommand to the ``plugen`` parser."""
    demo = sub.add_parser("demo", help="the main job: both plugins on shipped image backbones, with a report")
    demo.add_argument("-o", "--output", default="runs/demo", help="report folder (default: runs/demo)")
    demo.add_argument(
        "--data",
        nargs="+",
        choices=["mnist", "shapes", "mnist-gan"],
        default=["mnist", "shapes"],
        help="image experiments to run (default: mnist shapes; mnist-gan: the GAN backbone, "
        "fitted on its labelled samples, real digits edited through its inversion)",
    )
    demo.add_argument("--full", action="store_true", help="the benchmark's sizes (slower)")
    demo.add_argument("--synthetic", action="store_true", help="synthetic latents instead (no backbone)")
    demo.add_argument("--quick", action="store_true", help="with --synthetic: fewer epochs, a smoke run")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)


def _demo(args) -> int:
    if args.synthetic:
        from plugen.lab.demo import run_demo

        run_demo(Path(args.output), quick=args.quick, seed=args.seed)
        return 0
    from plugen.lab.experiments import run_image_experiments

    run_image_experiments(args.data, Path(args.output), scale="full" if args.full else "demo", seed=args.seed)
    print(f"report: {Path(args.output) / 'report.md'}", file=sys.stderr)
    return 0
