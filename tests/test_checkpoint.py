import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import quick

import plugen
from plugen import FPN, CheckpointError, InputError, PluGeN
from plugen.checkpoint import FORMAT_VERSION, META, WEIGHTS, read_metadata


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small):
    Z, Y, labels = small
    root = tmp_path_factory.mktemp("ck")
    models = {
        "plugen": quick(PluGeN, labels, backbone="toy-vae").fit(Z, Y),
        "fpn": quick(FPN, labels, flow="maf").fit(Z, Y),
    }
    for name, m in models.items():
        m.save(root / name)
    return root, models


@pytest.mark.parametrize("name", ["plugen", "fpn"])
def test_round_trip_gives_identical_results(saved, small, name):
    root, models = saved
    Z = small[0][:20]
    loaded = plugen.load(root / name)
    assert type(loaded) is type(models[name])
    assert loaded.get_params() == {**models[name].get_params(), "device": "cpu"}
    assert np.array_equal(loaded.edit(Z, {"a": 1}), models[name].edit(Z, {"a": 1}))
    assert np.array_equal(loaded.predict(Z), models[name].predict(Z))
    assert np.array_equal(loaded.sample(4, {"shape": 2}, seed=0), models[name].sample(4, {"shape": 2}, seed=0))


def test_metadata_records_what_it_was_fitted_on(saved):
    root, _ = saved
    meta = read_metadata(root / "plugen")
    assert meta["estimator"] == "PluGeN" and meta["latent_dim"] == 8 and meta["backbone"] == "toy-vae"
    assert [lab["name"] for lab in meta["labels"]] == ["a", "b", "size", "shape"]
    assert meta["labels"][2]["kind"] == "continuous" and meta["labels"][2]["std"] > 0
    assert meta["plugen_version"] == plugen.__version__ and meta["params"]["flow"] == "nice"
    assert meta["training"]["epochs"] >= 1 and len(meta["weights_sha256"]) == 64


def copy_of(saved, name, tmp_path):
    import shutil

    root, _ = saved
    return shutil.copytree(root / name, tmp_path / name)


