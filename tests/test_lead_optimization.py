"""Constrained lead optimisation: design.optimize(min_similarity=...) and its CLI, on the shipped model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
pd = pytest.importorskip("pandas")

from plugen.errors import InputError  # noqa: E402
from plugen.molecules import lead_optimization as lo  # noqa: E402
from plugen.molecules.metrics import tanimoto  # noqa: E402
from plugen.molecules.properties import compute  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARACETAMOL = "CC(=O)Nc1ccc(O)cc1"  # logP 1.35, TPSA 49.33
STARTS = [PARACETAMOL, "C1CC", "", "C[Xe]", "COc1ccc(CC(=O)N2CCCC2)cc1"]


@pytest.fixture(scope="module")
def shipped():
    from plugen.molecules import design

    return design.load_shipped()


def _rdkit(smiles, names):
    return compute([smiles], names, workers=1, progress=False).iloc[0]


def test_progress_is_the_capped_fraction_of_the_change_averaged_over_properties():
    start, changes = np.array([1.0, 50.0]), np.array([1.5, -20.0])
    values = np.array([[2.5, 30.0], [4.0, 50.0], [0.25, 40.0], [1.75, 20.0]])
    np.testing.assert_allclose(lo.progress(values, start, changes), [1.0, 0.5, (-0.5 + 0.5) / 2, (0.5 + 1) / 2])
    stay = lo.progress(np.array([[1.0], [1.25]]), np.array([1.0]), np.array([0.0]))
    np.testing.assert_allclose(stay, [1.0, 0.75])  # a change of 0 asks the property to stay


def test_one_row_per_input_with_the_best_candidate_that_keeps_the_bound(shipped):
    from plugen.molecules import design

    bb, plugin = shipped
    errors = ["", "", "empty: no SMILES", "", ""]
    frame = design.optimize(plugin, bb, STARTS, {"logP": 1.5}, min_similarity=0.4, max_decodes=60, input_errors=errors)
    assert frame["input"].tolist() == STARTS
    columns = ["input", "smiles", "similarity", "logP_start", "logP", "progress", "decodes", "error"]
    assert frame.columns.tolist() == columns
    assert "invalid SMILES" in frame["error"][1] and frame["error"][2] == "empty: no SMILES"
    assert "vocabulary" in frame["error"][3]
    assert (frame["smiles"][1:4] == "").all() and (frame["decodes"][1:4] == 0).all()
    for i in (0, 4):
        row = frame.iloc[i]
        assert row["error"] == "" and 0 < row["decodes"] <= 60
        assert row["similarity"] >= 0.4 and row["similarity"] == pytest.approx(tanimoto(STARTS[i], row["smiles"]))
        assert row["logP"] == pytest.approx(_rdkit(row["smiles"], ["logP"])["logP"])
        assert row["logP_start"] == pytest.approx(_rdkit(STARTS[i], ["logP"])["logP"])
        assert row["logP"] > row["logP_start"] + 0.3  # the search moved it up while keeping the bound
    assert frame["logP_start"][0] == pytest.approx(1.3506, abs=1e-4)


def test_seeded_and_independent_of_the_other_inputs(shipped):
    bb, plugin = shipped
    alone = lo.optimize(plugin, bb, [PARACETAMOL], {"logP": 1.5}, max_decodes=30, seed=3)
    among = lo.optimize(plugin, bb, ["CCO", PARACETAMOL], {"logP": 1.5}, max_decodes=30, seed=3)
    pd.testing.assert_frame_equal(alone, among.iloc[1:].reset_index(drop=True))
    again = lo.optimize(plugin, bb, [PARACETAMOL], {"logP": 1.5}, max_decodes=30, seed=3)
    pd.testing.assert_frame_equal(alone, again)


def test_tpsa_joint_and_absolute_requests_move_the_right_way(shipped):
    bb, plugin = shipped
    tpsa = lo.optimize(plugin, bb, [PARACETAMOL], {"TPSA": -20}, max_decodes=60)
    assert tpsa["TPSA"][0] < tpsa["TPSA_start"][0] - 5 and tpsa["similarity"][0] >= 0.4
    joint = lo.optimize(plugin, bb, [PARACETAMOL], {"logP": 1.0, "TPSA": -10}, max_decodes=60)
    assert {"logP_start", "logP", "TPSA_start", "TPSA"} <= set(joint.columns)
    row = joint.iloc[0]
    moved = lo.progress(
        np.array([[row["logP"], row["TPSA"]]]), np.array([row["logP_start"], row["TPSA_start"]]), np.array([1.0, -10])
    )
    assert row["progress"] == pytest.approx(moved[0]) and row["progress"] > 0
    absolute = lo.optimize(plugin, bb, [PARACETAMOL], {"logP": 2.85}, relative=False, max_decodes=60)
    assert absolute["logP"][0] > absolute["logP_start"][0]  # 2.85 lies above the start's 1.35
    strict = lo.optimize(plugin, bb, [PARACETAMOL], {"logP": 1.5}, min_similarity=1.0, max_decodes=20)
    assert strict["smiles"][0] == "" and "similarity >= 1" in strict["error"][0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_similarity": 1.5}, "min_similarity"),
        ({"min_similarity": -0.1}, "min_similarity"),
        ({"min_similarity": "0.4"}, "min_similarity"),
        ({"max_decodes": 5}, "max_decodes"),
        ({"max_decodes": True}, "max_decodes"),
        ({"changes": {"QED": 0.1}}, "labels"),
        ({"changes": {}}, "labels"),
        ({"input_errors": [""]}, "input_errors"),
    ],
)
def test_bad_arguments_are_input_errors(shipped, kwargs, match):
    bb, plugin = shipped
    args = {"changes": {"logP": 1.5}, **kwargs}
    with pytest.raises(InputError, match=match):
        lo.optimize(plugin, bb, ["CCO", "CCN"], **args)


def test_cli_writes_one_row_per_line_and_a_grid(tmp_path, capsys):
    from plugen.cli import main

    source = tmp_path / "starts.smi"
    source.write_text(f"{PARACETAMOL}\n\nnot_a_molecule\nCOc1ccc(CC(=O)N2CCCC2)cc1\n")
    out, grid = tmp_path / "best.csv", tmp_path / "best.png"
    argv = ["molecules", "optimize", "--input", str(source), "--logp", "+1.5", "--min-similarity", "0.4"]
    assert main([*argv, "--max-decodes", "40", "-o", str(out), "--grid", str(grid)]) == 0
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["input"].tolist() == [PARACETAMOL, "", "not_a_molecule", "COc1ccc(CC(=O)N2CCCC2)cc1"]
    assert frame["error"][1] == "empty: no SMILES" and "invalid SMILES" in frame["error"][2]
    assert frame["smiles"][0] != "" and float(frame["similarity"][0]) >= 0.4
    assert grid.stat().st_size > 1000
    captured = capsys.readouterr()
    assert "not_a_molecule" in captured.err and '"found"' in captured.out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--min-similarity", "2"], ["min_similarity", "[0, 1]"]),
        (["--min-similarity", "0.4", "--max-decodes", "3"], ["max_decodes", "at least 10"]),
        (["--min-similarity", "0.4", "--steps", "4"], ["--steps", "step path only"]),
        (["--min-similarity", "0.4", "--reencode", "1", "--steps", "4"], ["--steps and --reencode", "step path only"]),
    ],
)
def test_cli_bad_search_arguments_are_clear_errors(tmp_path, capsys, extra, words):
    from plugen.cli import main

    argv = ["molecules", "optimize", "--smiles", "CCO", "--logp", "+1", *extra, "-o", str(tmp_path / "o.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and not (tmp_path / "o.csv").exists()
