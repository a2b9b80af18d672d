"""MOSES metrics (plugen.molecules.moses): hand-made molecules with known answers, and the MOSES
training-set row reproduced on samples of the MOSES training and test sets."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import rdFingerprintGenerator  # noqa: E402

from plugen.molecules import moses  # noqa: E402

# the shared MOSES files, next to the checkout (../shared) or next to a worktree's folder (../../shared)
MOSES_DATA = next(
    (p / "shared/data/moses" for p in Path(__file__).resolve().parents[1:4] if (p / "shared/data/moses").is_dir()),
    Path("shared/data/moses"),
)
ASPIRIN, CAFFEINE = "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"
TWO_RINGS = ["c1ccc(-c2ccccc2)cc1", "O=C(Nc1ccccc1)c1ccncc1", "c1ccc2ccccc2c1", CAFFEINE]


def rdkit_tanimoto(a: str, b: str) -> float:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fa, fb = (gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in (a, b))
    return DataStructs.TanimotoSimilarity(fa, fb)


def test_valid_and_unique_at_k():
    assert moses.valid_fraction(["CCO", None, "not a molecule", "c1ccccc1"]) == 0.5
    assert moses.unique_at(["CCO", "CCO", "C"], 3) == pytest.approx(2 / 3)
    assert math.isnan(moses.unique_at(["CCO", "C"], 3))


def test_snn_identical_sets_is_one_and_single_pair_is_their_tanimoto():
    fps = moses.fingerprints(TWO_RINGS)
    assert fps.shape == (4, 1024)
    assert moses.snn(fps, fps) == pytest.approx(1.0)
    t = rdkit_tanimoto(ASPIRIN, CAFFEINE)
    assert 0 < t < 1
    assert moses.snn(moses.fingerprints([ASPIRIN]), moses.fingerprints([CAFFEINE])) == pytest.approx(t)
    assert moses.snn(moses.fingerprints([ASPIRIN]), moses.fingerprints([CAFFEINE, ASPIRIN])) == pytest.approx(1.0)


def test_internal_diversity_by_hand():
    same = moses.fingerprints([ASPIRIN] * 5)
    assert moses.internal_diversity(same, 1) == pytest.approx(0.0)
    assert moses.internal_diversity(same, 2) == pytest.approx(0.0)
    t = rdkit_tanimoto(ASPIRIN, CAFFEINE)  # pairs (a,a), (a,c), (c,a), (c,c): mean T = (2 + 2t) / 4
    pair = moses.fingerprints([ASPIRIN, CAFFEINE])
    assert moses.internal_diversity(pair, 1) == pytest.approx((1 - t) / 2, abs=1e-6)
    assert moses.internal_diversity(pair, 2) == pytest.approx(1 - math.sqrt((1 + t * t) / 2), abs=1e-6)


def test_fragment_and_scaffold_similarity():
    mols = moses.molecules(TWO_RINGS)
    assert moses.cosine(moses.fragment_counts(mols), moses.fragment_counts(mols)) == pytest.approx(1.0)
    assert moses.cosine(moses.scaffold_counts(mols), moses.scaffold_counts(mols)) == pytest.approx(1.0)
    # no BRICS bond: each molecule is its own single fragment; disjoint fragments give 0
    assert moses.fragment_counts(moses.molecules(["CCO", "CCO"])) == Counter({"CCO": 2})
    assert (
        moses.cosine(moses.fragment_counts(moses.molecules(["CCO"])), moses.fragment_counts(moses.molecules(["CCCC"])))
        == 0
    )
    # BRICS cuts the amide C-N, the N-aryl and the carbonyl-aryl bonds: four pieces with labelled dummy atoms
    assert moses.fragment_counts(moses.molecules(["O=C(Nc1ccccc1)c1ccncc1"])) == Counter(
        {"[1*]C([6*])=O": 1, "[5*]N[5*]": 1, "[16*]c1ccccc1": 1, "[16*]c1ccncc1": 1}
    )
    # scaffolds: toluene and benzene share benzene, which has one ring (left out unless min_rings=1)
    one_ring = moses.molecules(["Cc1ccccc1", "c1ccccc1"])
    assert moses.scaffold_counts(one_ring) == Counter()
    assert moses.scaffold_counts(one_ring, min_rings=1) == Counter({"c1ccccc1": 2})
    assert moses.cosine(Counter(a=1, b=1), Counter(a=1)) == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(moses.cosine(Counter(), Counter(a=1)))


@pytest.mark.parametrize(
    "smiles, reason",
    [
        ("C[N+](C)(C)C", "charged atom"),
        ("CC[Si](C)(C)C", "atom type"),
        ("CCP(C)C", "atom type"),
        ("C1CCCCCCC1", "ring of 8+ atoms"),
        ("Oc1ccc(N=Nc2ccccc2)cc1", "MCF MCF10"),  # azo phenol: an acyclic C-N=N-C (PAINS azo_A as well)
        ("O=C1C=CC(=O)C=C1", "PAINS"),  # para-quinone (PAINS quinone_A)
        ("ClCc1ccccc1", "MCF MCF4"),  # benzyl chloride: an alkyl halide
        ("CCC=O", "MCF MCF7"),  # an aldehyde
    ],
)
def test_filters_fail(smiles, reason):
    why = moses.filter_failure(Chem.MolFromSmiles(smiles))
    assert why is not None and why.startswith(reason)
    assert not moses.passes_filters(Chem.MolFromSmiles(smiles))


def test_filters_pass_plain_drug_like_molecules():
    for smiles in [ASPIRIN, CAFFEINE, "C1CCCCCC1", "CCOC(=O)c1ccc(Cl)cc1Br", *TWO_RINGS]:
        assert moses.passes_filters(Chem.MolFromSmiles(smiles)), smiles
    assert moses.filter_failure(None) == "invalid"


@pytest.mark.slow
def test_filters_pass_moses_training_molecules():
    """MOSES built its data with these filters, so its training molecules pass them (its Train row: 1.0)."""
    from plugen.molecules.data import load_subset

    smiles = load_subset("train")["SMILES"].iloc[:300]
    failures = {s: moses.filter_failure(Chem.MolFromSmiles(s)) for s in smiles}
    assert {s: why for s, why in failures.items() if why} == {}


def test_moses_metrics_on_a_small_set():
    charged = "C[N+](C)(C)C"
    reference = moses.Reference(TWO_RINGS)
    out = moses.moses_metrics(
        TWO_RINGS + [None, charged], reference, training=frozenset({"c1ccc2ccccc2c1"}), ks=(2, 100)
    )
    assert out["valid"] == pytest.approx(5 / 6)
    assert out["unique@2"] == 1.0 and math.isnan(out["unique@100"])  # fewer than 100 valid molecules
    nearest = max(rdkit_tanimoto(charged, s) for s in TWO_RINGS)
    assert out["SNN/Test"] == pytest.approx((4 + nearest) / 5)
    assert out["Frag/Test"] < 1 and out["Scaf/Test"] == pytest.approx(1.0)
    assert out["Filters"] == pytest.approx(4 / 5)
    assert out["novelty"] == pytest.approx(4 / 5)
    assert "FCD/Test" not in out


def test_moses_metrics_of_nothing_valid_are_nan_and_an_empty_reference_is_refused():
    from plugen.errors import InputError

    out = moses.moses_metrics(["not a molecule", None], moses.Reference(TWO_RINGS), training=frozenset())
    assert out["valid"] == 0.0
    assert all(math.isnan(out[k]) for k in ("SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "Filters", "novelty"))
    with pytest.raises(InputError, match="no valid molecule"):
        moses.Reference(["xyz", ""])


def sampled_cosine(s: float, n: float, m: float) -> float:
    """Expected cosine of the count vectors of two independent samples of ``n`` and ``m`` items from one
    distribution with ``s = sum p_i^2``: ``E[a.b] = nms``, ``E|a|^2 = n^2 s + n(1 - s)``."""
    return s / math.sqrt((s + (1 - s) / n) * (s + (1 - s) / m))


def collision(counts: Counter) -> float:
    """Unbiased estimate of ``sum p_i^2`` from counts."""
    total = sum(counts.values())
    return sum(c * (c - 1) for c in counts.values()) / (total * (total - 1))


@pytest.mark.slow
@pytest.mark.skipif(not (MOSES_DATA / "test.csv.gz").exists(), reason="needs the MOSES data set")
def test_moses_training_row():
    """MOSES Table 2 "Train" row: the whole training set (1,584,663) against the whole test set
    (176,074). Here 3,000 training molecules against 3,000 test molecules (Frag, Scaf, IntDiv,
    Filters) and 1,000 training molecules against the whole test set (SNN, which grows with the
    reference). Cosines of count vectors fall with the sample sizes; the multinomial model
    (:func:`sampled_cosine`) with ``sum p^2`` estimated from the samples predicts them, and predicts
    the published value at the full sizes."""
    import pandas as pd

    train = pd.read_csv(MOSES_DATA / "train.csv.gz")["SMILES"]
    test = pd.read_csv(MOSES_DATA / "test.csv.gz")["SMILES"]
    gen = moses.molecules(train.sample(3000, random_state=0).tolist())
    ref = moses.molecules(test.sample(3000, random_state=0).tolist())
    published = moses.MOSES_TRAIN_ROW
    for name, counts, tolerance in (
        ("Frag/Test", moses.fragment_counts, 0.0005),
        ("Scaf/Test", moses.scaffold_counts, 0.005),
    ):
        a, b = counts(gen), counts(ref)
        s = collision(a + b)
        per_molecule = sum((a + b).values()) / 6000
        measured = moses.cosine(a, b)
        assert measured == pytest.approx(sampled_cosine(s, sum(a.values()), sum(b.values())), abs=0.01), name
        full = sampled_cosine(s, len(train) * per_molecule, len(test) * per_molecule)
        print(
            f"{name}: measured {measured:.4f} at 3,000 / 3,000, predicted {full:.5f} at the full sizes, "
            f"published {published[name]}"
        )
        assert full == pytest.approx(published[name], abs=tolerance), name
    fps = moses.fingerprints(gen)
    for name, p in (("IntDiv", 1), ("IntDiv2", 2)):
        measured = moses.internal_diversity(fps, p)
        print(f"{name}: measured {measured:.4f}, published {published[name]}")
        assert measured == pytest.approx(published[name], abs=0.005), name
    filters = float(np.mean([moses.passes_filters(m) for m in gen]))
    print(f"Filters: measured {filters:.4f}, published {published['Filters']}")
    assert filters >= 0.999
    snn = moses.snn(fps[:1000], moses.fingerprints(moses.molecules(test.tolist())))
    print(f"SNN/Test: measured {snn:.4f} (1,000 against 176,074), published {published['SNN/Test']}")
    assert snn == pytest.approx(published["SNN/Test"], abs=0.01)  # sd of a mean of 1,000 nearest similarities ~0.003
