"""The GPU preparation of the molecule backbone: the token cache, resumable training, the GPU script's dry run."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
pd = pytest.importorskip("pandas")

from plugen.errors import CheckpointError, InputError  # noqa: E402
from plugen.molecules import token_cache, train_full  # noqa: E402
from plugen.molecules.data import load_subset  # noqa: E402
from plugen.molecules.tokenizers import SelfiesTokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]
TINY = train_full.Recipe(
    name="tiny",
    hidden=16,
    layers=1,
    embed=8,
    latent_dim=4,
    batch_size=16,
    log_every=2,
    warmup_steps=2,
    total_steps=20,
    anneal_steps=4,
    precision="fp32",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A source CSV of 160 subset molecules plus two that do not tokenise, its labels, and its cache."""
    folder = tmp_path_factory.mktemp("tiny")
    frame = load_subset("all").iloc[:160].reset_index(drop=True)
    smiles = [*frame["SMILES"][:80], "not a molecule", *frame["SMILES"][80:], "C1CC"]
    pd.DataFrame({"SMILES": smiles}).to_csv(folder / "source.csv", index=False)
    rows = [i if i < 80 else i + 1 for i in range(len(frame))]  # source rows of the subset molecules
    frame.assign(moses_row=rows).to_csv(folder / "labels.csv", index=False)
    meta = token_cache.build_cache(folder / "source.csv", folder / "cache.npz", workers=1, progress=False)
    return folder, meta, smiles


def test_the_cache_holds_the_tokenizers_ids_and_counts_what_failed(tiny):
    folder, meta, smiles = tiny
    cache = token_cache.load_cache(folder / "cache.npz")
    assert meta["molecules"] == 160 and meta["failed"] == 2
    assert cache.failed_rows.tolist() == [80, 161]
    assert sum(meta["failed_reasons"].values()) == 2 and "RDKit cannot parse it" in meta["failed_reasons"]
    assert meta["source_sha256"] == token_cache.file_sha256(folder / "source.csv")
    tok = SelfiesTokenizer(cache.tokens[3:])
    for k in (0, 79, 80, 159):  # rows on both sides of the failed one
        assert cache.ids[k, : cache.lengths[k]].tolist() == tok.encode(smiles[cache.rows[k]])
        assert not cache.ids[k, cache.lengths[k] :].any()
    assert cache.ids.dtype == np.uint8 and cache.ids.shape == (160, int(cache.lengths.max()))
    token_cache.write_record(meta | {"file_bytes": 1}, folder / "record", "the command")
    text = (folder / "record.md").read_text()
    assert (
        text.startswith("# source.csv tokenised (selfies)\n\nCommand: `the command`") and "| tokenised | 160 |" in text
    )
    assert json.loads((folder / "record.json").read_text())["failed_reasons"] == meta["failed_reasons"]


def test_a_damaged_or_missing_cache_is_named(tiny, tmp_path):
    folder, _, _ = tiny
    with np.load(folder / "cache.npz") as saved:
        parts = {k: saved[k] for k in saved.files}
    parts["ids"][0, 1] += 1
    np.savez_compressed(tmp_path / "bad.npz", **parts)
    with pytest.raises(CheckpointError, match="damaged"):
        token_cache.load_cache(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="missing"):
        token_cache.load_cache(tmp_path / "none.npz")


def train(tiny, directory: Path, recipe=TINY, **kw):
    folder = tiny[0]
    kw.setdefault("log", lambda line: None)
    return train_full.train(
        folder / "cache.npz", directory / "ck", directory / "w", recipe, 5.0, labels=folder / "labels.csv", **kw
    )


def weights(directory: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(directory / "w" / "tiny.safetensors"))


