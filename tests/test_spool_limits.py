"""Spool limits by whole segments: the oldest go first, never one being posted, counted exactly.

``max_spool_bytes`` and ``max_spool_age`` evict whole segments, oldest
first: each event still unsettled in them is counted once in
``dropped_spool_limit`` (acknowledged ones are not), a segment holding a
record being posted (or written) is skipped, and an eviction costs a
journal line and a delete per evicted segment, whatever else the spool holds.
A segment is too old once its newest event is: an event may outlive
``max_spool_age`` by its segment's span.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

import eventlog
from eventlog import _seams
from eventlog._spool._admin import read_events
from eventlog._spool._format import encode_record_line, run_name
from eventlog.testing import CapturingTransport, FrozenWallClock
from tests.helpers import segment_files, spooled_events, unaccounted, v1_file, v1_line
from tests.spool_support import (
    CountingOps,
    VirtualClock,
    disk_names,
    live_names,
    make_spool,
    name_of,
    names_of,
    payload,
    records_named,
    running,
    take_over_into,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig


def disk_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == "eventlog"
    ]


async def test_the_bytes_limit_evicts_the_oldest_whole_segments(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Past max_spool_bytes the oldest segments go whole, counted, one warning; the rest deliver."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    limit = 4000
    transport = CapturingTransport()
    transport.outage(0, 100)
    config = make_config(max_attempts=None, max_spool_bytes=limit, base_backoff=1.0)
    names = [f"e{i:02d}" for i in range(30)]
    with _seams.use(segment_bytes=1000):
        async with eventlog.open_event_logger(config, transport=transport) as log:
            for name in names:
                log.log_event(name)
                await log.flush()
            survivors = [name_of(e.payload) for e in spooled_events(spool_dir)]
            assert 2 < len(survivors) < 15
            assert survivors == names[-len(survivors) :]
            files = segment_files(spool_dir)
            assert len(files) > 1
            assert sum(f.stat().st_size for f in files) <= limit
            # Whole segments: every line of every segment left is an event left.
            lines = sum(len(f.read_bytes().splitlines()) for f in files)
            assert lines == len(survivors)
            assert log.stats.dropped_spool_limit == len(names) - len(survivors)
            await trio.sleep(150)
    assert transport.event_names() == survivors
    assert log.stats.exported == len(survivors)
    assert log.stats.emitted == log.stats.exported + log.stats.dropped_spool_limit
    assert unaccounted(log.stats) == 0
    assert segment_files(spool_dir) == []
    assert disk_warnings(caplog) == [
        "eventlog: spool limits reached (4000 bytes, 604800s); oldest events dropped"
    ]


async def test_the_age_limit_within_a_run(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Segments whose newest event is older than max_spool_age go at the next append."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    transport = CapturingTransport()
    transport.outage(0, 130)
    config = make_config(max_attempts=None, max_spool_age=100.0, base_backoff=1.0, max_backoff=60)
    with _seams.use(segment_bytes=1):  # a segment per append
        async with eventlog.open_event_logger(
            config, transport=transport, clock=FrozenWallClock()
        ) as log:
            log.log_event("old0")
            log.log_event("old1")
            log.log_event("old2")
            await log.flush()
            await trio.sleep_until(50)
            log.log_event("mid0")
            await log.flush()
            await trio.sleep_until(99)
            assert disk_names(spool_dir) == ["old0", "old1", "old2", "mid0"]
            assert log.stats.dropped_spool_limit == 0
            # Retries at 91 and 140: nothing touches the spool in between but this append.
            await trio.sleep_until(101)
            log.log_event("new0")
            await log.flush()
            assert disk_names(spool_dir) == ["mid0", "new0"]
            assert log.stats.dropped_spool_limit == 3
            await trio.sleep_until(200)
    assert transport.event_names() == ["mid0", "new0"]
    # The retry at 140 drains mid0's segment, new0's a batch_delay later.
    assert transport.attempt_times == [0, 1, 5, 14, 30, 55, 91, 140, 140.1]
    assert disk_warnings(caplog) == [
        "eventlog: spool limits reached (67108864 bytes, 100s); oldest events dropped"
    ]


async def test_too_old_earlier_spools_are_dropped_at_takeover_and_recent_ones_replayed(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A log or v1 file whose events are older than max_spool_age is dropped unsent, counted."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    spool_dir.mkdir(mode=0o700)
    now = time.time()
    day = 24 * 3600.0
    # A version 1 file without times, last written 8 days ago: its mtime stands for them.
    old = v1_file(spool_dir, "s", "old")
    old.write_bytes(b"".join(v1_line(payload(n)) for n in ("o0", "o1", "o2")) + b"{torn")
    os.utime(old, (now - 8 * day, now - 8 * day))
    # A version 2 log whose lines say 8 days.
    log = spool_dir / run_name("s", "stale")
    log.mkdir(mode=0o700)
    (log / "lock").write_bytes(b"")
    (log / "00000001.seg").write_bytes(encode_record_line(0, 0, now - 8 * day, payload("s0")))
    recent = v1_file(spool_dir, "s", "recent")
    recent.write_bytes(b"".join(v1_line(payload(n), 0, int(now - day)) for n in ("r0", "r1")))
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up) as logger:
        await trio.sleep(1)
    assert up.event_names() == ["r0", "r1"]
    stats = logger.stats
    assert (stats.taken_over, stats.dropped_spool_limit, stats.replayed) == (6, 4, 2)
    assert stats.spool_corrupt_lines == 1
    assert unaccounted(stats) == 0
    assert list(spool_dir.iterdir()) == []
    assert disk_warnings(caplog) == [
        "eventlog: spool limits reached (67108864 bytes, 604800s); oldest events dropped"
    ]


async def test_segments_with_records_being_posted_are_never_evicted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A segment holding a record being posted survives both limits; the oldest others go."""
    clock = VirtualClock()
    spool, counters = make_spool(
        tmp_path, clock=clock, segment_bytes=1, max_bytes=3000, max_age=100.0
    )
    async with running(spool):
        for name in ("s0", "s1", "s2", "s3", "s4"):  # a segment each
            spool.add(records_named(name))
            await spool.written()
        sending = await spool.take_retries(1)
        assert names_of(sending) == ["s0"]
        line = (tmp_path / run_name("sess", "run1") / "00000001.seg").stat().st_size
        assert 5 * line < 3000 < 20 * line
        for i in range(10):
            spool.add(records_named(f"n{i}"))
            await spool.written()
        kept = live_names(spool)
        assert kept[0] == "s0"  # being posted: skipped
        dropped = counters.dropped_spool_limit
        evictable = ["s1", "s2", "s3", "s4"] + [f"n{i}" for i in range(10)]
        assert kept[1:] == evictable[dropped:]  # the oldest evictable ones went
        assert spool.size <= 3000

        clock.skew = 101.0  # everything is too old now, but s0 is still being posted
        spool.add(records_named("new"))
        await spool.written()
        assert live_names(spool) == ["s0", "new"]
        assert counters.dropped_spool_limit == len(evictable)
        spool.settle(released=sending)  # its POST is over: too old, it goes at the next check
        spool.enforce_limits()
        await spool.written()
        assert live_names(spool) == ["new"]
        assert counters.dropped_spool_limit == len(evictable) + 1
    assert disk_names(tmp_path) == ["new"]


