"""Hostile and careless input to the molecule verbs (``plugen molecules ...``, issue 28).

Every case ends in a clear error (exit 2, one ``plugen molecules: error: ...`` line, no traceback)
or in a correct result; a molecule file gives exactly one output row per input line (``.txt``,
``.smi``) or CSV row, in input order, with the reason in ``error`` for the ones that cannot be used.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
pd = pytest.importorskip("pandas")

from plugen.cli import main  # noqa: E402
from plugen.errors import InputError  # noqa: E402
from plugen.molecules.cli import MAX_SMILES_CHARS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def properties(tmp_path, name: str, content: bytes, capsys) -> tuple[int, pd.DataFrame | None, str]:
    """``plugen molecules properties --input NAME`` on ``content``: exit code, output, stdout + stderr."""
    source, out = tmp_path / name, tmp_path / "props.csv"
    source.write_bytes(content)
    code = main(["molecules", "properties", "--input", str(source), "-o", str(out)])
    printed = capsys.readouterr()
    err = printed.out + printed.err
    frame = pd.read_csv(out, keep_default_na=False) if code == 0 else None
    return code, frame, err


def clear_error(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and lines and lines[-1].startswith("plugen molecules: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[-1], lines[-1]


# ------------------------------------------------------------------ one row per input line
def test_blank_lines_keep_their_row_in_order(tmp_path, capsys):
    """Was: 10,000 lines in, 9,869 rows out (blank lines dropped, rows no longer lined up)."""
    lines = ["CCO", "", "c1ccccc1", "not_a_smiles", "   ", "CC(=O)O", ""]
    code, frame, err = properties(tmp_path, "in.txt", ("\n".join(lines) + "\n").encode(), capsys)
    assert code == 0 and len(frame) == len(lines)
    assert frame["smiles"].tolist() == [line.strip() for line in lines]
    assert frame["canonical"].tolist() == ["CCO", "", "c1ccccc1", "", "", "CC(=O)O", ""]
    assert [bool(e) for e in frame["error"]] == [False, True, False, True, True, False, True]
    assert frame["error"][1] == "empty: no SMILES" and "RDKit cannot parse" in frame["error"][3]
    assert '{"output"' in err and '"invalid": 4' in err


def test_many_lines_with_blanks_give_as_many_rows(tmp_path, capsys):
    molecules = ["CCO", "CCN", "c1ccccc1O", "CC(C)O"]
    lines = ["" if i % 13 == 5 else molecules[i % 4] for i in range(400)]
    code, frame, _ = properties(tmp_path, "many.smi", "\n".join(lines).encode(), capsys)
    assert code == 0 and len(frame) == 400
    assert frame["smiles"].tolist() == lines
    assert (frame["error"] != "").tolist() == [line == "" for line in lines]


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_crlf_and_lf_files_read_alike(tmp_path, capsys, newline):
    content = newline.join(["CCO", "", "c1ccccc1"]) + newline
    code, frame, _ = properties(tmp_path, "in.txt", content.encode(), capsys)
    assert code == 0 and frame["smiles"].tolist() == ["CCO", "", "c1ccccc1"]
    assert frame["canonical"].tolist() == ["CCO", "", "c1ccccc1"]


def test_last_line_without_newline_and_byte_order_mark(tmp_path, capsys):
    code, frame, _ = properties(tmp_path, "in.txt", b"\xef\xbb\xbfCCO\nCCN", capsys)
    assert code == 0 and frame["canonical"].tolist() == ["CCO", "CCN"] and (frame["error"] == "").all()


def test_non_utf8_bytes_are_an_error_on_their_line(tmp_path, capsys):
    """Was: UnicodeDecodeError traceback."""
    code, frame, err = properties(tmp_path, "in.txt", b"CCO\n\xff\xfeC\nCC\n", capsys)
    assert code == 0 and len(frame) == 3
    assert frame["error"].tolist() == ["", "not UTF-8 text", ""]
    assert frame["smiles"][1] == "\\xff\\xfeC" and frame["canonical"][2] == "CC"
    assert "Traceback" not in err


def test_form_feed_and_other_separators_do_not_split_a_line(tmp_path, capsys):
    code, frame, _ = properties(tmp_path, "in.txt", b"CCO\nC\x0cC\nCCN\n", capsys)
    assert code == 0 and len(frame) == 3 and frame["error"][1] != "" and frame["canonical"][2] == "CCN"


def test_a_very_long_line_is_refused_on_its_row_quickly(tmp_path, capsys):
    """Was: minutes in RDKit's SA score for a 100,000-atom chain."""
    start = time.perf_counter()
    code, frame, _ = properties(tmp_path, "in.txt", b"CCO\n" + b"C" * 200_000 + b"\nCCN\n", capsys)
    assert time.perf_counter() - start < 10
    assert code == 0 and len(frame) == 3 and frame["canonical"].tolist() == ["CCO", "", "CCN"]
    assert frame["error"][1] == f"200000 characters; at most {MAX_SMILES_CHARS} are read"
    assert len(frame["smiles"][1]) < 100  # the output does not repeat the whole line


