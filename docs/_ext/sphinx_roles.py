"""A griffe extension for the API reference: reStructuredText leftovers become Markdown.

The docstrings of eventlog use Sphinx roles (:func:`open_event_logger`) and
``::`` literal-block markers, which Markdown shows as they are. This rewrites
them while mkdocstrings loads the package, without touching the code:

* ``:role:`target```, ``:role:`~pkg.target``` and ``:role:`text <target>```
  become the code span of the name shown;
* a line ending in ``::`` before an indented block ends in ``:``;
* the escaped space of ``name``\\ s is dropped.

Loaded by mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj|const):"
    r"`(?P<tilde>~?)(?P<text>[^`<]+?)\s*(?:<[^>`]+>)?`"
)
_LITERAL_MARKER = re.compile(r"(?m)(?<=\S)::$")
_ESCAPED_SPACE = re.compile(r"``\\ ")


def _code_span(match: re.Match[str]) -> str:
    text = match["text"].strip()
    if match["tilde"]:
        text = text.rsplit(".", 1)[-1]
    return f"`{text}`"


def markdown(text: str) -> str:
    """The docstring ``text`` with its reStructuredText constructs rewritten."""
    text = _ROLE.sub(_code_span, text)
    text = _LITERAL_MARKER.sub(":", text)
    return _ESCAPED_SPACE.sub("``", text)


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: object) -> None:
        """Called for each module, class, function and attribute."""
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
