"""Taking over earlier runs' logs: claimed in place by one successor, drained, trimmed, removed."""

from __future__ import annotations

import errno
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
import trio
import trio.lowlevel
import trio.testing

import eventlog
from eventlog._spool import FileOps, take_over
from eventlog._spool._format import encode_journal_line, run_name
from eventlog._spool._segment import V1_SEGMENT_BYTES
from eventlog.testing import CapturingTransport
from tests.helpers import (
    open_logger_with,
    segment_files,
    spooled_events,
    unaccounted,
    v1_file,
    v1_line,
)
from tests.spool_support import (
    CountingOps,
    VirtualClock,
    disk_names,
    make_spool,
    name_of,
    names_of,
    payload,
    records_named,
    running,
    take_over_into,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.conftest import MakeConfig

T = TypeVar("T")


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == "eventlog"
    ]


# -- regressions -----------------------------------------------------------------------------


async def test_an_earlier_log_evicted_whole_is_removed_and_unlocked(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Every segment of an earlier log evicted at once: the log goes and its lock is released."""
    first, _ = make_spool(tmp_path, run="run1", segment_bytes=400)
    async with running(first):
        for name in ("a", "b", "c", "d"):
            first.add(records_named(name))
            await first.written()
    assert len(list((tmp_path / run_name("sess", "run1")).glob("*.seg"))) == 2
    ops = CountingOps()
    spool, counters = make_spool(tmp_path, ops, run="run2", max_bytes=300)
    async with running(spool):
        await take_over_into(spool, counters, ops)
        await spool.written()
        assert (counters.taken_over, counters.dropped_spool_limit) == (4, 4)
        assert spool.logs == []
        assert not (tmp_path / run_name("sess", "run1")).exists()
        assert ops.paths == {}
    assert ops.release_leaks() == 0


class FailingRmdir(CountingOps):
    """Real file operations, except that removing a directory fails."""

    def rmdir(self, path: str) -> None:
        self._tick("rmdir")
        raise OSError(errno.EIO, "injected EIO in rmdir")


async def test_a_failed_removal_of_an_earlier_log_still_releases_its_lock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The drained log's directory cannot be removed: its lock is released all the same."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a"))
    ops = FailingRmdir()
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        taken = await spool.take_retries(10)
        spool.settle(done=taken)
        await spool.written()
        assert "rmdir" in ops.log
        assert spool.logs == []
        assert ops.paths == {}
    assert ops.release_leaks() == 0
    # Left behind: an empty directory, nothing a later run could send.
    assert list((tmp_path / run_name("sess", "run1")).iterdir()) == []


@pytest.mark.parametrize("tail", ["torn", "no-newline"])
async def test_an_ack_written_after_a_torn_journal_line_is_kept(
    tmp_path: Path, tail: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A journal ending in a torn line (a death mid-write): the next run's acks still read back."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
        await first.written()
        spool_a = await first.take_retries(1)
        first.settle(done=spool_a)
    journal = tmp_path / run_name("sess", "run1") / "00000001.jnl"
    line = encode_journal_line("failed", [2])
    with journal.open("ab") as f:
        f.write(line[:12] if tail == "torn" else line[:-1])

    second, counters = make_spool(tmp_path, run="run2")
    async with running(second):
        await take_over_into(second, counters)
        assert counters.taken_over == 2
        taken = await second.take_retries(1)
        assert names_of(taken) == ["b"]
        second.settle(done=taken)
    assert disk_names(tmp_path) == ["c"]


class TornJournalWrite(CountingOps):
    """Real file operations, except that the first journal write stops halfway and fails."""

    def __init__(self) -> None:
        super().__init__()
        self.torn = False

    def write(self, fd: int, data: bytes) -> int:
        if not self.torn and self._fd_kind(fd) == "jnl":
            self.torn = True
            os.write(fd, data[: len(data) // 2])
            exc = OSError(errno.ENOSPC, "injected ENOSPC in write:jnl")
            exc.written = len(data) // 2  # type: ignore[attr-defined]  # as FileOps.write does
            raise exc
        return super().write(fd, data)


async def test_an_ack_written_after_a_torn_journal_write_is_kept(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A journal write fails halfway (disk full): the next line of that journal still reads back."""
    ops = TornJournalWrite()
    first, _ = make_spool(tmp_path, ops, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
        await first.written()
        for _ in range(2):
            taken = await first.take_retries(1)
            first.settle(done=taken)
            await first.written()
        assert ops.torn
    successor, counters = make_spool(tmp_path, run="run2")
    async with running(successor):
        await take_over_into(successor, counters)
        # a's line was torn: a may be sent again (a duplicate); b's was whole.
        assert names_of(await successor.take_retries(10)) == ["a", "c"]


class FailingReads(CountingOps):
    """Real file operations, except that the first ``failures`` reads of a segment fail."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        if self.failures:
            self.failures -= 1
            self._tick("read_range:seg")
            raise OSError(errno.EIO, "injected EIO in read_range")
        return super().read_range(path, offset, length)


async def test_a_segment_that_cannot_be_read_keeps_its_records_for_a_later_drain(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A read for a retry fails: the records stay, none counted corrupt, read again later."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
    ops = FailingReads(2)
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        assert await spool.take_retries(10) == []
        assert (spool.events, counters.spool_corrupt_lines) == (3, 0)
        # Not read again in a tight loop: the drain waits for the disk a while.
        assert not spool.has_retries()
        await trio.sleep(1)
        assert spool.has_retries()
        assert await spool.take_retries(10) == []
        await trio.sleep(1.5)
        assert not spool.has_retries()
        await trio.sleep(0.5)
        taken = await spool.take_retries(10)
        assert names_of(taken) == ["a", "b", "c"]
        spool.settle(done=taken)
    assert list(tmp_path.iterdir()) == []


class FailingJournalUnlinks(CountingOps):
    """Real file operations, except that journals cannot be deleted."""

    def unlink(self, path: str) -> None:
        if path.endswith(".jnl"):
            self._tick("unlink:jnl")
            raise OSError(errno.EACCES, "injected EACCES in unlink")
        super().unlink(path)


@pytest.mark.parametrize("whose", ["own", "earlier"])
async def test_a_file_a_failed_delete_left_never_strands_its_log(
    tmp_path: Path, whose: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A settled segment's journal cannot be deleted: its log stays claimable for a later run."""
    failing = FailingJournalUnlinks()
    first, _ = make_spool(tmp_path, failing if whose == "own" else None, run="run1")
    async with running(first):
        first.add(records_named("a"))
        await first.written()
        if whose == "own":
            first.settle(done=await first.take_retries(1))
    if whose == "earlier":
        second, counters = make_spool(tmp_path, failing, run="run2")
        async with running(second):
            await take_over_into(second, counters, failing)
            second.settle(done=await second.take_retries(1))
    assert "unlink:jnl" in failing.log
    left = sorted(p.name for p in (tmp_path / run_name("sess", "run1")).iterdir())
    assert left == ["00000001.jnl", "lock"]
    successor, counters = make_spool(tmp_path, run="run3")
    async with running(successor):
        await take_over_into(successor, counters)
        assert counters.taken_over == 0
    assert list(tmp_path.iterdir()) == []


# -- trimmed, never left behind ---------------------------------------------------------------


def trimmed(sizes: list[int], limit: int) -> int:
    """How many of these segments (oldest first) a limit evicts: down to 90 % of it."""
    over = sum(sizes) - limit
    if over <= 0:
        return 0
    over += limit // 10
    evicted = 0
    for size in sizes:
        if over <= 0:
            break
        over -= size
        evicted += 1
    return evicted


async def test_an_oversized_earlier_log_is_taken_over_and_trimmed(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A log over max_spool_bytes: its oldest segments dropped (counted), the rest replayed."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    now = time.time()
    first, _ = make_spool(spool_dir, run="run1", segment_bytes=1000, clock=VirtualClock(now))
    async with running(first):
        for i in range(40):
            first.add(records_named(f"e{i:02d}"))
            await first.written()
    files = segment_files(spool_dir)
    sizes = [f.stat().st_size for f in files]
    counts = [len(f.read_bytes().splitlines()) for f in files]
    limit = sum(sizes) // 2
    evicted = trimmed(sizes, limit)
    dropped = sum(counts[:evicted])
    assert 0 < evicted < len(files) - 1
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(max_spool_bytes=limit), transport=transport
    ) as log:
        await trio.sleep(10)
    stats = log.stats
    assert (stats.taken_over, stats.dropped_spool_limit, stats.replayed) == (
        40,
        dropped,
        40 - dropped,
    )
    assert transport.event_names() == [f"e{i:02d}" for i in range(dropped, 40)]
    assert unaccounted(stats) == 0
    assert list(spool_dir.iterdir()) == []
    assert [m for m in warnings(caplog) if "limits" in m] == [
        f"eventlog: spool limits reached ({limit} bytes, 604800s); oldest events dropped"
    ]


def big_payload(name: str) -> bytes:
    """An envelope of about 4 KB: a version 1 file of a few pages in a few thousand lines."""
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%b","event_name":"%b",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z"}}' % (name.encode() * 1000, name.encode())
    )


