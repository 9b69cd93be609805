"""A Griffe extension of the documentation build: Sphinx roles in docstrings become Markdown.

numfmt's docstrings name other objects with Sphinx roles (``:func:`numfmt.chop```,
``:class:`Rounding```, ``:mod:`numfmt._kernel```), which mkdocstrings' Google
parser leaves as raw text. Loaded by mkdocstrings (``extensions:`` in
``mkdocs.yml``), this extension rewrites each role of every loaded docstring,
before it is parsed:

* a role naming a public object documented on the API page (``numfmt.NAME`` or
  ``numfmt.testing.NAME``, written in full, with a leading ``~`` or unqualified)
  becomes a cross-reference, ``[`numfmt.chop`][numfmt.chop]``, which
  mkdocs-autorefs turns into a link to its entry;
* any other role (a private helper, a member, ``fractions.Fraction``) becomes
  inline code of the name, so the strict build never sees an unresolved link.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE_RE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):`(~?)([\w.]+)`")


def _public() -> set[str]:
    import numfmt
    import numfmt.testing

    presets = set(numfmt.presets())
    names = {f"numfmt.{n}" for n in numfmt.__all__ if n not in presets}
    return names | {f"numfmt.testing.{n}" for n in numfmt.testing.__all__}


def convert_roles(text: str, public: set[str]) -> str:
    """``text`` with every Sphinx role replaced by a cross-reference or inline code (see the module)."""

    def replace(m: re.Match) -> str:
        tilde, name = m[1], m[2]
        target = next((t for t in (name, f"numfmt.{name}", f"numfmt.testing.{name}") if t in public), None)
        shown = name.rsplit(".", 1)[-1] if tilde else name
        return f"[`{shown}`][{target}]" if target else f"`{shown}`"

    return _ROLE_RE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring Griffe loads (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._public = _public()

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert_roles(obj.docstring.value, self._public)
