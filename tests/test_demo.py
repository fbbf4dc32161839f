"""``eventlog demo``'s output fits 80 columns; piped, it is not wrapped at all."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
import trio
import trio.testing
from rich.console import Console

import eventlog
from eventlog._cli._demo import (
    _UNWRAPPED,
    _board,
    _config,
    _emit,
    _live_table,
    _row,
    _Session,
    _settle,
    _status,
    _verdict,
)
from eventlog.collector import Collector, CollectorApp, Faults, Store, open_collector

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


class FakeLog:
    """What the demo reads of a logger: its stats, here given, or changing at ``drained_at``."""

    def __init__(self, stats: eventlog.Stats, drained_at: float = -math.inf) -> None:
        self.busy = stats
        self.drained_at = drained_at

    @property
    def stats(self) -> eventlog.Stats:
        """``busy`` until ``drained_at`` (trio time), then nothing queued or spooled."""
        if trio.current_time() < self.drained_at:
            return self.busy
        return eventlog.Stats()


def fake_log(stats: eventlog.Stats, drained_at: float = -math.inf) -> eventlog.EventLogger:
    """A :class:`FakeLog` where the demo takes an EventLogger."""
    return cast("eventlog.EventLogger", FakeLog(stats, drained_at))


def collector_at(url: str, faults: Faults) -> Collector:
    """A Collector as the demo sees it, not serving: its URL, faults and stats."""
    return Collector(url, CollectorApp(Store(":memory:"), faults=faults))


async def test_settle_returns_once_nothing_is_queued_or_spooled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A session settles as soon as its queue and spool are empty, well before the deadline."""
    start = trio.current_time()
    busy = eventlog.Stats(queue_depth=1, spool_bytes=300)
    await _settle(fake_log(busy, drained_at=start + 1.0), start + 30)
    assert 1.0 <= trio.current_time() - start <= 1.05


async def test_settle_gives_up_at_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    """A session that never drains stops waiting at the deadline."""
    start = trio.current_time()
    await _settle(fake_log(eventlog.Stats(spool_bytes=300), drained_at=math.inf), start + 2)
    assert 2.0 <= trio.current_time() - start <= 2.05


async def test_a_sessions_row_shows_nothing_then_its_live_stats_then_its_final_ones() -> None:
    """Before its logger opens: zeros; while open: the live stats; once closed: the final ones."""
    session = _Session("session-1")
    assert _row(session) == ("session-1", "waiting", "0", "0", "0", "0", "0")
    session.log = fake_log(
        eventlog.Stats(
            emitted=9, queue_depth=2, spooled=4, exported=3, replayed=1, export_failures=5
        ),
        drained_at=math.inf,
    )
    session.state = "running"
    # "sent" counts its own events and those replayed from an earlier session.
    assert _row(session) == ("session-1", "running", "9", "2", "4", "4", "5")
    session.final = eventlog.Stats(emitted=9, exported=9)
    session.state = "done"
    assert _row(session) == ("session-1", "done", "9", "0", "0", "9", "0")


async def test_the_status_lines_show_the_outage_left_then_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The live table's head: the collector's URL, the outage left, what it stored and refused."""
    collector = collector_at("http://127.0.0.1:8787", Faults(outage_until=trio.current_time() + 3))
    collector.stats.stored, collector.stats.duplicates, collector.stats.faulted = 10, 1, 4
    assert _status(collector) == (
        "collector http://127.0.0.1:8787  outage: 3.0s left",
        "stored 10  duplicates 1  refused 4",
    )
    await trio.sleep(3)
    lines = _render(80, _live_table([_Session("session-1")], collector))
    assert lines[0] == "collector http://127.0.0.1:8787  outage: over"
    assert lines[-1].split() == ["session-1", "waiting", "0", "0", "0", "0", "0"]
    collector.app.store.close()


def test_the_demo_logs_even_where_do_not_track_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DO_NOT_TRACK=1 disables loggers by default; the demo's, about delivery, stay enabled."""
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    assert not eventlog.Config(base_url="http://127.0.0.1:1").enabled
    collector = collector_at("http://127.0.0.1:8787", Faults())
    config = _config(collector, str(tmp_path / "spool"), "session-2")
    assert config.enabled
    assert (config.base_url, config.session_id, config.max_attempts) == (
        "http://127.0.0.1:8787",
        "session-2",
        None,
    )
    assert config.storage_dir == str(tmp_path / "spool")
    collector.app.store.close()


# The SDK and the collector over a real socket (docs/contributing.md).
@pytest.mark.integration
async def test_a_session_closed_early_delivers_its_events_on_close(tmp_path: Path) -> None:
    """A session with no time to settle logs its share and closes: "closed", all delivered."""
    async with open_collector() as collector:
        session = _Session("session-1")
        await _emit(session, collector, str(tmp_path), 12, 0.0, settle=False, seed=0)
        assert session.state == "closed"
        assert session.stats() == session.final
        assert (session.stats().emitted, session.stats().exported) == (12, 12)
        assert await collector.count() == 12


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
