"""The folder of saved plugins that the editor's Load box may open (``plugen ui --plugins DIR``).

The page names a plugin, never a path: :meth:`PluginFolder.resolve` accepts only the name of a
checkpoint directory directly inside the folder whose files all lie inside it (a symlink that
leads out of the folder does not count), and answers every other name, absent or outside, with
the same message, so a caller learns nothing about the server's other files.

:meth:`PluginFolder.digest` hashes a checkpoint's files: the editor keeps one workspace per
content and backbone, so loading the same plugin again (or a copy of it) reuses it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from plugen.checkpoint import META, WEIGHTS
from plugen.errors import InputError, PlugenError

#: characters of a requested name repeated in an error message
SHOWN_NAME = 80


class PluginFolder:
    """Saved plugins in the directory ``root`` (given by whoever starts the editor)."""

    def __init__(self, root: str | Path):
        path = Path(root).expanduser()
        if not path.is_dir():
            raise PlugenError(f"--plugins {root}: not a directory")
        self.root = path.resolve()

    def names(self) -> list[str]:
        """The checkpoint directories in the folder, by name (hidden ones and those that lead out
        of the folder left out)."""
        try:
            entries = sorted(self.root.iterdir())
        except OSError:
            return []
        return [entry.name for entry in entries if not entry.name.startswith(".") and self._usable(entry)]

    def resolve(self, name) -> Path:
        """The checkpoint directory called ``name`` in the folder; any other name (a path, ``..``,
        a symlink out of the folder, a missing plugin) is refused with one message."""
        text = "" if name is None else str(name).strip()
        if not text:
            raise InputError("choose a plugin from the list")
        if text in self.names():
            path = (self.root / text).resolve()
            if self._inside(path) and self._usable(path):  # checked again: the folder may have changed
                return path
        shown = text if len(text) <= SHOWN_NAME else text[:SHOWN_NAME] + "..."
        available = ", ".join(self.names()) or "none"
        raise InputError(f"no plugin named {shown!r} in the plugins folder; available: {available}")

    @staticmethod
    def digest(path: Path) -> str:
        """SHA-256 of the checkpoint's files (its description and its weights)."""
        h = hashlib.sha256()
        for name in (META, WEIGHTS):
            h.update(name.encode() + b"\0")
            with open(path / name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()

    def _inside(self, path: Path) -> bool:
        return path == self.root or path.is_relative_to(self.root)

    def _usable(self, entry: Path) -> bool:
        try:
            folder = entry.resolve()
            files = [(folder / name).resolve() for name in (META, WEIGHTS)]
        except (OSError, RuntimeError):  # a symlink loop
            return False
        return (
            folder.is_dir()
            and folder != self.root
            and self._inside(folder)
            and all(f.is_file() and self._inside(f) for f in files)
        )