def test_only_blank_lines_give_only_error_rows(tmp_path, capsys):
    code, frame, _ = properties(tmp_path, "in.txt", b"\n" * 2000, capsys)
    assert code == 0 and len(frame) == 2000 and (frame["error"] == "empty: no SMILES").all()


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf"])
def test_an_empty_file_is_a_clear_error(tmp_path, capsys, content):
    code, _, err = properties(tmp_path, "in.txt", content, capsys)
    clear_error(code, err, "give molecules")


# ------------------------------------------------------------------ CSV inputs
def test_csv_blank_rows_and_empty_cells_keep_their_row(tmp_path, capsys):
    code, frame, _ = properties(tmp_path, "in.csv", b"name,SMILES\ne,CCO\n\nx,CC\ny,\nz,\xff\n", capsys)
    assert code == 0 and len(frame) == 5
    assert frame["canonical"].tolist() == ["CCO", "", "CC", "", ""]
    assert frame["error"].tolist()[:4] == ["", "empty: no SMILES", "", "empty: no SMILES"]
    assert frame["error"][4] == "not UTF-8 text"


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ["cannot read", "as CSV"]),
        (b'smiles\n"CC\n', ["cannot read", "as CSV"]),
        (b"name,formula\nethanol,C2H6O\n", ["no SMILES column", "name", "formula"]),
        (b"smiles\n", ["give molecules"]),
    ],
)
def test_unusable_csv_files_are_clear_errors(tmp_path, capsys, content, words):
    code, _, err = properties(tmp_path, "in.csv", content, capsys)
    clear_error(code, err, *words)


def test_missing_input_and_a_directory_are_clear_errors(tmp_path, capsys):
    for path in (tmp_path / "absent.txt", tmp_path):
        code = main(["molecules", "properties", "--input", str(path), "-o", str(tmp_path / "o.csv")])
        clear_error(code, capsys.readouterr().err, "no such file")


def test_smiles_arguments_are_checked_like_lines(tmp_path, capsys):
    out = tmp_path / "o.csv"
    assert (
        main(["molecules", "properties", "--smiles", "", "--smiles", "CCO", "--smiles", "C" * 2000, "-o", str(out)])
        == 0
    )
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["error"].tolist() == ["empty: no SMILES", "", f"2000 characters; at most {MAX_SMILES_CHARS} are read"]


def test_more_workers_than_cores_still_computes(tmp_path, capsys):
    out = tmp_path / "o.csv"
    assert main(["molecules", "properties", "--smiles", "CCO", "--workers", "100000", "-o", str(out)]) == 0
    assert pd.read_csv(out)["canonical"].tolist() == ["CCO"]


