"""Disk faults and the storage directory's safety.

Fault injection is done the SQLite way: a :class:`~tests.spool_support.FaultyOps`
fails the N-th file operation of a whole scenario (outage, recovery,
restart), for every N from 1 until a run completes without reaching the
fault. Whatever fails, the application never sees an exception and no
event is lost silently: each one is delivered, left on disk for the next
run, or counted in ``dropped_disk_error``, exactly.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections import deque
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
import trio.testing

import eventlog
from eventlog._spool._format import encode_record_line, run_name
from eventlog.testing import CapturingTransport
from tests.helpers import open_logger_with, spool_logs, spooled_events, unaccounted
from tests.spool_support import (
    EPOCH,
    ERRNOS,
    FOREVER,
    CountingOps,
    Fault,
    FaultyOps,
    assert_disk_matches_memory,
    disk_names,
    live_names,
    make_spool,
    names_of,
    payload,
    records_named,
    running,
    take_over_into,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from eventlog._spool import Spool
    from tests.conftest import MakeConfig

# A scenario makes far fewer calls than this; the sweep stops long before.
MAX_N = 600


def log_names(log: eventlog.EventLogger, prefix: str, count: int) -> None:
    for i in range(count):
        log.log_event(f"{prefix}{i}")


class Outcome(msgspec.Struct):
    emitted: int = 0
    delivered: list[str] = msgspec.field(default_factory=list)
    counted_lost: int = 0
    left_on_disk: int = 0
    warnings: list[list[str]] = msgspec.field(default_factory=list)
    """Per run: the WARNING messages logged."""
    hits: list[int] = msgspec.field(default_factory=list)
    """Per run: file operations that failed."""
    lost: list[int] = msgspec.field(default_factory=list)
    """Per run: dropped_disk_error."""


def disk_warnings(caplog: pytest.LogCaptureFixture, since: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records[since:]
        if r.levelno >= logging.WARNING and r.name == "eventlog"
    ]


async def checkpoint(log: eventlog.EventLogger) -> None:
    """What the spool believes is on disk is, whatever failed so far."""
    await log._spool.written()
    assert_disk_matches_memory(log._spool)


async def run_scenario(
    make_config: MakeConfig,
    spool_dir: Path,
    ops: FaultyOps,
    caplog: pytest.LogCaptureFixture,
    *,
    write_ahead: bool = False,
) -> Outcome:
    """Outage, recovery, restart, then a clean run replays what is left on disk."""
    outcome = Outcome()
    config = make_config(
        storage_dir=str(spool_dir),
        max_attempts=None,
        shutdown_timeout=1.0,
        base_backoff=5.0,
        max_backoff=10.0,
        write_ahead=write_ahead,
    )

    # Run 1: up, down from +5 to +30, up, down again from +60 to the end.
    t0 = trio.current_time()
    first = CapturingTransport()
    first.outage(t0 + 5, t0 + 30)
    first.outage(t0 + 60, t0 + FOREVER)
    since, hits = len(caplog.records), ops.hit
    async with open_logger_with(ops, config, transport=first) as log:
        log_names(log, "a", 3)
        await log.flush()
        await trio.sleep_until(t0 + 10)
        log_names(log, "b", 5)
        await log.flush()
        await trio.sleep_until(t0 + 20)
        log_names(log, "c", 2)
        await log.flush()
        await checkpoint(log)
        await trio.sleep_until(t0 + 40)  # the outage is over: the spool drains
        await checkpoint(log)
        log_names(log, "d", 3)
        await log.flush()
        await trio.sleep_until(t0 + 65)
        log_names(log, "e", 4)  # the server is down for good: spooled, left for run 2
        await log.flush()
        await checkpoint(log)
    outcome.emitted += log.stats.emitted
    outcome.counted_lost += log.stats.dropped_disk_error
    assert log.stats.dropped_spool_limit == log.stats.dropped_max_attempts == 0
    outcome.warnings.append(disk_warnings(caplog, since))
    outcome.hits.append(ops.hit - hits)
    outcome.lost.append(log.stats.dropped_disk_error)

    # Run 2: a restart; takes run 1 over, down from the start for 10 s, up, then down.
    t1 = trio.current_time()
    second = CapturingTransport()
    second.outage(t1, t1 + 10)
    second.outage(t1 + 40, t1 + FOREVER)
    since, hits = len(caplog.records), ops.hit
    async with open_logger_with(ops, config, transport=second) as log:
        log_names(log, "f", 3)
        await log.flush()
        await trio.sleep_until(t1 + 30)
        await checkpoint(log)
        await trio.sleep_until(t1 + 45)
        log_names(log, "g", 3)
        await log.flush()
    outcome.emitted += log.stats.emitted
    outcome.counted_lost += log.stats.dropped_disk_error
    assert log.stats.dropped_spool_limit == log.stats.dropped_max_attempts == 0
    outcome.warnings.append(disk_warnings(caplog, since))
    outcome.hits.append(ops.hit - hits)
    outcome.lost.append(log.stats.dropped_disk_error)

    # What is left on disk, read by a clean run with real file operations.
    outcome.left_on_disk = len(spooled_events(spool_dir))
    final = CapturingTransport()
    async with eventlog.open_event_logger(config, transport=final) as log:
        await trio.sleep(5)
        assert log.stats.replayed == outcome.left_on_disk
        assert unaccounted(log.stats) == 0
    # Nothing left but, after a failed rmdir, an empty directory.
    assert [p for p in spool_logs(spool_dir) if any(p.iterdir())] == []
    outcome.delivered = first.event_names() + second.event_names() + final.event_names()
    return outcome


def check_outcome(outcome: Outcome, ops: FaultyOps) -> None:
    assert outcome.emitted == 23
    delivered = set(outcome.delivered)
    # Nothing lost silently, nothing counted twice: every event is delivered,
    # or counted lost (it was on no disk when its run closed).
    assert len(delivered) + outcome.counted_lost == outcome.emitted
    for messages, hits, lost in zip(outcome.warnings, outcome.hits, outcome.lost, strict=True):
        failures = [m for m in messages if "keeping events in memory" in m]
        recoveries = [m for m in messages if "writes to disk again" in m]
        losses = [m for m in messages if "events lost" in m]
        assert len(failures) <= (1 if hits else 0), messages
        assert len(recoveries) <= hits, messages
        assert len(losses) == (1 if lost else 0), messages
        assert len(messages) == len(failures) + len(recoveries) + len(losses), messages
    if not any(name.endswith(":jnl") for name in ops.failed):
        # A journal line that failed leaves acknowledged events for the next
        # run: duplicates, by design (the server's dedupe removes them).
        assert len(outcome.delivered) == len(delivered), "delivered twice"
    assert ops.release_leaks() == 0


async def sweep(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    calls: int,
    partial: bool,
    write_ahead: bool = False,
    step: int = 1,
) -> int:
    """Run the scenario with the fault at N = 1, 1 + step, ... until it is no longer reached."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    for n in range(1, MAX_N, step):
        ops = FaultyOps(Fault(at=n, err=ERRNOS[n % len(ERRNOS)], calls=calls, partial=partial))
        try:
            # A directory of its own: what a failed rmdir left is no other run's.
            outcome = await run_scenario(
                make_config, spool_dir / f"n{n}", ops, caplog, write_ahead=write_ahead
            )
            check_outcome(outcome, ops)
        except BaseException as exc:
            exc.add_note(f"fault {ops.fault} after {ops.calls} calls: {ops.failed}")
            raise
        if not ops.hit:
            return n
    raise AssertionError("the fault was still reached after MAX_N calls")


