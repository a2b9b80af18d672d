"""Where the molecule property error comes from: the plugin on latents vs the decoder.

1. Encodes 1,500 validation molecules and decodes them (property correlation original vs decoded)
   and reads the plugin's and the backbone property head's predictions on their latents.
2. Samples logP 1.5 / 4.5 at two temperatures: latent-level value (plugin, property head) vs RDKit
   logP of the decoded molecules.
3. The decoder between real molecules: for 400 training molecules with logP within 0.2 of 1.5 and of
   4.5, decodes their latents, midpoints of random pairs of them, the latents plus Gaussian noise
   (in units of each latent dimension's sd over the training latents) and the plugin's samples
   for that logP, with the median distance of each set to its nearest real latent.
4. How far the latent determines the decoded property: ridge and MLP regressors fitted on 8,000
   latents, tested on 2,000 others, once for real training latents with their RDKit labels and once
   for the plugin's unconditional samples with the RDKit properties of their decoded molecules. The
   test MAE on samples bounds what any method that chooses among such latents by their coordinates
   can reach per molecule (the plugin included).

    python benchmarks/molecules_diagnose.py > benchmarks/results/molecules_diagnose.txt
"""

from __future__ import annotations

import datetime

import numpy as np
import torch
from scipy.spatial.distance import cdist

from plugen.molecules import design
from plugen.molecules.data import load_subset
from plugen.molecules.properties import compute, quiet_rdkit

PROPS = ("logP", "TPSA", "SAS")


def decoded_properties(bb, Z, which=PROPS):
    return compute([s or "" for s in bb.decode(Z)], which, workers=1, progress=False)


def head(bb, Z) -> np.ndarray:
    meta = bb.meta["property_head"]
    out = bb.model.property_head(torch.as_tensor(Z)).detach().numpy()
    return out * np.array(meta["std"]) + np.array(meta["mean"])


def round_trip(bb, plugin) -> None:
    v = load_subset("validation").iloc[:1500]
    z = bb.encode(v["SMILES"].tolist())
    p = decoded_properties(bb, z)
    pred, h = plugin.predict(z), head(bb, z)
    for k in PROPS:
        print(
            k,
            "corr(orig, decoded)",
            np.corrcoef(v[k], p[k])[0, 1].round(3),
            "mean orig/dec",
            v[k].mean().round(3),
            p[k].mean().round(3),
        )
    for i, k in enumerate(PROPS):
        print(
            k,
            "plugin predict corr",
            np.corrcoef(v[k], pred[:, i])[0, 1].round(3),
            "head corr",
            np.corrcoef(v[k], h[:, i])[0, 1].round(3),
        )


def sampled(bb, plugin) -> None:
    for T in (1.0, 0.5):
        for t in (1.5, 4.5):
            Z = plugin.sample(1000, {"logP": t}, temperature=T, seed=0)
            decoded = bb.decode(Z)
            logp = compute([s or "" for s in decoded], ("logP",), workers=1, progress=False)["logP"]
            print(
                "T",
                T,
                "target",
                t,
                "head on sampled z",
                head(bb, Z)[:, 0].mean().round(3),
                "plugin predict",
                plugin.predict(Z)[:, 0].mean().round(3),
                "decoded",
                logp.mean().round(3),
                "uniq",
                len(set(decoded)) / len(decoded),
            )


def between_real_molecules(bb, plugin, per_band: int = 400, pairs: int = 300) -> None:
    train = load_subset("train")
    rng = np.random.default_rng(0)
    scale = bb.encode(train["SMILES"].iloc[:5000].tolist()).std(0)
    print("set, target: decoded logP mean, MAE to target, SAS mean; median distance to the nearest real latent")
    for t in (1.5, 4.5):
        band = train[(train["logP"] - t).abs() < 0.2].iloc[:per_band]
        Z = bb.encode(band["SMILES"].tolist())
        Z = Z[np.isfinite(Z).all(1)]
        i, j = rng.integers(0, len(Z), pairs), rng.integers(0, len(Z), pairs)
        sets = {"real latents": Z, "midpoints of pairs": (Z[i] + Z[j]) / 2}
        for s in (0.1, 0.25, 0.5):
            sets[f"real + noise {s} sd"] = Z[i] + s * scale * rng.standard_normal(Z[i].shape).astype(np.float32)
        sets["plugin samples"] = plugin.sample(pairs, {"logP": t}, seed=1)
        for name, S in sets.items():
            p = decoded_properties(bb, S, ("logP", "SAS"))
            d = cdist(S, Z)
            nearest = np.where(d < 1e-6, np.inf, d).min(1) if S is Z else d.min(1)
            print(
                f"{name}, logP {t}: {p['logP'].mean():.3f}, MAE {(p['logP'] - t).abs().mean():.3f}, "
                f"SAS {p['SAS'].mean():.3f}; distance {np.median(nearest):.2f}"
            )


def predictability(bb, plugin, n: int = 10_000, n_train: int = 8_000) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor

    train = load_subset("train").iloc[-n:]
    real = bb.encode(train["SMILES"].tolist())
    keep = np.isfinite(real).all(1)
    samples = plugin.sample(n, seed=2)
    decoded = decoded_properties(bb, samples)
    valid = (decoded["error"] == "").to_numpy()
    sets = {
        "real latents, their labels": (real[keep], train[list(PROPS)].to_numpy(float)[keep]),
        "plugin samples, decoded properties": (samples[valid], decoded[list(PROPS)].to_numpy(float)[valid]),
    }
    print(f"test MAE of regressors from the latent ({n_train:,} train / the rest test); sd: the property's test sd")
    for name, (Z, Y) in sets.items():
        for k, prop in enumerate(PROPS):
            y_train, y_test = Y[:n_train, k], Y[n_train:, k]
            errors = []
            for model in (
                Ridge(alpha=1.0),
                MLPRegressor(hidden_layer_sizes=(256, 256), early_stopping=True, random_state=0),
            ):
                model.fit(Z[:n_train], y_train)
                errors.append(np.abs(model.predict(Z[n_train:]) - y_test).mean())
            print(f"{name}, {prop}: ridge {errors[0]:.3f}, MLP {errors[1]:.3f}; sd {y_test.std():.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    quiet_rdkit()
    bb, plugin = design.load_shipped()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"# output of benchmarks/molecules_diagnose.py ({stamp}, shipped selfies-vae + selfies-vae.plugin, "
        "1 torch thread)"
    )
    round_trip(bb, plugin)
    sampled(bb, plugin)
    between_real_molecules(bb, plugin)
    predictability(bb, plugin)
