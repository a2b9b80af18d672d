import json
import re

import numpy as np
import pytest
from conftest import without_wall_times

from plugen.cli import infer_kind, main
from plugen.io import write_array


@pytest.fixture
def files(tmp_path, small):
    Z, Y, labels = small
    np.save(tmp_path / "z.npy", Z)
    Y = Y.copy()
    Y[::5, 0] = np.nan
    write_array(tmp_path / "y.csv", Y, header=list(labels))
    return tmp_path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_edit_sample_predict_info(files, capsys):
    d = files
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "y.csv",
        "--epochs",
        3,
        "--quiet",
        "--backbone",
        "toy",
        "-o",
        d / "plugin",
    )
    assert code == 0 and "a:binary, b:binary, size:continuous, shape:categorical" in err
    assert "saved PluGeN" in err
    code, _, _ = run(
        capsys, "edit", d / "plugin", "--latents", d / "z.npy", "--set", "a=1", "--set", "size=11", "-o", d / "e.npy"
    )
    assert code == 0 and np.load(d / "e.npy").shape == (600, 8)
    code, _, _ = run(capsys, "sample", d / "plugin", "-n", 7, "--set", "shape=2", "--seed", 1, "-o", d / "s.csv")
    assert code == 0 and np.loadtxt(d / "s.csv", delimiter=",").shape == (7, 8)
    code, _, err = run(capsys, "sample", d / "plugin", "-n", 2, "--set", "size=1000", "-o", d / "far.csv")
    assert code == 0 and "plugen sample: warning: label 'size': requested values outside its training range" in err
    code, _, _ = run(capsys, "predict", d / "plugin", "--latents", d / "e.npy", "-o", d / "p.csv")
    lines = (d / "p.csv").read_text().splitlines()
    assert code == 0 and lines[0] == "a,b,size,shape" and len(lines) == 601
    code, _, _ = run(capsys, "predict", d / "plugin", "--latents", d / "e.npy", "--proba", "-o", d / "pp.csv")
    assert (d / "pp.csv").read_text().splitlines()[0] == "a,b"
    code, out, _ = run(capsys, "info", d / "plugin")
    assert code == 0 and "PluGeN plugin" in out and "backbone: toy" in out and "shape: categorical" in out
    assert re.search(r"size: continuous \(mean \S+, sd \S+, range \S+ to \S+; 600 observed\)", out)


def test_fpn_with_chosen_labels_and_source_labels(files, capsys):
    d = files
    code, _, _ = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "y.csv",
        "--label",
        "a:binary",
        "--label",
        "shape:categorical",
        "--method",
        "fpn",
        "--flow",
        "maf",
        "--epochs",
        2,
        "--latent-noise",
        0.1,
        "--classifier-weight",
        3,
        "--warmup-steps",
        5,
        "--quiet",
        "-o",
        d / "f",
    )
    assert code == 0
    params = json.loads((d / "f" / "plugin.json").read_text())["params"]
    assert params["latent_noise"] == 0.1 and params["classifier_weight"] == 3 and params["warmup_steps"] == 5
    write_array(d / "src.csv", np.array([[1, 0]] * 600), header=["a", "shape"])
    code, _, err = run(
        capsys,
        "edit",
        d / "f",
        "--latents",
        d / "z.npy",
        "--set",
        "shape=1",
        "--y-source",
        d / "src.csv",
        "-o",
        d / "e.npy",
    )
    assert code == 0, err
    code, out, _ = run(capsys, "info", d / "f", "--json")
    assert '"estimator": "FPN"' in out


