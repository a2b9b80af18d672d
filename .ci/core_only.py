"""Core-only install check: with just the library's own dependencies, both plugins fit, edit,
sample, predict, save and load, and ``plugen fit`` runs; no extra's package is imported."""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from plugen import FPN, PluGeN, load

EXTRAS = ("sklearn", "rdkit", "gradio", "matplotlib", "pandas", "skimage", "mlxtend", "selfies")

rng = np.random.default_rng(0)
Z = rng.standard_normal((400, 6)).astype(np.float32)
y = (Z[:, 0] > 0).astype(float)
Z[:, 1] += 2 * y
with tempfile.TemporaryDirectory() as tmp:
    for cls in (PluGeN, FPN):
        model = cls({"a": "binary"}, max_epochs=3, progress=False).fit(Z, y[:, None])
        assert model.edit(Z[:5], {"a": 1}).shape == (5, 6)
        assert model.sample(4, {"a": 0}, seed=0).shape == (4, 6)
        path = model.save(Path(tmp) / f"{cls.__name__}.plugin")
        assert np.array_equal(load(path).predict(Z), model.predict(Z))
    np.save(Path(tmp) / "z.npy", Z)
    (Path(tmp) / "y.csv").write_text("a\n" + "\n".join(str(int(v)) for v in y) + "\n")
    cli = [sys.executable, "-m", "plugen"]
    subprocess.run([*cli, "fit", "--latents", f"{tmp}/z.npy", "--labels", f"{tmp}/y.csv", "--epochs", "2",
                    "--quiet", "-o", f"{tmp}/cli.plugin"], check=True)
    for verb in (["info", f"{tmp}/cli.plugin"],
                 ["predict", f"{tmp}/cli.plugin", "--latents", f"{tmp}/z.npy", "-o", f"{tmp}/p.csv"],
                 ["edit", f"{tmp}/cli.plugin", "--latents", f"{tmp}/z.npy", "--set", "a=1", "-o", f"{tmp}/e.npy"],
                 ["sample", f"{tmp}/cli.plugin", "-n", "3", "-o", f"{tmp}/s.npy"]):
        subprocess.run([*cli, *verb], check=True, stdout=subprocess.DEVNULL)
loaded = sorted(name for name in EXTRAS if name in sys.modules)
assert not loaded, f"the core imported {loaded}"
print("core-only install: PluGeN and FPN fit, edit, sample, predict, save, load; plugen fit/info/predict/edit/sample ran")
