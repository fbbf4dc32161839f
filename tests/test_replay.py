"""Restarts (docs/delivery.md): earlier runs' spool files are replayed, live ones left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import trio
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport, InternalEvent
from tests.helpers import spool_logs, spooled_events, unaccounted, v1_file, v1_line

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig


def spool_files(directory: Path) -> list[Path]:
    return spool_logs(directory)


def contents(log: Path) -> dict[str, bytes]:
    """Every file of a spool log directory, by name, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(log.iterdir())}


def envelope(name: str, event_id: str) -> bytes:
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%b","event_name":"%b",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z"}}' % (event_id.encode(), name.encode())
    )


async def run_failing(config: eventlog.Config, names: list[str]) -> None:
    """A logger whose server is down: logs ``names`` and exits, leaving them on disk."""
    async with eventlog.open_event_logger(
        config, transport=CapturingTransport(status_code=503)
    ) as log:
        for name in names:
            log.log_event(name)


async def test_stats_account_for_every_event_across_two_runs(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Run 1 spools 5; run 2 logs 3: exported 3 (its own), replayed 5, the invariant holds."""
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=CapturingTransport(status_code=503)
    ) as first:
        for i in range(5):
            first.log_event(f"old{i}")
    one = first.stats
    assert (one.emitted, one.exported, one.spooled, one.spool_events) == (5, 0, 5, 5)
    assert unaccounted(one) == 0

    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as second:
        for i in range(3):
            second.log_event(f"new{i}")
        await trio.sleep(1)
    two = second.stats
    assert sorted(transport.event_names()) == sorted(
        [*(f"old{i}" for i in range(5)), *(f"new{i}" for i in range(3))]
    )
    assert (two.emitted, two.taken_over, two.exported, two.replayed) == (3, 5, 3, 5)
    assert two.spool_events == 0
    assert unaccounted(two) == 0


async def test_stats_invariant_holds_when_earlier_events_are_refused(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Taken-over events the server refuses for good are counted there, once."""
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=CapturingTransport(status_code=503)
    ) as first:
        for i in range(4):
            first.log_event(f"old{i}")
    transport = CapturingTransport(status_code=400)
    async with eventlog.open_event_logger(make_config(), transport=transport) as second:
        second.log_event("new")
        await trio.sleep(1)
    two = second.stats
    assert (two.emitted, two.taken_over, two.dropped_permanent) == (1, 4, 5)
    assert (two.exported, two.replayed, two.spool_events) == (0, 0, 0)
    assert unaccounted(two) == 0


async def test_restart_delivers_every_event_of_a_dead_run(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Logger B, any session id, delivers all A left; a live logger C's file is untouched."""
    down = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        # C backs off long enough not to rewrite its own file during the test.
        make_config(session_id="session-c", base_backoff=100.0, max_backoff=100.0),
        transport=down,
    ) as log_c:
        log_c.log_event("c-event")
        await log_c.flush()
        (c_file,) = spool_files(spool_dir)
        c_bytes = contents(c_file)

        await run_failing(
            make_config(session_id="session-a", shutdown_timeout=0.0), [f"a{i}" for i in range(50)]
        )
        assert len(spool_files(spool_dir)) == 2

        up = CapturingTransport()
        async with eventlog.open_event_logger(
            make_config(session_id="session-b"), transport=up
        ) as b:
            await trio.sleep(1)
            assert up.event_names() == [f"a{i}" for i in range(50)]
            assert b.stats.replayed == 50
            assert b.stats.taken_over == 50
            assert b.stats.exported == 0  # none of them is this run's
        assert spool_files(spool_dir) == [c_file]
        assert contents(c_file) == c_bytes
        assert all(
            isinstance(e, InternalEvent) and e.event_data.session_id == "session-a"
            for e in up.events()
        )
    assert down.event_names() == []


async def test_spooled_events_keep_their_ids_across_the_restart(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The event_id a dead run posted is the one the next run delivers (server dedupe key)."""
    first = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=first
    ) as log:
        log.log_event("a")
        await log.flush()
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up):
        await trio.sleep(1)
    assert up.event_ids() == [first.requests[0].events[0].event_data.event_id]


async def test_oldest_file_replays_first(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Files are replayed in order of age, whatever their names."""
    spool_dir.mkdir(mode=0o700)
    now = time.time()
    for run, name, mtime in [("zzz", "old", now - 200), ("aaa", "new", now - 100)]:
        path = v1_file(spool_dir, "s", run)
        path.write_bytes(v1_line(envelope(name, name * 8)))
        os.utime(path, (mtime, mtime))
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up):
        await trio.sleep(1)
    assert up.event_names() == ["old", "new"]
    assert spool_files(spool_dir) == []


