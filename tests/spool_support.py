"""What the spool's own tests share: a spool driven directly, fault injection, readers.

A :class:`~eventlog._spool.Spool` is used here the way the pipeline uses it,
without a logger: records in (``add``, ``commit``), retries out
(``take_retries``), fates back (``settle``), with its writer task running
and its file I/O inline (:class:`~eventlog._spool.InlineRunner`), under
trio's virtual time. :class:`FaultyOps` fails the N-th file operation.
"""

from __future__ import annotations

import errno
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from eventlog._records import Record
from eventlog._spool import FileOps, InlineRunner, Runner, Spool, take_over
from eventlog._spool._admin import read_events
from eventlog._spool._format import parse_journal, read_lines
from eventlog._stats import Counters
from eventlog.testing import Envelope, InternalEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable
    from pathlib import Path

    from eventlog._spool._segment import Segment

__all__ = [
    "EPOCH",
    "ERRNOS",
    "FOREVER",
    "CountingOps",
    "Fault",
    "FaultyOps",
    "VirtualClock",
    "assert_disk_matches_memory",
    "disk_names",
    "live_names",
    "make_spool",
    "name_of",
    "names_of",
    "payload",
    "records_named",
    "running",
    "take_over_into",
]

EPOCH = 1_767_225_600.0
ERRNOS = (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EIO)
FOREVER = 10**9

_ENVELOPE = msgspec.json.Decoder(Envelope)


class VirtualClock:
    """Virtual time: monotonic is trio's, wall time is ``epoch`` plus it (plus ``skew``)."""

    def __init__(self, epoch: float = EPOCH) -> None:
        self.epoch = epoch
        """Wall time at loop time 0 (``time.time()`` for events the logger's age limit keeps)."""
        self.skew = 0.0
        """Added to the wall time: moves it without moving the loop's time."""

    def wall_time(self) -> float:
        """``epoch`` plus the loop's time plus ``skew``."""
        return self.epoch + trio.current_time() + self.skew

    def monotonic(self) -> float:
        """trio's (virtual) time."""
        return trio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """``trio.sleep_until``."""
        await trio.sleep_until(deadline)


def payload(name: str) -> bytes:
    """The envelope of an ``InternalEvent`` named ``name`` (its id is the name, repeated)."""
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%b","event_name":"%b",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z"}}' % (name.encode() * 4, name.encode())
    )


def name_of(data: bytes) -> str:
    """The event name of an envelope made by :func:`payload`."""
    envelope = _ENVELOPE.decode(data)
    assert isinstance(envelope, InternalEvent)
    return envelope.event_data.event_name


def records_named(*names: str, attempts: int = 0) -> list[Record]:
    """One fresh record per name."""
    return [Record(payload(name), attempts) for name in names]


def names_of(records: Iterable[Record]) -> list[str]:
    """The event names of ``records``, in order."""
    return [name_of(r.payload) for r in records]


def make_spool(
    directory: Path | str,
    ops: FileOps | None = None,
    *,
    run: str = "run1",
    counters: Counters | None = None,
    clock: VirtualClock | None = None,
    runner: Runner | None = None,
    **options: Any,
) -> tuple[Spool, Counters]:
    """A spool of session ``sess`` and run ``run`` in ``directory``, its I/O inline."""
    counters = Counters() if counters is None else counters
    spool = Spool(
        str(directory),
        "sess",
        run,
        counters,
        clock=VirtualClock() if clock is None else clock,
        ops=FileOps() if ops is None else ops,
        runner=InlineRunner() if runner is None else runner,
        reader=InlineRunner(),
        **options,
    )
    return spool, counters


@asynccontextmanager
async def running(spool: Spool, *, close: bool = True) -> AsyncIterator[Spool]:
    """The spool with its writer task running; closed at the end (unless ``close=False``)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(spool.run)
        try:
            yield spool
            await spool.written()
        finally:
            if close:
                with trio.CancelScope(shield=True):
                    await spool.close()
            nursery.cancel_scope.cancel()


async def take_over_into(spool: Spool, counters: Counters, ops: FileOps | None = None) -> None:
    """What a logger does at start: claim and index every earlier run's log."""
    await take_over(
        spool, counters, lambda: None, ops=FileOps() if ops is None else ops, runner=InlineRunner()
    )


def disk_names(directory: Path) -> list[str]:
    """The names of the events waiting in every log of ``directory``, as the next run reads them."""
    names: list[str] = []
    if not directory.exists():
        return names
    for path in sorted(directory.iterdir()):
        if path.name.startswith(("spool-v2.", "failed_events.")) and not path.name.endswith(
            (".jnl", ".tmp")
        ):
            events, _ = read_events(str(path))
            names += [name_of(e.payload) for e in events]
    return names


def live_names(spool: Spool) -> list[str]:
    """The names of the records the spool holds (memory or disk), oldest log first."""
    names: list[str] = []
    for segment in spool._segments():
        on_disk = _segment_payloads(segment)
        for number in sorted(segment.live):
            record = segment.memory.get(number)
            names.append(name_of(record.payload if record else on_disk[number]))
    return names + names_of(spool.unwritten)


