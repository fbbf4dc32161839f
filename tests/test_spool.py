"""The segmented log: line and journal formats, names, locks, segments, journals, retries.

The spool is driven directly, as the pipeline drives it (see
``tests/spool_support.py``), under trio's autojump clock with its file I/O
inline.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import zlib
from collections import deque
from typing import TYPE_CHECKING, TypeVar

import pytest
import trio
import trio.testing

from eventlog._records import Record, RecordState
from eventlog._spool import FileOps, InlineRunner, Spool
from eventlog._spool._admin import read_events
from eventlog._spool._files import probe_lock
from eventlog._spool._format import (
    encode_journal_line,
    encode_record_line,
    journal_name,
    parse_journal,
    parse_run_name,
    parse_segment_name,
    parse_v1_name,
    read_lines,
    run_name,
    segment_name,
    v1_name,
)
from eventlog._spool._segment import PAGE_RECORDS
from eventlog._spool._takeover import Candidate, _claim, find_candidates
from eventlog._stats import Counters
from tests.spool_support import (
    EPOCH,
    CountingOps,
    Fault,
    FaultyOps,
    VirtualClock,
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
    from collections.abc import Callable
    from pathlib import Path

T = TypeVar("T")

PAYLOAD = b'{"event_type":"InternalEvent","event_data":{"event_id":"a"}}'


def log_dir(directory: Path, run: str = "run1") -> Path:
    return directory / run_name("sess", run)


# -- lines -------------------------------------------------------------------------------


def test_record_line_format() -> None:
    """A record line: version, number, attempts, spool time (in seconds), CRC-32, the envelope."""
    line = encode_record_line(17, 3, 1767225600.9, PAYLOAD)
    crc = zlib.crc32(PAYLOAD, zlib.crc32(b"17,3,1767225600,"))
    head = b'{"v":2,"n":17,"attempts":3,"t":1767225600,"crc32":"%08x","event":' % crc
    assert line == head + PAYLOAD + b"}\n"


def test_version_1_lines_without_t_still_parse() -> None:
    """A version 1 line (no n, maybe no t) parses, numbered by its position, spool time unknown."""
    crc = f"{zlib.crc32(PAYLOAD):08x}".encode()
    old = b'{"v":1,"attempts":2,"crc32":"' + crc + b'","event":' + PAYLOAD + b"}\n"
    (line,), skipped = read_lines(b"\n" + old)
    assert (line.number, line.attempts, line.spooled_at, line.payload) == (1, 2, 0.0, PAYLOAD)
    assert skipped == 0


def test_roundtrip_keeps_payload_bytes_attempts_and_numbers() -> None:
    """Reading what was encoded gives back the same bytes, numbers and attempt counts."""
    data = encode_record_line(0, 2, EPOCH, PAYLOAD) + encode_record_line(5, 0, 0, b'{"x":[1,2]}')
    lines, skipped = read_lines(data)
    assert [(x.number, x.payload, x.attempts, x.spooled_at) for x in lines] == [
        (0, PAYLOAD, 2, EPOCH),
        (5, b'{"x":[1,2]}', 0, 0.0),
    ]
    assert skipped == 0
    lines, _ = read_lines(data, payloads=False)
    assert [(x.number, x.payload) for x in lines] == [(0, b""), (5, b"")]


def test_corrupt_torn_and_mismatching_lines_are_skipped_and_counted() -> None:
    """Garbage, a changed event, number or attempt count, a torn last line: each costs itself."""
    good = encode_record_line(1, 1, EPOCH, PAYLOAD)
    flipped = good.replace(b'"a"', b'"b"')  # the event changed, the checksum not
    renumbered = good.replace(b'"n":1', b'"n":2')  # the CRC covers n: never taken for another
    negative = good.replace(b'"attempts":1', b'"attempts":-1')
    torn = encode_record_line(2, 0, EPOCH, PAYLOAD)[:-20]
    data = good + b"not json\n" + flipped + b"\n\n" + renumbered + negative + good + torn
    lines, skipped = read_lines(data)
    assert len(lines) == 2
    assert skipped == 5


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    """A newer writer's extra fields do not make a line corrupt."""
    line = encode_record_line(0, 1, EPOCH, PAYLOAD).replace(b'{"v":2,', b'{"v":3,"future":true,')
    assert len(read_lines(line)[0]) == 1


