"""Check the built site for what mkdocs --strict does not catch; run by ``nox -s docs``.

- Every ``>>>`` example of the API reference renders as code, never as the
  nested blockquotes Markdown makes of ``>>>`` lines (a docstring section
  must be ``Examples:`` for the docstring parser to see code).
- The site works from ``file://``: pages are ``.html`` files and the search
  index is a script (mkdocs-material's offline plugin).
"""

from __future__ import annotations

import pathlib
import re
import sys


def problems(site: pathlib.Path) -> list[str]:
    """What is wrong with the site built in ``site``."""
    found: list[str] = []
    # The offline plugin links pages as files (api.html), for file:// browsing.
    api = site / "api.html"
    if not api.is_file():
        return [f"{api}: missing (is the offline plugin still on?)"]
    html = api.read_text(encoding="utf-8")
    if "<blockquote>" in html:
        found.append(f"{api}: an example renders as a blockquote (write 'Examples:')")
    if not re.search(r'<span class="gp">&gt;&gt;&gt; ?</span>', html):
        found.append(f"{api}: no >>> example renders as highlighted code")
    if not (site / "search" / "search_index.js").is_file():
        found.append(f"{site}: no search index that works from file://")
    return found


def main() -> int:
    """Print each problem of the site given as the only argument; exit 1 if any."""
    found = problems(pathlib.Path(sys.argv[1]))
    for problem in found:
        sys.stderr.write(f"{problem}\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