async def test_an_oversized_version_1_file_is_taken_over_and_trimmed(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A v1 file over max_spool_bytes: its oldest pages dropped (counted), the rest replayed."""
    spool_dir.mkdir(mode=0o700)
    now = int(time.time())
    names = [f"e{i:04d}" for i in range(2000)]
    path = v1_file(spool_dir, "old", "run")
    data = b"".join(v1_line(big_payload(name), 0, now) for name in names)
    path.write_bytes(data)
    # Read in pages of about V1_SEGMENT_BYTES, cut at line ends, each a segment to
    # the limits: this one keeps the last page only.
    pages: list[tuple[int, int]] = []  # (bytes, lines)
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", min(offset + V1_SEGMENT_BYTES, len(data)) - 1) + 1
        pages.append((end - offset, data.count(b"\n", offset, end)))
        offset = end
    assert len(pages) == 3
    limit = len(data) // 2
    assert trimmed([size for size, _ in pages], limit) == 2
    dropped = pages[0][1] + pages[1][1]
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(max_spool_bytes=limit), transport=transport
    ) as log:
        await trio.sleep(10)
    stats = log.stats
    assert (stats.taken_over, stats.dropped_spool_limit) == (2000, dropped)
    assert stats.replayed == 2000 - dropped
    assert transport.event_names() == names[dropped:]
    assert unaccounted(stats) == 0
    assert list(spool_dir.iterdir()) == []


class FullDisk(CountingOps):
    """A nearly full disk: every write fails with ENOSPC (opening, reading, locking still work)."""

    def write(self, fd: int, data: bytes) -> int:
        self._tick(f"write:{self._fd_kind(fd)}")
        exc = OSError(errno.ENOSPC, "injected ENOSPC in write")
        exc.written = 0  # type: ignore[attr-defined]  # as FileOps.write does
        raise exc


async def test_a_nearly_full_disk_does_not_stop_the_takeover(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """No write succeeds: earlier logs are claimed, delivered and removed (nothing is copied)."""
    first, _ = make_spool(spool_dir, run="run1", clock=VirtualClock(time.time()))
    async with running(first):
        first.add(records_named("a", "b", "c"))
    v1_file(spool_dir, "old", "run").write_bytes(
        v1_line(payload("v0"), 0, int(time.time())) + v1_line(payload("v1"))
    )
    ops = FullDisk()
    transport = CapturingTransport()
    async with open_logger_with(ops, make_config(), transport=transport) as log:
        log.log_event("live")
        await trio.sleep(10)
    assert sorted(transport.event_names()) == ["a", "b", "c", "live", "v0", "v1"]
    stats = log.stats
    assert (stats.taken_over, stats.replayed, stats.exported) == (5, 5, 1)
    assert unaccounted(stats) == 0
    assert "write:seg" not in ops.log  # taken over in place: not a byte copied
    assert list(spool_dir.iterdir()) == []
    assert ops.release_leaks() == 0


# -- claimed by exactly one -------------------------------------------------------------------


class PausingRunner:
    """Runs functions inline; from the ``pause_at``-th on, only once ``resume`` is set."""

    def __init__(self, pause_at: int) -> None:
        self.calls = 0
        self.pause_at = pause_at
        self.paused = trio.Event()
        self.resume = trio.Event()

    async def __call__(self, function: Callable[[], T], /) -> T:
        self.calls += 1
        if self.calls >= self.pause_at:
            self.paused.set()
            await self.resume.wait()
        await trio.lowlevel.checkpoint()
        return function()


async def test_exactly_one_of_two_concurrent_successors_claims_each_log(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A second run takes over while the first is midway: each log goes to one of them, whole."""
    for run in ("r1", "r2", "r3"):
        earlier, _ = make_spool(tmp_path, run=run)
        async with running(earlier):
            earlier.add(records_named(f"{run}a", f"{run}b"))
    v1_file(tmp_path, "old", "v1").write_bytes(v1_line(payload("v1a")))
    one, one_counters = make_spool(tmp_path, run="one")
    two, two_counters = make_spool(tmp_path, run="two")
    # The first run lists the logs, claims the oldest, then pauses (indexing it).
    runner = PausingRunner(pause_at=3)
    async with running(one), running(two), trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(take_over, one, one_counters, lambda: None, ops=FileOps(), runner=runner)
        )
        await runner.paused.wait()
        await take_over_into(two, two_counters)  # meanwhile the second takes the rest
        runner.resume.set()
    assert (len(one.logs), len(two.logs)) == (1, 3)
    claimed = {log.directory or log.file for log in one.logs + two.logs}
    assert len(claimed) == 4
    assert one_counters.taken_over + two_counters.taken_over == 7
    names = [names_of(await s.take_retries(10)) for s in (one, two) for _ in range(4)]
    assert sorted(n for chunk in names for n in chunk) == sorted(
        ["r1a", "r1b", "r2a", "r2b", "r3a", "r3b", "v1a"]
    )


