"""MkDocs hook: show the docstrings' Sphinx cross-reference roles as plain code.

The docstrings use reStructuredText roles (:func:`plugen.training.train`, :class:`~plugen.PluGeN`) that
Sphinx turns into links and mkdocstrings leaves as text; this drops the role and, for a ``~`` target,
keeps only its last name, as Sphinx shows it.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|obj):<code>(~?)([^<]*)</code>")


def plain_roles(html: str) -> str:
    """``:func:<code>~a.b</code>`` -> ``<code>b</code>``; without ``~`` the whole target is kept."""
    return ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)


def on_page_content(html: str, **kwargs) -> str:  # MkDocs hook
    return plain_roles(html)