# ------------------------------------------------------------------ optimize and generate
@pytest.mark.parametrize("steps", ["0", "-2"])
def test_optimize_steps_below_one_is_a_clear_error(tmp_path, capsys, steps):
    """Was: ZeroDivisionError (0) and ValueError: negative dimensions (-2), with tracebacks."""
    code = main(
        [
            "molecules",
            "optimize",
            "--smiles",
            "CCOc1ccccc1",
            "--logp",
            "+2",
            "--steps",
            steps,
            "-o",
            str(tmp_path / "p.csv"),
        ]
    )
    clear_error(code, capsys.readouterr().err, "--steps must be an integer of at least 1", f"got {steps}")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_optimize_steps_zero_in_a_fresh_process_prints_no_traceback(tmp_path):
    """The issue's reproduction as it ran it: the ``plugen`` command in its own process."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "plugen",
            "molecules",
            "optimize",
            "--smiles",
            "CCOc1ccccc1",
            "--logp",
            "+2",
            "--steps",
            "0",
            "-o",
            str(tmp_path / "p.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    clear_error(out.returncode, out.stderr, "--steps must be an integer of at least 1")


@pytest.mark.parametrize("steps", [0, -2, 1.5, True])
def test_the_library_refuses_bad_steps_too(steps):
    from plugen.molecules import design

    with pytest.raises(InputError, match="steps must be an integer of at least 1"):
        design.optimize(object(), object(), ["CCO"], {}, steps=steps)


@pytest.fixture(scope="module")
def shipped():
    from plugen.molecules import design

    return design.load_shipped()


def test_optimize_gives_every_input_line_its_rows_in_order(tmp_path, capsys, shipped):
    source, out = tmp_path / "in.smi", tmp_path / "path.csv"
    source.write_bytes(b"CCOc1ccccc1\n\nC1CC\n\xff\nCC(=O)Nc1ccc(O)cc1\n")
    code = main(["molecules", "optimize", "--input", str(source), "--logp", "+1", "--steps", "2", "-o", str(out)])
    printed = capsys.readouterr()
    err = printed.out + printed.err
    assert code == 0
    frame = pd.read_csv(out, keep_default_na=False)
    runs = [k for k, _ in itertools.groupby(frame["input"])]
    assert runs == ["CCOc1ccccc1", "", "C1CC", "\\xff", "CC(=O)Nc1ccc(O)cc1"]
    by_input = frame.groupby("input", sort=False)["error"].apply(list).to_dict()
    assert by_input["CCOc1ccccc1"] == ["", "", ""] and by_input["CC(=O)Nc1ccc(O)cc1"] == ["", "", ""]
    assert by_input[""] == ["empty: no SMILES"] and by_input["\\xff"] == ["not UTF-8 text"]
    assert "invalid" in by_input["C1CC"][0]
    assert '"invalid_inputs": 3' in err and '"molecules": 5' in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["generate", "--logp", "3", "-n", "0"], ["-n must be at least 1"]),
        (["generate", "--logp", "3", "-n", "4", "--oversample", "0"], ["oversample must be at least 1"]),
        (["generate", "--logp", "3", "-n", "4", "--temperature", "-1"], ["temperature"]),
        (["generate", "--logp", "nan", "-n", "4"], ["finite"]),
        (["generate", "--logp", "3", "-n", "4", "--reencode", "-1"], ["reencode", "-1"]),
        (["optimize", "--smiles", "CCO", "--logp", "+1", "--reencode", "-1"], ["rounds", "-1"]),
        (["optimize", "--smiles", "CCO", "--logp", "abc"], ["expected a number"]),
        (["optimize", "--smiles", "CCO", "--logp", "+1", "--tpsa", "=40"], ["all changes as relative"]),
        (["optimize", "--logp", "+1"], ["give molecules"]),
        (["generate", "--logp", "3", "-n", "4", "--plugin", "/nonexistent/x.plugin"], ["no fitted plugin"]),
    ],
)
def test_bad_requests_are_clear_errors(tmp_path, capsys, shipped, argv, words):
    code = main(["molecules", *argv, "-o", str(tmp_path / "o.csv")])
    clear_error(code, capsys.readouterr().err, *words)


def test_the_library_refuses_a_very_long_smiles_on_its_row_quickly():
    """``properties.compute`` itself (not only the CLI) caps the length it gives RDKit."""
    from plugen.molecules.properties import compute

    start = time.perf_counter()
    frame = compute(["CCO", "C" * 200_000], workers=1, progress=False)
    assert time.perf_counter() - start < 10
    assert frame["canonical"][0] == "CCO" and not isinstance(frame["canonical"][1], str)
    assert frame["error"][1] == f"200000 characters; at most {MAX_SMILES_CHARS} are read"
