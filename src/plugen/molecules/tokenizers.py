"""Tokenizers of the molecule VAEs: SELFIES (Krenn et al. 2020) and SMILES.

A tokenizer turns a SMILES string into a list of token ids (``<bos>`` ... ``<eos>``, no padding)
and back. SELFIES decodes any token sequence to a valid molecule, which is why it is the default
backbone's representation; the SMILES tokenizer is the regular-expression split of Schwaller et
al. 2019 (atoms in brackets, two-letter elements, ring-closure numbers as single tokens).

>>> tok = SelfiesTokenizer(["[C]", "[O]"])
>>> tok.decode(tok.encode("CO"))
'CO'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)
SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)


class EncodeError(ValueError):
    """A SMILES that this tokenizer cannot represent (unparsable, unknown token, too long)."""


class Tokenizer:
    """Shared vocabulary handling; subclasses define :meth:`split` and :meth:`join`."""

    kind = "base"

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.pad, self.bos, self.eos = (self.index[t] for t in SPECIALS)

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, smiles: str) -> list[str]:
        raise NotImplementedError

    def join(self, tokens: Sequence[str]) -> str | None:
        raise NotImplementedError

    def encode(self, smiles: str, max_len: int | None = None) -> list[int]:
        """Token ids ``[bos, ..., eos]``; raises :class:`EncodeError` with the reason."""
        if not isinstance(smiles, str) or not smiles.strip():
            raise EncodeError("empty or not a string")
        tokens = self.split(smiles.strip())
        unknown = sorted({t for t in tokens if t not in self.index})
        if unknown:
            raise EncodeError(f"tokens outside the model's vocabulary: {' '.join(unknown)}")
        ids = [self.bos, *(self.index[t] for t in tokens), self.eos]
        if max_len is not None and len(ids) > max_len:
            raise EncodeError(f"{len(ids)} tokens, the model reads at most {max_len}")
        return ids

    def decode(self, ids: Iterable[int]) -> str | None:
        """SMILES of token ids (stops at ``eos``; ``None`` if they do not form a molecule)."""
        tokens = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i in (self.pad, self.bos):
                continue
            tokens.append(self.tokens[i])
        return self.join(tokens)

    @classmethod
    def build(cls, smiles: Iterable[str]) -> Tokenizer:
        """A tokenizer whose vocabulary covers ``smiles`` (sorted tokens; unparsable ones skipped)."""
        seen: set[str] = set()
        for s in smiles:
            try:
                seen.update(cls.split_static(s))
            except EncodeError:
                continue
        return cls(sorted(seen))


def _canonical(smiles: str) -> str | None:
    from rdkit import Chem

    from plugen.molecules.properties import quiet_rdkit

    quiet_rdkit()
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


class SelfiesTokenizer(Tokenizer):
    kind = "selfies"

    @staticmethod
    def split_static(smiles: str) -> list[str]:
        import selfies as sf

        try:
            encoded = sf.encoder(smiles)
        except Exception as exc:  # selfies raises EncoderError on unparsable or unsupported SMILES
            raise EncodeError(f"SELFIES cannot encode it ({str(exc).splitlines()[0][:80]})") from None
        if encoded is None:
            raise EncodeError("SELFIES cannot encode it")
        return list(sf.split_selfies(encoded))

    def split(self, smiles: str) -> list[str]:
        from plugen.molecules.properties import mol_from_smiles, quiet_rdkit

        quiet_rdkit()
        if mol_from_smiles(smiles) is None:
            raise EncodeError("RDKit cannot parse it")
        return self.split_static(smiles)

    def join(self, tokens: Sequence[str]) -> str | None:
        import selfies as sf

        try:
            return _canonical(sf.decoder("".join(tokens)))
        except Exception:
            return None


class SmilesTokenizer(Tokenizer):
    kind = "smiles"

    @staticmethod
    def split_static(smiles: str) -> list[str]:
        tokens = SMILES_REGEX.findall(smiles)
        if "".join(tokens) != smiles:
            raise EncodeError("characters outside the SMILES grammar")
        return tokens

    def split(self, smiles: str) -> list[str]:
        canon = _canonical(smiles)
        if canon is None:
            raise EncodeError("RDKit cannot parse it")
        return self.split_static(canon)

    def join(self, tokens: Sequence[str]) -> str | None:
        return _canonical("".join(tokens))


TOKENIZERS = {"selfies": SelfiesTokenizer, "smiles": SmilesTokenizer}


def tokenizer(kind: str, tokens: Sequence[str]) -> Tokenizer:
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r}; known: {sorted(TOKENIZERS)}")
    return TOKENIZERS[kind](tokens)
