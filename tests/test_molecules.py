"""Molecules: properties, tokenizers, shipped data and backbone, plugin design, metrics, CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
pd = pytest.importorskip("pandas")

from plugen.errors import InputError  # noqa: E402
from plugen.molecules import metrics  # noqa: E402
from plugen.molecules.properties import PROPERTIES, canonical, compute  # noqa: E402
from plugen.molecules.tokenizers import EncodeError, SelfiesTokenizer, SmilesTokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backbone():
    from plugen.backbones import load

    return load("selfies-vae")


@pytest.fixture(scope="module")
def plugin(backbone):
    from plugen.molecules import design

    return design.load_shipped()[1]


@pytest.fixture(scope="module")
def validation():
    from plugen.molecules.data import load_subset

    return load_subset("validation").iloc[:300]


# ------------------------------------------------------------------ properties
def test_properties_match_rdkit_reference_values():
    frame = compute(["c1ccccc1", "CCO", "CC(=O)Oc1ccccc1C(=O)O"], workers=1, progress=False)
    assert list(frame.columns) == ["smiles", "canonical", *PROPERTIES, "error"]
    # Crippen logP and TPSA (Ertl) as RDKit gives them; SA score of benzene is its floor, 1
    assert frame["logP"].tolist() == pytest.approx([1.6866, -0.0014, 1.3101], abs=1e-4)
    assert frame["TPSA"].tolist() == pytest.approx([0.0, 20.23, 63.6], abs=1e-2)
    assert frame["SAS"][0] == pytest.approx(1.0)
    assert 1.0 < frame["SAS"][2] < 3.0 and 0.0 < frame["QED"][2] < 1.0
    assert (frame["error"] == "").all()


def test_invalid_smiles_are_reported_per_row_not_raised():
    frame = compute(["CCO", "C1CC", "", None, "not a molecule"], workers=1, progress=False)
    assert frame["error"][0] == ""
    assert all(e.startswith("invalid SMILES") for e in frame["error"][1:])
    assert frame[list(PROPERTIES)].iloc[1:].isna().all().all()
    assert frame["canonical"][1:].isna().all()


@pytest.mark.slow
def test_parallel_and_serial_properties_agree():
    smiles = ["CCO", "c1ccccc1O", "CCN(CC)CC", "O=C(O)c1ccccc1", "xx"] * 240
    a = compute(smiles, workers=1, progress=False)
    b = compute(smiles, workers=2, progress=False, chunksize=100)
    pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------ tokenizers
@pytest.mark.parametrize("cls", [SelfiesTokenizer, SmilesTokenizer])
def test_tokenizers_round_trip_to_canonical_smiles(cls, validation):
    smiles = validation["SMILES"].tolist()[:50]
    tok = cls.build(smiles)
    for s in smiles:
        assert tok.decode(tok.encode(s)) == canonical(s)
    with pytest.raises(EncodeError):
        tok.encode("C1CC")
    with pytest.raises(EncodeError, match="vocabulary"):
        tok.encode("C[Xe]")


# ------------------------------------------------------------------ data
def test_shipped_subset_has_250k_molecules_with_labels():
    from plugen.molecules.data import load_subset, training_set

    frame = load_subset("all")
    assert len(frame) == 250_000
    assert list(frame.columns) == ["SMILES", "moses_row", *PROPERTIES]
    assert not frame[list(PROPERTIES)].isna().any().any()
    train, val = load_subset("train"), load_subset("validation")
    assert len(train) + len(val) == len(frame) and not set(train["moses_row"]) & set(val["moses_row"])
    assert frame["SMILES"][0] in training_set()
    # stored labels are the RDKit values of the stored SMILES
    again = compute(frame["SMILES"][:20], workers=1, progress=False)
    np.testing.assert_allclose(again[list(PROPERTIES)].to_numpy(), frame[list(PROPERTIES)][:20].to_numpy(), atol=1e-4)


# ------------------------------------------------------------------ backbone
def test_backbone_loads_by_both_names(backbone):
    from plugen.backbones import load

    assert backbone.latent_dim == 100 and backbone.name == "selfies-vae"
    alias = load("smiles-vae")
    assert alias.name == "selfies-vae"
    z = backbone.encode(["CCO"])
    np.testing.assert_array_equal(alias.encode(["CCO"]), z)


def test_encode_shapes_and_invalid_rows(backbone):
    z, errors = backbone.encode(["CCO", "C1CC", "c1ccccc1", "C[Xe]"], return_errors=True)
    assert z.shape == (4, 100) and z.dtype == np.float32
    assert np.isfinite(z[[0, 2]]).all() and np.isnan(z[[1, 3]]).all()
    assert errors[0] == errors[2] == "" and "parse" in errors[1] and "vocabulary" in errors[3]
    assert backbone.last_errors == errors


def test_decode_gives_smiles_or_none(backbone, validation):
    z = backbone.encode(validation["SMILES"].tolist()[:100])
    decoded = backbone.decode(z)
    assert isinstance(decoded, list) and len(decoded) == 100
    assert all(s is None or isinstance(s, str) for s in decoded)
    # the shipped model reconstructs most unseen molecules exactly (76% of 1,000 in its JSON; an
    # untrained one none) and decodes the rest to valid molecules
    exact = np.mean([d == s for d, s in zip(decoded, validation["SMILES"][:100])])
    assert exact >= 0.6 and metrics.validity(decoded) == 1.0
    prior = backbone.decode(np.random.default_rng(0).standard_normal((200, 100)).astype(np.float32))
    assert metrics.validity(prior) >= 0.95 and metrics.uniqueness(prior) >= 0.9
    with pytest.raises(InputError, match="shape"):
        backbone.decode(np.zeros((2, 99), dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        backbone.decode(np.full((1, 100), np.nan, dtype=np.float32))


# ------------------------------------------------------------------ design
def test_generation_moves_the_requested_property(plugin, backbone):
    from plugen.molecules import design

    low = design.generate(plugin, backbone, 150, {"logP": 1.5}, seed=0)
    high = design.generate(plugin, backbone, 150, {"logP": 4.5}, seed=1)
    assert {"smiles", "valid", *PROPERTIES, "error", "target_logP"} <= set(high.columns)
    assert low["valid"].mean() >= 0.95 and high["valid"].mean() >= 0.95
    # measured at 5,000 each: 1.98 vs 3.19 (the decoder, not the plugin, limits it: see the benchmark)
    assert high["logP"].mean() - low["logP"].mean() > 0.8
    with pytest.raises(InputError, match="no label"):
        design.generate(plugin, backbone, 5, {"QED": 0.9})


def test_generate_and_filter_keeps_the_closest_distinct_molecules(plugin, backbone):
    from plugen.molecules import design

    plain = design.generate(plugin, backbone, 30, {"logP": 4.5}, seed=3)
    kept = design.generate(plugin, backbone, 30, {"logP": 4.5}, seed=3, oversample=8)
    assert len(kept) == 30 and kept["valid"].all() and kept["smiles"].is_unique
    plain_error = (plain["logP"] - 4.5).abs().mean()
    kept_error = (kept["logP"] - 4.5).abs()
    assert kept_error.mean() < plain_error / 2
    assert kept_error.is_monotonic_increasing  # closest first
    with pytest.raises(InputError, match="oversample"):
        design.generate(plugin, backbone, 5, {"logP": 4.5}, oversample=0)


@pytest.mark.slow
def test_reencoded_samples_are_nearer_the_target_and_more_like_real_molecules(plugin, backbone):
    from plugen.molecules import design

    plain = design.generate(plugin, backbone, 200, {"logP": 4.5}, seed=4)
    again = design.generate(plugin, backbone, 200, {"logP": 4.5}, seed=4, reencode=2)
    assert again["valid"].mean() >= 0.95 and again["smiles"].nunique() >= 180
    # benchmarks (plain: 25,000 molecules; re-encoded x4: 5,000): MAE 1.25 -> 0.80, SAS 3.62 -> 2.93 (training 2.45)
    assert (again["logP"] - 4.5).abs().mean() < (plain["logP"] - 4.5).abs().mean() - 0.15
    assert again["SAS"].mean() < plain["SAS"].mean() - 0.2
    for bad in (-1, True, 1.5):
        with pytest.raises(InputError, match="reencode"):
            design.generate(plugin, backbone, 5, {"logP": 4.5}, reencode=bad)


def test_lead_optimization_path_and_bad_inputs(plugin, backbone):
    from plugen.molecules import design

    start = "CC(=O)Nc1ccc(O)cc1"  # paracetamol, logP 1.35
    path = design.optimize(plugin, backbone, [start, "C1CC"], {"logP": 3.0}, steps=3)
    ok = path[path["input"] == start]
    assert ok["step"].tolist() == [0, 1, 2, 3]
    assert ok["target_logP"].tolist() == pytest.approx([1.3506 + 3.0 * j / 3 for j in range(4)], abs=1e-3)
    assert ok["logP"].iloc[-1] > ok["logP"].iloc[0] + 1.0
    assert ((ok["similarity"] >= 0) & (ok["similarity"] <= 1)).all()
    bad = path[path["input"] == "C1CC"]
    assert len(bad) == 1 and "invalid" in bad["error"].iloc[0] and not bad["valid"].iloc[0]


def test_requests_beyond_the_shipped_plugins_training_range_warn_once(plugin, backbone):
    import warnings

    from plugen.molecules import design

    logp = plugin.schema_.labels[0]
    assert (logp.name, logp.low, logp.high) == ("logP", -4.1532, 5.1441)  # the 50,000 molecules it was fitted on
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design.optimize(
            plugin, backbone, ["CCO", "CCCCCCCCc1ccccc1"], {"logP": 7.0}, steps=3, relative=False, reencode=1
        )
        design.generate(plugin, backbone, 4, {"logP": 4.5}, reencode=1)  # the benchmark's highest target: inside
    assert [str(w.message)[:38] for w in caught] == ["label 'logP': requested values outside"]


@pytest.mark.slow
def test_reencoded_lead_optimization_moves_logp_further(plugin, backbone, validation):
    from plugen.molecules import design

    starts = validation[validation["logP"] <= 2.0].sample(20, random_state=0)["SMILES"].tolist()
    gain = {}
    for rounds in (0, 1):
        path = design.optimize(plugin, backbone, starts, {"logP": 3.0}, steps=2, reencode=rounds)
        assert path["valid"].all() and len(path) == 3 * len(starts)
        by_step = path.groupby("step")["logP"].mean()
        gain[rounds] = by_step[2] - by_step[0]
    assert gain[1] > gain[0] + 0.2  # 50 molecules, +3 in one go: 1.59 plain, 2.16 re-encoded


# ------------------------------------------------------------------ metrics and pictures
def test_metrics():
    s = ["CCO", "CCO", None, "c1ccccc1"]
    out = metrics.summary(s, {"CCO"}, {"logP": np.array([0.0, 0.0, np.nan, 2.0])}, {"logP": 1.0})
    assert out["validity"] == 0.75 and out["uniqueness"] == pytest.approx(2 / 3) and out["novelty"] == 0.5
    assert out["logP"]["mae"] == pytest.approx(1.0) and out["logP"]["mean"] == pytest.approx(2 / 3)
    assert metrics.tanimoto("CCO", "OCC") == 1.0 and metrics.tanimoto("CCO", "c1ccccc1") < 0.2
    assert math.isnan(metrics.tanimoto("CCO", None))


def test_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    from plugen.molecules.plots import density_plot, grid_image, plot_range

    rng = np.random.default_rng(0)
    p = density_plot(
        rng.normal(2.5, 1, 500),
        {1.5: rng.normal(1.5, 0.5, 100), 4.5: rng.normal(4.4, 0.5, 100)},
        "logP",
        tmp_path / "d.png",
    )
    g = grid_image(["CCO", None, "c1ccccc1"], ["a", "b", "c"], tmp_path / "g.png", per_row=3)
    assert p.stat().st_size > 1000 and g.stat().st_size > 1000
    # 100 samples beyond the 99.5th percentile of 50,000 training values still fit, as does the target 6
    lo, hi = plot_range(rng.normal(2.5, 1, 50_000), {1.5: rng.normal(1.5, 0.5, 100), 6.0: rng.normal(5.4, 0.3, 100)})
    assert lo < 0.4 and hi >= 6.0


# ------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_generate_optimize_properties(tmp_path, capsys):
    from plugen.cli import main

    out = tmp_path / "gen.csv"
    assert main(["molecules", "generate", "--logp", "3.0", "-n", "40", "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 40 and {"smiles", "valid", "logP", "TPSA", "SAS", "QED", "target_logP"} <= set(frame.columns)
    filtered = tmp_path / "filtered.csv"
    assert main(["molecules", "generate", "--logp", "3.0", "-n", "40", "--oversample", "3", "-o", str(filtered)]) == 0
    closer = pd.read_csv(filtered)
    assert len(closer) == 40 and (closer["logP"] - 3).abs().mean() < (frame["logP"] - 3).abs().mean()
    reencoded = tmp_path / "reencoded.csv"
    assert main(["molecules", "generate", "--logp", "3.0", "-n", "40", "--reencode", "1", "-o", str(reencoded)]) == 0
    from plugen.molecules import design

    bb, shipped = design.load_shipped()
    expected = design.generate(shipped, bb, 40, {"logP": 3.0}, reencode=1)
    assert pd.read_csv(reencoded)["smiles"].tolist() == expected["smiles"].tolist()

    path = tmp_path / "path.csv"
    code = main(
        [
            "molecules",
            "optimize",
            "--smiles",
            "CCOc1ccccc1",
            "--smiles",
            "C1CC",
            "--logp",
            "+2",
            "--steps",
            "2",
            "-o",
            str(path),
            "--grid",
            str(tmp_path / "path.png"),
        ]
    )
    assert code == 0
    frame = pd.read_csv(path)
    assert len(frame) == 4 and frame["error"].fillna("").str.contains("invalid").sum() == 1
    assert "C1CC" in capsys.readouterr().err and (tmp_path / "path.png").exists()

    props = tmp_path / "props.csv"
    (tmp_path / "in.txt").write_text("CCO\nnot_a_molecule\n")
    assert main(["molecules", "properties", "--input", str(tmp_path / "in.txt"), "-o", str(props)]) == 0
    assert pd.read_csv(props)["error"].notna().tolist() == [False, True]
    assert main(["molecules", "optimize", "--smiles", "CCO", "-o", str(path)]) == 2  # no change given