async def test_two_loggers_starting_together_deliver_each_earlier_event_once(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two loggers opened at once on a directory with earlier logs: every event replayed once."""
    for run in ("r1", "r2", "r3", "r4"):
        earlier, _ = make_spool(spool_dir, run=run, clock=VirtualClock(time.time()))
        async with running(earlier):
            earlier.add(records_named(f"{run}a", f"{run}b"))
    t1, t2 = CapturingTransport(), CapturingTransport()
    async with (
        eventlog.open_event_logger(make_config(), transport=t1) as one,
        eventlog.open_event_logger(make_config(), transport=t2) as two,
    ):
        await trio.sleep(10)
    delivered = t1.event_names() + t2.event_names()
    assert sorted(delivered) == sorted(f"r{i}{x}" for i in range(1, 5) for x in "ab")
    assert one.stats.taken_over + two.stats.taken_over == 8
    assert one.stats.replayed + two.stats.replayed == 8
    assert list(spool_dir.iterdir()) == []


# -- version 1 files: the migration path ------------------------------------------------------


async def test_a_version_1_file_drained_in_part_keeps_a_journal_the_next_run_honours(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A v1 file is never rewritten: what one run settles goes to a journal next to it."""
    spool_dir.mkdir(mode=0o700)
    path = v1_file(spool_dir, "old", "run")
    now = int(time.time())
    path.write_bytes(b"".join(v1_line(payload(f"v{i}"), 2, now) for i in range(4)))
    original = path.read_bytes()
    # The first drain chunk (v0, v1) is acknowledged; then the server is down.
    up_then_down = CapturingTransport()
    up_then_down.outage(0.05, 10**9)
    config = make_config(max_export_batch_size=2, shutdown_timeout=0.0, max_attempts=None)
    async with eventlog.open_event_logger(config, transport=up_then_down) as log:
        await trio.sleep(5)
    assert up_then_down.event_names() == ["v0", "v1"]
    assert log.stats.replayed == 2
    assert path.read_bytes() == original
    assert Path(str(path) + ".jnl").exists()
    failures = len(up_then_down.requests) - 1
    assert failures > 1
    left = spooled_events(spool_dir)
    assert [(name_of(e.payload), e.attempts) for e in left] == [
        ("v2", 2 + failures),
        ("v3", 2 + failures),
    ]

    up = CapturingTransport()
    async with eventlog.open_event_logger(config, transport=up) as log:
        await trio.sleep(5)
    assert up.event_names() == ["v2", "v3"]
    assert (log.stats.taken_over, log.stats.replayed) == (2, 2)
    assert list(spool_dir.iterdir()) == []


async def test_version_1_attempts_count_toward_max_attempts(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A v1 line's attempt count carries over: one more failure reaches max_attempts."""
    spool_dir.mkdir(mode=0o700)
    now = int(time.time())
    v1_file(spool_dir, "old", "run").write_bytes(
        v1_line(payload("tired"), 3, now) + v1_line(payload("fresh"), 0, now)
    )
    transport = CapturingTransport()
    transport.fail_next(1)
    async with eventlog.open_event_logger(
        make_config(max_attempts=4, base_backoff=1.0), transport=transport
    ) as log:
        await trio.sleep(10)
    assert transport.event_names() == ["fresh"]
    assert (log.stats.dropped_max_attempts, log.stats.replayed) == (1, 1)
    assert unaccounted(log.stats) == 0
    assert list(spool_dir.iterdir()) == []


# -- odds and ends of the storage directory --------------------------------------------------


class VanishingStat(CountingOps):
    """Real file operations, except that ``stat`` finds ``vanished`` gone (removed meanwhile)."""

    def __init__(self, vanished: str) -> None:
        super().__init__()
        self.vanished = vanished

    def stat(self, path: str) -> os.stat_result:
        if path == self.vanished:
            raise FileNotFoundError(errno.ENOENT, "removed since the listing", path)
        return super().stat(path)


async def test_leftovers_and_vanished_logs_are_handled_quietly(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A v1 rewrite's temp file is removed; a log gone between listing and stat is skipped."""
    temp = tmp_path / (v1_file(tmp_path, "s", "dead").name + ".tmp")
    temp.write_bytes(b"partial")
    gone, _ = make_spool(tmp_path, run="gone")
    async with running(gone):
        gone.add(records_named("g"))
    ops = VanishingStat(str(tmp_path / run_name("sess", "gone")))
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        assert (spool.logs, counters.taken_over) == ([], 0)
    assert not temp.exists()
    assert disk_names(tmp_path) == ["g"]  # still there, for a later run


async def test_a_line_gone_bad_after_the_takeover_read_it_is_counted_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A line indexed at takeover is corrupt when read for its retry: skipped and counted."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b", "c"))
    spool, counters = make_spool(tmp_path, run="run2")
    async with running(spool):
        await take_over_into(spool, counters)
        segment = tmp_path / run_name("sess", "run1") / "00000001.seg"
        data = segment.read_bytes()
        at = data.index(b'"b"')
        segment.write_bytes(data[:at] + b'"B"' + data[at + 3 :])  # bit rot in b's line
        taken = await spool.take_retries(10)
        assert names_of(taken) == ["a", "c"]
        assert (counters.taken_over, counters.spool_corrupt_lines) == (3, 1)
        spool.settle(done=taken)
    assert list(tmp_path.iterdir()) == []


async def test_blank_lines_in_earlier_logs_are_neither_events_nor_corrupt(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Empty lines (a hand edit) in a segment or a version 1 file are passed over silently."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b"))
    segment = tmp_path / run_name("sess", "run1") / "00000001.seg"
    segment.write_bytes(b"\n" + segment.read_bytes().replace(b"\n", b"\n\n", 1))
    v1_file(tmp_path, "sess", "old").write_bytes(v1_line(payload("c")) + b"  \n")
    spool, counters = make_spool(tmp_path, run="run2")
    async with running(spool):
        await take_over_into(spool, counters)
        taken = await spool.take_retries(10)
        taken += await spool.take_retries(10)  # one log at a time
        assert sorted(names_of(taken)) == ["a", "b", "c"]
        assert (counters.taken_over, counters.spool_corrupt_lines) == (3, 0)
        spool.settle(done=taken)
    assert list(tmp_path.iterdir()) == []