def test_stopped_and_resumed_training_equals_an_uninterrupted_run(tiny, tmp_path):
    whole = train(tiny, tmp_path / "whole", until_step=6)
    train(tiny, tmp_path / "parts", until_step=3)
    parts = train(tiny, tmp_path / "parts", until_step=6)
    assert whole["training"]["steps"] == parts["training"]["steps"] == 6
    assert [r["run"] for r in parts["training"]["runs"]] == [1, 2] and parts["training"]["runs"][1]["first_step"] == 3
    assert parts["training"]["history"] == whole["training"]["history"]
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "parts")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_after_a_checkpoint_resumes_where_it_stood(tiny, tmp_path):
    """A crash (here: an exception out of the log at step 4, checkpoints every step) loses nothing
    written: the next run starts at the checkpoint's step and ends where an unbroken run ends."""

    def crash(line):
        if '"step": 4' in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny, tmp_path / "killed", until_step=8, checkpoint_seconds=0.0, log=crash)
    assert json.loads((tmp_path / "killed" / "ck" / "checkpoint.json").read_text())["step"] == 3
    resumed = train(tiny, tmp_path / "killed", until_step=6)
    whole = train(tiny, tmp_path / "whole", until_step=6)
    assert resumed["training"]["runs"][-1]["first_step"] == 3
    assert resumed["training"]["history"] == whole["training"]["history"]
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_autocast_trains_and_is_recorded(tiny, tmp_path):
    meta = train(tiny, tmp_path, replace(TINY, precision="bf16"), until_step=2)
    run = meta["training"]["runs"][-1]
    assert run["precision"] == "bf16" and run["steps"] == 2
    assert all(np.isfinite(row["loss"]) for row in meta["training"]["history"])


def test_a_checkpoint_of_another_recipe_or_with_a_damaged_part_is_refused(tiny, tmp_path):
    train(tiny, tmp_path, until_step=2)
    with pytest.raises(CheckpointError, match=r"another recipe \(batch_size: 16 -> 32\)"):
        train(tiny, tmp_path, replace(TINY, batch_size=32), until_step=4)
    part = next((tmp_path / "ck").glob("*.part"))
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="missing or damaged"):
        train(tiny, tmp_path, until_step=4)


def test_the_split_holds_out_the_subsets_validation_rows_and_labels_only_its_training_rows(tiny):
    folder = tiny[0]
    data = train_full.training_data(token_cache.load_cache(folder / "cache.npz"), folder / "labels.csv")
    labels = pd.read_csv(folder / "labels.csv")
    validation = load_subset("validation", folder / "labels.csv")
    assert data.meta == {"labelled": 160 - len(validation), "held_out": len(validation), "train": 160 - len(validation)}
    assert torch.isnan(data.props).sum() == 0 and len(data.held_lengths) == len(validation)
    training_rows = labels[~labels["moses_row"].isin(validation["moses_row"])]
    assert np.allclose(data.label_mean, training_rows[["logP", "TPSA", "SAS"]].mean(), atol=1e-3)


def test_the_schedules_and_the_aggregate_posterior_penalty():
    recipe = replace(TINY, kl="free-bits", free_bits=0.5, kl_weight=1.0, anneal_steps=10)
    assert recipe.beta_at(0) == 0.0 and recipe.beta_at(5) == 0.5 and recipe.beta_at(50) == 1.0
    assert recipe.lr_at(1000) == pytest.approx(0.1 * recipe.lr) and recipe.lr_at(0) == pytest.approx(recipe.lr / 2)
    mu, logvar = torch.zeros(64, 4), torch.zeros(64, 4)  # posteriors equal to the prior: KL 0
    loss, kl = train_full.kl_term(mu, logvar, mu, recipe, 1.0)
    assert float(kl) == 0.0 and float(loss) == pytest.approx(4 * 0.5)  # each dimension counts free_bits
    g = torch.Generator().manual_seed(0)
    prior_like, shifted = torch.randn(256, 4, generator=g), torch.randn(256, 4, generator=g) + 2.0
    assert abs(float(train_full.mmd_imq(prior_like, g))) < 0.01 < float(train_full.mmd_imq(shifted, g))
    with pytest.raises(InputError, match="kl must be one of"):
        replace(TINY, kl="cyclic").check()


@pytest.mark.slow
def test_the_gpu_scripts_dry_run_trains_and_resumes_on_the_cpu(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_backbone.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.rindex("\n{") :])
    assert report["steps"] == 8 and [r["first_step"] for r in report["runs"]] == [0, 4]
    assert {"dry.safetensors", "dry.json", "train.log", "checkpoint/checkpoint.json"} <= set(report["files"])
