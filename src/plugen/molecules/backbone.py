"""Molecule backbones: a CharVAE-style GRU VAE over SELFIES or SMILES tokens.

:class:`SequenceVAE` follows CharVAE (Gomez-Bombarelli et al. 2018, the PluGeN paper's molecule
backbone) with recurrent layers on both sides: an embedding and a bidirectional GRU encoder give
the mean and log-variance of a Gaussian posterior; the decoder GRU starts from a state computed
from ``z`` and reads ``z`` again at every step next to the previous token (teacher forcing in
training, greedy argmax at decoding). As in CharVAE's jointly trained variant, a small head
predicts the standardised properties from the posterior mean during training (it organises the
latent space by the properties a plugin will control; it is not used after training).

:class:`MoleculeBackbone` is the plugin-facing wrapper: ``encode(list_of_smiles) -> z`` (posterior
means, ``(n, latent_dim)`` float32; a SMILES the model cannot read gives a row of NaN and its reason
in ``backbone.last_errors``) and ``decode(z) -> list of SMILES`` (RDKit canonical; ``None`` where the
tokens do not form a molecule, which SELFIES never produces).

>>> from plugen.backbones import load          # doctest: +SKIP
>>> bb = load("selfies-vae")                   # doctest: +SKIP
>>> bb.decode(bb.encode(["CCO", "c1ccccc1"]))  # doctest: +SKIP
['CCO', 'c1ccccc1']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from plugen.backbones.base import Backbone
from plugen.backbones.registry import architecture
from plugen.errors import InputError
from plugen.molecules.tokenizers import EncodeError, Tokenizer, tokenizer


@architecture
class SequenceVAE(nn.Module):
    """GRU VAE over token sequences.

    ``tokens``: the vocabulary (without the specials, which the tokenizer adds first);
    ``tokenizer``: "selfies" or "smiles"; ``max_len``: longest sequence including ``bos``/``eos``.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        tokenizer: str = "selfies",
        latent_dim: int = 100,
        hidden: int = 256,
        layers: int = 3,
        embed: int = 64,
        max_len: int = 64,
        n_properties: int = 3,
    ):
        super().__init__()
        self.tokenizer_kind, self.token_list = tokenizer, list(tokens)
        self.latent_dim, self.hidden, self.layers, self.max_len = latent_dim, hidden, layers, max_len
        vocab = len(self.tokenizer)
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.encoder = nn.GRU(embed, hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.to_stats = nn.Linear(2 * hidden, 2 * latent_dim)
        self.to_state = nn.Linear(latent_dim, layers * hidden)
        self.decoder = nn.GRU(embed + latent_dim, hidden, num_layers=layers, batch_first=True)
        self.to_logits = nn.Linear(hidden, vocab)
        self.property_head = nn.Sequential(nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, n_properties))

    def as_backbone(self, name: str, device: str = "cpu") -> MoleculeBackbone:
        """This model behind the backbone protocol (the zoo's loader calls it)."""
        return MoleculeBackbone(self, name=name, device=device)

    @property
    def tokenizer(self) -> Tokenizer:
        if not hasattr(self, "_tokenizer"):
            self._tokenizer = tokenizer(self.tokenizer_kind, self.token_list)
        return self._tokenizer

    def encode_stats(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log_var) of the posterior of padded token ids (n, T) with their lengths (n,)."""
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # (2, n, hidden)
        mean, logvar = self.to_stats(torch.cat([h[0], h[1]], dim=1)).chunk(2, dim=1)
        return mean, logvar.clamp(-12, 6)

    def initial_state(self, z: Tensor) -> Tensor:
        return torch.tanh(self.to_state(z)).view(-1, self.layers, self.hidden).transpose(0, 1).contiguous()

    def forward(self, ids: Tensor, lengths: Tensor, inputs: Tensor | None = None, sample: bool = True):
        """Teacher-forced logits (n, T-1, vocab) predicting ``ids[:, 1:]``, with (mean, log_var)
        and the property head's prediction. ``inputs``: the decoder's input ids (default
        ``ids[:, :-1]``; word dropout passes a corrupted copy)."""
        mean, logvar = self.encode_stats(ids, lengths)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        inputs = ids[:, :-1] if inputs is None else inputs
        emb = self.embedding(inputs)
        x = torch.cat([emb, z.unsqueeze(1).expand(-1, emb.shape[1], -1)], dim=2)
        out, _ = self.decoder(x, self.initial_state(z))
        return self.to_logits(out), mean, logvar, self.property_head(mean)

    @torch.no_grad()
    def generate(self, z: Tensor, max_len: int | None = None) -> Tensor:
        """Greedy decoding: token ids (n, <= max_len - 1) after ``bos``, padded after ``eos``."""
        max_len = max_len or self.max_len
        n = z.shape[0]
        tok = self.tokenizer
        h = self.initial_state(z)
        prev = torch.full((n,), tok.bos, dtype=torch.long, device=z.device)
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        out = torch.full((n, max_len - 1), tok.pad, dtype=torch.long, device=z.device)
        z_in = z.unsqueeze(1)
        for t in range(max_len - 1):
            x = torch.cat([self.embedding(prev).unsqueeze(1), z_in], dim=2)
            y, h = self.decoder(x, h)
            nxt = self.to_logits(y[:, 0]).argmax(dim=1)
            nxt = torch.where(done, torch.full_like(nxt, tok.pad), nxt)
            out[:, t] = nxt
            done |= nxt == tok.eos
            prev = nxt
            if bool(done.all()):
                return out[:, : t + 1]
        return out

    # the registry's autoencoder convention (tensors in, tensors out)
    def encode(self, ids: Tensor, lengths: Tensor) -> Tensor:
        return self.encode_stats(ids, lengths)[0]

    def decode(self, z: Tensor) -> Tensor:
        return self.generate(z)


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Padded (n, T) long tensor and lengths of token id lists."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return ids, lengths


def length_sorted_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``order`` cut into batches of ``batch_size``, sorted by length within windows of 50 batches
    (less padding per batch, with the shuffle kept between windows)."""
    window = 50 * batch_size
    batches = []
    for i in range(0, len(order), window):
        chunk = order[i : i + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    return batches


class MoleculeBackbone(Backbone):
    """A frozen :class:`SequenceVAE` behind the backbone protocol, on SMILES lists."""

    def __init__(self, model: SequenceVAE, name: str = "molecule-vae", batch_size: int = 1000, device: str = "cpu"):
        self.model, self.name, self.batch_size = model.eval(), name, batch_size
        self.latent_dim = model.latent_dim
        self._device = torch.device(device)
        self.last_errors: list[str] = []

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def can_encode(self) -> bool:
        return True

    @property
    def tokenizer(self) -> Tokenizer:
        return self.model.tokenizer

    def tokenize(self, smiles: Sequence[str]) -> tuple[list[list[int] | None], list[str]]:
        """Token ids per SMILES (``None`` where it cannot be read) and the reason ('' when fine)."""
        ids, errors = [], []
        for s in smiles:
            try:
                ids.append(self.tokenizer.encode(s, self.model.max_len))
                errors.append("")
            except EncodeError as exc:
                ids.append(None)
                errors.append(f"invalid input: {exc}")
        return ids, errors

    def encode(self, smiles, return_errors: bool = False):
        """Posterior means (n, latent_dim) float32 of a list of SMILES. Rows of SMILES the model
        cannot read are NaN; the reasons are in ``last_errors`` (and returned with
        ``return_errors=True``)."""
        if isinstance(smiles, str):
            smiles = [smiles]
        smiles = list(smiles)
        if not smiles:
            raise InputError(f"backbone {self.name!r} encodes a non-empty list of SMILES")
        ids, errors = self.tokenize(smiles)
        z = np.full((len(smiles), self.latent_dim), np.nan, dtype=np.float32)
        ok = [i for i, s in enumerate(ids) if s is not None]
        with torch.inference_mode():
            for i in range(0, len(ok), self.batch_size):
                rows = ok[i : i + self.batch_size]
                batch, lengths = pad([ids[r] for r in rows], self.tokenizer.pad)
                z[rows] = self.model.encode(batch.to(self.device), lengths).float().cpu().numpy()
        self.last_errors = errors
        return (z, errors) if return_errors else z

    def decode(self, z) -> list[str | None]:
        """SMILES (RDKit canonical) of latents (n, latent_dim); ``None`` where decoding fails."""
        source = z if isinstance(z, Tensor) else torch.as_tensor(np.asarray(z, dtype=np.float32))
        if source.ndim != 2 or source.shape[1] != self.latent_dim:
            raise InputError(
                f"backbone {self.name!r} decodes latents of shape (n, {self.latent_dim}), got {tuple(source.shape)}"
            )
        if not torch.isfinite(source).all():
            raise InputError(f"latents for backbone {self.name!r} contain NaN or Inf")
        out: list[str | None] = []
        with torch.inference_mode():
            for i in range(0, source.shape[0], self.batch_size):
                ids = self.model.generate(source[i : i + self.batch_size].to(self.device, torch.float32)).cpu().numpy()
                out.extend(self.tokenizer.decode(row) for row in ids)
        return out