async def test_an_empty_version_1_file_is_claimed_and_removed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A version 1 file with no line at all holds nothing: taken over empty, then deleted."""
    v1_file(tmp_path, "sess", "old").write_bytes(b"")
    spool, counters = make_spool(tmp_path, run="run2")
    async with running(spool):
        await take_over_into(spool, counters)
        assert (counters.taken_over, counters.spool_corrupt_lines) == (0, 0)
        assert not spool.has_retries()
    assert list(tmp_path.iterdir()) == []


class VanishingSegment(CountingOps):
    """Real file operations, except that segment files are found gone when read."""

    def read_chunks(self, path: str, size: int = 1 << 20) -> Iterator[bytes]:
        if path.endswith(".seg"):
            raise FileNotFoundError(errno.ENOENT, "removed since the listing", path)
        return super().read_chunks(path, size)


async def test_a_segment_gone_before_it_is_indexed_holds_no_event(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A segment deleted between the listing and the read counts as empty, not as a failure."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a"))
    ops = VanishingSegment()
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        assert (counters.taken_over, counters.spool_corrupt_lines, spool.events) == (0, 0, 0)
        assert len(spool.logs) == 1  # claimed: a later step removes what is left of it


class FailingTempUnlinks(CountingOps):
    """Real file operations, except that a version 1 rewrite's temp file cannot be deleted."""

    def unlink(self, path: str) -> None:
        if path.endswith(".tmp"):
            self._tick("unlink:tmp")
            raise OSError(errno.EACCES, "injected EACCES in unlink", path)
        super().unlink(path)


async def test_a_temp_file_that_cannot_be_removed_is_left_and_its_lock_let_go(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A leftover temp file whose delete fails stays for a later run: no warning, no leak."""
    caplog.set_level(logging.DEBUG, logger="eventlog")
    temp = tmp_path / (v1_file(tmp_path, "s", "dead").name + ".tmp")
    temp.write_bytes(b"partial")
    ops = FailingTempUnlinks()
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
    assert temp.exists()
    assert ops.release_leaks() == 0
    assert warnings(caplog) == []
    assert any("not removed" in r.getMessage() for r in caplog.records)
