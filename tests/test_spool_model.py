"""The segmented log against a model: what it holds, through acks, evictions and crashes.

A hypothesis state machine drives a :class:`~eventlog._spool.Spool` the way
the pipeline does (add, commit, take, ack, fail, release), with segments of
three records and a size limit of about ten, through disk faults (the next
writes or fsyncs fail, a write may reach the file in part; time passes for
the spool's own retry), process deaths (the Spool is dropped without
``close()``, optionally with the unsynced tail of a segment or a journal cut
at any byte), clean restarts, and a second successor starting meanwhile.
The model is a dict of event id -> attempts (and whether the pipeline holds
it). It checks, after every step:

* the spool holds exactly the model's events, with their attempt counts,
  once each; an event leaves it only when settled, or evicted and counted
  in ``dropped_spool_limit`` (never one the pipeline holds);
* after a crash and the takeover by the next run, every unsettled event
  whose line was ``fsync``'ed comes back, with its attempts; an
  acknowledged (or evicted) event comes back only if its ``done`` journal
  line was lost, and then once; an event whose append was not ``fsync``'ed
  comes back if its line is whole, and a torn line is counted in
  ``spool_corrupt_lines``.

The documented windows, exercised here: journal lines are not
``fsync``'ed, so a power loss (or a write torn by the death, or a failed
write) can lose the last ones. A lost ``done`` line makes its events be
sent once more by the next run (the server's dedupe removes them); a lost
``failed`` line makes its events miss that one attempt (attempt counts never
decrease otherwise). An append not ``fsync``'ed yet (the commit window) may
be lost whole, or torn. What the disk refused is held in memory: a death
loses it, a clean exit counts it in ``dropped_disk_error``, exactly.

Then the line and journal readers are fuzzed, and a real segment and
journal are cut at every byte.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import shutil
import tempfile
import zlib
from typing import TYPE_CHECKING, Any

import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from eventlog._records import Record, RecordState
from eventlog._spool import FileOps
from eventlog._spool._format import (
    encode_journal_line,
    encode_record_line,
    parse_journal,
    read_lines,
)
from eventlog._stats import Counters
from tests.spool_support import (
    make_spool,
    name_of,
    payload,
    running,
    take_over_into,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from eventlog._spool import Spool

# Examples: the session's hypothesis profile (tests/conftest.py): a few in the
# fast session, hundreds in nox -s integration.
MODEL_SETTINGS = settings(stateful_step_count=25)
# Three records a segment, about ten in all: segments roll over and the
# limit evicts within a few steps.
SEGMENT_BYTES = 700
MAX_BYTES = 2500


class DurableOps(FileOps):
    """Real file operations that remember every write, and how much of each file was fsync'd.

    Real ``fsync``\\ s are skipped (speed): what is "synced" is only tracked.
    While ``dying``, fsyncs do not count: the process dies before they return.
    """

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.writes: list[tuple[str, int, bytes]] = []
        """``(path, offset, data)`` of every write, in order."""
        self.synced: dict[str, int] = {}
        """Bytes of each file known to be on stable storage."""
        self.dying = False
        self.failing = 0
        """The next this many writes and fsyncs fail (ENOSPC)."""
        self.tear: int | None = None
        """A failing write first writes this many of its bytes (modulo its length + 1)."""
        self.lost_lines: list[tuple[str, bytes]] = []
        """``(journal, line)`` of the journal writes that failed (since the last reopen)."""
        self.torn: set[str] = set()
        """Segment files whose last line a failed write tore."""

    def _fail(self) -> bool:
        if self.failing <= 0:
            return False
        self.failing -= 1
        return True

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        fd = super().open(path, flags, mode)
        self.paths[fd] = path
        return fd

    def write(self, fd: int, data: bytes) -> int:
        path = self.paths[fd]
        offset = os.fstat(fd).st_size  # every write of the spool is an append
        if self._fail():
            written = 0 if self.tear is None else self.tear % (len(data) + 1)
            os.write(fd, data[:written])
            self.writes.append((path, offset, data[:written]))
            if path.endswith(".jnl"):
                if written < len(data.rstrip(b"\n")):  # else whole but for its newline
                    self.lost_lines.append((path, data))
            elif data[:written].rsplit(b"\n", 1)[-1] and data[written : written + 1] != b"\n":
                self.torn.add(path)  # cut within a line (not just before its newline)
            exc = OSError(errno.ENOSPC, "injected ENOSPC")
            exc.written = written  # type: ignore[attr-defined]  # as FileOps.write does
            raise exc
        written = super().write(fd, data)
        self.writes.append((path, offset, data))
        return written

    def fsync(self, fd: int) -> None:
        if self._fail():
            raise OSError(errno.EIO, "injected EIO in fsync")
        if not self.dying:
            self.synced[self.paths[fd]] = os.fstat(fd).st_size

    def fsync_dir(self, path: str) -> None:
        pass

    def unlink(self, path: str) -> None:
        super().unlink(path)
        self.synced.pop(path, None)

    def close(self, fd: int) -> None:
        self.paths.pop(fd, None)
        super().close(fd)

    def last_unsynced(self, suffix: str) -> str | None:
        """The file ending in ``suffix`` written to last that has unsynced bytes, if any."""
        for path, _, _ in reversed(self.writes):
            if (
                path.endswith(suffix)
                and os.path.exists(path)
                and os.path.getsize(path) > self.synced.get(path, 0)
            ):
                return path
        return None

    def release_leaks(self) -> None:
        """Close every descriptor still open: a dead process's go with it (and its locks)."""
        for fd in self.paths:
            os.close(fd)
        self.paths.clear()


