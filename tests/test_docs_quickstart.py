"""The quickstart cannot rot: every ```python block of docs/quickstart.md runs.

The blocks run in order, in one namespace, in a subprocess (each block in a
fresh directory, with ``EVENTLOG_HOME`` pointing into it), as a reader would
paste them one after the other. A ```text block right after a python block is
the output that block must print. A block that defines ``test_*`` functions
is also run by pytest, with the eventlog plugin and pytest-trio's trio_mode,
as the reader's own test suite would.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.md"
PLUGIN_MODULE = "eventlog.testing._pytest_plugin"
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
_TEST_FUNCTION = re.compile(r"^(?:async )?def test_", re.MULTILINE)
# Variables that would change what the blocks do (opt-outs, intervals, paths).
_SCRUBBED = ("DO_NOT_TRACK", "OTEL_LOGS_EXPORT_INTERVAL", "XDG_STATE_HOME")
_TIMEOUT = 120.0


class Block(NamedTuple):
    """One fenced code block of the quickstart."""

    line: int
    """Line number of its first line of code (1-based)."""
    lang: str
    code: str


class PythonBlock(NamedTuple):
    """A python block and the output it must print (None: not checked)."""

    line: int
    code: str
    expected: str | None


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
        start = index + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{QUICKSTART.name}:{index + 1}: unclosed code block")
        blocks.append(Block(start + 1, match["lang"], "\n".join(lines[start:end]) + "\n"))
        index = end + 1
    return blocks


def python_blocks(text: str) -> list[PythonBlock]:
    """The python blocks, each with the ```text block that follows it directly, if any."""
    blocks = fenced_blocks(text)
    lines = text.splitlines()
    found: list[PythonBlock] = []
    for block, following in zip(blocks, [*blocks[1:], None], strict=True):
        if block.lang != "python":
            continue
        expected = None
        if following is not None and following.lang == "text":
            # Only blank lines between the closing fence and the output's fence.
            block_end = block.line + block.code.count("\n")
            between = lines[block_end : following.line - 2]
            if not any(line.strip() for line in between):
                expected = following.code
        found.append(PythonBlock(block.line, block.code, expected))
    return found


def run_blocks(blocks_file: str, results_file: str) -> None:
    """Subprocess side: exec every block in one namespace, record what each printed.

    Each block runs in a fresh directory that is also its ``EVENTLOG_HOME``.
    Code is compiled with its line numbers in the Markdown file, so a
    traceback points into docs/quickstart.md. Stops at the first failure.
    """
    blocks = [PythonBlock(*b) for b in json.loads(Path(blocks_file).read_text())]
    base = Path(results_file).parent
    namespace: dict[str, object] = {"__name__": "__main__"}
    outputs: list[str] = []
    for block in blocks:
        workdir = base / f"block-{block.line}"
        workdir.mkdir()
        os.chdir(workdir)
        os.environ["EVENTLOG_HOME"] = str(workdir / "eventlog-home")
        code = compile("\n" * (block.line - 1) + block.code, str(QUICKSTART), "exec")
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(code, namespace)
        except BaseException as exc:
            exc.add_note(f"the block at {QUICKSTART.name}:{block.line} failed; it printed:")
            exc.add_note(out.getvalue())
            raise
        outputs.append(out.getvalue())
    Path(results_file).write_text(json.dumps(outputs))


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED and not key.startswith("EVENTLOG_")
    }
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _plugin_registered() -> bool:
    """True if the installed distribution registers the plugin through pytest11."""
    return any(
        entry.value == PLUGIN_MODULE for entry in importlib.metadata.entry_points(group="pytest11")
    )


@pytest.fixture(scope="module")
def blocks() -> list[PythonBlock]:
    """The python blocks of the quickstart."""
    return python_blocks(QUICKSTART.read_text(encoding="utf-8"))


def test_the_quickstart_has_checked_examples(blocks: list[PythonBlock]) -> None:
    """The extraction finds the blocks: a renamed fence must not make the test vacuous."""
    assert len(blocks) >= 5
    assert sum(block.expected is not None for block in blocks) >= 4
    assert any(_TEST_FUNCTION.search(block.code) for block in blocks)
    assert any("open_collector" in block.code for block in blocks)


# A Python process (and a pytest run) of its own: seconds, under coverage.
@pytest.mark.integration
def test_every_python_block_runs_and_prints_what_the_page_shows(
    blocks: list[PythonBlock], tmp_path: Path
) -> None:
    """All blocks, in order, in one namespace; each output matches its text block."""
    blocks_file = tmp_path / "blocks.json"
    results_file = tmp_path / "results.json"
    blocks_file.write_text(json.dumps([list(block) for block in blocks]))
    script = (
        "import sys\n"
        "from tests.test_docs_quickstart import run_blocks\n"
        "run_blocks(sys.argv[1], sys.argv[2])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(blocks_file), str(results_file)],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs: list[str] = json.loads(results_file.read_text())
    assert len(outputs) == len(blocks)
    for block, output in zip(blocks, outputs, strict=True):
        if block.expected is not None:
            assert output.rstrip() == block.expected.rstrip(), (
                f"{QUICKSTART.name}:{block.line}: the block printed\n{output}"
                f"but the page shows\n{block.expected}"
            )


# A Python process (and a pytest run) of its own: seconds, under coverage.
@pytest.mark.integration
def test_the_test_blocks_pass_under_pytest(blocks: list[PythonBlock], tmp_path: Path) -> None:
    """The quickstart's tests pass in a suite of their own, with only the plugin's fixtures."""
    test_blocks = [block for block in blocks if _TEST_FUNCTION.search(block.code)]
    for number, block in enumerate(test_blocks):
        (tmp_path / f"test_quickstart_{number}.py").write_text(block.code)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    plugin = [] if _plugin_registered() else ["-p", PLUGIN_MODULE]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tests = sum(len(_TEST_FUNCTION.findall(block.code)) for block in test_blocks)
    assert f"{tests} passed" in result.stdout