def _segment_payloads(segment: Segment) -> dict[int, bytes]:
    try:
        with open(segment.path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    lines, _ = read_lines(data)
    return {line.number: line.payload for line in lines}


def assert_disk_matches_memory(spool: Spool) -> None:
    """What the spool believes is on disk is: every live record of this run has a valid line,
    no live record is marked done in a journal, and each segment's size is its file's."""
    for segment in spool.own.segments:
        try:
            with open(segment.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        journal = b""
        if os.path.exists(segment.journal_path):
            with open(segment.journal_path, "rb") as f:
                journal = f.read()
        lines, _ = read_lines(data)
        numbers = {line.number for line in lines}
        assert segment.live <= numbers, f"{segment.path}: not on disk: {segment.live - numbers}"
        done, _ = parse_journal(journal)
        assert not (segment.live & done), f"{segment.path}: live yet done: {segment.live & done}"
        assert segment.bytes == len(data)


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


def _kind(path: str) -> str:
    """What a path is, for call names: ``seg``, ``jnl``, ``lock``, ``v1`` or ``dir``."""
    name = os.path.basename(path)
    if name.endswith(".seg"):
        return "seg"
    if name.endswith(".jnl"):
        return "jnl"
    if name == "lock":
        return "lock"
    if name.startswith("failed_events."):
        return "v1"
    return "dir"


class CountingOps(FileOps):
    """Real file operations, each call logged by name (``write:seg``, ``unlink:jnl``, ...).

    Successful ``fsync``\\ s are no-ops: durability is not what these tests
    check, and real ones would make the sweeps slow.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.paths: dict[int, str] = {}
        """The path each open descriptor was opened at."""
        self.log: list[str] = []
        """Names of every call, in order."""

    def _tick(self, name: str) -> None:
        self.calls += 1
        self.log.append(name)

    def _fd_kind(self, fd: int) -> str:
        return _kind(self.paths.get(fd, ""))

    def makedirs(self, path: str) -> None:
        self._tick("makedirs")
        super().makedirs(path)

    def mkdir(self, path: str) -> None:
        self._tick("mkdir")
        super().mkdir(path)

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        self._tick(f"open:{_kind(path)}")
        fd = super().open(path, flags, mode)
        self.paths[fd] = path
        return fd

    def lock(self, fd: int) -> bool:
        self._tick(f"lock:{self._fd_kind(fd)}")
        return super().lock(fd)

    def write(self, fd: int, data: bytes) -> int:
        self._tick(f"write:{self._fd_kind(fd)}")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._tick(f"fsync:{self._fd_kind(fd)}")

    def fsync_dir(self, path: str) -> None:
        self._tick("fsync_dir")

    def read(self, path: str) -> bytes:
        self._tick(f"read:{_kind(path)}")
        return super().read(path)

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        self._tick(f"read_range:{_kind(path)}")
        return super().read_range(path, offset, length)

    def listdir(self, path: str) -> list[str]:
        self._tick("listdir")
        return super().listdir(path)

    def stat(self, path: str) -> os.stat_result:
        self._tick("stat")
        return super().stat(path)

    def unlink(self, path: str) -> None:
        self._tick(f"unlink:{_kind(path)}")
        super().unlink(path)

    def rmdir(self, path: str) -> None:
        self._tick("rmdir")
        super().rmdir(path)

    def close(self, fd: int) -> None:
        # Linux releases the descriptor even when close() reports an error.
        kind = self._fd_kind(fd)
        self.paths.pop(fd, None)
        super().close(fd)
        self._tick(f"close:{kind}")

    def release_leaks(self) -> int:
        """Close the descriptors never closed (a dead process's go with it); how many."""
        leaked = len(self.paths)
        for fd in self.paths:
            os.close(fd)
        self.paths.clear()
        return leaked


class FaultyOps(CountingOps):
    """:class:`CountingOps` whose calls in a :class:`Fault`'s window raise ``OSError``."""

    def __init__(self, fault: Fault | None = None) -> None:
        super().__init__()
        self.fault = fault
        self.hit = 0
        """Calls that failed."""
        self.failed: list[str] = []
        """Names of the calls that failed."""

    def _tick(self, name: str) -> None:
        super()._tick(name)
        fault = self.fault
        if fault is not None and fault.at <= self.calls < fault.at + fault.calls:
            self.hit += 1
            self.failed.append(name)
            raise OSError(fault.err, f"injected {os.strerror(fault.err)} in {name}")

    def write(self, fd: int, data: bytes) -> int:
        try:
            self._tick(f"write:{self._fd_kind(fd)}")
        except OSError as exc:
            assert self.fault is not None
            written = 0
            if self.fault.partial:
                written = os.write(fd, data[: len(data) // 2])
            exc.written = written  # type: ignore[attr-defined]  # as FileOps.write does
            raise
        return FileOps.write(self, fd, data)
