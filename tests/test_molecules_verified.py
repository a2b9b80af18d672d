"""Verified generation (plugen.molecules.verified through design.generate and the CLI): every kept
molecule meets the request by RDKit's measure, the decode budget is honoured and said, bad requests
are clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
pd = pytest.importorskip("pandas")

from plugen.cli import main  # noqa: E402
from plugen.errors import InputError  # noqa: E402
from plugen.molecules import design, verified  # noqa: E402
from plugen.molecules.moses import passes_filters  # noqa: E402
from plugen.molecules.properties import PROPERTIES, compute, mol_from_smiles  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shipped():
    return design.load_shipped()


def test_every_kept_molecule_is_within_tolerance_and_distinct(shipped):
    bb, plugin = shipped
    frame = design.generate(plugin, bb, 12, {"logP": 3.0}, tolerance={"logP": 0.4}, seed=1)
    info = frame.attrs["verified"]
    assert len(frame) == 12 and frame["valid"].all() and frame["smiles"].is_unique
    assert {"smiles", "valid", *PROPERTIES, "error", "target_logP", "decodes"} <= set(frame.columns)
    again = compute(frame["smiles"].tolist(), ["logP"], workers=1, progress=False)  # RDKit's own values
    assert np.allclose(again["logP"], frame["logP"]) and ((again["logP"] - 3.0).abs() <= 0.4).all()
    assert (frame["decodes"] >= 1).all() and frame["decodes"].sum() == info["decodes"] <= info["decoded"]
    assert info["kept"] == 12 and not info["budget_exhausted"]
    assert info["decodes_per_kept"] == pytest.approx(info["decodes"] / 12)
    same = design.generate(plugin, bb, 12, {"logP": 3.0}, tolerance={"logP": 0.4}, seed=1)
    assert same["smiles"].tolist() == frame["smiles"].tolist()  # seeded


def test_joint_drug_like_request_passes_every_check(shipped):
    bb, plugin = shipped
    tolerance = {"logP": 0.5, "TPSA": 10.0}
    frame = design.generate(
        plugin, bb, 6, {"logP": 2.5, "TPSA": 60.0}, tolerance=tolerance, drug_like=True, sas_max=3.5, seed=2
    )
    assert len(frame) == 6 and frame["smiles"].is_unique
    assert ((frame["logP"] - 2.5).abs() <= 0.5).all() and ((frame["TPSA"] - 60).abs() <= 10).all()
    assert (frame["SAS"] <= 3.5).all() and all(passes_filters(mol_from_smiles(s)) for s in frame["smiles"])
    assert frame.attrs["verified"]["sas_max"] == 3.5 and frame.attrs["verified"]["drug_like"]


def test_an_exhausted_budget_gives_fewer_rows_and_says_so(shipped):
    bb, plugin = shipped
    with pytest.warns(verified.DecodeBudgetWarning, match="kept .* of 50 molecules.*budget of 70"):
        frame = design.generate(plugin, bb, 50, {"logP": 4.0}, tolerance={"logP": 0.02}, max_decodes=70)
    info = frame.attrs["verified"]
    assert len(frame) < 50 and info["budget_exhausted"] and info["decoded"] == info["decodes"] == 70
    assert ((frame["logP"] - 4.0).abs() <= 0.02).all()


def test_calibration_moves_the_request_by_the_measured_response():
    calibration = verified.Calibration({"logP": 5.0}, {"logP": (3.0, 7.0)}, {"logP": 5.0})
    calibration.update({"logP": [3.4] * 10})  # median 1.6 short, response 0.5 assumed: ask 3.2 more (bounded)
    assert calibration.asked["logP"] == 7.0
    calibration.update({"logP": [4.2] * 10})  # measured response (4.2 - 3.4) / 2 = 0.4: 0.8 more -> 9, bounded
    assert calibration.asked["logP"] == 7.0 and calibration.history["logP"][-1] == (7.0, 4.2)
    fixed = verified.Calibration({"logP": 5.0}, {"logP": (5.0, 5.0)}, {"logP": 5.0})
    fixed.update({"logP": [3.4] * 10})
    assert fixed.asked["logP"] == 5.0
    few = verified.Calibration({"TPSA": 60.0}, {"TPSA": (20.0, 100.0)}, {"TPSA": 60.0})
    few.update({"TPSA": [40.0] * 3})  # too few molecules to move on
    assert few.asked["TPSA"] == 60.0
    few.update({"TPSA": [70.0] * 9})
    assert few.asked["TPSA"] == pytest.approx(40.0)


@pytest.mark.slow
def test_calibrating_the_request_saves_decodes_at_the_end_of_the_range(shipped):
    bb, plugin = shipped
    request = verified.check_request(40, {"logP": 5.0}, {"logP": 0.25}, 4000, False, None)
    plain = verified.generate(plugin, bb, request, seed=5, calibrate=False).attrs["verified"]
    calibrated = verified.generate(plugin, bb, request, seed=5).attrs["verified"]
    assert plain["asked"] == {"logP": 5.0} and calibrated["asked"]["logP"] > 5.5
    assert calibrated["decodes_per_kept"] < plain["decodes_per_kept"]  # the first batch is asked uncalibrated


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"tolerance": {"TPSA": 5.0}}, "not requested"),
        ({"tolerance": {"logP": -0.1}}, "positive finite"),
        ({"tolerance": {"logP": float("nan")}}, "positive finite"),
        ({"tolerance": {"logP": True}}, "must be a number"),
        ({"tolerance": {"logP": "0.2"}}, "must be a number"),
        ({"tolerance": [0.25]}, "dict"),
        ({"tolerance": {}}, "needs a tolerance"),
        ({"tolerance": {"logP": 0.2}, "max_decodes": 9}, "at least n"),
        ({"tolerance": {"logP": 0.2}, "max_decodes": 100.5}, "integer"),
        ({"tolerance": {"logP": 0.2}, "sas_max": 3.0}, "drug_like=True"),
        ({"drug_like": True, "sas_max": 0}, "sas_max"),
        ({"tolerance": {"logP": 0.2}, "oversample": 3}, "do not combine"),
        ({"max_decodes": 100}, "verified generation"),
    ],
)
def test_bad_verified_requests_are_input_errors(shipped, kwargs, words):
    bb, plugin = shipped
    with pytest.raises(InputError, match=words):
        design.generate(plugin, bb, 10, {"logP": 3.0}, **kwargs)


def test_cli_verified_generation_and_its_errors(tmp_path, capsys):
    out = tmp_path / "v.csv"
    argv = ["molecules", "generate", "--logp", "3.5", "--tolerance", "0.5", "-n", "5", "-o", str(out)]
    assert main(argv) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 5 and ((frame["logP"] - 3.5).abs() <= 0.5).all() and frame["decodes"].min() >= 1
    assert '"decodes_per_kept"' in capsys.readouterr().out
    short = tmp_path / "short.csv"
    argv = ["molecules", "generate", "--logp", "3.5", "--tolerance", "logp=0.01", "-n", "40", "--max-decodes", "60"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", verified.DecodeBudgetWarning)  # the CLI says it in its own words
        assert main([*argv, "-o", str(short)]) == 0
    assert "the decode budget ended: only" in capsys.readouterr().err and len(pd.read_csv(short)) < 40
    for bad, words in [
        (["--logp", "2.5", "--tpsa", "70", "--tolerance", "0.3"], "exactly one requested property"),
        (["--logp", "2.5", "--tolerance", "qed=0.1"], "unknown property"),
        (["--logp", "2.5", "--tolerance", "logP=abc"], "expected a number"),
        (["--logp", "2.5", "--tolerance", "TPSA=5"], "not requested"),
        (["--logp", "2.5", "--tolerance", "0.3", "-n", "10", "--max-decodes", "5"], "at least n"),
    ]:
        assert main(["molecules", "generate", *bad, "-o", str(tmp_path / "x.csv")]) == 2
        assert words in capsys.readouterr().err.strip().splitlines()[-1]
