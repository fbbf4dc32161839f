"""docs/apps.md cannot rot: its web-app recipes are the files of examples/, tested as such.

A block opened with ```` ```python title="examples/<name>.py" ```` must be
that file, character for character: tests/integration/test_apps.py serves
those files under real servers, and ``nox -s typecheck`` checks them. The
other recipes (Django, Celery, FastAPI) need packages the suite does not
install: they must at least compile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "apps.md"
_FENCE = re.compile(r'^```(?P<lang>\w*)(?: title="(?P<title>[^"]+)")?\s*$')


class Block(NamedTuple):
    """One fenced code block of the page."""

    line: int
    """Line number of its first line of code (1-based)."""
    lang: str
    title: str | None
    code: str


def fenced_blocks(text: str) -> list[Block]:
    """Every top-level fenced block of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        assert end < len(lines), f"{PAGE.name}:{index + 1}: unclosed code block"
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 2, match["lang"], match["title"], code))
        index = end + 1
    return blocks


BLOCKS = fenced_blocks(PAGE.read_text(encoding="utf-8"))
TITLED = [block for block in BLOCKS if block.title is not None]


@pytest.mark.parametrize("block", TITLED, ids=[str(block.title) for block in TITLED])
def test_a_titled_block_is_its_example_file(block: Block) -> None:
    """A block titled with a path under examples/ holds exactly that file's text."""
    assert block.title is not None
    assert block.title.startswith("examples/")
    assert block.code == (ROOT / block.title).read_text(encoding="utf-8")


def test_every_web_app_example_is_on_the_page() -> None:
    """The ASGI and Flask examples (examples/*_app.py) are the page's recipes."""
    apps = {f"examples/{path.name}" for path in (ROOT / "examples").glob("*_app.py")}
    assert apps == {"examples/starlette_app.py", "examples/flask_app.py"}
    assert {block.title for block in TITLED} == apps


@pytest.mark.parametrize(
    "block",
    [block for block in BLOCKS if block.lang == "python"],
    ids=lambda block: f"line {block.line}",
)
def test_every_python_block_compiles(block: Block) -> None:
    """Every python block on the page is valid Python."""
    compile(block.code, f"{PAGE.name}:{block.line}", "exec")
