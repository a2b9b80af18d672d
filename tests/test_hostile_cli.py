"""Hostile input to the ``plugen`` command and its file readers: every case ends in exit code 2
with one ``error:`` line naming the problem (never a traceback), or in a correct result; nothing
non-finite is ever written; a killed fit is not resumed on changed data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from plugen import InputError
from plugen.cli import main
from plugen.io import read_labels, read_latents, write_array

SRC = Path(__file__).resolve().parents[1] / "src"
LABELS = ["a", "b", "size", "shape"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, small):
    """Latents, labels and a fitted PluGeN and FPN, plus the hostile files of the cases below."""
    from conftest import quick

    from plugen import FPN, PluGeN

    Z, Y, labels = small
    d = tmp_path_factory.mktemp("hostile-cli")
    np.save(d / "z.npy", Z)
    write_array(d / "y.csv", Y, header=LABELS)
    quick(PluGeN, labels, hidden_features=16).fit(Z, Y).save(d / "p.plugin")
    quick(FPN, labels, hidden_features=16).fit(Z, Y).save(d / "f.plugin")
    text = (d / "y.csv").read_text().splitlines()
    (d / "dup.csv").write_text("\n".join(["a,a,size,shape"] + text[1:]) + "\n")
    (d / "unnamed.csv").write_text("\n".join(["a,,size,shape"] + text[1:]) + "\n")
    (d / "header-only.csv").write_text("z1,z2,z3,z4,z5,z6,z7,z8\n")
    (d / "labels-header-only.csv").write_text("a,b,size,shape\n")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 20)
    (d / "nul.csv").write_bytes(b"a,b\n1,\x00\n")
    (d / "empty.csv").write_text("")
    (d / "ragged.csv").write_text("1,2,3,4,5,6,7,8\n1,2\n")
    (d / "text.csv").write_text("1,2,3,4,5,6,7,8\n1,2,3,4,5,6,7,x\n")
    (d / "z.txt").write_text("1 2 3\n")
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "garbage.pt").write_bytes(b"not a torch file")
    np.save(d / "wide.npy", np.zeros((4, 9)))
    np.save(d / "cube.npy", np.zeros((4, 8, 2)))
    np.save(d / "huge.npy", np.full((3, 8), 1e39))
    np.save(d / "strings.npy", np.array([["a"] * 8] * 3))
    np.save(d / "images.npy", np.random.default_rng(0).random((5, 3, 7, 7)).astype(np.float32))
    np.save(d / "flat.npy", np.random.default_rng(0).random((5, 10)).astype(np.float32))
    torch.save({"a": torch.zeros(2, 8), "b": torch.zeros(2, 8)}, d / "two.pt")
    torch.save(torch.zeros(3, 8, dtype=torch.bfloat16), d / "bf16.pt")
    np.savez(d / "archive.npy.npz", z=Z)
    os.replace(d / "archive.npy.npz", d / "archive.npy")
    for name, change in {
        "std0": ("labels", 2, "std", 0),
        "version": ("format_version", "2"),
        "training": ("training", [1, 2]),
        "transforms": ("params", "transforms", 10**6),
    }.items():
        path = d / f"{name}.plugin"
        (path).mkdir()
        for f in (d / "p.plugin").iterdir():
            (path / f.name).write_bytes(f.read_bytes())
        meta = json.loads((path / "plugin.json").read_text())
        target = meta
        for key in change[:-2]:
            target = target[key]
        target[change[-2]] = change[-1]
        (path / "plugin.json").write_text(json.dumps(meta))
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


#: (what, argv with {d} for the files' folder, the message the error must contain)
CASES = [
    (
        "header-only latents CSV",
        "predict {d}/p.plugin --latents {d}/header-only.csv -o {d}/o.csv",
        "header row but no latents",
    ),
    ("binary file as latents CSV", "predict {d}/p.plugin --latents {d}/binary.csv -o {d}/o.csv", "not a text CSV"),
    ("binary file as labels CSV", "fit --latents {d}/z.npy --labels {d}/binary.csv -o {d}/n.plugin", "not a text CSV"),
    ("NUL byte in a CSV", "fit --latents {d}/z.npy --labels {d}/nul.csv -o {d}/n.plugin", "nul.csv"),
    ("empty CSV", "predict {d}/p.plugin --latents {d}/empty.csv -o {d}/o.csv", "is empty"),
    ("ragged CSV", "predict {d}/p.plugin --latents {d}/ragged.csv -o {d}/o.csv", "row 2 has 2 values"),
    ("text in latents CSV", "predict {d}/p.plugin --latents {d}/text.csv -o {d}/o.csv", "not a number"),
    (
        "labels CSV with a header only",
        "fit --latents {d}/z.npy --labels {d}/labels-header-only.csv -o {d}/n.plugin",
        "header row but no labels",
    ),
    (
        "duplicate label column names",
        "fit --latents {d}/z.npy --labels {d}/dup.csv --quiet -o {d}/n.plugin",
        "names column 'a' more than once",
    ),
    (
        "empty label column name",
        "fit --latents {d}/z.npy --labels {d}/unnamed.csv --quiet -o {d}/n.plugin",
        "column 2 of the header has no name",
    ),
    (
        "--y-source with PluGeN",
        "edit {d}/p.plugin --latents {d}/z.npy --set a=1 --y-source {d}/y.csv -o {d}/o.npy",
        "y_source is FPN's",
    ),
    ("edit to 1e300", "edit {d}/p.plugin --latents {d}/z.npy --set a=1e300 -o {d}/o.csv", "not finite"),
    ("FPN edit to -1e300", "edit {d}/f.plugin --latents {d}/z.npy --set size=-1e300 -o {d}/o.csv", "not finite"),
    ("edit to inf", "edit {d}/p.plugin --latents {d}/z.npy --set a=inf -o {d}/o.csv", "must be finite"),
    ("edit to text", "edit {d}/p.plugin --latents {d}/z.npy --set a=yes -o {d}/o.csv", "must be numeric"),
    ("edit without a value", "edit {d}/p.plugin --latents {d}/z.npy --set a -o {d}/o.csv", "NAME=VALUE"),
    ("sample at temperature 1e300", "sample {d}/p.plugin -n 3 --temperature 1e300 -o {d}/o.csv", "not finite"),
    ("sample at temperature nan", "sample {d}/f.plugin -n 3 --temperature nan -o {d}/o.csv", "temperature"),
    ("sample none", "sample {d}/p.plugin -n 0 -o {d}/o.csv", "positive integer"),
    ("sample to an unknown format", "sample {d}/p.plugin -n 2 -o {d}/o.xyz", "use .npy or .csv"),
    ("predict on 1e39 latents", "predict {d}/p.plugin --latents {d}/huge.npy -o {d}/o.csv", "beyond the range"),
    ("predict on latents of another size", "predict {d}/f.plugin --latents {d}/wide.npy -o {d}/o.csv", "9 columns"),
    ("predict on 3-D latents", "predict {d}/p.plugin --latents {d}/cube.npy -o {d}/o.csv", "2-D array"),
    ("predict on text latents", "predict {d}/p.plugin --latents {d}/strings.npy -o {d}/o.csv", "real numeric"),
    ("latents .npy that is not one", "predict {d}/p.plugin --latents {d}/garbage.npy -o {d}/o.csv", "cannot read"),
    ("latents .npz under a .npy name", "predict {d}/p.plugin --latents {d}/archive.npy -o {d}/o.csv", "several arrays"),
    ("latents .pt that is not one", "predict {d}/p.plugin --latents {d}/garbage.pt -o {d}/o.csv", "cannot read"),
    ("latents .pt with two tensors", "predict {d}/p.plugin --latents {d}/two.pt -o {d}/o.csv", "exactly one tensor"),
    ("latents of an unknown format", "predict {d}/p.plugin --latents {d}/z.txt -o {d}/o.csv", "unsupported latents"),
    ("missing latents file", "predict {d}/p.plugin --latents {d}/none.npy -o {d}/o.csv", "not found"),
    ("missing plugin", "predict {d}/none.plugin --latents {d}/z.npy -o {d}/o.csv", "no checkpoint"),
    ("a file as the plugin", "predict {d}/y.csv --latents {d}/z.npy -o {d}/o.csv", "is a file"),
    ("plugin.json with label std 0", "predict {d}/std0.plugin --latents {d}/z.npy -o {d}/o.csv", "standard deviation"),
    ("plugin.json with a string format_version", "info {d}/version.plugin", "format_version must be a whole number"),
    ("plugin.json with training a list", "info {d}/training.plugin", "training must be an object"),
    (
        "plugin.json with a million transforms",
        "predict {d}/transforms.plugin --latents {d}/z.npy -o {d}/o.csv",
        "params.transforms",
    ),
    (
        "encode images of another shape",
        "encode --backbone mnist-vae --inputs {d}/images.npy -o {d}/e.npy --quiet",
        "encodes images of shape (n, 1, 28, 28)",
    ),
    (
        "encode a flat array",
        "encode --backbone mnist-vae --inputs {d}/flat.npy -o {d}/e.npy --quiet",
        "got an array of shape (5, 10)",
    ),
    (
        "encode text with an image model",
        "encode --backbone mnist-vae --inputs {d}/z.txt -o {d}/e.npy --quiet",
        "encodes images",
    ),
    (
        "encode a binary file as SMILES",
        "encode --backbone mnist-vae --inputs {d}/binary.csv -o {d}/e.npy --quiet",
        "cannot read",
    ),
    (
        "encode with an unknown backbone",
        "encode --backbone nope --inputs {d}/images.npy -o {d}/e.npy",
        "unknown backbone",
    ),
    (
        "fit with an unknown label",
        "fit --latents {d}/z.npy --labels {d}/y.csv --label smile:binary -o {d}/n.plugin",
        "not a column",
    ),
    (
        "fit with an unknown kind",
        "fit --latents {d}/z.npy --labels {d}/y.csv --label a:ordinal -o {d}/n.plugin",
        "unknown kind",
    ),
    (
        "fit with zero epochs",
        "fit --latents {d}/z.npy --labels {d}/y.csv --epochs 0 -o {d}/n.plugin",
        "max_epochs must be a positive number",
    ),
    (
        "fit text latents in a stream",
        "fit --latents {d}/strings.npy --labels {d}/y.csv --stream -o {d}/n.plugin",
        "must hold floats",
    ),
]


@pytest.mark.parametrize("what, argv, message", CASES, ids=[c[0] for c in CASES])
def test_hostile_cli_input_ends_in_one_error_line(files, capsys, what, argv, message):
    for stale in ("o.csv", "o.npy", "e.npy"):
        (files / stale).unlink(missing_ok=True)
    code, out, err = run(capsys, *argv.format(d=files).split())
    assert code == 2, err
    assert "error:" in err and message in err, err
    assert "Traceback" not in err
    assert not any((files / name).exists() for name in ("o.csv", "o.npy", "e.npy"))  # nothing half-true written


#: (what, argv, check of the written file): hostile-looking input that is valid and must work
ACCEPTED = [
    ("bfloat16 .pt latents", "predict {d}/p.plugin --latents {d}/bf16.pt -o {d}/ok.csv", lambda t: len(t) == 4),
    (
        "edit far beyond the range, but finite",
        "edit {d}/p.plugin --latents {d}/z.npy --set size=40 -o {d}/ok.csv",
        lambda t: len(t) == 600 and ",," not in "".join(t),
    ),
    ("sample at temperature 0", "sample {d}/f.plugin -n 3 --temperature 0 -o {d}/ok.csv", lambda t: len(t) == 3),
]


@pytest.mark.parametrize("what, argv, check", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_valid_cli_input_still_works(files, capsys, what, argv, check):
    code, _, err = run(capsys, *argv.format(d=files).split())
    assert code == 0, err
    assert check((files / "ok.csv").read_text().splitlines())


def test_info_prints_a_summary_whose_training_fields_are_odd(files, capsys):
    path = files / "odd.plugin"
    path.mkdir()
    for f in (files / "p.plugin").iterdir():
        (path / f.name).write_bytes(f.read_bytes())
    meta = json.loads((path / "plugin.json").read_text())
    meta["training"] = {"seconds": "a while", "epochs": "many"}
    (path / "plugin.json").write_text(json.dumps(meta))
    code, out, _ = run(capsys, "info", path)
    assert code == 0 and "training: many epochs, a while s" in out


def test_write_array_refuses_non_finite_values(tmp_path):
    for suffix in (".csv", ".npy"):
        with pytest.raises(InputError, match="2 rows of the result hold NaN or Inf"):
            write_array(tmp_path / f"o{suffix}", np.array([[1.0, np.nan], [np.inf, 0.0], [1.0, 2.0]]), finite=True)
        assert not (tmp_path / f"o{suffix}").exists()


# ---------------------------------------------------------------- property-based: the readers

READERS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL = st.one_of(
    st.sampled_from(
        ["", "nan", "NA", "inf", "-inf", "1e999", "0", "1", "2.5", " 3 ", "x", "1_0", "0x1", '"4"', "NaN", "none"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=4),
)


def csv_text():
    row = st.lists(CELL, min_size=0, max_size=5).map(lambda cells: ",".join(cells))
    return st.lists(row, max_size=6).map(lambda rows: "\n".join(rows))


def assert_array_or_input_error(read, path):
    try:
        result = read(path)
    except InputError:
        return None
    return result


@READERS
@given(text=csv_text())
def test_csv_readers_end_in_an_array_or_an_input_error(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text)
    latents = assert_array_or_input_error(read_latents, path)
    if latents is not None:
        assert latents.ndim == 2 and latents.shape[0] >= 1 and not np.isnan(latents).any()
    labels = assert_array_or_input_error(read_labels, path)
    if labels is not None:
        header, values = labels
        assert len(set(header)) == len(header) and all(header) and values.shape == (values.shape[0], len(header))
        assert values.shape[0] >= 1


@READERS
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".npy", ".pt"]))
def test_readers_end_in_an_array_or_an_input_error_on_arbitrary_bytes(tmp_path, data, suffix):
    path = tmp_path / f"b{suffix}"
    path.write_bytes(data)
    assert_array_or_input_error(read_latents, path)
    if suffix == ".csv":
        assert_array_or_input_error(read_labels, path)


@READERS
@given(
    array=hnp.arrays(
        st.sampled_from(
            [
                np.float16,
                np.float32,
                np.float64,
                np.int8,
                np.uint64,
                np.bool_,
                np.complex64,
                np.dtype("U2"),
                np.dtype("M8[s]"),
                np.dtype([("x", "f4")]),
            ]
        ),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    ),
    mmap=st.booleans(),
)
def test_npy_reader_ends_in_a_2d_array_or_an_input_error(tmp_path, array, mmap):
    path = tmp_path / "a.npy"
    np.save(path, array)
    result = assert_array_or_input_error(lambda p: read_latents(p, mmap=mmap), path)
    if result is not None:
        assert result.ndim == 2


@READERS
@given(
    array=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
        elements=st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_written_results_are_finite_or_refused(tmp_path, array):
    path = tmp_path / "w.csv"
    try:
        write_array(path, array, finite=True)
    except InputError:
        assert not np.isfinite(array).all()
        return
    assert np.isfinite(array).all()
    back = np.loadtxt(path, delimiter=",", ndmin=2)
    np.testing.assert_array_equal(back.reshape(array.shape[0], -1), array.reshape(array.shape[0], -1))


# ---------------------------------------------------------------- kill and resume on changed data


@pytest.mark.slow
def test_a_killed_fit_rerun_on_changed_labels_is_refused_then_restarts_afresh(tmp_path):
    """`plugen fit` SIGKILLed after an epoch, then run again with 3,800 of its 4,000 labels flipped
    (the first and last rows unchanged): the saved state is refused with a message that says why;
    with --restart the fit starts afresh on the new labels."""
    import plugen
    from plugen.data import entangled

    d = entangled(n=4000, latent_dim=16, seed=2)
    np.save(tmp_path / "z.npy", d.Z)
    write_array(tmp_path / "y.csv", d.Y, header=list(d.labels))
    command = [
        sys.executable,
        "-m",
        "plugen",
        "fit",
        "--latents",
        "z.npy",
        "--labels",
        "y.csv",
        "--epochs",
        "40",
        "--quiet",
        "--device",
        "cpu",
        "--seed",
        "0",
        "-o",
        "c.plugin",
    ]
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    state = tmp_path / "c.plugin.training-state.pt"
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state.exists() and not (tmp_path / "c.plugin").exists()
    flipped = d.Y.copy()
    flipped[100:3900, 0] = 1 - flipped[100:3900, 0]
    write_array(tmp_path / "y.csv", flipped, header=list(d.labels))
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "belongs to a fit on other data or with other settings" in again.stderr and "--restart" in again.stderr
    assert state.exists() and not (tmp_path / "c.plugin").exists()  # the interrupted fit's state is kept
    fresh = subprocess.run(
        command[:-2] + ["--epochs", "2", "--restart", "-o", "c.plugin"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert "resum" not in fresh.stderr
    assert plugen.load(tmp_path / "c.plugin").history_["resumed_from_epoch"] == 0


def test_the_fingerprint_covers_every_row_in_memory_and_streamed(tmp_path, small):
    """Changing one label or one latent in the middle of the data changes the fingerprint."""
    from plugen.batches import BlockReader, InMemoryRows, StreamedRows
    from plugen.resume import fingerprint

    Z, Y, _ = small
    Z = np.concatenate([Z] * 20).astype(np.float32)  # 12,000 rows: several blocks
    Y = np.concatenate([Y] * 20)

    def keys(Z, Y):
        T = np.nan_to_num(Y)
        memory = InMemoryRows(torch.as_tensor(Z), torch.as_tensor(T), torch.device("cpu"))
        np.save(tmp_path / "z.npy", Z)
        reader = BlockReader(np.load(tmp_path / "z.npy", mmap_mode="r"))
        streamed = StreamedRows(reader, Y, np.nan_to_num, torch.device("cpu"), torch.float32, 0)
        try:
            return [
                fingerprint({"s": 1}, rows.fingerprint_rows(), rows.n, rows.features) for rows in (memory, streamed)
            ]
        finally:
            reader.close()

    base = keys(Z, Y)
    assert base == keys(Z.copy(), Y.copy())
    label, latent = Y.copy(), Z.copy()
    label[6000, 0] = 1 - label[6000, 0]
    latent[5000, 3] += 1e-3
    for changed in (keys(Z, label), keys(latent, Y)):
        assert changed[0] != base[0] and changed[1] != base[1]