@dataclasses.dataclass
class Entry:
    """One unsettled event of the model."""

    attempts: int
    held: Record | None = None
    """The record while the pipeline holds it (taken for a retry, or committed fresh)."""


def id_of(data: bytes) -> str:
    """The event id of the model (the event's name)."""
    return name_of(data)


def picked(items: list[Any], mask: list[bool]) -> list[Any]:
    """The items whose position in ``mask`` is True (mask shorter: the rest unpicked)."""
    return [item for item, pick in zip(items, mask, strict=False) if pick]


def lines_of(data: bytes) -> list[bytes]:
    """The lines of ``data``, each with its newline (the last one maybe without)."""
    return re.findall(rb"[^\n]*\n|[^\n]+", data)


def cut_point(low: int, high: int, choice: int) -> int:
    """A byte in ``[low, high]`` picked by ``choice``."""
    return low + choice % (high - low + 1)


class LogMachine(RuleBasedStateMachine):
    """The pipeline's use of one run's spool, run after run, against a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="spool-model-")
        self.directory = os.path.join(self.tmp, "telemetry")
        self.clock = trio.testing.MockClock(autojump_threshold=0)
        self.ops = DurableOps()
        self.runs = 0
        self.next_id = 0
        self.keep_active = False
        self.model: dict[str, Entry] = {}
        """Unsettled events: id -> attempts, and the record while the pipeline holds it."""
        self.settled: dict[str, int] = {}
        """Events acknowledged or evicted (their attempts then): never to come back,
        unless a crash loses their ``done`` line."""
        self.spool: Spool | None = None
        self.counters = Counters()
        self.dropped = 0
        """Evictions this run, as the model saw them."""

    # -- driving ---------------------------------------------------------------------

    def run(self, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` with the writer task running, then wait for the writes it asked for."""

        async def main() -> None:
            assert self.spool is not None
            async with trio.open_nursery() as nursery:
                await nursery.start(self.spool.run)
                await step()
                await self.spool.written()
                nursery.cancel_scope.cancel()

        trio.run(main, clock=self.clock)

    def open_run(self) -> None:
        """A new run: its spool, and the takeover of every earlier run's log."""

        async def main() -> None:
            self.runs += 1
            self.spool, self.counters = make_spool(
                self.directory,
                self.ops,
                run=f"run{self.runs}",
                segment_bytes=SEGMENT_BYTES,
                max_bytes=MAX_BYTES,
                keep_active=self.keep_active,
            )
            self.stamp_mtimes()
            async with running(self.spool, close=False):
                await take_over_into(self.spool, self.counters, self.ops)
            self.dropped = 0

        trio.run(main, clock=self.clock)

    def stamp_mtimes(self) -> None:
        """Give each log the time of its last write, in write order (logs are taken over
        oldest first): file times are too coarse to order what a test writes in a row."""
        if not os.path.exists(self.directory):
            return
        last = {os.path.dirname(path): i for i, (path, _, _) in enumerate(self.ops.writes)}
        for name in sorted(os.listdir(self.directory)):
            log = os.path.join(self.directory, name)
            stamp = 1_000_000_000 + last.get(log, -1)
            for path in [log, *(os.path.join(log, f) for f in os.listdir(log))]:
                os.utime(path, (stamp, stamp), follow_symlinks=False)

    def new_records(self, count: int, attempts: int) -> list[Record]:
        records: list[Record] = []
        for _ in range(count):
            self.next_id += 1
            records.append(Record(payload(f"e{self.next_id}"), attempts))
        return records

    def held(self) -> list[Record]:
        return [e.held for e in self.model.values() if e.held is not None]

    # -- the spool as it is --------------------------------------------------------------

    def view(self) -> dict[str, tuple[int, bool]]:
        """Every event the spool holds: id -> (attempts, held); each id once."""
        assert self.spool is not None
        found: dict[str, tuple[int, bool]] = {}
        for segment in self.spool._segments():
            lines: dict[int, tuple[bytes, int]] = {}
            if os.path.exists(segment.path):
                with open(segment.path, "rb") as f:
                    parsed, _ = read_lines(f.read())
                lines = {line.number: (line.payload, line.attempts) for line in parsed}
            for number in segment.live:
                record = segment.memory.get(number)
                if record is not None:
                    event_id, attempts = id_of(record.payload), record.attempts
                else:
                    data, written = lines[number]
                    event_id, attempts = id_of(data), written + segment.failed.get(number, 0)
                assert event_id not in found, f"{event_id} held twice"
                found[event_id] = (attempts, number in segment.held)
        for record in self.spool.unwritten:
            event_id = id_of(record.payload)
            assert event_id not in found, f"{event_id} held twice"
            held = record.fresh or record.state is RecordState.SENDING
            found[event_id] = (record.attempts, held)
        return found

    def account_for_evictions(self) -> None:
        """Events gone from the spool unsettled: evicted, each counted once, none held."""
        gone = [event_id for event_id in self.model if event_id not in self.view()]
        for event_id in gone:
            entry = self.model.pop(event_id)
            assert entry.held is None, f"{event_id} evicted while held"
            self.settled[event_id] = entry.attempts
        self.dropped += len(gone)
        assert self.counters.dropped_spool_limit == self.dropped

    # -- rules ---------------------------------------------------------------------------

    @initialize(keep_active=st.booleans())
    def start(self, keep_active: bool) -> None:
        """The first run; write-ahead mode (keep the active segment) or not."""
        self.keep_active = keep_active
        self.open_run()

    @rule(
        count=st.integers(1, 4),
        attempts=st.integers(0, 3),
        then=st.sampled_from(["wait", "take", "fail"]),
    )
    def add(self, count: int, attempts: int, then: str) -> None:
        """Records that failed to go out are kept; maybe taken (and failed) before written."""
        records = self.new_records(count, attempts)
        for record in records:
            self.model[id_of(record.payload)] = Entry(attempts)

        async def step() -> None:
            assert self.spool is not None
            self.spool.add(records)
            if then == "wait":
                return
            taken = await self.spool.take_retries(count)
            for record in taken:
                entry = self.model[id_of(record.payload)]
                assert entry.held is None
                assert record.attempts == entry.attempts
                entry.held = record
            if then == "fail":
                for record in taken:
                    record.attempts += 1
                    entry = self.model[id_of(record.payload)]
                    entry.attempts += 1
                    entry.held = None
                self.spool.settle(failed=taken)

        self.run(step)
        self.account_for_evictions()

    @rule(count=st.integers(1, 4))
    def commit(self, count: int) -> None:
        """Write-ahead: records on disk before their first POST, which holds them."""
        records = self.new_records(count, 0)

        async def step() -> None:
            assert self.spool is not None
            # False when the disk refused them: held in memory all the same.
            await self.spool.commit(records)

        self.run(step)
        for record in records:
            self.model[id_of(record.payload)] = Entry(0, held=record)
        self.account_for_evictions()

    @rule(limit=st.integers(1, 5))
    def take(self, limit: int) -> None:
        """A drain takes the oldest records waiting for a retry."""
        taken: list[Record] = []

        async def step() -> None:
            assert self.spool is not None
            taken.extend(await self.spool.take_retries(limit))

        self.run(step)
        assert len(taken) <= limit
        for record in taken:
            entry = self.model[id_of(record.payload)]
            assert entry.held is None
            assert record.attempts == entry.attempts
            entry.held = record
        if not taken:
            assert all(e.held is not None for e in self.model.values())

    @precondition(lambda self: any(e.held is not None for e in self.model.values()))
    @rule(mask=st.lists(st.booleans(), min_size=1, max_size=12))
    def ack(self, mask: list[bool]) -> None:
        """The server acknowledged some records held: settled done."""
        done = picked(self.held(), mask)

        async def step() -> None:
            assert self.spool is not None
            self.spool.settle(done=done)

        self.run(step)
        for record in done:
            event_id = id_of(record.payload)
            self.settled[event_id] = self.model.pop(event_id).attempts

    @precondition(lambda self: any(e.held is not None for e in self.model.values()))
    @rule(mask=st.lists(st.booleans(), min_size=1, max_size=12))
    def fail(self, mask: list[bool]) -> None:
        """A POST of some records held failed: one more attempt each, back to waiting."""
        failed = picked(self.held(), mask)
        for record in failed:
            record.attempts += 1

        async def step() -> None:
            assert self.spool is not None
            self.spool.settle(failed=failed)

        self.run(step)
        for record in failed:
            entry = self.model[id_of(record.payload)]
            entry.attempts += 1
            entry.held = None

    @precondition(lambda self: any(e.held is not None for e in self.model.values()))
    @rule(mask=st.lists(st.booleans(), min_size=1, max_size=12))
    def release(self, mask: list[bool]) -> None:
        """Records held but not posted after all (killswitch, shutdown): back to waiting."""
        released = picked(self.held(), mask)

        async def step() -> None:
            assert self.spool is not None
            self.spool.settle(released=released)

        self.run(step)
        for record in released:
            self.model[id_of(record.payload)].held = None

    @rule(calls=st.integers(1, 3), tear=st.none() | st.integers(0, 10**6))
    def disk_fails(self, calls: int, tear: int | None) -> None:
        """The next few writes and fsyncs fail (a write may reach the file in part)."""
        self.ops.failing = calls
        self.ops.tear = tear

    @rule(seconds=st.sampled_from([1, 5, 40]))
    def time_passes(self, seconds: int) -> None:
        """Time goes by: what a failed write left in memory is written again, on its backoff."""

        async def step() -> None:
            await trio.sleep(seconds + 0.5)  # never due at the very moment it wakes

        self.run(step)

    @rule(
        dying=st.integers(0, 3),
        segment_cut=st.none() | st.integers(0, 10**6),
        journal_cut=st.none() | st.integers(0, 10**6),
    )
    def crash(self, dying: int, segment_cut: int | None, journal_cut: int | None) -> None:
        """The process dies (maybe mid-append), unsynced bytes may go; the next run takes over."""
        if dying:
            records = self.new_records(dying, 0)
            for record in records:
                self.model[id_of(record.payload)] = Entry(0)
            self.ops.dying = True

            async def step() -> None:
                assert self.spool is not None
                self.spool.add(records)

            self.run(step)
            self.ops.dying = False
            self.account_for_evictions()
        self.spool = None  # dropped, never closed
        self.ops.release_leaks()
        self.ops.failing = 0  # the next process finds a healthy disk

        where = self.lines_on_disk()
        durable = {
            event_id: self.ops.synced.get(path, 0) >= end
            for event_id, (path, _, end) in where.items()
        }
        cut_lines: list[tuple[str, bytes]] = []
        segment = self.ops.last_unsynced(".seg")
        if segment is not None and segment_cut is not None:
            size = os.path.getsize(segment)
            self.cut(segment, cut_point(self.ops.synced.get(segment, 0), size, segment_cut))
        journal = self.ops.last_unsynced(".jnl")
        if journal is not None and journal_cut is not None:
            size = os.path.getsize(journal)
            cut = cut_point(self.ops.synced.get(journal, 0), size, journal_cut)
            cut_lines = [(journal, line) for line in self.cut(journal, cut)]
        self.reopen(where, durable, cut_lines)

    def cut(self, path: str, cut: int) -> list[bytes]:
        """Truncate ``path`` at ``cut``; the journal lines it loses (whole or torn)."""
        lost: list[bytes] = []
        torn = False
        for written_to, offset, data in self.ops.writes:
            if written_to != path:
                continue
            for line in lines_of(data):
                # A line cut just before its newline is still whole.
                if offset + len(line.rstrip(b"\n")) > cut:
                    torn = torn or offset < cut
                    lost.append(line)
                offset += len(line)
        if path.endswith(".seg"):
            # A torn line is always a file's last: cut, it goes, or another takes its place.
            if torn:
                self.ops.torn.add(path)
            elif os.path.getsize(path) > cut:
                self.ops.torn.discard(path)
        os.truncate(path, cut)
        self.ops.synced[path] = min(self.ops.synced.get(path, 0), cut)
        # What was cut off is gone: later appends take its place.
        self.ops.writes = [
            (written_to, offset, data if written_to != path else data[: max(cut - offset, 0)])
            for written_to, offset, data in self.ops.writes
            if written_to != path or offset < cut
        ]
        return lost

    def lines_on_disk(self) -> dict[str, tuple[str, int, int]]:
        """Where each event's line is: id -> (segment path, number, end offset); each id once."""
        where: dict[str, tuple[str, int, int]] = {}
        for path in self.segment_files():
            with open(path, "rb") as f:
                data = f.read()
            end = 0
            for raw in lines_of(data):
                end += len(raw)
                for line in read_lines(raw)[0]:
                    event_id = id_of(line.payload)
                    assert event_id not in where, f"{event_id} written twice"
                    where[event_id] = (path, line.number, end)
        return where

    def segment_files(self) -> list[str]:
        """Every segment file of every log in the storage directory."""
        return [
            os.path.join(root, name)
            for root, _, files in os.walk(self.directory)
            for name in files
            if name.endswith(".seg")
        ]

    @rule()
    def close_and_reopen(self) -> None:
        """A clean exit (what the pipeline holds goes back first); the next run takes over."""
        held = self.held()

        async def step() -> None:
            assert self.spool is not None
            self.spool.settle(released=held)
            await self.spool.close()

        self.run(step)
        for entry in self.model.values():
            entry.held = None
        lost = self.counters.dropped_disk_error
        self.spool = None
        self.ops.failing = 0
        assert not self.ops.paths, "descriptors left open at close"
        where = self.lines_on_disk()
        # What close could not write (memory only) is gone, and counted.
        assert lost == sum(1 for event_id in self.model if event_id not in where)
        self.reopen(where, dict.fromkeys(where, True), [])

    def reopen(
        self,
        where: dict[str, tuple[str, int, int]],
        durable: dict[str, bool],
        cut_lines: list[tuple[str, bytes]],
    ) -> None:
        """The next run takes over: exactly the expected events come back (some maybe evicted).

        ``where`` and ``durable``: each event's line before the cut, and whether
        it was fsync'd; ``cut_lines``: the journal lines the cut took away.
        """
        lost_done: set[tuple[str, int]] = set()
        lost_failed: dict[tuple[str, int], int] = {}
        for journal, line in [*self.ops.lost_lines, *cut_lines]:
            try:
                parsed = json.loads(line)
            except ValueError:
                continue  # torn by an earlier crash or failure: lost then
            kind = "done" if "done" in parsed else "failed"
            for first, last in parsed[kind]:
                for number in range(first, last + 1):
                    key = (journal[: -len(".jnl")] + ".seg", number)
                    if kind == "done":
                        lost_done.add(key)
                    else:
                        lost_failed[key] = lost_failed.get(key, 0) + 1
        self.ops.lost_lines = []

        expected: dict[str, int] = {}
        for event_id, entry in self.model.items():
            if event_id not in where:
                continue  # only memory held it (a disk fault): gone with the process
            path, number, _ = where[event_id]
            if durable[event_id]:
                assert self.whole((path, number)), f"{event_id} fsync'd, yet cut"
            if self.whole((path, number)):
                expected[event_id] = entry.attempts - lost_failed.get((path, number), 0)
        for event_id, attempts in self.settled.items():
            if event_id not in where:
                continue
            path, number, _ = where[event_id]
            if (path, number) in lost_done and self.whole((path, number)):
                # The documented window: its "done" line lost, it is sent again, once.
                expected[event_id] = attempts - lost_failed.get((path, number), 0)
        torn = {path for path in self.ops.torn if os.path.exists(path)}
        # Whatever survived the death reaches the disk in the end: the next
        # crash can only cut what the next run writes.
        for path in self.segment_files():
            self.ops.synced[path] = os.path.getsize(path)
            journal = path[: -len(".seg")] + ".jnl"
            if os.path.exists(journal):
                self.ops.synced[journal] = os.path.getsize(journal)
        self.open_run()
        found = self.view()
        assert all(not held for _, held in found.values())
        assert {i: a for i, (a, _) in found.items() if i in expected} == {
            i: a for i, a in expected.items() if i in found
        }
        assert set(found) <= set(expected), f"resurrected: {set(found) - set(expected)}"
        evicted = set(expected) - set(found)
        assert self.counters.dropped_spool_limit == len(evicted)
        assert self.counters.taken_over == len(expected)
        assert self.counters.spool_corrupt_lines == len(torn)
        self.ops.torn = {path for path in torn if os.path.exists(path)}
        self.dropped = len(evicted)
        self.model = {i: Entry(a) for i, (a, _) in found.items()}
        self.settled = {i: a for i, a in self.settled.items() if i not in found}
        self.settled.update((i, expected[i]) for i in evicted)

    def whole(self, key: tuple[str, int]) -> bool:
        """True if line ``key`` is whole in its (truncated) segment file."""
        path, number = key
        if not os.path.exists(path):
            return False
        with open(path, "rb") as f:
            lines, _ = read_lines(f.read())
        return any(line.number == number for line in lines)

    @rule()
    def second_successor(self) -> None:
        """Another run starts meanwhile: every log is held (own or taken over), none for it."""

        async def main() -> None:
            other, counters = make_spool(self.directory, self.ops, run=f"other{self.runs}")
            self.stamp_mtimes()
            async with running(other):
                await take_over_into(other, counters, self.ops)
                assert other.logs == []
                assert counters.taken_over == 0

        trio.run(main, clock=self.clock)

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def spool_equals_model(self) -> None:
        """The spool holds exactly the model's events, attempts and held state included."""
        if self.spool is None:
            return
        found = self.view()
        assert found == {
            event_id: (entry.attempts, entry.held is not None)
            for event_id, entry in self.model.items()
        }
        assert self.spool.events == len(self.model)
        assert self.spool.has_retries() == any(e.held is None for e in self.model.values())

    @invariant()
    def disk_equals_memory(self) -> None:
        """Each segment known is on disk at its size; nothing settled lingers; no stray log."""
        spool = self.spool
        if spool is None:
            return
        known = {s.path for s in spool._segments()}
        for segment in spool._segments():
            if os.path.exists(segment.path):
                assert os.path.getsize(segment.path) == segment.bytes
            else:
                assert segment.bytes == 0
        logs = {log.directory for log in spool.logs} | {spool.own.directory}
        if os.path.exists(self.directory):
            for name in os.listdir(self.directory):
                path = os.path.join(self.directory, name)
                assert path in logs, f"a log nobody holds: {name}"
                for file in os.listdir(path):
                    if file.endswith(".seg"):
                        assert os.path.join(path, file) in known, f"stray segment {file}"
        assert spool.size == sum(s.bytes for s in spool._segments())
        assert self.counters.dropped_disk_error == 0
        # Open: the locks of the logs it holds, and the segments it appends to.
        locks = {log.lock_fd for log in (*spool.logs, spool.own) if log.lock_fd is not None}
        assert set(self.ops.paths) == locks | set(spool._fds.values())

    def teardown(self) -> None:
        if self.spool is not None:

            async def step() -> None:
                assert self.spool is not None
                await self.spool.close()

            self.run(step)
        self.ops.release_leaks()
        shutil.rmtree(self.tmp)


