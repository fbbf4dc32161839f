"""``eventlog demo``'s output fits 80 columns; piped, it is not wrapped at all."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from eventlog._cli._demo import _UNWRAPPED, _board, _verdict

ROOT = Path(__file__).resolve().parent.parent
# Every state a session goes through, and the widest numbers of a long demo.
_STATES = ("waiting", "running", "draining", "closing", "closed", "replaying", "done")


def _render(width: int, *renderables: object) -> list[str]:
    """The lines rich prints for ``renderables`` on a console ``width`` columns wide."""
    out = io.StringIO()
    console = Console(file=out, width=width)
    for renderable in renderables:
        console.print(renderable)
    return out.getvalue().splitlines()


def test_the_live_table_fits_80_columns_with_every_header_and_state_whole() -> None:
    """At 80 columns no header, state or session name is cut ("emitt…", "closed ear…")."""
    rows = [
        (name, state, "1000000", "100000", "1000000", "1000000", "10000")
        for name, state in zip(
            ["session-1", "session-2", "session-3", "session-10", "session-1-restart"] * 2,
            _STATES,
            strict=False,
        )
    ]
    status = ("collector http://127.0.0.1:65535  outage: 86400.0s left", "stored 1000000  ...")
    lines = _render(80, _board(rows, status))
    text = "\n".join(lines)
    assert all(len(line) <= 80 for line in lines), text
    assert "…" not in text
    for word in ("session", "state", "emitted", "queued", "spooled", "sent", "retries"):
        assert word in lines[2].split(), text
    for name, state, *_ in rows:
        assert any(line.split()[:2] == [name, state] for line in lines), (name, state)


def test_the_verdict_prints_a_long_path_whole_on_a_line_of_its_own() -> None:
    """--keep's database path is never cut: alone on its line at 80 columns, inline unwrapped."""
    path = "/tmp/" + "a-long-directory-name/" * 4 + "eventlog-demo-x1y2z3/collector.sqlite"
    out = io.StringIO()
    assert _verdict(Console(file=out, width=80), 600, 600, 0, path) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "Result, from the collector's database:"
    assert lines[-3:] == ["database kept:", path, "OK: every event was delivered"]
    assert all(len(line) <= 80 for line in lines if line != path)
    out = io.StringIO()
    assert _verdict(Console(file=out, width=_UNWRAPPED), 600, 590, 0, path) == 1
    lines = out.getvalue().splitlines()
    assert lines[-2:] == [f"database kept: {path}", "FAILED: 10 events were lost"]


@pytest.mark.integration
def test_the_demo_piped_at_80_columns_wraps_nothing(tmp_path: Path) -> None:
    """Its output to a pipe, COLUMNS=80: the kept database's long path stays on one line."""
    temp = tmp_path / ("a-temporary-directory-with-a-long-name-" * 2)
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTLOG_", "OTEL_"))}
    env.update(COLUMNS="80", TMPDIR=str(temp), PYTHONIOENCODING="utf-8")
    env.pop("DO_NOT_TRACK", None)
    argv = ["demo", "--events", "20", "--outage", "0", "--sessions", "1", "--keep"]
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (kept,) = [line for line in done.stdout.splitlines() if line.startswith("database kept:")]
    path = kept.removeprefix("database kept: ")
    assert path.startswith(str(temp))
    assert os.path.exists(path)
    assert done.stdout.splitlines()[-1] == "OK: every event was delivered"