async def test_corrupt_lines_are_skipped_and_counted(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Garbage, a checksum mismatch and a torn tail are counted; the rest is delivered."""
    spool_dir.mkdir(mode=0o700)
    good = [v1_line(envelope(f"g{i}", f"{i:032x}")) for i in range(3)]
    flipped = good[1].replace(b'"g1"', b'"gX"')
    data = good[0] + b"{not json}\n" + flipped + good[2] + good[1][:25]
    (v1_file(spool_dir, "s", "r1")).write_bytes(data)
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up) as log:
        await trio.sleep(1)
        assert log.stats.spool_corrupt_lines == 3
        assert log.stats.replayed == 2
    assert up.event_names() == ["g0", "g2"]


async def test_attempts_hold_across_restarts(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """An event that failed twice before a restart is dropped after its third failed POST."""
    down = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(max_attempts=3, shutdown_timeout=0.0), transport=down
    ) as log:
        log.log_event("a")
        await log.flush()  # attempt 1
        await trio.sleep(1)  # attempt 2 at t=0.5
    assert len(down.requests) == 2
    assert len(spool_files(spool_dir)) == 1
    assert [r.attempts for r in spooled_events(spool_dir)] == [2]

    down2 = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(make_config(max_attempts=3), transport=down2) as log2:
        await trio.sleep(60)
        assert log2.stats.dropped_max_attempts == 1
    assert len(down2.requests) == 1
    assert spool_files(spool_dir) == []


async def test_file_locked_by_another_process_is_left_alone(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A spool file flocked by a live process is not replayed, and is once that process ends."""
    spool_dir.mkdir(mode=0o700)
    path = v1_file(spool_dir, "other", "live")
    path.write_bytes(v1_line(envelope("theirs", "f" * 32)))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        up = CapturingTransport()
        async with eventlog.open_event_logger(make_config(), transport=up):
            await trio.sleep(1)
        assert up.requests == []
        assert path.exists()
    finally:
        holder.communicate(b"")
    up2 = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up2):
        await trio.sleep(1)
    assert up2.event_names() == ["theirs"]
    assert not path.exists()


async def test_leftover_temp_files_are_removed_and_other_files_ignored(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A dead run's half-written rewrite is deleted; unrelated files are never touched."""
    spool_dir.mkdir(mode=0o700)
    temp = spool_dir / (v1_file(spool_dir, "s", "dead").name + ".tmp")
    temp.write_bytes(b"partial")
    other = spool_dir / "notes.txt"
    other.write_text("keep me")
    odd = spool_dir / "failed_events.x.jsonl"
    odd.write_text("not a spool file name")
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()) as log:
        await trio.sleep(1)
        assert log.stats.spool_corrupt_lines == 0
    assert not temp.exists()
    assert other.read_text() == "keep me"
    assert odd.exists()


async def test_two_loggers_in_one_process_never_replay_each_other(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two live loggers on one directory each keep their own spool; a third gets both after."""
    t1 = CapturingTransport(status_code=503)
    t2 = CapturingTransport(status_code=503)
    config = make_config(shutdown_timeout=0.0, max_attempts=None)
    async with (
        eventlog.open_event_logger(config, transport=t1) as one,
        eventlog.open_event_logger(config, transport=t2) as two,
    ):
        one.log_event("one")
        await one.flush()
        two.log_event("two")
        await two.flush()
        await trio.sleep(100)
        assert len(spool_files(spool_dir)) == 2
    for transport, name in [(t1, "one"), (t2, "two")]:
        seen = {
            e.event_data.event_name
            for r in transport.requests
            for e in r.events
            if isinstance(e, InternalEvent)
        }
        assert seen == {name}
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up):
        await trio.sleep(1)
    assert sorted(up.event_names()) == ["one", "two"]


async def test_missing_storage_dir_is_not_created_by_replay(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """With nothing to replay and nothing failing, the storage directory is never created."""
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()):
        await trio.sleep(20)
    assert not spool_dir.exists()


async def test_a_log_directory_left_without_its_lock_file_is_removed(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A run that died between creating its log directory and its lock file leaves no litter."""
    spool_dir.mkdir(mode=0o700)
    orphan = spool_dir / "spool-v2.dead.run"
    orphan.mkdir(mode=0o700)
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()):
        await trio.sleep(1)
    assert not orphan.exists()