def test_journal_line_format() -> None:
    """A journal line: a CRC-32, then the records as ranges of numbers, done or failed."""
    line = encode_journal_line("done", [7, 3, 1, 2])
    body = b'"done":[[1,3],[7,7]]'
    assert line == b'{"crc32":"%08x",%b}\n' % (zlib.crc32(body), body)
    data = line + encode_journal_line("failed", [4, 5]) + encode_journal_line("failed", [5])
    assert parse_journal(data) == ({1, 2, 3, 7}, {4: 1, 5: 2})


def test_bad_journal_lines_are_ignored() -> None:
    """A torn, corrupt or absurd journal line says nothing (its records are sent again)."""
    good = encode_journal_line("done", [1])
    changed = good.replace(b"[[1,1]]", b"[[1,2]]")  # the checksum no longer matches
    absurd = b'{"crc32":"%08x","done":[[0,99999999]]}\n' % zlib.crc32(b'"done":[[0,99999999]]')
    inverted = b'{"crc32":"%08x","done":[[5,4]]}\n' % zlib.crc32(b'"done":[[5,4]]')
    neither = b'{"crc32":"00000000"}\n'
    torn = encode_journal_line("done", [9])[:-5]
    data = b"junk\n" + changed + absurd + inverted + neither + good + b"\xff\n" + torn
    assert parse_journal(data) == ({1}, {})


def test_names() -> None:
    """Log, segment, journal and version 1 names carry what they must, and nothing else parses."""
    assert run_name("sess-1", "abc") == "spool-v2.sess-1.abc"
    assert parse_run_name("spool-v2.sess-1.abc") == ("sess-1", "abc")
    assert parse_run_name("spool-v2.sess-1") is None
    assert parse_run_name("spool-v2.a/b.c") is None
    assert v1_name("sess-1", "abc") == "failed_events.sess-1.abc.jsonl"
    assert parse_v1_name("failed_events.sess-1.abc.jsonl") == ("sess-1", "abc")
    assert parse_v1_name("failed_events.x.jsonl") is None
    assert parse_v1_name("failed_events.sess-1.abc.jsonl.tmp") is None
    assert (segment_name(17), journal_name(17)) == ("00000017.seg", "00000017.jnl")
    assert parse_segment_name("00000017.seg") == (17, False)
    assert parse_segment_name("00000017.jnl") == (17, True)
    assert parse_segment_name("17.seg") is None


# -- this run's log ------------------------------------------------------------------------


