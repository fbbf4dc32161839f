"""Disk faults, spool limits and spool security (design §5).

Fault injection is done the SQLite way: a :class:`FaultyOps` fails the N-th
file operation of a whole scenario (outage, recovery, restart), for every N
from 1 until a run completes without reaching the fault. Whatever fails, the
application never sees an exception and no event is lost silently: each one
is delivered, left on disk for the next run, or counted.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio
import trio.testing

import eventlog
from eventlog._spool import (
    FileOps,
    Record,
    RecordState,
    Spool,
    SpoolFile,
    encode_line,
    parse_lines,
    spool_file_name,
)
from eventlog._stats import Counters
from eventlog.testing import CapturingTransport, Envelope, FrozenWallClock, InternalEvent

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.conftest import MakeConfig

ENVELOPE = msgspec.json.Decoder(Envelope)
ERRNOS = (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EIO)
FOREVER = 10**9
# A scenario makes far fewer calls than this; the sweep stops long before.
MAX_N = 400


class Fault(msgspec.Struct, frozen=True):
    """When and how a :class:`FaultyOps` fails."""

    at: int
    """1-based index of the first failing call (every method call counts)."""
    err: int = errno.EIO
    """The errno raised."""
    calls: int = 1
    """How many consecutive calls fail (the disk stays bad), then it recovers."""
    partial: bool = False
    """A failing write first writes half its bytes (a torn line)."""


class FaultyOps(FileOps):
    """Real file operations, except that the calls of a :class:`Fault` window raise."""

    def __init__(self, fault: Fault | None = None) -> None:
        self.fault = fault
        self.calls = 0
        self.hit = 0
        """Calls that failed."""
        self.writes_after_recovery = 0
        """Successful writes after the last failed call."""
        self.paths: dict[int, str] = {}
        """The path each open descriptor was opened at."""
        self.log: list[str] = []
        """Names of every call, in order (``write:file``, ``write:temp``, ...)."""
        self.failed: list[str] = []
        """Names of the calls that failed."""
        self.run_failed: list[str] = []
        """Names of the calls that failed since :meth:`new_run`."""

    def _tick(self, name: str, fd: int | None = None) -> None:
        self.calls += 1
        if fd is not None:
            name += ":temp" if self.paths.get(fd, "").endswith(".tmp") else ":file"
        self.log.append(name)
        fault = self.fault
        if fault is not None and fault.at <= self.calls < fault.at + fault.calls:
            self.hit += 1
            self.failed.append(name)
            self.run_failed.append(name)
            self.writes_after_recovery = 0
            raise OSError(fault.err, f"injected {os.strerror(fault.err)} in {name}")

    def makedirs(self, path: str) -> None:
        self._tick("makedirs")
        super().makedirs(path)

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        self._tick("open")
        fd = super().open(path, flags, mode)
        self.paths[fd] = path
        return fd

    def lock(self, fd: int) -> bool:
        self._tick("lock", fd)
        return super().lock(fd)

    def write(self, fd: int, data: bytes) -> None:
        try:
            self._tick("write", fd)
        except OSError:
            assert self.fault is not None
            if self.fault.partial:
                super().write(fd, data[: len(data) // 2])
            raise
        super().write(fd, data)
        if self.hit:
            self.writes_after_recovery += 1

    # Durability is not what these tests check, and real fsyncs would make the
    # sweeps slow: a successful fsync is a no-op here.

    def fsync(self, fd: int) -> None:
        self._tick("fsync", fd)

    def fsync_dir(self, path: str) -> None:
        renamed = bool(self.log) and self.log[-1] == "rename"
        self._tick("fsync_dir:renamed" if renamed else "fsync_dir")

    def rename(self, source: str, target: str) -> None:
        self._tick("rename")
        super().rename(source, target)
        for fd, path in self.paths.items():
            if path == source:
                self.paths[fd] = target

    def unlink(self, path: str) -> None:
        self._tick("unlink:temp" if path.endswith(".tmp") else "unlink:file")
        super().unlink(path)

    def close(self, fd: int) -> None:
        # Linux releases the descriptor even when close() reports an error.
        self.paths.pop(fd, None)
        super().close(fd)
        self._tick("close")

    def new_run(self) -> None:
        """A new logger (with its own spool file) starts using these operations."""
        self.run_failed = []

    @property
    def recovered(self) -> bool:
        """The disk failed, then took a write again; the file must be up to date."""
        return self.writes_after_recovery > 0

    def release_leaks(self) -> int:
        """Close descriptors the spool never closed; how many there were."""
        leaked = len(self.paths)
        for fd in self.paths:
            os.close(fd)
        self.paths.clear()
        return leaked


def spool_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("failed_events.*.jsonl"))


def disk_records(directory: Path) -> list[Record]:
    """Every valid record of every spool file in ``directory``."""
    records: list[Record] = []
    for path in spool_files(directory):
        records += parse_lines(path.read_bytes(), Counters())
    return records


def delivered_ids(*transports: CapturingTransport) -> list[str]:
    return [i for t in transports for i in t.event_ids()]


def assert_file_matches_memory(spool: Spool) -> None:
    """The run's file holds exactly its pending records: no torn line, nothing stale."""
    assert not spool._needs_rewrite
    assert all(r.persisted for r in spool.records)
    if not spool.records:
        assert not os.path.exists(spool.path)
        return
    with open(spool.path, "rb") as f:
        data = f.read()
    counters = Counters()
    on_disk = parse_lines(data, counters)
    assert counters.spool_corrupt_lines == 0
    assert [(r.payload, r.attempts) for r in on_disk] == [
        (r.payload, r.attempts) for r in spool.records
    ]
    assert data == b"".join(encode_line(r) for r in spool.records)
    assert spool.size == len(data)


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
    ops.new_run()
    async with eventlog.open_event_logger(config, transport=first, _file_ops=ops) as log:
        log_names(log, "a", 3)
        await log.flush()
        await trio.sleep_until(t0 + 10)
        log_names(log, "b", 5)
        await log.flush()
        await trio.sleep_until(t0 + 20)
        log_names(log, "c", 2)
        await log.flush()
        await trio.sleep_until(t0 + 40)  # the outage is over: the spool drains
        if ops.recovered:
            assert_file_matches_memory(log._spool)
        log_names(log, "d", 3)
        await log.flush()
        await trio.sleep_until(t0 + 65)
        log_names(log, "e", 4)  # the server is down for good: spooled, left for run 2
        await log.flush()
        if ops.recovered:
            assert_file_matches_memory(log._spool)
    outcome.emitted += log.stats.emitted
    outcome.counted_lost += log.stats.dropped_disk_error
    assert log.stats.dropped_spool_limit == log.stats.dropped_max_attempts == 0
    outcome.warnings.append(disk_warnings(caplog, since))
    outcome.hits.append(ops.hit - hits)
    outcome.lost.append(log.stats.dropped_disk_error)

    # Run 2: a restart; replays run 1, down from the start for 10 s, up, then down.
    t1 = trio.current_time()
    second = CapturingTransport()
    second.outage(t1, t1 + 10)
    second.outage(t1 + 40, t1 + FOREVER)
    since, hits = len(caplog.records), ops.hit
    ops.new_run()
    async with eventlog.open_event_logger(config, transport=second, _file_ops=ops) as log:
        log_names(log, "f", 3)
        await log.flush()
        await trio.sleep_until(t1 + 30)
        if ops.recovered:
            assert_file_matches_memory(log._spool)
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
    outcome.left_on_disk = len(disk_records(spool_dir))
    final = CapturingTransport()
    async with eventlog.open_event_logger(config, transport=final) as log:
        await trio.sleep(5)
        assert log.stats.replayed == outcome.left_on_disk
    assert spool_files(spool_dir) == []
    outcome.delivered = delivered_ids(first, second, final)
    return outcome


