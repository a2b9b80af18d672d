"""The interactive editor (``plugen ui``): pick a sample, move one slider per attribute, see the
edited sample; generate new ones; download the result.

- :mod:`~plugen.ui.domains`: what a sample is (image, molecule): how to draw it and read user input;
- :mod:`~plugen.ui.workspace`: one plugin + backbone + domain, and the editor's logic in plain Python;
- :mod:`~plugen.ui.sources`: the shipped demos (fitted once, cached) and saved plugins;
- :mod:`~plugen.ui.app`: the Gradio page and its callbacks;
- :mod:`~plugen.ui.library`: the folder of saved plugins the page may load, by name;
- :mod:`~plugen.ui.server`: gathering the workspaces and serving the page;
- :mod:`~plugen.ui.cli`: the ``plugen ui`` command.

Needs the ``ui`` extra (``pip install "plugen[ui]"``); the rest of plugen does not import it.

>>> from plugen.ui import make_editor, serve           # doctest: +SKIP
>>> serve(make_editor(["mnist"]), port=7860)           # doctest: +SKIP
"""

from plugen.ui.domains import Domain, ImageDomain, MoleculeDomain
from plugen.ui.workspace import Control, View, Workspace


def make_editor(*args, **kwargs):
    """See :func:`plugen.ui.server.make_editor`."""
    from plugen.ui.server import make_editor as _make

    return _make(*args, **kwargs)


def serve(*args, **kwargs):
    """See :func:`plugen.ui.server.serve`."""
    from plugen.ui.server import serve as _serve

    return _serve(*args, **kwargs)


__all__ = ["Control", "Domain", "ImageDomain", "MoleculeDomain", "View", "Workspace", "make_editor", "serve"]
