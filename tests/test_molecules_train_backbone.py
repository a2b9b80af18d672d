"""The molecule VAE training command: a short run, its token cache and its deferred evaluation."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")
pytest.importorskip("pandas")

from plugen.backbones import registry  # noqa: E402
from plugen.molecules import train_backbone as train_molecules  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_short_run_with_a_token_cache_then_a_deferred_evaluation(tmp_path, monkeypatch):
    cache = tmp_path / "tokens.npz"
    settings = dict(
        minutes=0.05, train_size=300, batch_size=32, lr=2e-3, token_cache=cache, progress=False, log=lambda line: None
    )
    first = train_molecules.train_molecule_backbone("selfies-vae", tmp_path / "a", **settings)
    assert cache.is_file() and first["training"]["final"]["prior_samples"]["n"] == 1000
    assert "--batch-size 32 --lr 0.002" in first["reproduce"]

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(train_molecules, "tokenize_all", no_tokenizing)
    second = train_molecules.train_molecule_backbone(
        "selfies-vae", tmp_path / "b", evaluation=False, kl_weight=1.0, word_dropout=0.5, **settings
    )
    assert second["training"]["final"] is None
    assert second["training"]["kl_weight"] == 1.0 and second["training"]["word_dropout"] == 0.5
    assert " --kl-weight 1 --word-dropout 0.5" in second["reproduce"]
    assert second["architecture"] == first["architecture"]  # same vocabulary and max_len

    final = train_molecules.record_evaluation("selfies-vae", tmp_path / "b")
    assert json.loads((tmp_path / "b" / "selfies-vae.json").read_text())["training"]["final"] == final
    assert 0 <= final["validation"]["token_accuracy"] <= 1
    model, _ = registry.load_model("selfies-vae", directory=tmp_path / "b")  # the weights still load


def test_word_dropout_outside_0_1_is_refused(tmp_path):
    with pytest.raises(ValueError, match="word_dropout"):
        train_molecules.train_molecule_backbone(
            "selfies-vae",
            tmp_path,
            minutes=0.01,
            train_size=50,
            word_dropout=1.0,
            progress=False,
            log=lambda line: None,
        )
    assert not (tmp_path / "selfies-vae.json").exists()


def test_a_cache_of_other_molecules_is_not_used(tmp_path):
    cache = tmp_path / "tokens.npz"
    smiles = ["CCO", "c1ccccc1", "CC(=O)O"]
    tok, ids, keep = train_molecules.tokenized(smiles, "selfies", cache, progress=False)
    again = train_molecules.tokenized(smiles, "selfies", cache, progress=False)
    assert again[0].tokens == tok.tokens and again[1] == ids and list(again[2]) == list(keep)
    other, other_ids, _ = train_molecules.tokenized(smiles[:2], "selfies", cache, progress=False)
    assert other.tokens != tok.tokens  # rebuilt: CC(=O)O's branch and double-bond tokens are gone
    assert [other.decode(i) for i in other_ids] == [tok.decode(i) for i in ids[:2]]
