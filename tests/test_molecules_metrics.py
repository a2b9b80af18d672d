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

MOSES_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "moses"
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
    assert moses.cosine(moses.fragment_counts(moses.molecules(["CCO"])), moses.fragment_counts(moses.molecules(["CCCC"]))) == 0
    # BRICS cuts the amide C-N, the N-aryl and the carbonyl-aryl bonds: four pieces with labelled dummy atoms
    assert moses.fragment_counts(moses.molecules(["O=C(Nc1ccccc1)c1ccncc1"])) == Counter(
        {"[1*]C([6*])=O": 1, "[5*]N[5*]": 1, "[16*]c1ccccc1": 1, "[16*]c1ccncc1": 1})
    # scaffolds: toluene and benzene share benzene, which has one ring (left out unless min_rings=1)
    one_ring = moses.molecules(["Cc1ccccc1", "c1ccccc1"])
    assert moses.scaffold_counts(one_ring) == Counter()
    assert moses.scaffold_counts(one_ring, min_rings=1) == Counter({"c1ccccc1": 2})
    assert moses.cosine(Counter(a=1, b=1), Counter(a=1)) == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(moses.cosine(Counter(), Counter(a=1)))


@pytest.mark.parametrize("smiles, reason", [
    ("C[N+](C)(C)C", "charged atom"),
    ("CC[Si](C)(C)C", "atom type"),
    ("CCP(C)C", "atom type"),
    ("C1CCCCCCC1", "ring of 8+ atoms"),
    ("Oc1ccc(N=Nc2ccccc2)cc1", "PAINS"),  # azo phenol (PAINS azo_A)
    ("O=C1C=CC(=O)C=C1", "PAINS"),  # para-quinone (PAINS quinone_A)
])
def test_filters_fail(smiles, reason):
    why = moses.filter_failure(Chem.MolFromSmiles(smiles))
    assert why is not None and why.startswith(reason)
    assert not moses.passes_filters(Chem.MolFromSmiles(smiles))


def test_filters_pass_plain_drug_like_molecules():
    for smiles in [ASPIRIN, CAFFEINE, "C1CCCCCC1", "CCOC(=O)c1ccc(Cl)cc1Br", *TWO_RINGS]:
        assert moses.passes_filters(Chem.MolFromSmiles(smiles)), smiles
    assert moses.filter_failure(None) == "invalid"


def test_moses_metrics_on_a_small_set():
    charged = "C[N+](C)(C)C"
    reference = moses.Reference(TWO_RINGS)
    out = moses.moses_metrics(TWO_RINGS + [None, charged], reference, training=frozenset({"c1ccc2ccccc2c1"}),
                              ks=(2, 100))
    assert out["valid"] == pytest.approx(5 / 6)
    assert out["unique@2"] == 1.0 and math.isnan(out["unique@100"])  # fewer than 100 valid molecules
    nearest = max(rdkit_tanimoto(charged, s) for s in TWO_RINGS)
    assert out["SNN/Test"] == pytest.approx((4 + nearest) / 5)
    assert out["Frag/Test"] < 1 and out["Scaf/Test"] == pytest.approx(1.0)
    assert out["Filters"] == pytest.approx(4 / 5)
    assert out["novelty"] == pytest.approx(4 / 5)
    assert "FCD/Test" not in out