def test_fit_with_restarts_reports_the_kept_seed(files, capsys):
    d = files
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "y.csv",
        "--epochs",
        2,
        "--restarts",
        2,
        "--seed",
        5,
        "--quiet",
        "-o",
        d / "r",
    )
    assert code == 0 and "of 2 restarts" in err
    seed = int(err.split(" of 2 restarts")[0].rsplit("seed ", 1)[1])
    assert seed in (5, 6)
    assert json.loads((d / "r" / "plugin.json").read_text())["params"]["restarts"] == 2
    assert not (d / "r.training-state.pt").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["edit", "{d}/plugin", "--latents", "{d}/z.npy", "--set", "smile=1", "-o", "{d}/e.npy"],
            "unknown label 'smile'",
        ),
        (["edit", "{d}/plugin", "--latents", "{d}/z.npy", "--set", "a", "-o", "{d}/e.npy"], "NAME=VALUE"),
        (["sample", "{d}/plugin", "-n", "3", "--set", "shape=9", "-o", "{d}/s.npy"], "unknown class 9"),
        (["predict", "{d}/nothing", "--latents", "{d}/z.npy", "-o", "{d}/p.csv"], "no checkpoint at"),
        (
            ["fit", "--latents", "{d}/z.npy", "--labels", "{d}/y.csv", "--label", "age:continuous", "-o", "{d}/x"],
            "not a column",
        ),
        (
            ["fit", "--latents", "{d}/z.npy", "--labels", "{d}/y.csv", "--classifier-weight", "1", "-o", "{d}/x"],
            "--method fpn only",
        ),
        (
            ["edit", "{d}/plugin", "--latents", "{d}/z.npy", "--set", "a=1", "--reencode", "1", "-o", "{d}/e.npy"],
            "--reencode needs --backbone",
        ),
        (
            [
                "edit",
                "{d}/plugin",
                "--latents",
                "{d}/z.npy",
                "--set",
                "a=1",
                "--reencode",
                "1",
                "--backbone",
                "toy",
                "-o",
                "{d}/e.npy",
            ],
            "unknown backbone 'toy'",
        ),
    ],
)
def test_errors_exit_2_with_a_message(files, capsys, argv, message):
    d = files
    assert (
        run(
            capsys,
            "fit",
            "--latents",
            d / "z.npy",
            "--labels",
            d / "y.csv",
            "--epochs",
            1,
            "--quiet",
            "-o",
            d / "plugin",
        )[0]
        == 0
    )
    code, _, err = run(capsys, *[a.format(d=d) for a in argv])
    assert code == 2 and message in err
    assert not (d / "e.npy").exists() and not (d / "s.npy").exists()


def test_edit_reencoded_through_a_shipped_backbone(tmp_path, capsys):
    from plugen import PluGeN
    from plugen.backbones import load
    from plugen.data.mnist import load_mnist
    from plugen.reencode import reencoded_edit

    data = load_mnist()
    backbone = load("mnist-vae")
    Z = backbone.encode(data.images[::8])
    plugin = PluGeN({"digit": "categorical"}, backbone="mnist-vae", max_epochs=2, progress=False)
    plugin.fit(Z, data.column("digit")[::8]).save(tmp_path / "p")
    np.save(tmp_path / "z.npy", Z[:5])
    code, _, err = run(
        capsys,
        "edit",
        tmp_path / "p",
        "--latents",
        tmp_path / "z.npy",
        "--set",
        "digit=4",
        "--reencode",
        2,
        "-o",
        tmp_path / "e.npy",
    )  # the plugin records its backbone
    assert code == 0, err
    np.testing.assert_allclose(
        np.load(tmp_path / "e.npy"), reencoded_edit(plugin, backbone, Z[:5], {"digit": 4}, 2), atol=1e-5
    )


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:" in capsys.readouterr().out


def test_kind_inference():
    assert infer_kind(np.array([0, 1, np.nan, 1])) == "binary"
    assert infer_kind(np.array([0, 3, 7, 2])) == "categorical"
    assert infer_kind(np.array([0.5, 1.25, 3.0])) == "continuous"
    assert infer_kind(np.array(["square", None, "circle"], dtype=object)) == "categorical"