def check_outcome(outcome: Outcome, ops: FaultyOps) -> None:
    assert outcome.emitted == 23
    delivered = set(outcome.delivered)
    # Nothing lost silently: every event is delivered, or counted lost.
    assert len(delivered) + outcome.counted_lost >= outcome.emitted
    if not {"write:file", "fsync:file", "fsync_dir:renamed"} & set(ops.failed):
        # ... and nothing counted twice. A known limitation counts lines that did
        # reach the file as lost: see test_lines_that_reached_the_file_are_not_counted_lost.
        assert len(delivered) + outcome.counted_lost == outcome.emitted
    for messages, hits, lost in zip(outcome.warnings, outcome.hits, outcome.lost, strict=True):
        failures = [m for m in messages if "keeping events in memory" in m]
        losses = [m for m in messages if "events lost" in m]
        assert len(failures) <= (1 if hits else 0), messages
        assert len(losses) == (1 if lost else 0), messages
        assert len(messages) == len(failures) + len(losses), messages
    if "unlink:file" not in ops.failed:
        # A failed unlink, if the run ends before its next write, leaves
        # acknowledged events for the next run: duplicates, by design (dedupe).
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
) -> int:
    """Run the scenario with the fault at N = 1, 2, ... until it is no longer reached."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    for n in range(1, MAX_N):
        ops = FaultyOps(Fault(at=n, err=ERRNOS[n % len(ERRNOS)], calls=calls, partial=partial))
        try:
            outcome = await run_scenario(
                make_config, spool_dir, ops, caplog, write_ahead=write_ahead
            )
            check_outcome(outcome, ops)
        except BaseException as exc:
            exc.add_note(f"fault {ops.fault} after {ops.calls} calls")
            raise
        if not ops.hit:
            return n
    raise AssertionError("the fault was still reached after MAX_N calls")


# -- the sweeps -----------------------------------------------------------------


async def test_sweep_transient_faults_with_torn_writes(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One failing call at every position (a failing write tears its line): nothing is lost."""
    n = await sweep(make_config, spool_dir, caplog, calls=1, partial=True)
    assert n > 20