# -- the sweeps -----------------------------------------------------------------

# The fast session tries every third position; nox -s integration all of them.
STEPS = pytest.mark.parametrize(
    "step",
    [pytest.param(3, id="sampled"), pytest.param(1, id="all", marks=pytest.mark.integration)],
)


@STEPS
async def test_sweep_transient_faults_with_torn_writes(
    step: int,
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One failing call at every position (a failing write tears its line): nothing is lost."""
    n = await sweep(make_config, spool_dir, caplog, calls=1, partial=True, step=step)
    assert n > 20


@STEPS
async def test_sweep_disk_bad_for_a_while(
    step: int,
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Eight failing calls in a row from every position, then the disk recovers."""
    n = await sweep(make_config, spool_dir, caplog, calls=8, partial=False, step=step)
    assert n > 20


@STEPS
async def test_sweep_disk_never_recovers(
    step: int,
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """From every position on, every call fails until the clean final run."""
    n = await sweep(make_config, spool_dir, caplog, calls=FOREVER, partial=True, step=step)
    assert n > 20


@STEPS
async def test_sweep_write_ahead(
    step: int,
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Write-ahead mode, one torn or failing call at every position."""
    n = await sweep(
        make_config, spool_dir, caplog, calls=1, partial=True, write_ahead=True, step=step
    )
    assert n > 20


@STEPS
async def test_sweep_write_ahead_disk_never_recovers(
    step: int,
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Write-ahead mode, every call failing from every position on."""
    n = await sweep(
        make_config, spool_dir, caplog, calls=FOREVER, partial=True, write_ahead=True, step=step
    )
    assert n > 20


# -- faults on the spool directly -------------------------------------------------


async def call_number(
    tmp_path: Path, steps: Callable[[Spool], Awaitable[object]], name: str, nth: int = 1
) -> int:
    """The 1-based number of the ``nth`` call named ``name`` that ``steps`` makes."""
    dry = FaultyOps()
    spool, _ = make_spool(tmp_path / "dry-run", dry)
    async with running(spool):
        await steps(spool)
    numbers = [i for i, called in enumerate(dry.log, 1) if called == name]
    return numbers[nth - 1]


async def add_and_write(spool: Spool, *names: str) -> None:
    spool.add(records_named(*names))
    await spool.written()


async def test_a_torn_append_seals_its_segment_and_the_rest_go_to_a_new_one(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The disk fills mid-append: whole lines stay; the rest, kept in memory, go to a new one."""
    at = await call_number(tmp_path, lambda s: add_and_write(s, "a0"), "write:seg")
    ops = FaultyOps(Fault(at=at, err=errno.ENOSPC, partial=True))
    directory = tmp_path / "real"
    spool, counters = make_spool(directory, ops)
    log = directory / run_name("sess", "run1")
    async with running(spool):
        await add_and_write(spool, "a0", "a1", "a2")
        assert ops.failed == ["write:seg"]
        data = b"".join(encode_record_line(n, 0, EPOCH, payload(f"a{n}")) for n in range(3))
        torn = (log / "00000001.seg").read_bytes()
        assert torn == data[: len(data) // 2]  # a0 whole, a1 torn
        assert live_names(spool) == ["a0", "a1", "a2"]
        assert names_of(spool.unwritten) == ["a1", "a2"]
        assert "No space left" in (spool.problem or "")

        await add_and_write(spool, "b0")  # the disk's backoff is not over: kept in memory
        assert names_of(spool.unwritten) == ["a1", "a2", "b0"]
        before = len(ops.log)
        await trio.sleep(1.5)  # the retry: a new segment, nothing glued to the torn line
        assert ops.log[before:] == ["open:seg", "fsync_dir", "write:seg", "fsync:seg"]
        assert (log / "00000001.seg").read_bytes() == torn
        assert spool.problem is None
        assert spool.unwritten == deque()
        assert_disk_matches_memory(spool)

        before = len(ops.log)
        await add_and_write(spool, "c0")  # healthy again: a plain append
        assert ops.log[before:] == ["write:seg", "fsync:seg"]
    assert disk_names(directory) == ["a0", "a1", "a2", "b0", "c0"]
    assert counters.dropped_disk_error == 0
    successor, counters = make_spool(directory, run="run2")
    async with running(successor):
        await take_over_into(successor, counters)
        assert (counters.taken_over, counters.spool_corrupt_lines) == (5, 1)
    assert ops.release_leaks() == 0


async def test_appends_queued_behind_a_torn_one_never_follow_its_torn_line(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two appends queued for a segment, the first torn: the second waits for a new segment."""
    at = await call_number(tmp_path, lambda s: add_and_write(s, "a0"), "write:seg")
    ops = FaultyOps(Fault(at=at, err=errno.ENOSPC, partial=True))
    directory = tmp_path / "real"
    spool, counters = make_spool(directory, ops)
    async with running(spool):
        spool.add(records_named("a0", "a1", "a2"))
        spool.add(records_named("b0", "b1"))  # queued behind, for the same segment
        await spool.written()
        assert ops.failed == ["write:seg"]
        assert ops.log.count("write:seg") == 1  # nothing written after the torn line
        assert names_of(spool.unwritten) == ["a1", "a2", "b0", "b1"]
        await trio.sleep(1.5)
        assert spool.unwritten == deque()
    assert disk_names(directory) == ["a0", "a1", "a2", "b0", "b1"]
    successor, counters = make_spool(directory, run="run2")
    async with running(successor):
        await take_over_into(successor, counters)
        assert (counters.taken_over, counters.spool_corrupt_lines) == (5, 1)
    assert ops.release_leaks() == 0


class TornBeforeNewline(CountingOps):
    """Real file operations, except that the first segment write stops just before a newline."""

    def __init__(self) -> None:
        super().__init__()
        self.torn = False

    def write(self, fd: int, data: bytes) -> int:
        if self.torn or self._fd_kind(fd) != "seg":
            return super().write(fd, data)
        self.torn = True
        written = data.index(b"\n")  # the first line, all but its newline
        os.write(fd, data[:written])
        exc = OSError(errno.ENOSPC, "injected ENOSPC in write:seg")
        exc.written = written  # type: ignore[attr-defined]  # as FileOps.write does
        raise exc


async def test_a_line_torn_just_before_its_newline_is_not_written_twice(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A write stops right before a newline: that line reads back whole, so it is not rewritten."""
    ops = TornBeforeNewline()
    directory = tmp_path / "real"
    spool, counters = make_spool(directory, ops)
    async with running(spool):
        await add_and_write(spool, "a0", "a1")
        assert ops.torn
        assert names_of(spool.unwritten) == ["a1"]
        await trio.sleep(1.5)
        assert spool.unwritten == deque()
    assert disk_names(directory) == ["a0", "a1"]
    assert counters.dropped_disk_error == 0


async def test_a_failed_journal_line_costs_a_duplicate_never_an_event(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """An ack's journal line cannot be written: the next run sends that event again, none lost."""

    async def steps(spool: Spool) -> None:
        await add_and_write(spool, "a", "b")
        spool.settle(done=await spool.take_retries(1))
        await spool.written()

    at = await call_number(tmp_path, steps, "write:jnl")
    ops = FaultyOps(Fault(at=at, err=errno.EIO))
    spool, counters = make_spool(tmp_path / "real", ops)
    async with running(spool):
        await steps(spool)
        assert ops.failed == ["write:jnl"]
        assert live_names(spool) == ["b"]
    assert disk_names(tmp_path / "real") == ["a", "b"]
    assert counters.dropped_disk_error == 0


async def test_a_dead_disk_never_reaches_the_application_and_warns_once(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Read-only disk and a server down: every call returns, one warning, losses counted."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    ops = FaultyOps(Fault(at=1, err=errno.EROFS, calls=FOREVER))
    config = make_config(max_attempts=None, shutdown_timeout=0.0, base_backoff=1.0)
    transport = CapturingTransport(status_code=503)
    async with open_logger_with(ops, config, transport=transport) as log:
        for i in range(10):
            log.log_event(f"e{i}")
            await log.flush()
            await trio.sleep(3)
        assert log._spool.events == 10
        assert log.stats.spool_disabled is not None
    assert log.stats.emitted == 10
    assert log.stats.dropped_disk_error == 10
    assert log.stats.exported == 0
    assert (log.stats.spool_events, unaccounted(log.stats)) == (0, 0)
    assert disk_warnings(caplog, 0) == [
        f"eventlog: spool write failed in {spool_dir} (injected Read-only file system in "
        "makedirs); keeping events in memory, retrying in 1s",
        "eventlog: 10 events lost: the spool could not be written",
    ]
    assert not spool_dir.exists()


async def test_writes_are_retried_on_the_spools_own_backoff(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A disk down for 100 s while exports keep failing: a few writes tried, not one per export."""
    ops = FaultyOps(Fault(at=1, err=errno.EIO, calls=FOREVER))
    transport = CapturingTransport(status_code=503)
    config = make_config(max_attempts=None, base_backoff=0.5, max_backoff=2.0)
    async with open_logger_with(ops, config, transport=transport) as log:
        for _ in range(100):
            log_names(log, "e", 1)
            await trio.sleep(1)
        # The first failed export at 10 s, then a write 1, 2, 4, ... 30 s after
        # the last: at 10, 11, 13, 17, 25, 41 and 71 s (the next at 101 s).
        assert ops.log.count("makedirs") == 7
        assert len(transport.requests) > 40  # exports kept failing all along
        ops.fault = None  # the disk is back: the next retry writes them all
        await trio.sleep(25)
        assert log._spool.unwritten == deque()
        assert len(spooled_events(spool_dir)) == 100
        assert log.stats.spool_disabled is None
    assert log.stats.dropped_disk_error == 0


async def test_memory_holds_at_most_a_queue_and_the_chunks_in_flight(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Disk and server down: memory keeps max_queue_size and a chunk per POST; the rest counted."""
    ops = FaultyOps(Fault(at=1, err=errno.ENOSPC, calls=FOREVER))
    config = make_config(
        max_attempts=None,
        max_queue_size=20,
        max_export_batch_size=5,
        max_concurrent_exports=2,
        shutdown_timeout=0.0,
    )
    async with open_logger_with(ops, config, transport=CapturingTransport(status_code=503)) as log:
        for _ in range(12):
            log_names(log, "e", 10)
            await log.flush()
            await trio.sleep(2)
            assert len(log._spool.unwritten) <= 20 + 2 * 5
        assert len(log._spool.unwritten) == 30
        assert log.stats.dropped_disk_error == 120 - 30
    assert log.stats.dropped_disk_error == 120
    assert (log.stats.spool_events, unaccounted(log.stats)) == (0, 0)


# -- fault corners: each test was the repro of a bug ------------------------------


async def test_a_failing_lock_does_not_leak_the_descriptor(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """flock fails with ENOLCK: the descriptor opened for it is closed; the retry takes it."""
    at = await call_number(tmp_path, lambda s: add_and_write(s, "a"), "lock:lock")
    ops = FaultyOps(Fault(at=at, err=errno.ENOLCK))
    spool, counters = make_spool(tmp_path / "real", ops)
    async with running(spool):
        await add_and_write(spool, "a")
        assert ops.failed == ["lock:lock"]
        assert len(ops.paths) == 0
        await trio.sleep(1.5)
        assert live_names(spool) == ["a"]
        assert spool.unwritten == deque()
    assert ops.release_leaks() == 0
    assert disk_names(tmp_path / "real") == ["a"]
    assert counters.dropped_disk_error == 0


async def test_a_failed_unlink_of_a_settled_segment_leaves_nothing_to_resend(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A segment all acknowledged but its delete fails: its journal says so, none replayed."""

    async def steps(spool: Spool) -> None:
        await add_and_write(spool, "acked")
        spool.settle(done=await spool.take_retries(1))
        await spool.written()

    ops = FaultyOps(Fault(at=await call_number(tmp_path, steps, "unlink:seg"), err=errno.EACCES))
    spool, _ = make_spool(tmp_path / "real", ops)
    async with running(spool):
        await steps(spool)
        assert ops.failed == ["unlink:seg"]
        await add_and_write(spool, "pending")
    assert disk_names(tmp_path / "real") == ["pending"]
    successor, counters = make_spool(tmp_path / "real", run="run2")
    async with running(successor):
        await take_over_into(successor, counters)
        assert counters.taken_over == 1
        assert names_of(await successor.take_retries(10)) == ["pending"]


async def test_lines_that_reached_the_file_are_not_counted_lost(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The disk fills mid-append and stays full: lost + on disk == kept."""
    at = await call_number(tmp_path, lambda s: add_and_write(s, "a0"), "write:seg")
    ops = FaultyOps(Fault(at=at, err=errno.ENOSPC, calls=FOREVER, partial=True))
    spool, counters = make_spool(tmp_path / "real", ops)
    async with running(spool):
        await add_and_write(spool, "a0", "a1", "a2")  # one and a half lines get written
    on_disk = disk_names(tmp_path / "real")
    assert on_disk == ["a0"]
    assert counters.dropped_disk_error + len(on_disk) == 3
    ops.release_leaks()


async def test_a_failed_directory_fsync_does_not_disable_the_spool_for_the_run(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The log's creation fails at its last step (the directory's fsync): the retry writes it."""
    at = await call_number(tmp_path, lambda s: add_and_write(s, "a"), "fsync_dir")
    ops = FaultyOps(Fault(at=at, err=errno.EIO))
    spool, counters = make_spool(tmp_path / "real", ops)
    async with running(spool):
        await add_and_write(spool, "a")
        assert ops.failed == ["fsync_dir"]
        await trio.sleep(1.5)
        assert spool.unwritten == deque()
        assert spool.problem is None
    assert disk_names(tmp_path / "real") == ["a"]
    assert counters.dropped_disk_error == 0
    assert ops.release_leaks() == 0


async def test_a_flipped_bit_in_a_segment_never_reaches_the_application(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """One high bit flipped in a line's crc32: that line is skipped and counted, no more."""
    log = spool_dir / run_name("s", "r")
    log.mkdir(mode=0o700, parents=True)
    (log / "lock").write_bytes(b"")
    now = time.time()  # the logger's clock: older than max_spool_age, it would be evicted
    bad = encode_record_line(1, 0, now, payload("bad"))
    at = bad.index(b'"crc32":"') + len(b'"crc32":"')
    bad = bad[:at] + bytes([bad[at] | 0x80]) + bad[at + 1 :]
    (log / "00000001.seg").write_bytes(encode_record_line(0, 0, now, payload("good")) + bad)
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up) as log_:
        log_.log_event("app")
        await trio.sleep(1)
        assert log_.stats.spool_corrupt_lines == 1
        assert log_.stats.taken_over == 1
    assert sorted(up.event_names()) == ["app", "good"]
    assert not log.exists()


# -- the storage directory's safety ---------------------------------------------------------


async def enter(config: eventlog.Config) -> None:
    async with eventlog.open_event_logger(config, transport=CapturingTransport()):
        pass


def unsafe_storage_dir(tmp_path: Path, case: str) -> tuple[str, str]:
    """``(storage_dir, what the refusal says)`` for one kind of unusable or unsafe directory."""
    if case == "symlink":
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        (tmp_path / "link").symlink_to(real)
        return str(tmp_path / "link"), "is a symlink"
    if case == "regular-file":
        (tmp_path / "file").write_text("")
        return str(tmp_path / "file"), "is not a directory"
    if case == "below-a-regular-file":
        (tmp_path / "file").write_text("")
        return str(tmp_path / "file" / "telemetry"), "cannot be examined"
    if case == "nul-byte":
        return str(tmp_path / "tele\0metry"), "cannot be examined"
    if case == "another-users":
        if os.geteuid() != 0:
            pytest.skip("needs root to give a directory away")
        (tmp_path / "theirs").mkdir(mode=0o700)
        os.chown(tmp_path / "theirs", 4242, 4242)
        return str(tmp_path / "theirs"), "belongs to another user"
    mode = {"sticky-1777": 0o1777, "group-writable": 0o770, "world-writable": 0o702}[case]
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(mode)
    return str(tmp_path / "shared"), "writable by group or others"


UNSAFE_CASES = [
    "symlink",
    "regular-file",
    "below-a-regular-file",
    "nul-byte",
    "another-users",
    "sticky-1777",
    "group-writable",
    "world-writable",
]


@pytest.mark.parametrize("case", UNSAFE_CASES)
async def test_an_unusable_or_unsafe_storage_dir_runs_in_memory(
    make_config: MakeConfig,
    tmp_path: Path,
    case: str,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No raise: delivered from memory, one WARNING with the reason, shown in stats."""
    storage_dir, reason = unsafe_storage_dir(tmp_path, case)
    transport = CapturingTransport()
    transport.fail_next(1, status=503)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with caplog.at_level(logging.WARNING, logger="eventlog"):
        async with eventlog.open_event_logger(
            make_config(storage_dir=storage_dir), transport=transport
        ) as log:
            log.log_event("a")
            await log.flush()  # a 503: kept in memory, not on disk
            assert log.stats.spool_events == 1
            await trio.sleep(1)  # the backoff retry delivers it from memory
            stats = log.stats
    assert transport.event_names() == ["a"]
    assert (stats.exported, stats.spooled, stats.spool_events) == (1, 1, 0)
    assert stats.spool_disabled is not None
    assert reason in stats.spool_disabled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert reason in warnings[0].getMessage()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # not a byte written


@pytest.mark.parametrize("case", UNSAFE_CASES)
async def test_strict_mode_refuses_an_unusable_or_unsafe_storage_dir(
    make_config: MakeConfig, tmp_path: Path, case: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Strict mode: ConfigError naming storage_dir, as the development mode should."""
    storage_dir, reason = unsafe_storage_dir(tmp_path, case)
    with pytest.raises(eventlog.ConfigError, match=reason) as info:
        await enter(make_config(storage_dir=storage_dir, strict=True))
    assert info.value.field == "storage_dir"


async def test_without_a_spool_what_is_undelivered_at_close_is_counted_lost(
    make_config: MakeConfig, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Server down until the end: the events are counted in dropped_disk_error, none silently."""
    storage_dir, _ = unsafe_storage_dir(tmp_path, "group-writable")
    transport = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(storage_dir=storage_dir, shutdown_timeout=1.0), transport=transport
    ) as log:
        for i in range(5):
            log.log_event(f"e{i}")
    stats = log.stats
    assert stats.dropped_disk_error == 5
    assert stats.emitted == stats.dropped_disk_error + stats.exported
    assert (stats.spool_events, unaccounted(stats)) == (0, 0)
    assert os.listdir(storage_dir) == []


async def test_an_unsafe_storage_dir_is_never_replayed(
    make_config: MakeConfig, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A log planted in a group-writable directory is neither sent nor removed."""
    storage_dir, _ = unsafe_storage_dir(tmp_path, "group-writable")
    os.chmod(storage_dir, 0o700)  # the spool itself refuses to write into it otherwise
    spool, _counters = make_spool(storage_dir)
    async with running(spool):
        spool.add(records_named("planted"))
    os.chmod(storage_dir, 0o770)
    planted = sorted(str(p) for p in tmp_path.rglob("*"))
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(storage_dir=storage_dir), transport=transport
    ) as log:
        await trio.sleep(1)
    assert transport.event_names() == []
    assert log.stats.taken_over == 0
    assert sorted(str(p) for p in tmp_path.rglob("*")) == planted


@pytest.mark.parametrize("mode", [0o700, 0o755])
async def test_a_storage_dir_only_we_can_write_is_accepted(
    make_config: MakeConfig, spool_dir: Path, mode: int, autojump_clock: trio.testing.MockClock
) -> None:
    """0700, and 0755 (readable by others, not writable): the logger opens."""
    spool_dir.mkdir()
    spool_dir.chmod(mode)
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
    assert transport.event_names() == ["a"]
    assert stat.S_IMODE(spool_dir.stat().st_mode) == mode


async def test_a_missing_storage_dir_is_created_private_on_first_spool_write(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """No directory until the first failure; then directories 0700, and files 0600."""
    transport = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=transport
    ) as log:
        log.log_event("a")
        assert not spool_dir.exists()
        await log.flush()
        assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
        (directory,) = spool_logs(spool_dir)
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        await trio.sleep(1)  # a failed retry: a journal line
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert sorted(p.name for p in directory.iterdir()) == [
            "00000001.jnl",
            "00000001.seg",
            "lock",
        ]
    assert len(transport.requests) == 2


async def test_a_symlink_planted_at_a_segment_path_is_never_followed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """O_NOFOLLOW: the append fails (kept in memory); the retry writes a new segment instead."""
    directory = tmp_path / "spool"
    log = directory / run_name("sess", "run1")
    log.mkdir(mode=0o700, parents=True)
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    os.symlink(target, log / "00000001.seg")
    spool, counters = make_spool(directory)
    async with running(spool):
        await add_and_write(spool, "a")
        assert names_of(spool.unwritten) == ["a"]
        assert target.read_bytes() == b"keep me"
        await trio.sleep(1.5)
        assert spool.unwritten == deque()
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in log.iterdir()) == ["00000002.seg", "lock"]  # the link went
    assert disk_names(directory) == ["a"]
    assert counters.dropped_disk_error == 0


def test_session_ids_cannot_leave_the_storage_dir(make_config: MakeConfig) -> None:
    """A session id with a path separator is refused (it is part of file names)."""
    with pytest.raises(eventlog.ConfigError, match="session_id"):
        make_config(session_id="../escape")


async def test_auth_headers_never_reach_the_spool(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Events spooled after a failed authenticated POST carry no trace of the credentials."""
    caplog.set_level(logging.DEBUG, logger="eventlog")
    transport = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0, max_attempts=None),
        transport=transport,
        auth=lambda: {"Authorization": "Bearer sekret-123"},
    ) as log:
        log_names(log, "e", 3)
        await log.flush()
        await trio.sleep(5)
        log_names(log, "f", 2)
    assert transport.requests[0].headers["authorization"] == "Bearer sekret-123"
    files = [p for p in spool_dir.rglob("*") if p.is_file()]
    assert files
    assert len(spooled_events(spool_dir)) == 5
    for path in files:
        assert b"sekret" not in path.read_bytes()
    assert "sekret" not in caplog.text