LogMachine.TestCase.settings = MODEL_SETTINGS
TestLogModel = LogMachine.TestCase


# -- read_lines and parse_journal -------------------------------------------------------


def valid_line(number: int, attempts: int, spooled_at: int, body: bytes) -> bytes:
    return encode_record_line(
        number, attempts, spooled_at, b'{"b":' + json.dumps(body.hex()).encode() + b"}"
    )


lines = st.one_of(
    st.binary(max_size=80),
    st.builds(
        valid_line,
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.integers(0, 2**33),
        st.binary(max_size=40),
    ),
    st.builds(  # a valid line with one byte flipped
        lambda line, at, bit: (
            line[:at] + bytes([line[at] ^ (1 << bit)]) + line[at + 1 :]
            if at < len(line) - 1
            else line
        ),
        st.builds(
            valid_line,
            st.integers(0, 9),
            st.integers(0, 9),
            st.integers(0, 9),
            st.binary(max_size=20),
        ),
        st.integers(0, 200),
        st.integers(0, 7),
    ),
)


@given(st.binary(max_size=2000))
def test_read_lines_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    """Any bytes: no exception; each non-blank line is a record or one skipped line."""
    found, skipped = read_lines(data)
    non_blank = sum(1 for line in data.split(b"\n") if line.strip())
    assert len(found) + skipped == non_blank