def test_corrupted_weights_are_refused(saved, tmp_path):
    path = copy_of(saved, "plugen", tmp_path)
    data = bytearray((path / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted.*checksum"):
        PluGeN.load(path)


def test_truncated_metadata_and_missing_files(saved, tmp_path):
    path = copy_of(saved, "fpn", tmp_path)
    (path / META).write_text((path / META).read_text()[:100])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        FPN.load(path)
    path = copy_of(saved, "plugen", tmp_path / "b")
    os.remove(path / WEIGHTS)
    with pytest.raises(CheckpointError, match="weights.safetensors is missing"):
        plugen.load(path)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        plugen.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="plugin.json is missing"):
        plugen.load(tmp_path / "empty")


def test_metadata_that_does_not_match_the_weights(saved, tmp_path):
    path = copy_of(saved, "plugen", tmp_path)
    meta = json.loads((path / META).read_text())
    meta["params"]["hidden_features"] = 32
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not match its own description"):
        plugen.load(path)


def test_mismatches_are_refused(saved):
    root, _ = saved
    with pytest.raises(CheckpointError, match="holds a FPN plugin; load it with FPN.load"):
        PluGeN.load(root / "fpn")
    with pytest.raises(CheckpointError, match="backbone 'toy-vae', not 'mnist-vae'"):
        PluGeN.load(root / "plugen", backbone="mnist-vae")
    with pytest.raises(CheckpointError, match="8-dim latents, not 40-dim"):
        plugen.load(root / "plugen", latent_dim=40)
    loaded = plugen.load(root / "plugen")
    with pytest.raises(plugen.InputError, match="backbone 'toy-vae'"):
        loaded.edit(np.zeros((2, 40)), {"a": 1})


def test_a_plugin_of_other_weights_of_a_shipped_backbone_warns(small, tmp_path):
    from plugen.backbones import registry

    Z, Y, labels = small
    path = tmp_path / "on-mnist-vae"
    quick(PluGeN, labels, backbone="mnist-vae", max_epochs=1).fit(Z, Y).save(path)
    meta = json.loads((path / META).read_text())
    assert meta["backbone_weights_sha256"] == registry.describe("mnist-vae")["weights_sha256"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugen.load(path)  # the same weights: no warning
    meta["backbone_weights_sha256"] = "0" * 64  # as if the shipped backbone had been retrained since
    (path / META).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="other weights of backbone 'mnist-vae'.*refit"):
        plugen.load(path)


def test_newer_format_is_refused(saved, tmp_path):
    path = copy_of(saved, "plugen", tmp_path)
    meta = json.loads((path / META).read_text())
    meta["format_version"] = 99
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer plugen"):
        plugen.load(path)


def test_format_1_checkpoints_without_label_ranges_still_load(saved, small, tmp_path):
    path = copy_of(saved, "plugen", tmp_path)
    meta = json.loads((path / META).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["labels"][2]["high"] is not None  # 'size' is continuous
    meta["format_version"] = 1
    for label in meta["labels"]:
        del label["low"], label["high"], label["names"]
    (path / META).write_text(json.dumps(meta))
    Z = small[0][:5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no range recorded: nothing to warn about
        edited = plugen.load(path).edit(Z, {"size": 1e6})
    with pytest.warns(plugen.ExtrapolationWarning, match="label 'size'"):
        np.testing.assert_array_equal(edited, saved[1]["plugen"].edit(Z, {"size": 1e6}))


def test_files_of_earlier_training_settings_load_with_how_they_were_trained(saved, small, tmp_path):
    path = copy_of(saved, "plugen", tmp_path)
    meta = json.loads((path / META).read_text())
    for name in ("check_rows", "min_gain", "warmup_steps"):  # written before these settings existed
        del meta["params"][name]
    meta["params"]["min_improvement"] = 0.1  # a setting of an earlier version, since retired
    (path / META).write_text(json.dumps(meta))
    loaded = plugen.load(path)
    assert loaded.get_params()["check_rows"] == 0 and loaded.get_params()["min_gain"] == 0.0
    assert loaded.get_params()["warmup_steps"] == 100  # the per-epoch warm-up of those versions
    assert "min_improvement" not in loaded.get_params()
    np.testing.assert_array_equal(loaded.edit(small[0][:5], {}), saved[1]["plugen"].edit(small[0][:5], {}))


def test_save_is_atomic_and_never_destroys_data(saved, tmp_path, monkeypatch):
    root, models = saved
    target = tmp_path / "model"
    models["plugen"].save(target)
    before = (target / WEIGHTS).read_bytes()

    import plugen.checkpoint as ck

    def failing(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", failing)
    with pytest.raises(OSError, match="disk full"):
        models["fpn"].save(target)
    assert (target / WEIGHTS).read_bytes() == before  # old checkpoint intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary leftovers
    monkeypatch.undo()

    other = tmp_path / "data"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        models["plugen"].save(other)
    assert (other / "precious.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        models["plugen"].save(tmp_path / "file")


def test_overwriting_a_checkpoint_replaces_it(saved, tmp_path):
    root, models = saved
    target = tmp_path / "model"
    models["plugen"].save(target)
    models["fpn"].save(target)
    assert read_metadata(target)["estimator"] == "FPN"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


SHAPES = ["circle", "square", "triangle"]


@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_class_names_are_saved_and_loaded(small, tmp_path, cls):
    Z, Y, labels = small
    model = quick(cls, {**labels, "shape": SHAPES}, transforms=2, hidden_features=32).fit(Z, Y)
    meta = read_metadata(model.save(tmp_path / "named"))
    assert meta["labels"][3]["names"] == SHAPES and meta["labels"][0]["names"] is None
    assert meta["params"]["labels"]["shape"] == SHAPES
    loaded = plugen.load(tmp_path / "named")
    assert loaded.classes_ == {"shape": SHAPES} and loaded.get_params()["labels"] == {**labels, "shape": SHAPES}
    assert np.array_equal(loaded.edit(Z[:10], {"shape": "square"}), model.edit(Z[:10], {"shape": 1}))
    assert loaded.predict(Z[:10], names=True).tolist() == model.predict(Z[:10], names=True).tolist()


def test_format_2_checkpoints_without_class_names_still_load(saved, small, tmp_path):
    path = copy_of(saved, "plugen", tmp_path)
    meta = json.loads((path / META).read_text())
    meta["format_version"] = 2
    for label in meta["labels"]:
        del label["names"]
    (path / META).write_text(json.dumps(meta))
    loaded = plugen.load(path)
    Z = small[0][:10]
    assert loaded.schema_.labels[3].names is None and loaded.classes_ == {"shape": [0, 1, 2]}
    assert np.array_equal(loaded.edit(Z, {"shape": 2}), saved[1]["plugen"].edit(Z, {"shape": 2}))
    assert np.array_equal(loaded.predict(Z, names=True).astype(float), loaded.predict(Z))  # codes stay numbers
    with pytest.raises(InputError, match="'shape' has no class names"):
        loaded.edit(Z, {"shape": "square"})


def test_shipped_format_2_checkpoint_loads():
    path = Path(plugen.__file__).parent / "molecules" / "weights" / "selfies-vae.plugin"
    assert read_metadata(path)["format_version"] == 2
    loaded = plugen.load(path)
    assert all(label.names is None for label in loaded.schema_.labels)