async def test_the_log_is_created_lazily_with_private_permissions(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Nothing on disk until the first write; then directories 0700 and files 0600."""
    directory = tmp_path / "d"
    spool, _ = make_spool(directory)
    async with running(spool):
        assert not directory.exists()
        records = records_named("a", "b")
        spool.add(records)
        await spool.written()
        log = log_dir(directory)
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(log.stat().st_mode) == 0o700
        assert sorted(p.name for p in log.iterdir()) == ["00000001.seg", "lock"]
        taken = await spool.take_retries(1)
        spool.settle(done=taken)
        await spool.written()
        for name in ("00000001.seg", "00000001.jnl", "lock"):
            assert stat.S_IMODE((log / name).stat().st_mode) == 0o600
        data = (log / "00000001.seg").read_bytes()
        assert data == b"".join(
            encode_record_line(n, 0, EPOCH, r.payload) for n, r in enumerate(records)
        )
        assert spool.size == len(data)
        assert spool.events == 1


async def test_the_log_is_locked_against_the_same_process(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """While the run lives, its lock cannot be taken, not even by this process; then it can."""
    spool, _ = make_spool(tmp_path)
    async with running(spool):
        spool.add(records_named("a"))
        await spool.written()
        other, counters = make_spool(tmp_path, run="run2")
        async with running(other):
            await take_over_into(other, counters)
            assert (other.logs, counters.taken_over) == ([], 0)
        fd = os.open(log_dir(tmp_path) / "lock", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    successor, counters = make_spool(tmp_path, run="run3")
    async with running(successor):
        await take_over_into(successor, counters)
        assert counters.taken_over == 1
        assert names_of(await successor.take_retries(10)) == ["a"]


async def test_settling_writes_journal_lines_and_never_rewrites_the_segment(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Acks and failures are journal lines: the segment stays byte for byte, still locked."""
    ops = CountingOps()
    spool, _ = make_spool(tmp_path, ops)
    async with running(spool):
        records = records_named("n0", "n1", "n2", "n3")
        records[3].attempts = 4
        spool.add(records)
        await spool.written()
        segment = (log_dir(tmp_path) / "00000001.seg").read_bytes()
        taken = await spool.take_retries(4)
        taken[3].attempts += 1
        before = len(ops.log)
        spool.settle(done=taken[:1], failed=taken[3:], released=taken[1:3])
        await spool.written()
        assert ops.log[before:] == ["open:jnl", "write:jnl", "close:jnl"] * 2
        assert (log_dir(tmp_path) / "00000001.seg").read_bytes() == segment
        events, corrupt = read_events(str(log_dir(tmp_path)))
        assert [(e.number, e.attempts) for e in events] == [(1, 0), (2, 0), (3, 5)]
        assert corrupt == 0
        assert _claim(Candidate(str(log_dir(tmp_path)), 2, 0.0), FileOps()) is None
        assert spool.size == len(segment)
    # Closed with records left: the log stays, for the next run.
    assert disk_names(tmp_path) == ["n1", "n2", "n3"]


async def test_a_settled_segment_is_deleted_whole_and_an_empty_log_at_close(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Every record of a segment settled: its files go; the empty log goes at close."""
    spool, _ = make_spool(tmp_path)
    async with running(spool):
        spool.add(records_named("a", "b"))
        await spool.written()
        taken = await spool.take_retries(2)
        spool.settle(done=taken)
        await spool.written()
        assert sorted(p.name for p in log_dir(tmp_path).iterdir()) == ["lock"]
        assert (spool.size, spool.events) == (0, 0)
    assert list(tmp_path.iterdir()) == []


async def test_segments_roll_over_and_each_goes_once_settled(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Past segment_bytes the next records start a new segment; a settled one goes, others stay."""
    spool, _ = make_spool(tmp_path, segment_bytes=400)
    async with running(spool):
        for name in ("a", "b", "c", "d", "e"):
            spool.add(records_named(name))
            await spool.written()
        segments = sorted(p.name for p in log_dir(tmp_path).glob("*.seg"))
        assert segments == ["00000001.seg", "00000002.seg", "00000003.seg"]
        assert [names_of(s.memory.values()) for s in spool.own.segments] == [[], [], []]
        taken = await spool.take_retries(10)
        assert names_of(taken) == ["a", "b"]  # one segment at a time, oldest first
        spool.settle(done=taken)
        await spool.written()
        segments = sorted(p.name for p in log_dir(tmp_path).glob("*.seg"))
        assert segments == ["00000002.seg", "00000003.seg"]
        assert live_names(spool) == ["c", "d", "e"]


@pytest.mark.parametrize("keep_active", [False, True])
async def test_write_ahead_keeps_the_active_segment_until_it_is_full(
    tmp_path: Path, keep_active: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """Write-ahead commits append to one segment even when all is acked; otherwise it goes."""
    spool, _ = make_spool(tmp_path, keep_active=keep_active)
    async with running(spool):
        for name in ("a", "b", "c"):
            records = records_named(name)
            assert await spool.commit(records)
            spool.settle(done=records)
            await spool.written()
        segments = sorted(p.name for p in log_dir(tmp_path).glob("*.seg"))
        if keep_active:
            assert segments == ["00000001.seg"]
            assert len((log_dir(tmp_path) / "00000001.seg").read_bytes().splitlines()) == 3
        else:
            assert segments == []
            assert spool._next_number == 4  # one segment per commit, each deleted
    assert list(tmp_path.iterdir()) == []


async def test_an_ack_costs_one_journal_line_whatever_the_spool_holds(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Acking a chunk of 200 writes one short line of ranges, with 201 or 2,000 records spooled."""
    sizes: list[int] = []
    for total in (201, 2000):
        directory = tmp_path / str(total)
        ops = CountingOps()
        spool, _ = make_spool(directory, ops)
        async with running(spool):
            spool.add(records_named(*(f"e{i}" for i in range(total))))
            await spool.written()
            taken = await spool.take_retries(200)
            before = len(ops.log)
            spool.settle(done=taken)
            await spool.written()
            assert ops.log[before:] == ["open:jnl", "write:jnl", "close:jnl"]
            sizes.append(len(next(directory.glob("*/*.jnl")).read_bytes()))
    assert sizes[0] == sizes[1] < 40


async def test_retries_are_read_back_from_disk_with_their_journalled_attempts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Once written, memory lets go; a retry reads the segment back, attempts and all."""
    ops = CountingOps()
    spool, _ = make_spool(tmp_path, ops)
    async with running(spool):
        spool.add(records_named("a", "b", "c", attempts=2))
        await spool.written()
        (segment,) = spool.own.segments
        assert segment.memory == {}
        first = await spool.take_retries(2)
        assert ops.log[-1] == "read_range:seg"
        assert (names_of(first), [r.attempts for r in first]) == (["a", "b"], [2, 2])
        for record in first:
            record.attempts += 1
        spool.settle(failed=first)
        await spool.written()
        again = await spool.take_retries(3)
        assert (names_of(again), [r.attempts for r in again]) == (["a", "b", "c"], [3, 3, 2])
        spool.settle(released=again)
    successor, counters = make_spool(tmp_path, run="run2")
    async with running(successor):
        await take_over_into(successor, counters)
        taken = await successor.take_retries(3)
        assert (names_of(taken), [r.attempts for r in taken]) == (["a", "b", "c"], [3, 3, 2])
        assert all(r.inherited for r in taken)


async def test_a_backlog_is_read_one_page_at_a_time_each_page_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Draining 1,000 records in chunks of 200 reads each of the 4 pages once, not twice."""
    ops = CountingOps()
    spool, _ = make_spool(tmp_path, ops)
    async with running(spool):
        spool.add(records_named(*(f"e{i}" for i in range(1000))))
        await spool.written()
        (segment,) = spool.own.segments
        assert len(segment.pages) == 4 == -(-1000 // PAGE_RECORDS)
        drained: list[str] = []
        while taken := await spool.take_retries(200):
            drained += names_of(taken)
            spool.settle(done=taken)
            # What memory holds beyond the chunks taken: at most the rest of a page.
            assert len(segment.memory) < PAGE_RECORDS
        await spool.written()
    assert drained == [f"e{i}" for i in range(1000)]
    assert ops.log.count("read_range:seg") == 4


async def test_earlier_runs_records_are_retried_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """take_retries serves the logs taken over before this run's own."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("old"))
    spool, counters = make_spool(tmp_path, run="run2")
    async with running(spool):
        spool.add(records_named("new"))
        await spool.written()
        await take_over_into(spool, counters)
        assert names_of(await spool.take_retries(10)) == ["old"]
        assert names_of(await spool.take_retries(10)) == ["new"]
        assert await spool.take_retries(10) == []
        assert not spool.has_retries()


async def test_records_held_are_not_retried_until_released(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A committed (fresh) or taken record waits for its settle; released, it is retried."""
    spool, _ = make_spool(tmp_path)
    async with running(spool):
        fresh = records_named("fresh")
        assert await spool.commit(fresh)
        assert not spool.has_retries()
        assert await spool.take_retries(10) == []
        spool.settle(released=fresh)
        assert spool.has_retries()
        taken = await spool.take_retries(10)
        assert names_of(taken) == ["fresh"]
        assert taken[0].state is RecordState.SENDING
        assert not spool.has_retries()


def test_claiming_a_missing_log_gives_none(tmp_path: Path) -> None:
    """A log that vanished between listing and claiming is skipped."""
    assert _claim(Candidate(str(tmp_path / "spool-v2.s.r"), 2, 0.0), FileOps()) is None
    assert _claim(Candidate(str(tmp_path / v1_name("s", "r")), 1, 0.0), FileOps()) is None
    assert find_candidates(str(tmp_path), FileOps()) == []


async def test_disk_errors_keep_records_in_memory_and_count_losses_at_close(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The directory cannot be created: records stay in memory, and close counts them lost."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    spool, counters = make_spool(blocker / "sub")
    async with running(spool):
        spool.add([Record(payload("a")), Record(payload("b"))])
        await spool.written()
        assert spool.events == 2
        assert names_of(spool.unwritten) == ["a", "b"]
        assert spool.problem is not None
        assert "spool write failed" in spool.problem
    assert counters.dropped_disk_error == 2


class GatedRunner:
    """Runs each function inline once ``gate`` is set: a write the test can hold in flight."""

    def __init__(self) -> None:
        self.gate = trio.Event()

    async def __call__(self, function: Callable[[], T], /) -> T:
        await self.gate.wait()
        return function()


async def test_records_settled_while_their_failed_write_was_in_flight_are_not_kept(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Acked during a write that then fails: not kept in memory, not counted lost, not rewritten."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")  # every write fails
    runner = GatedRunner()
    spool, counters = make_spool(blocker / "sub", runner=runner)
    async with running(spool):
        spool.add(records_named("a", "b", "c"))
        taken = await spool.take_retries(2)  # from memory: the write has not run yet
        await trio.testing.wait_all_tasks_blocked()  # the writer waits at the gate
        spool.settle(done=taken)
        runner.gate.set()
        await spool.written()
        assert names_of(spool.unwritten) == ["c"]
        assert spool.events == 1
    assert counters.dropped_disk_error == 1


async def test_records_settled_before_their_write_are_not_written(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Acked before the writer got to them: no line, no file, nothing left."""
    ops = CountingOps()
    spool, _ = make_spool(tmp_path, ops)
    async with running(spool):
        spool.add(records_named("a", "b"))
        spool.settle(done=await spool.take_retries(2))  # from memory, before the write
        await spool.written()
        assert "write:seg" not in ops.log
        assert (spool.events, spool.size) == (0, 0)
    assert list(tmp_path.iterdir()) == []


# -- corners of the log's bookkeeping --------------------------------------------------------


async def test_adding_no_records_schedules_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """An empty add is no write: nothing is scheduled and no log is created."""
    spool, _ = make_spool(tmp_path)
    async with running(spool):
        assert spool.add([]) is None
    assert list(tmp_path.iterdir()) == []


async def test_a_record_keeps_the_time_it_was_first_spooled(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A record spooled before (an earlier run's) keeps its time; a new one gets the clock's."""
    spool, _ = make_spool(tmp_path)
    async with running(spool):
        spool.add([Record(payload("old"), 0, EPOCH - 3600.0), Record(payload("new"))])
        await spool.written()
        data = (log_dir(tmp_path) / segment_name(1)).read_bytes()
        assert [line.spooled_at for line in read_lines(data)[0]] == [EPOCH - 3600.0, EPOCH]


async def test_records_spooled_while_the_wall_clock_reads_zero_have_no_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A wall clock at the epoch (unset) gives an unknown time: written, never aged out."""
    spool, counters = make_spool(tmp_path, clock=VirtualClock(epoch=0.0), max_age=10.0)
    async with running(spool):
        spool.add(records_named("a"))
        await spool.written()
        await trio.sleep(100)
        spool.enforce_limits()
        assert live_names(spool) == ["a"]
        data = (log_dir(tmp_path) / segment_name(1)).read_bytes()
        assert [line.spooled_at for line in read_lines(data)[0]] == [0.0]
    assert counters.dropped_spool_limit == 0


async def test_an_outages_backlog_is_written_in_slices_once_the_disk_is_back(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """More records than one slice kept in memory reach the disk, in order, after the backoff."""
    ops = FaultyOps(Fault(at=1, err=errno.ENOSPC))
    spool, counters = make_spool(tmp_path, ops)
    names = [f"e{i}" for i in range(1200)]
    async with running(spool):
        spool.add(records_named(*names))
        await spool.written()
        assert len(spool.unwritten) == 1200
        await trio.sleep(5)
        await spool.written()
        assert spool.unwritten == deque()
        assert live_names(spool) == names
    assert disk_names(tmp_path) == names
    assert counters.dropped_disk_error == 0


async def test_closing_twice_is_harmless(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A second close does nothing: what the first left on disk stays, counted once."""
    spool, counters = make_spool(tmp_path)
    async with running(spool):
        spool.add(records_named("a"))
    await spool.close()
    assert disk_names(tmp_path) == ["a"]
    assert counters.dropped_disk_error == 0


async def test_a_forked_child_lets_go_of_its_descriptors_without_unlocking(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Forgetting inherited descriptors closes them all and never unlocks the parent's logs."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a"))
    ops = CountingOps()
    spool, counters = make_spool(tmp_path, ops, run="run2")
    async with running(spool):
        await take_over_into(spool, counters, ops)
        spool.add(records_named("b"))
        await spool.written()
        locks = [log_dir(tmp_path, run) / "lock" for run in ("run1", "run2")]
        assert ops.paths  # the lock files' descriptors and the segment being appended to
        # The parent's copies of the descriptors: the same open file descriptions.
        parent = [os.dup(fd) for fd in ops.paths]
        try:
            spool.forget_inherited()
            assert ops.paths == {}
            assert all(probe_lock(str(lock)) for lock in locks)
        finally:
            for fd in parent:
                os.close(fd)
        assert not any(probe_lock(str(lock)) for lock in locks)


async def test_records_evicted_while_their_page_is_read_are_not_handed_out(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The limits evict a segment whose page a retry is reading: the read brings back nothing."""
    first, _ = make_spool(tmp_path, run="run1")
    async with running(first):
        first.add(records_named("a", "b"))
    reader = GatedRunner()
    counters = Counters()
    spool = Spool(
        str(tmp_path),
        "sess",
        "run2",
        counters,
        clock=VirtualClock(),
        ops=FileOps(),
        runner=InlineRunner(),
        reader=reader,
    )
    taken: list[Record] = []

    async def retry() -> None:
        taken.extend(await spool.take_retries(10))

    async with running(spool):
        await take_over_into(spool, counters)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(retry)
            await trio.testing.wait_all_tasks_blocked()
            spool.max_bytes = 1
            spool.enforce_limits()
            reader.gate.set()
        assert taken == []
        assert (counters.dropped_spool_limit, spool.events) == (2, 0)
    assert disk_names(tmp_path) == []


async def test_a_settled_segment_kept_for_write_ahead_ages_out_without_a_count(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Write-ahead's emptied active segment, once too old, is deleted; nothing counts dropped."""
    spool, counters = make_spool(tmp_path, keep_active=True, max_age=10.0)
    async with running(spool):
        records = records_named("a")
        assert await spool.commit(records)
        spool.settle(done=records)
        await spool.written()
        assert (log_dir(tmp_path) / segment_name(1)).exists()
        await trio.sleep(20)
        spool.enforce_limits()
        await spool.written()
        assert not (log_dir(tmp_path) / segment_name(1)).exists()
    assert counters.dropped_spool_limit == 0
