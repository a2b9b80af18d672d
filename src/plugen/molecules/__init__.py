"""Molecules: data, RDKit properties, SELFIES / SMILES tokenizers, metrics, design and pictures.

Needs the ``[molecules]`` extra (rdkit, selfies, pandas). The backbones live in
:mod:`plugen.molecules.backbone` (``plugen.backbones.load("selfies-vae")``; ``"smiles-vae"`` is the
same model). Submodules: :mod:`~plugen.molecules.data` (the shipped MOSES subset),
:mod:`~plugen.molecules.properties`, :mod:`~plugen.molecules.tokenizers`,
:mod:`~plugen.molecules.metrics`, :mod:`~plugen.molecules.design` (generate, optimize, fit_plugin),
:mod:`~plugen.molecules.plots`, :mod:`~plugen.molecules.cli`.
"""

from plugen.molecules.properties import PROPERTIES

__all__ = ["PROPERTIES"]
