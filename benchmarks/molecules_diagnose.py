"""Where the molecule property error comes from: the plugin on latents vs the decoder.

Encodes 1,500 validation molecules and decodes them (property correlation original vs decoded),
reads the plugin's and the backbone property head's predictions, and samples logP 1.5 / 4.5 at two
temperatures: latent-level value (plugin predict, property head) vs RDKit logP of the decoded molecules.

    python benchmarks/molecules_diagnose.py > benchmarks/results/molecules_diagnose.txt
"""
import numpy as np, torch, time
torch.set_num_threads(1)
from plugen.molecules import design
from plugen.molecules.data import load_subset
from plugen.molecules.properties import compute, quiet_rdkit
quiet_rdkit()
bb, plugin = design.load_shipped()
v = load_subset("validation").iloc[:1500]
z = bb.encode(v["SMILES"].tolist())
d = bb.decode(z)
p = compute([s or "" for s in d], ("logP", "TPSA", "SAS"), workers=1, progress=False)
for k in ("logP", "TPSA", "SAS"):
    print(k, "corr(orig, decoded)", np.corrcoef(v[k], p[k])[0, 1].round(3), "mean orig/dec", v[k].mean().round(3), p[k].mean().round(3))
pred = plugin.predict(z)
head = bb.model.property_head(torch.from_numpy(z)).detach().numpy() * np.array(bb.meta["property_head"]["std"]) + np.array(bb.meta["property_head"]["mean"])
for i, k in enumerate(("logP", "TPSA", "SAS")):
    print(k, "plugin predict corr", np.corrcoef(v[k], pred[:, i])[0, 1].round(3), "head corr", np.corrcoef(v[k], head[:, i])[0, 1].round(3))
for T in (1.0, 0.5):
    for t in (1.5, 4.5):
        torch.manual_seed(0)
        Z = plugin.sample(1000, {"logP": t}, temperature=T)
        h = bb.model.property_head(torch.as_tensor(Z)).detach().numpy()[:, 0] * bb.meta["property_head"]["std"][0] + bb.meta["property_head"]["mean"][0]
        dd = bb.decode(Z)
        pp = compute([s or "" for s in dd], ("logP",), workers=1, progress=False)["logP"]
        print("T", T, "target", t, "head on sampled z", h.mean().round(3), "plugin predict", plugin.predict(Z)[:, 0].mean().round(3), "decoded", pp.mean().round(3), "uniq", len(set(dd)) / len(dd))