@pytest.mark.slow
def test_killed_fit_resumes_when_run_again(tmp_path):
    """SIGKILL a running `plugen fit`, run the same command again: it resumes from the saved state
    and ends with the same plugin as an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import plugen
    from plugen.data import entangled

    d = entangled(n=20000, latent_dim=16, seed=2)
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
        "8",
        "--quiet",
        "--device",
        "cpu",
        "--stream",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    state = tmp_path / "killed.plugin.training-state.pt"
    process = subprocess.Popen(command + ["-o", "killed.plugin"], cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state.exists() and not (tmp_path / "killed.plugin").exists()
    again = subprocess.run(command + ["-o", "killed.plugin"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "resuming the interrupted fit" in again.stderr, again.stderr[-2000:]
    whole = subprocess.run(command + ["-o", "whole.plugin"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert whole.returncode == 0
    killed, reference = plugen.load(tmp_path / "killed.plugin"), plugen.load(tmp_path / "whole.plugin")
    assert killed.history_["resumed_from_epoch"] >= 1
    assert without_wall_times(killed.history_["history"]) == without_wall_times(reference.history_["history"])
    np.testing.assert_array_equal(killed.edit(d.Z[:50], {"a": 1}), reference.edit(d.Z[:50], {"a": 1}))
    assert not state.exists()


def test_fit_holds_out_groups_named_by_a_column(files, capsys):
    d = files
    Y = np.genfromtxt(d / "y.csv", delimiter=",", skip_header=1)
    photo = np.arange(600) // 4
    write_array(d / "yg.csv", np.column_stack([Y, photo]), header=["a", "b", "size", "shape", "photo"])
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "yg.csv",
        "--groups",
        "photo",
        "--epochs",
        2,
        "--quiet",
        "-o",
        d / "g",
    )
    assert (
        code == 0
        and "labels (kinds inferred; override with --label NAME:KIND): a:binary, b:binary, "
        "size:continuous, shape:categorical\n"
        in err
    )  # the group column is not a label
    photo = photo.astype(float)
    photo[7] = np.nan
    write_array(d / "yg.csv", np.column_stack([Y, photo]), header=["a", "b", "size", "shape", "photo"])
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "yg.csv",
        "--groups",
        "photo",
        "--epochs",
        2,
        "--quiet",
        "-o",
        d / "g2",
    )
    assert code == 2 and "1 NaN ids" in err and not (d / "g2").exists()
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "y.csv",
        "--groups",
        "photo",
        "--epochs",
        2,
        "--quiet",
        "-o",
        d / "g3",
    )
    assert code == 2 and "--groups 'photo' is not a column" in err


SHAPES = ["circle", "square", "triangle"]


@pytest.fixture
def named_files(tmp_path, small):
    """Latents and a labels CSV whose ``shape`` column holds class names."""
    Z, Y, labels = small
    np.save(tmp_path / "z.npy", Z)
    write_array(tmp_path / "codes.csv", Y, header=list(labels))
    named = Y.astype(object)
    named[:, 3] = np.array(SHAPES, dtype=object)[Y[:, 3].astype(int)]
    named[7, 3] = None  # missing
    write_array(tmp_path / "y.csv", named, header=list(labels))
    return tmp_path


def test_text_label_column_is_categorical_with_sorted_names(named_files, capsys):
    d = named_files
    code, _, err = run(
        capsys, "fit", "--latents", d / "z.npy", "--labels", d / "y.csv", "--epochs", 2, "--quiet", "-o", d / "p"
    )
    assert code == 0, err
    assert "shape:categorical" in err and "shape: 0 circle, 1 square, 2 triangle" in err
    meta = json.loads((d / "p" / "plugin.json").read_text())
    assert meta["labels"][3]["names"] == SHAPES and meta["labels"][3]["observed"] == 599
    code, out, _ = run(capsys, "info", d / "p")
    assert "shape: categorical (classes 0 circle, 1 square, 2 triangle; 599 observed)" in out
    assert (
        run(capsys, "edit", d / "p", "--latents", d / "z.npy", "--set", "shape=square", "-o", d / "by_name.npy")[0] == 0
    )
    assert run(capsys, "edit", d / "p", "--latents", d / "z.npy", "--set", "shape=1", "-o", d / "by_code.npy")[0] == 0
    assert np.array_equal(np.load(d / "by_name.npy"), np.load(d / "by_code.npy"))
    assert run(capsys, "sample", d / "p", "-n", 5, "--set", "shape=triangle", "--seed", 0, "-o", d / "s.npy")[0] == 0
    assert run(capsys, "predict", d / "p", "--latents", d / "by_name.npy", "-o", d / "p.csv")[0] == 0
    assert run(capsys, "predict", d / "p", "--latents", d / "by_name.npy", "-o", d / "p.npy")[0] == 0
    lines = (d / "p.csv").read_text().splitlines()
    shapes = [line.split(",")[3] for line in lines[1:]]
    codes = np.load(d / "p.npy")
    assert lines[0] == "a,b,size,shape" and set(shapes) <= set(SHAPES)
    assert shapes == [SHAPES[int(c)] for c in codes[:, 3]] and codes.dtype.kind == "f"
    assert np.mean(codes[:, 3] == 1) >= 0.9  # the edit to 'square' is read back as square


def test_declared_class_names_and_unknown_names(named_files, capsys):
    d = named_files
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "codes.csv",
        "--label",
        "a:binary",
        "--label",
        "shape:circle,square,triangle",
        "--method",
        "fpn",
        "--epochs",
        2,
        "--quiet",
        "-o",
        d / "f",
    )
    assert code == 0, err
    assert "class names read" not in err  # declared, not inferred
    assert json.loads((d / "f" / "plugin.json").read_text())["labels"][1]["names"] == SHAPES
    code, _, err = run(capsys, "edit", d / "f", "--latents", d / "z.npy", "--set", "shape=hexagon", "-o", d / "e.npy")
    assert (
        code == 2 and "unknown class 'hexagon' for label 'shape'; its classes: ['circle', 'square', 'triangle']" in err
    )
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "y.csv",
        "--label",
        "shape:binary",
        "--epochs",
        1,
        "--quiet",
        "-o",
        d / "x",
    )
    assert code == 2 and "label 'shape' must be numeric (it is a binary label" in err
    code, _, err = run(
        capsys,
        "fit",
        "--latents",
        d / "z.npy",
        "--labels",
        d / "y.csv",
        "--label",
        "shape:categorical",
        "--epochs",
        1,
        "--quiet",
        "-o",
        d / "x",
    )
    assert code == 0 and "shape: 0 circle, 1 square, 2 triangle" in err
