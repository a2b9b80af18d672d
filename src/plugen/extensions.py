"""Extension points: how the layers above the library plug into it, through package entry points.

The library never imports the backbones zoo, the molecule tools, the editor or the lab; they announce
themselves in ``pyproject.toml`` and the library finds them here, by name:

- ``plugen.commands``: functions ``add_parser(subparsers)`` that add subcommands to ``plugen``;
- ``plugen.backbones``: modules with ``load(name, device)`` and ``describe(name)`` that resolve
  backbone names (``plugen edit --reencode``, the check of a plugin against its backbone's weights).

A group with no entries (a core-only install from a source tree without metadata) is empty, and the
library works without it.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any


def _group(name: str) -> list:
    return sorted(entry_points(group=name), key=lambda ep: ep.name)


def command_adders() -> list:
    """The ``add_parser(subparsers)`` functions of every installed command group."""
    return [ep.load() for ep in _group("plugen.commands")]


def backbone_zoos() -> list[Any]:
    """The installed modules that resolve backbone names (``load``, ``describe``)."""
    return [ep.load() for ep in _group("plugen.backbones")]