async def test_acknowledged_records_are_not_counted_when_their_segment_is_evicted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Evicting a segment counts only its unsettled events; settled ones were counted already."""
    clock = VirtualClock()
    spool, counters = make_spool(tmp_path, clock=clock, segment_bytes=1, max_age=100.0)
    async with running(spool):
        spool.add(records_named("a", "b", "c", "d"))
        await spool.written()
        taken = await spool.take_retries(4)
        spool.settle(done=taken[:3:2], released=taken[1::2])  # a and c acked
        clock.skew = 101.0
        spool.add(records_named("new"))
        await spool.written()
        assert counters.dropped_spool_limit == 2  # b and d
        assert live_names(spool) == ["new"]
    assert disk_names(tmp_path) == ["new"]


@pytest.mark.parametrize("others", [10, 200])
async def test_an_eviction_costs_only_the_evicted_segments(
    tmp_path: Path, others: int, autojump_clock: trio.testing.MockClock
) -> None:
    """Evicting two segments costs a journal line and a delete each, whatever else is kept."""
    clock = VirtualClock()
    ops = CountingOps()
    spool, counters = make_spool(tmp_path, ops, clock=clock, segment_bytes=1, max_age=100.0)
    async with running(spool):
        for name in ("old0", "old1"):
            spool.add(records_named(name, f"{name}-b"))
            await spool.written()
        await trio.sleep(50)
        for i in range(others):
            spool.add(records_named(f"n{i}"))
        await spool.written()
        await trio.sleep(51)  # the first two segments are too old now, the others not
        before = len(ops.log)
        spool.enforce_limits()
        await spool.written()
        assert counters.dropped_spool_limit == 4
        calls = ops.log[before:]
        per_segment = ["open:jnl", "write:jnl", "close:jnl"]  # its events: done
        per_segment += ["close:seg", "unlink:seg", "unlink:jnl", "fsync_dir"]  # and it goes
        # Journal lines have a lane of their own: the two lanes' calls interleave.
        assert sorted(calls) == sorted(2 * per_segment)
        assert len(live_names(spool)) == others


async def test_limits_count_exactly_what_they_evict_across_a_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A run's log bigger than the next run's limit: evicted whole segments, counted once."""
    first, _ = make_spool(tmp_path, run="run1", segment_bytes=1)
    async with running(first):
        for i in range(6):
            first.add(records_named(f"a{i}", f"b{i}"))  # a segment of two each
            await first.written()
        first.settle(done=await first.take_retries(1))  # a0 acked: not counted again
    sizes = [f.stat().st_size for f in segment_files(tmp_path)]
    assert len(sizes) == 6
    # Keep two segments: past the limit, eviction goes down to 90 % of it.
    limit = int((sizes[-1] + sizes[-2]) / 0.9) + 1
    spool, counters = make_spool(tmp_path, run="run2", max_bytes=limit)
    async with running(spool):
        await take_over_into(spool, counters)
        await spool.written()
        assert counters.taken_over == 11
        assert counters.dropped_spool_limit == 7  # b0, then a1 to b3
        assert live_names(spool) == ["a4", "b4", "a5", "b5"]
    events, _ = read_events(str(tmp_path / run_name("sess", "run1")))
    assert [name_of(e.payload) for e in events] == ["a4", "b4", "a5", "b5"]