async def test_sweep_disk_bad_for_a_while(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Eight failing calls in a row from every position, then the disk recovers."""
    n = await sweep(make_config, spool_dir, caplog, calls=8, partial=False)
    assert n > 20


async def test_sweep_disk_never_recovers(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """From every position on, every call fails until the clean final run."""
    n = await sweep(make_config, spool_dir, caplog, calls=FOREVER, partial=True)
    assert n > 20


async def test_sweep_write_ahead(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Write-ahead mode, one torn or failing call at every position."""
    n = await sweep(make_config, spool_dir, caplog, calls=1, partial=True, write_ahead=True)
    assert n > 20


async def test_sweep_write_ahead_disk_never_recovers(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Write-ahead mode, every call failing from every position on."""
    n = await sweep(make_config, spool_dir, caplog, calls=FOREVER, partial=True, write_ahead=True)
    assert n > 20


# -- faults on the Spool directly -------------------------------------------------


def payload(name: str) -> bytes:
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%b","event_name":"%b",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z"}}' % (name.encode() * 4, name.encode())
    )


def records_named(*names: str) -> list[Record]:
    return [Record(payload(name)) for name in names]


def names_of(records: list[Record]) -> list[str]:
    out: list[str] = []
    for record in records:
        envelope = ENVELOPE.decode(record.payload)
        assert isinstance(envelope, InternalEvent)
        out.append(envelope.event_data.event_name)
    return out


def make_spool(
    directory: Path,
    ops: FileOps | None = None,
    *,
    max_bytes: int = 64 * 1024 * 1024,
    max_age: float = 7 * 24 * 3600.0,
    now: list[float] | None = None,
) -> tuple[Spool, Counters]:
    counters = Counters()
    clock = [0.0] if now is None else now
    spool = Spool(
        str(directory),
        "sess",
        "run1",
        counters,
        max_bytes=max_bytes,
        max_age=max_age,
        wall_time=lambda: clock[0],
        ops=ops,
    )
    return spool, counters


def call_number(tmp_path: Path, steps: Callable[[Spool], object], name: str, nth: int = 1) -> int:
    """The 1-based number of the ``nth`` call named ``name`` that ``steps`` makes."""
    dry = FaultyOps()
    spool, _ = make_spool(tmp_path / "dry-run", dry)
    steps(spool)
    spool.close()
    numbers = [i for i, called in enumerate(dry.log, 1) if called == name]
    return numbers[nth - 1]


def test_a_torn_append_is_followed_by_a_full_rewrite(tmp_path: Path) -> None:
    """The disk fills mid-append; once it has room, a full rewrite replaces the torn file."""
    at = call_number(tmp_path, lambda spool: spool.append(records_named("a0")), "write:file")
    ops = FaultyOps(Fault(at=at, err=errno.ENOSPC, partial=True))
    spool, counters = make_spool(tmp_path / "real", ops)
    first = records_named("a0", "a1", "a2")
    spool.append(first)
    assert ops.failed == ["write:file"]
    data = b"".join(encode_line(r) for r in first)
    with open(spool.path, "rb") as f:
        assert f.read() == data[: len(data) // 2]
    assert [r.persisted for r in spool.records] == [False, False, False]

    before = len(ops.log)
    spool.append(records_named("b0"))
    # Not an append after the torn line (which would glue b0 to it): a rewrite.
    calls = ops.log[before:]
    assert "write:file" not in calls
    assert calls.index("write:temp") < calls.index("rename")
    assert_file_matches_memory(spool)
    assert names_of(spool.records) == ["a0", "a1", "a2", "b0"]
    assert SpoolFile.claim(spool.path, Counters()) is None  # still this run's, still locked

    before = len(ops.log)
    spool.append(records_named("c0"))  # healthy again: a plain append
    assert ops.log[before:] == ["write:file", "fsync:file"]
    assert_file_matches_memory(spool)
    spool.close()
    assert names_of(disk_records(tmp_path / "real")) == ["a0", "a1", "a2", "b0", "c0"]
    assert counters.dropped_disk_error == 0
    assert ops.release_leaks() == 0


def test_a_failed_rewrite_keeps_the_old_file_until_one_succeeds(tmp_path: Path) -> None:
    """A settle whose rewrite fails leaves the previous file whole; the next one catches up."""

    def steps(spool: Spool) -> None:
        spool.append(records_named("a", "b"))
        spool.records[0].state = RecordState.ACKED
        spool.settle()

    ops = FaultyOps(Fault(at=call_number(tmp_path, steps, "rename"), err=errno.EIO))
    spool, counters = make_spool(tmp_path / "real", ops)
    spool.append(records_named("a", "b"))
    spool.records[0].state = RecordState.ACKED
    spool.settle()
    assert ops.failed == ["rename"]
    assert names_of(disk_records(tmp_path / "real")) == ["a", "b"]  # the old file, untouched
    assert not os.path.exists(spool.path + ".tmp")
    spool.append(records_named("c"))
    assert_file_matches_memory(spool)
    assert names_of(spool.records) == ["b", "c"]
    spool.close()
    assert counters.dropped_disk_error == 0
    assert ops.release_leaks() == 0


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
    async with eventlog.open_event_logger(config, transport=transport, _file_ops=ops) as log:
        for i in range(10):
            log.log_event(f"e{i}")
            await log.flush()
            await trio.sleep(3)
        assert len(log._spool) == 10
    assert log.stats.emitted == 10
    assert log.stats.dropped_disk_error == 10
    assert log.stats.exported == 0
    messages = disk_warnings(caplog, 0)
    assert len(messages) == 2
    assert messages[0] == (
        f"eventlog: spool append failed in {spool_dir} ([Errno {errno.EROFS}] injected "
        "Read-only file system in makedirs); keeping events in memory"
    )
    assert messages[1] == "eventlog: 10 events lost: the spool could not be written"
    assert not spool_dir.exists()


# -- fault corners: each test was the repro of a bug (one known limitation remains) ----


def test_a_failing_lock_does_not_leak_the_descriptor(tmp_path: Path) -> None:
    """flock fails with ENOLCK: the descriptor opened for it is closed."""
    at = call_number(tmp_path, lambda spool: spool.append(records_named("a")), "lock:file")
    ops = FaultyOps(Fault(at=at, err=errno.ENOLCK))
    spool, _ = make_spool(tmp_path / "real", ops)
    spool.append(records_named("a"))
    assert ops.failed == ["lock:file"]
    spool.close()
    assert ops.release_leaks() == 0


def test_failed_unlink_of_an_emptied_spool_leaves_no_stale_records(tmp_path: Path) -> None:
    """Everything acknowledged but the unlink fails: acknowledged records are not replayed."""

    def steps(spool: Spool) -> None:
        spool.append(records_named("acked"))
        spool.records[0].state = RecordState.ACKED
        spool.settle()

    ops = FaultyOps(Fault(at=call_number(tmp_path, steps, "unlink:file"), err=errno.EACCES))
    spool, _ = make_spool(tmp_path / "real", ops)
    steps(spool)
    assert ops.failed == ["unlink:file"]
    spool.append(records_named("pending"))
    assert spool.size == os.path.getsize(spool.path)
    spool.close()
    assert names_of(disk_records(tmp_path / "real")) == ["pending"]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known limitation (documented in docs/delivery.md, disk faults): Spool.append "
    "cannot tell how many lines of a failed write reached the file, so Spool.close counts "
    "them all in dropped_disk_error, yet the next run replays and delivers those that did",
)
def test_lines_that_reached_the_file_are_not_counted_lost(tmp_path: Path) -> None:
    """The disk fills mid-append and stays full: lost + on disk == appended."""
    at = call_number(tmp_path, lambda spool: spool.append(records_named("a0")), "write:file")
    ops = FaultyOps(Fault(at=at, err=errno.ENOSPC, calls=FOREVER, partial=True))
    spool, counters = make_spool(tmp_path / "real", ops)
    spool.append(records_named("a0", "a1", "a2"))  # one and a half lines get written
    spool.close()
    on_disk = names_of(disk_records(tmp_path / "real"))
    assert on_disk == ["a0"]
    assert counters.dropped_disk_error + len(on_disk) == 3


def test_the_run_file_stays_locked_when_the_directory_fsync_fails(tmp_path: Path) -> None:
    """Rename done, directory fsync fails: the file at the run's path is still locked."""

    def steps(spool: Spool) -> None:
        spool.append(records_named("a", "b"))
        spool.records[0].state = RecordState.ACKED
        spool.settle()

    dry = FaultyOps()
    steps(make_spool(tmp_path / "dry-run", dry)[0])
    ops = FaultyOps(Fault(at=dry.log.index("fsync_dir:renamed") + 1, err=errno.EIO))
    spool, _ = make_spool(tmp_path / "real", ops)
    steps(spool)
    assert ops.failed == ["fsync_dir:renamed"]
    claimed = SpoolFile.claim(spool.path, Counters())
    try:
        assert claimed is None
    finally:
        if claimed is not None:
            claimed.release()
        spool.close()


async def test_replay_keeps_the_earlier_file_when_its_copy_could_not_be_written(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The disk refuses the takeover: the earlier run's events stay on disk, or are counted."""
    config = make_config(max_attempts=None, shutdown_timeout=0.0)
    down = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(config, transport=down) as log:
        log_names(log, "a", 2)
    assert len(disk_records(spool_dir)) == 2

    ops = FaultyOps(Fault(at=1, err=errno.EIO, calls=FOREVER))
    down = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(config, transport=down, _file_ops=ops) as log:
        await trio.sleep(10)
    assert len(disk_records(spool_dir)) + log.stats.dropped_disk_error == 2


async def test_a_flipped_bit_in_a_spool_file_never_reaches_the_application(
    make_config: MakeConfig, spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """One high bit flipped in a line's crc32: that line is skipped and counted, no more."""
    spool_dir.mkdir(mode=0o700)
    bad = encode_line(Record(payload("bad")))
    at = bad.index(b'"crc32":"') + len(b'"crc32":"')
    bad = bad[:at] + bytes([bad[at] | 0x80]) + bad[at + 1 :]
    (spool_dir / spool_file_name("s", "r")).write_bytes(encode_line(Record(payload("good"))) + bad)
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up) as log:
        log.log_event("app")
        await trio.sleep(1)
        assert log.stats.spool_corrupt_lines == 1
    assert sorted(up.event_names()) == ["app", "good"]


# -- spool limits --------------------------------------------------------------------


async def test_spool_bytes_limit_drops_the_oldest(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Past max_spool_bytes the oldest events go, counted, with one warning; the rest deliver."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    limit = 4000
    transport = CapturingTransport()
    transport.outage(0, 100)
    config = make_config(max_attempts=None, max_spool_bytes=limit, base_backoff=1.0)
    names = [f"e{i:02d}" for i in range(30)]
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for name in names:
            log.log_event(name)
            await log.flush()
        (path,) = spool_files(spool_dir)
        on_disk = parse_lines(path.read_bytes(), Counters())
        survivors = names_of(on_disk)
        assert 2 < len(survivors) < 15
        assert survivors == names[-len(survivors) :]
        assert path.stat().st_size <= limit
        sizes = [r.line_size for r in on_disk]
        assert limit // 2 < sum(sizes) <= limit
        assert log.stats.dropped_spool_limit == len(names) - len(survivors)
        await trio.sleep(150)
    assert transport.event_names() == survivors
    assert log.stats.exported == len(survivors)
    assert log.stats.emitted == log.stats.exported + log.stats.dropped_spool_limit
    assert spool_files(spool_dir) == []
    assert disk_warnings(caplog, 0) == [
        "eventlog: spool limits reached (4000 bytes, 604800s); oldest events dropped"
    ]


async def test_spool_age_limit_within_a_run(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Events spooled more than max_spool_age ago (logger's clock) go at the next append."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    transport = CapturingTransport()
    transport.outage(0, 130)
    config = make_config(max_attempts=None, max_spool_age=100.0, base_backoff=1.0, max_backoff=60)
    async with eventlog.open_event_logger(
        config, transport=transport, clock=FrozenWallClock()
    ) as log:
        log_names(log, "old", 3)
        await log.flush()
        await trio.sleep_until(50)
        log_names(log, "mid", 1)
        await log.flush()
        await trio.sleep_until(99)
        assert names_of(disk_records(spool_dir)) == ["old0", "old1", "old2", "mid0"]
        assert log.stats.dropped_spool_limit == 0
        # Retries at 91 and 140: nothing touches the spool in between but this append.
        await trio.sleep_until(101)
        log_names(log, "new", 1)
        await log.flush()
        assert names_of(disk_records(spool_dir)) == ["mid0", "new0"]
        assert log.stats.dropped_spool_limit == 3
        await trio.sleep_until(200)
    assert transport.event_names() == ["mid0", "new0"]
    assert transport.attempt_times == [0, 1, 5, 14, 30, 55, 91, 140]
    assert disk_warnings(caplog, 0) == [
        "eventlog: spool limits reached (67108864 bytes, 100s); oldest events dropped"
    ]


async def test_old_spool_files_are_dropped_at_replay_and_recent_ones_replayed(
    make_config: MakeConfig,
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A file last written before max_spool_age is deleted unsent, its valid lines counted."""
    caplog.set_level(logging.WARNING, logger="eventlog")
    spool_dir.mkdir(mode=0o700)
    now = time.time()
    day = 24 * 3600.0
    old = spool_dir / spool_file_name("s", "old")
    old.write_bytes(b"".join(encode_line(r) for r in records_named("o0", "o1", "o2")) + b"{torn")
    os.utime(old, (now - 8 * day, now - 8 * day))
    recent = spool_dir / spool_file_name("s", "recent")
    lines = [encode_line(Record(payload(n), spooled_at=now - day)) for n in ("r0", "r1")]
    recent.write_bytes(b"".join(lines))
    os.utime(recent, (now - day, now - day))
    up = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=up) as log:
        await trio.sleep(1)
    assert up.event_names() == ["r0", "r1"]
    assert log.stats.dropped_spool_limit == 3
    assert log.stats.spool_corrupt_lines == 1
    assert log.stats.replayed == 2
    assert spool_files(spool_dir) == []
    assert disk_warnings(caplog, 0) == [
        f"eventlog: spool file {old} is older than max_spool_age; 3 events dropped"
    ]


def test_records_being_sent_are_never_evicted(tmp_path: Path) -> None:
    """SENDING records survive both limits; the oldest evictable ones go instead."""
    now = [1000.0]
    line = Record(payload("s0")).line_size
    spool, counters = make_spool(tmp_path, max_bytes=10 * line, max_age=100.0, now=now)
    spool.append(records_named("s0", "s1", "s2", "s3", "s4"))
    for record in spool.records[:3]:
        record.state = RecordState.SENDING
    evictable = ["s3", "s4"] + [f"n{i}" for i in range(8)]
    spool.append(records_named(*evictable[2:]))  # three lines over the limit
    kept = names_of(spool.records)
    assert kept[:3] == ["s0", "s1", "s2"]
    dropped = counters.dropped_spool_limit
    assert dropped >= 3
    assert kept[3:] == evictable[dropped:]  # the oldest evictable ones went
    assert sum(r.line_size for r in spool.records) <= 10 * line
    assert names_of(disk_records(tmp_path)) == kept

    now[0] = 1101.0  # everything is too old now, but s0-s2 are still being sent
    spool.append(records_named("new"))
    assert names_of(spool.records) == ["s0", "s1", "s2", "new"]
    assert counters.dropped_spool_limit == len(evictable)
    for record in spool.records[:3]:
        record.state = RecordState.PENDING
    spool.settle()  # their send is over: too old, gone
    assert names_of(spool.records) == ["new"]
    assert counters.dropped_spool_limit == len(evictable) + 3
    assert names_of(disk_records(tmp_path)) == ["new"]
    spool.close()


# -- security ---------------------------------------------------------------------------


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
    assert os.listdir(storage_dir) == []


async def test_an_unsafe_storage_dir_is_never_replayed(
    make_config: MakeConfig, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A spool file planted in a group-writable directory is neither sent nor removed."""
    storage_dir, _ = unsafe_storage_dir(tmp_path, "group-writable")
    os.chmod(storage_dir, 0o700)  # the spool itself refuses to write into it otherwise
    spool, _counters = make_spool(tmp_path / "shared")
    spool.append(records_named("planted"))
    spool.close()
    os.chmod(storage_dir, 0o770)
    planted = sorted(os.listdir(storage_dir))
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(storage_dir=storage_dir), transport=transport
    ) as log:
        await trio.sleep(1)
    assert transport.event_names() == []
    assert log.stats.taken_over == 0
    assert sorted(os.listdir(storage_dir)) == planted


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
    """No directory until the first failure; then 0700, and spool files 0600."""
    transport = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=transport
    ) as log:
        log.log_event("a")
        assert not spool_dir.exists()
        await log.flush()
        assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
        (path,) = spool_files(spool_dir)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await trio.sleep(1)  # a failed retry rewrites the file: still 0600
        (path,) = spool_files(spool_dir)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(transport.requests) == 2


def test_a_symlink_planted_at_the_spool_path_is_never_followed(tmp_path: Path) -> None:
    """O_NOFOLLOW: the append fails (kept in memory); the rewrite replaces the link itself."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    spool, counters = make_spool(directory)
    os.symlink(target, spool.path)
    spool.append(records_named("a"))
    assert len(spool) == 1
    assert not spool.records[0].persisted
    assert target.read_bytes() == b"keep me"
    spool.close()  # persisted by a rewrite, whose rename replaces the link itself
    assert target.read_bytes() == b"keep me"
    assert stat.S_ISREG(os.lstat(spool.path).st_mode)
    assert names_of(disk_records(directory)) == ["a"]
    assert counters.dropped_disk_error == 0


def test_a_symlink_planted_at_the_temp_path_is_never_followed(tmp_path: Path) -> None:
    """The rewrite's temp file is opened without following a link planted there."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    spool, counters = make_spool(directory)
    os.symlink(target, spool.path + ".tmp")
    records = records_named("a", "b")
    spool.append(records)
    records[0].state = RecordState.ACKED
    spool.settle()  # the rewrite cannot open its temp file: nothing written through the link
    assert target.read_bytes() == b"keep me"
    assert names_of(disk_records(directory)) == ["a", "b"]  # the old file stands
    spool.close()
    assert target.read_bytes() == b"keep me"
    assert os.path.islink(spool.path + ".tmp")
    assert names_of(disk_records(directory)) == ["a", "b"]  # b safe; a sent again (deduped)
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
    assert len(files) == 1
    assert len(disk_records(spool_dir)) == 5
    for path in files:
        assert b"sekret" not in path.read_bytes()
    assert "sekret" not in caplog.text