@given(st.lists(lines, max_size=12))
def test_read_lines_on_mixed_valid_and_garbage_lines(parts: list[bytes]) -> None:
    """Valid, garbage and bit-flipped lines: every line returned is intact and re-encodes."""
    data = b"\n".join(part.rstrip(b"\n") for part in parts)
    found, skipped = read_lines(data)
    non_blank = sum(1 for line in data.split(b"\n") if line.strip())
    assert len(found) + skipped == non_blank
    for line in found:
        assert line.attempts >= 0
        assert line.number >= 0
        again = encode_record_line(line.number, line.attempts, line.spooled_at, line.payload)
        assert read_lines(again) == ([line], 0)


@given(st.binary(max_size=500))
def test_parse_journal_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    """Any bytes as a journal: no exception, and nothing made of garbage."""
    done, failed = parse_journal(data)
    if not any(b'"crc32"' in line for line in data.split(b"\n")):
        assert (done, failed) == (set(), {})


@given(
    st.lists(
        st.tuples(st.sampled_from(["done", "failed"]), st.lists(st.integers(0, 50), min_size=1)),
        max_size=8,
    ),
    st.integers(0, 10**6),
    st.integers(0, 7),
)
def test_a_journal_with_one_bit_flipped_loses_at_most_that_line(
    entries: list[tuple[str, list[int]]], at: int, bit: int
) -> None:
    """Journal lines round-trip; one flipped bit costs at most the line it is in."""
    encoded = [encode_journal_line(kind, numbers) for kind, numbers in entries]
    data = b"".join(encoded)
    done = {n for kind, numbers in entries if kind == "done" for n in numbers}
    failed: dict[int, int] = {}
    for kind, numbers in entries:
        if kind == "failed":
            for n in set(numbers):
                failed[n] = failed.get(n, 0) + 1
    assert parse_journal(data) == (done, failed)
    if not data:
        return
    at %= len(data)
    flipped = data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]
    got_done, got_failed = parse_journal(flipped)
    # What the flipped line said may be gone (or, if the flip hit a newline,
    # its neighbour's too), never anything invented.
    assert got_done <= done
    assert all(0 < count <= failed[n] for n, count in got_failed.items())


