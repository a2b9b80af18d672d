"""How well a plugin steers the properties of a molecule VAE's decoded samples, per backbone.

    python benchmarks/molecule_control.py DIR [DIR ...]    # folders holding selfies-vae.{json,safetensors}

For each folder (the shipped one is ``src/plugen/backbones/weights``; others are what
``python -m plugen.molecules.train_backbone selfies-vae --output DIR ...`` writes): validation
reconstruction and prior validity (the training command's own evaluation), RDKit properties of
1,000 decoded prior samples, then a PluGeN plugin fitted on the latents of the first 20,000
training molecules (at most 60 epochs) and 500 molecules sampled per request (logP 1.5 / 3 / 4.5,
TPSA 40 / 80, SAS 2 / 4): mean, sd and mean absolute error to the target of the decoded molecules'
property. A smaller, faster version of ``benchmarks/molecules.py``, for choosing between backbone
training settings (KL weight, word dropout). Writes ``results/molecule_control.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
REQUESTS = [{"logP": 1.5}, {"logP": 3.0}, {"logP": 4.5}, {"TPSA": 40}, {"TPSA": 80}, {"SAS": 2}, {"SAS": 4}]


def measure(directory: Path, n_fit: int = 20_000, per_request: int = 500) -> dict:
    from plugen.backbones import load
    from plugen.molecules import design
    from plugen.molecules.data import load_subset
    from plugen.molecules.properties import compute
    from plugen.molecules.train_backbone import VALIDATION_MOLECULES, evaluate

    start = time.perf_counter()
    bb = load("selfies-vae", directory=directory)
    training = bb.meta["training"]
    result = {
        "directory": str(directory),
        "kl_weight": training["kl_weight"],
        "word_dropout": training["word_dropout"],
        "steps": training["steps"],
        "reproduce": bb.meta["reproduce"],
        **evaluate(bb.model, load_subset("validation")["SMILES"].tolist()[:VALIDATION_MOLECULES]),
    }
    prior = bb.decode(torch.randn(1000, bb.latent_dim, generator=torch.Generator().manual_seed(1)))
    props = compute([s or "" for s in prior], ["logP", "TPSA", "SAS"], workers=1, progress=False)
    result["prior_properties"] = {k: [float(props[k].mean()), float(props[k].std())] for k in ("logP", "TPSA", "SAS")}
    plugin, result["plugin_fit"] = design.fit_plugin(bb, n=n_fit, progress=False, max_epochs=60)
    result["requests"] = []
    for request in REQUESTS:
        ((label, target),) = request.items()
        frame = design.generate(plugin, bb, per_request, request)
        values = frame.loc[frame["valid"], label]
        result["requests"].append(
            {
                "label": label,
                "target": target,
                "validity": float(frame["valid"].mean()),
                "mean": float(values.mean()),
                "sd": float(values.std()),
                "mae": float((values - target).abs().mean()),
            }
        )
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def table(results: list[dict]) -> list[str]:
    heads = [f"{r['label']} {r['target']:g}" for r in results[0]["requests"]]
    lines = [
        "| backbone (KL weight, word dropout) | steps | exact reconstruction | token accuracy | prior SAS mean ± sd | "
        + " | ".join(heads)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(heads),
    ]
    for res in results:
        sas = res["prior_properties"]["SAS"]
        lines.append(
            f"| {res['directory']} ({res['kl_weight']:g}, {res['word_dropout']:g}) | {res['steps']:,} | "
            f"{res['validation']['exact_reconstruction']:.3f} | {res['validation']['token_accuracy']:.4f} | "
            f"{sas[0]:.2f} ± {sas[1]:.2f} | "
            + " | ".join(f"{q['mean']:.2f} ± {q['sd']:.2f} ({q['mae']:.2f})" for q in res["requests"])
            + " |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", help="folders with selfies-vae.json / .safetensors")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(RESULTS / "molecule_control"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for directory in args.directories:
        results.append(measure(Path(directory)))
        print(json.dumps(results[-1]), flush=True)
    lines = [
        "# Property control per molecule backbone",
        "",
        f"Command: `python benchmarks/molecule_control.py {' '.join(args.directories)}` ({args.threads} torch thread(s), "
        f"torch {torch.__version__}). PluGeN fitted on 20,000 training latents (at most 60 epochs); 500 molecules per "
        "request, temperature 1. Cells: decoded property mean ± sd (mean absolute error to the target). The training "
        "subset: SAS 2.45 ± 0.46. Each backbone's training command is in the JSON.",
        "",
    ]
    lines += table(results)
    lines += ["", "Training commands:", ""] + [f"- `{r['directory']}`: `{r['reproduce']}`" for r in results]
    Path(f"{args.output}.md").write_text("\n".join(lines) + "\n")
    Path(f"{args.output}.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