def spool_files(directory: str) -> tuple[bytes, bytes]:
    """The bytes of the only segment and its journal under ``directory``."""
    (log,) = (os.path.join(directory, n) for n in os.listdir(directory))
    with open(os.path.join(log, "00000001.seg"), "rb") as f:
        segment = f.read()
    with open(os.path.join(log, "00000001.jnl"), "rb") as f:
        journal = f.read()
    return segment, journal


async def test_truncation_at_every_byte_yields_a_prefix(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A real 5-record segment cut anywhere: the whole lines, in order, one torn at most."""
    spool, _ = make_spool(tmp_path)
    originals = [Record(payload(f"e{i}"), attempts=i) for i in range(5)]
    async with running(spool, close=False):
        spool.add(originals[:2])
        await spool.written()
        spool.add(originals[2:])
        await spool.written()
        taken = await spool.take_retries(5)
        spool.settle(done=taken[:1], failed=taken[3:])
        spool.settle(done=taken[1:2])
    data, journal = spool_files(str(tmp_path))
    expected = [(r.payload, r.attempts, 1767225600.0) for r in originals]
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    assert len(ends) == 5
    for cut in range(len(data) + 1):
        found, skipped = read_lines(data[:cut])
        complete = sum(1 for end in ends if end - 1 <= cut)  # its newline may be cut off
        assert [(line.payload, line.attempts, line.spooled_at) for line in found] == expected[
            :complete
        ]
        assert [line.number for line in found] == list(range(complete))
        torn = cut not in (0, *ends) and cut + 1 not in ends
        assert skipped == (1 if torn else 0)
    # The journal: done 0, failed 3 and 4, done 1; cut anywhere, a prefix of those.
    said = [({0}, {}), ({0}, {3: 1, 4: 1}), ({0, 1}, {3: 1, 4: 1})]
    line_ends = [i + 1 for i, byte in enumerate(journal) if byte == ord("\n")]
    assert len(line_ends) == 3
    for cut in range(len(journal) + 1):
        whole = sum(1 for end in line_ends if end - 1 <= cut)
        assert parse_journal(journal[:cut]) == (said[whole - 1] if whole else (set(), {}))


def test_every_single_bit_flip_is_tolerated() -> None:
    """Any one bit of a line flipped: no exception; the line is skipped or still intact."""
    original = payload("e1")
    line = encode_record_line(7, 3, 1767225600.0, original)
    for at in range(len(line) - 1):
        for bit in range(8):
            flipped = line[:at] + bytes([line[at] ^ (1 << bit)]) + line[at + 1 :]
            found, skipped = read_lines(flipped)
            assert len(found) + skipped == 1
            for parsed in found:  # the CRC covers n, attempts, t and the event
                assert parsed == (7, 3, 1767225600.0, original)


def test_v1_lines_are_numbered_by_position_and_checked_by_their_crc() -> None:
    """Version 1 lines (no n, the CRC of the event alone) read as lines 0, 1, ... of the file."""
    one = b'{"v":1,"attempts":2,"crc32":"%08x","event":%b}\n' % (
        zlib.crc32(payload("a")),
        payload("a"),
    )
    bad = one.replace(b'"attempts":2', b'"attempts":-1')
    found, skipped = read_lines(one + bad + one)
    assert [(line.number, line.attempts, line.spooled_at) for line in found] == [
        (0, 2, 0.0),
        (2, 2, 0.0),
    ]
    assert skipped == 1
