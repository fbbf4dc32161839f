"""Reading and operating a storage directory from outside a logger (``eventlog spool``).

The command line is presentation over these functions; they read the files
with the same format and locks as the SDK (:mod:`._format`, :mod:`._files`),
so there is one implementation of both. They follow the loggers' locking
rule: a log held by a live logger is read at most, never changed.
Everything here is blocking (call it from a thread, or from a program that
has no event loop to stall), except :func:`replay_spool`, which is async and
does its file work through a runner, off the event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import uuid
from functools import partial
from typing import TYPE_CHECKING, Final, Literal

import anyio
import msgspec

from eventlog import _seams
from eventlog._config import Config, default_storage_dir
from eventlog._logger import open_event_logger
from eventlog._spool._files import FileOps, check_storage_dir, held_lock, probe_lock
from eventlog._spool._format import (
    LOCK_NAME,
    Line,
    journal_name,
    parse_journal,
    parse_run_name,
    parse_segment_name,
    parse_v1_name,
    read_lines,
    segment_name,
)
from eventlog._spool._runner import ThreadRunner
from eventlog._spool._takeover import find_candidates

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import httpx

    from eventlog._stats import Stats

__all__ = [
    "DEFAULT_REPLAY_TIMEOUT",
    "DEFAULT_SERVICE",
    "REPLAY_SESSION_PREFIX",
    "Contents",
    "DeleteOutcome",
    "EventSummary",
    "LogInfo",
    "NotASpoolError",
    "ReplayResult",
    "SpoolDirectory",
    "SpooledEvent",
    "check_replay_target",
    "delete_log",
    "describe_event",
    "log_info",
    "named_log",
    "read_events",
    "read_target",
    "replay_spool",
    "resolve_path",
    "scan",
    "spool_directory",
]

_TEMP_SUFFIX: Final = ".tmp"


def _log_version(name: str) -> int | None:
    """2: a log directory's name; 1: a version 1 file's; 0: its rewrite's temp file's."""
    if parse_run_name(name) is not None:
        return 2
    if parse_v1_name(name) is not None:
        return 1
    if name.endswith(_TEMP_SUFFIX) and parse_v1_name(name.removesuffix(_TEMP_SUFFIX)):
        return 0
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class SpooledEvent:
    """One event waiting in a spool: its envelope and its delivery bookkeeping."""

    payload: bytes
    """The envelope, exactly as it will be posted."""
    attempts: int
    """Failed POSTs so far (its line's count plus its journal's)."""
    spooled_at: float
    """When it first reached a spool (wall seconds; 0 when unknown)."""
    segment: int
    """Its segment's number (0 for a version 1 file)."""
    number: int
    """Its number within the segment."""


@dataclasses.dataclass(frozen=True, slots=True)
class LogInfo:
    """One run's spool as found on disk."""

    path: str
    """The log's directory (version 2), or file (version 1)."""
    name: str
    version: int
    """2: a log directory; 1: a version 1 file; 0: a version 1 rewrite's leftover temp file."""
    session: str
    run: str
    segments: int
    events: int
    """Events waiting for delivery (valid lines not settled in the journal)."""
    corrupt: int
    """Torn, undecodable or checksum-failing lines."""
    size: int
    """Bytes of its files: segments (or the version 1 file) and their journals."""
    mtime: float
    """When it was last written to."""
    locked: bool
    """Held by a live logger at the time of the probe."""

    def as_json(self, now: float) -> dict[str, object]:
        """The entry as JSON-ready values, its age taken at ``now``."""
        return {
            "name": self.name,
            "path": self.path,
            "version": self.version,
            "kind": "temp" if self.version == 0 else "spool",
            "session": self.session,
            "run": self.run,
            "segments": self.segments,
            "events": self.events,
            "corrupt": self.corrupt,
            "bytes": self.size,
            "mtime": self.mtime,
            "age_seconds": round(max(now - self.mtime, 0.0), 3),
            "locked": self.locked,
        }


# -- which directory -----------------------------------------------------------------

Origin = Literal["dir", "EVENTLOG_HOME", "XDG_STATE_HOME", "home"]


@dataclasses.dataclass(frozen=True, slots=True)
class SpoolDirectory:
    """The storage directory a command works on, and where that choice came from."""

    path: str
    """Absolute, ``~`` expanded."""
    origin: Origin
    """``dir``: given explicitly; otherwise the rule of ``Config.storage_dir``'s default
    that applied: ``EVENTLOG_HOME`` set, else ``XDG_STATE_HOME`` set, else ``home``
    (``~/.local/state``)."""
    service_name: str
    """The service whose default it is (unused for ``dir``)."""


def spool_directory(directory: str | None, service_name: str) -> SpoolDirectory:
    """``directory`` when given, else the default ``Config.storage_dir`` of ``service_name``."""
    origin: Origin
    if directory:
        origin, chosen = "dir", directory
    else:
        chosen = default_storage_dir(service_name)
        # The order of default_storage_dir's rules, which the tests hold it to.
        if os.environ.get("EVENTLOG_HOME"):
            origin = "EVENTLOG_HOME"
        elif os.environ.get("XDG_STATE_HOME"):
            origin = "XDG_STATE_HOME"
        else:
            origin = "home"
    return SpoolDirectory(os.path.abspath(os.path.expanduser(chosen)), origin, service_name)


def _segment_files(directory: str, ops: FileOps) -> list[tuple[int, str, str]]:
    """``(number, segment path, journal path)`` of a log directory, by number."""
    numbers = sorted(
        parsed[0]
        for name in ops.listdir(directory)
        if (parsed := parse_segment_name(name)) is not None and not parsed[1]
    )
    return [
        (
            number,
            os.path.join(directory, segment_name(number)),
            os.path.join(directory, journal_name(number)),
        )
        for number in numbers
    ]


def _read_or_empty(path: str, ops: FileOps) -> bytes:
    try:
        return ops.read(path)
    except FileNotFoundError:
        return b""


def _waiting(lines: list[Line], journal: bytes, segment: int) -> list[SpooledEvent]:
    """The events of ``lines`` that ``journal`` does not say are settled."""
    done, failed = parse_journal(journal)
    return [
        SpooledEvent(
            payload=line.payload,
            attempts=line.attempts + failed.get(line.number, 0),
            spooled_at=line.spooled_at,
            segment=segment,
            number=line.number,
        )
        for line in lines
        if line.number not in done
    ]


def _events_of(
    data: bytes, journal: bytes, segment: int, *, payloads: bool
) -> tuple[list[SpooledEvent], int]:
    lines, skipped = read_lines(data, payloads=payloads)
    return _waiting(lines, journal, segment), skipped


def _log_events(directory: str, ops: FileOps) -> tuple[list[SpooledEvent], int, int]:
    """The waiting events of a log directory, its corrupt lines, and its segments."""
    events: list[SpooledEvent] = []
    corrupt = 0
    files = _segment_files(directory, ops)
    for number, segment, journal in files:
        found, skipped = _events_of(
            _read_or_empty(segment, ops), _read_or_empty(journal, ops), number, payloads=True
        )
        events += found
        corrupt += skipped
    return events, corrupt, len(files)


def read_events(path: str, *, ops: FileOps | None = None) -> tuple[list[SpooledEvent], int]:
    """The events waiting in one log, segment or version 1 file, and its corrupt lines.

    Read without a lock: a live logger may be appending meanwhile.

    Raises:
        OSError: the log cannot be read (``FileNotFoundError`` if it vanished).
    """
    ops = ops if ops is not None else FileOps()
    if stat.S_ISDIR(ops.stat(path).st_mode):
        events, corrupt, _ = _log_events(path, ops)
        return events, corrupt
    number, journal = _journal_of(path)
    return _events_of(ops.read(path), _read_or_empty(journal, ops), number, payloads=True)


def _journal_of(path: str) -> tuple[int, str]:
    """A file's segment number and journal: ``00000001.jnl`` for a segment, else ``<path>.jnl``."""
    parsed = parse_segment_name(os.path.basename(path))
    if parsed is not None and not parsed[1]:
        return parsed[0], os.path.join(os.path.dirname(path), journal_name(parsed[0]))
    return 0, path + ".jnl"


def log_info(path: str, *, probe_locks: bool = True, ops: FileOps | None = None) -> LogInfo | None:
    """What one log holds, without keeping any lock; None if it vanished (or is no log).

    Raises:
        OSError: the log exists but cannot be read.
    """
    ops = ops if ops is not None else FileOps()
    name = os.path.basename(path)
    version = _log_version(name)
    if version == 2:
        session, run_id = parse_run_name(name) or ("?", "?")
    elif version is not None:
        session, run_id = parse_v1_name(name.removesuffix(_TEMP_SUFFIX)) or ("?", "?")
    else:
        version, session, run_id = 1, "?", "?"
    try:
        info = ops.stat(path)
        if version == 2:
            if not stat.S_ISDIR(info.st_mode):
                return None  # a file that merely has a log's name
            files = _segment_files(path, ops)
            events = corrupt = size = 0
            mtime = info.st_mtime
            for number, segment, journal_path in files:
                data = _read_or_empty(segment, ops)
                journal = _read_or_empty(journal_path, ops)
                found, skipped = _events_of(data, journal, number, payloads=False)
                events += len(found)
                corrupt += skipped
                size += len(data) + len(journal)
                for file in (segment, journal_path):
                    with contextlib.suppress(OSError):
                        mtime = max(mtime, ops.stat(file).st_mtime)
            segments = len(files)
        else:
            if not stat.S_ISREG(info.st_mode):
                return None
            data = ops.read(path)
            journal = _read_or_empty(path + ".jnl", ops)
            found, corrupt = _events_of(data, journal, 0, payloads=False)
            events, size, segments, mtime = len(found), len(data) + len(journal), 1, info.st_mtime
        lock = os.path.join(path, LOCK_NAME) if version == 2 else path
        locked = probe_lock(lock) if probe_locks else False
    except FileNotFoundError:
        return None
    return LogInfo(
        path=path,
        name=name,
        version=version,
        session=session,
        run=run_id,
        segments=segments,
        events=events,
        corrupt=corrupt,
        size=size,
        mtime=mtime,
        locked=locked,
    )


def scan(directory: str, *, probe_locks: bool = True, ops: FileOps | None = None) -> list[LogInfo]:
    """Every log in ``directory``, oldest first (leftover temp files among them).

    Raises:
        FileNotFoundError: the directory does not exist.
        OSError: it cannot be listed, or a log in it cannot be read.
    """
    ops = ops if ops is not None else FileOps()
    entries = (
        log_info(c.path, probe_locks=probe_locks, ops=ops) for c in find_candidates(directory, ops)
    )
    return [entry for entry in entries if entry is not None]


# -- one path given on the command line -------------------------------------------


class NotASpoolError(ValueError):
    """A path given as a spool log is none: not a log, a segment or a version 1 file."""

    def __init__(self, path: str, reason: str, *, logs: int = 0) -> None:
        super().__init__(f"{path} ({reason})")
        self.path = path
        self.reason = reason
        """Why, to be read after "is" or in parentheses after the path."""
        self.logs = logs
        """Spool logs in it, when it is a storage directory."""


def resolve_path(directory: str, argument: str) -> str:
    """The path a command line's FILE argument names, absolute.

    An absolute path (``~`` expanded) as given. A relative one (a log's name,
    or ``<log>/<segment>``) within ``directory`` when it exists there, else
    within the current directory when it exists there; when it exists in
    neither, a bare name is taken within ``directory`` and a path within the
    current directory (so that an error names what the user meant).
    """
    expanded = os.path.expanduser(argument)
    if os.path.isabs(expanded):
        return os.path.normpath(expanded)
    inside = os.path.normpath(os.path.join(directory, expanded))
    here = os.path.abspath(expanded)
    if os.path.lexists(inside):
        return inside
    if os.path.lexists(here):
        return here
    bare = os.sep not in argument and (os.altsep is None or os.altsep not in argument)
    return inside if bare else here


Kind = Literal["log", "segment", "v1", "temp", "other"]


@dataclasses.dataclass(frozen=True, slots=True)
class Contents:
    """The waiting events of one log, segment or version 1 file, as read."""

    path: str
    """The path read (symlinks resolved)."""
    kind: Kind
    """``log``: a log directory; ``segment``: one segment file of a log;
    ``v1``: a version 1 file; ``temp``: a version 1 rewrite's temp file;
    ``other``: a file of spool records under another name (a copy)."""
    events: list[SpooledEvent]
    """Valid records not settled in their journal, in the log's order."""
    corrupt: int
    """Torn, undecodable or checksum-failing lines skipped."""
    segments: int
    """Segment files read (1 for a file)."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def read_target(path: str, *, ops: FileOps | None = None) -> Contents:
    """The waiting events of a log directory, a segment file or a version 1 file.

    Read without a lock, so a live logger's log can be read too. A directory
    is a log if it has a log's name (``spool-v2.<session>.<run>``) or holds a
    lock file or a segment; a file is a segment or a version 1 file (or its
    temp leftover) by its name, however damaged its lines (they count as
    corrupt); a file of another name only if at least one of its lines is a
    well-formed spool record (a copy). Anything else is refused before any
    of it is read when it is no directory nor regular file (a FIFO could
    block forever).

    Raises:
        NotASpoolError: ``path`` is no log, segment or version 1 file.
        OSError: it cannot be read (``FileNotFoundError``: it does not exist).
    """
    ops = ops if ops is not None else FileOps()
    path = os.path.realpath(path)
    name = os.path.basename(path)
    mode = ops.stat(path).st_mode
    if stat.S_ISDIR(mode):
        names = ops.listdir(path)
        has_segment = any(
            (parsed := parse_segment_name(entry)) is not None and not parsed[1] for entry in names
        )
        if parse_run_name(name) is None and LOCK_NAME not in names and not has_segment:
            logs = sum(1 for entry in names if _log_version(entry) is not None)
            reason = (
                f"a directory holding {_plural(logs, 'spool log')}, not a log itself"
                if logs
                else "a directory without a lock file or a segment"
            )
            raise NotASpoolError(path, reason, logs=logs)
        events, corrupt, segments = _log_events(path, ops)
        return Contents(path, "log", events, corrupt, segments)
    if not stat.S_ISREG(mode):
        raise NotASpoolError(path, "neither a directory nor a regular file")
    parsed = parse_segment_name(name)
    if parsed is not None and parsed[1]:
        raise NotASpoolError(
            path,
            f"a journal, not a segment: give {segment_name(parsed[0])} or its log directory",
        )
    data = ops.read(path)
    lines, skipped = read_lines(data)
    number, journal_path = _journal_of(path)
    journal = _read_or_empty(journal_path, ops)
    if parsed is not None:
        kind: Kind = "segment"
    else:
        version = _log_version(name)
        kind = "v1" if version == 1 else "temp" if version == 0 else "other"
    if kind == "other" and not lines:
        count = sum(1 for raw in data.split(b"\n") if raw.strip())
        raise NotASpoolError(
            path,
            f"its name is not a spool file name and none of its {_plural(count, 'line')} "
            "is a spool record",
        )
    return Contents(path, kind, _waiting(lines, journal, number), skipped, 1)


class _EventData(msgspec.Struct):
    """The ``event_data`` fields :func:`describe_event` reads, of either event type."""

    event_id: str = "?"
    event_name: str | None = None
    experiment_id: str | None = None
    variation_id: int | None = None
    client_timestamp: str | None = None
    timestamp: str | None = None


class _Envelope(msgspec.Struct):
    """A lenient envelope: any JSON object decodes, missing fields become ``?``."""

    event_type: str = "?"
    event_data: _EventData = msgspec.field(default_factory=_EventData)


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)


@dataclasses.dataclass(frozen=True, slots=True)
class EventSummary:
    """What a person needs to recognise one spooled event."""

    event_type: str
    """``InternalEvent``, ``ExperimentEvent``, ``?`` or ``(undecodable)``."""
    event_id: str
    name: str
    """The ``event_name``, or ``<experiment_id> (variation <n>)`` for an experiment."""
    timestamp: str
    """``client_timestamp`` or ``timestamp``, as written."""


def describe_event(payload: bytes) -> EventSummary:
    """The summary of an envelope; whatever it lacks reads ``?``."""
    try:
        envelope = _ENVELOPE.decode(payload)
    except msgspec.DecodeError:
        envelope = _Envelope(event_type="(undecodable)")
    fields = envelope.event_data
    if fields.experiment_id is not None:
        name = f"{fields.experiment_id} (variation {fields.variation_id})"
    else:
        name = fields.event_name or "?"
    return EventSummary(
        event_type=envelope.event_type,
        event_id=fields.event_id,
        name=name,
        timestamp=fields.client_timestamp or fields.timestamp or "?",
    )


def named_log(path: str, *, ops: FileOps | None = None) -> LogInfo | None:
    """The log ``path`` names, to be deleted whole; None if there is none.

    Only a log's own name will do (a version 2 directory, a version 1 file or
    its temp leftover): never a segment, a journal or any other file, so
    that a slip of the keyboard cannot delete what is not a log.

    Raises:
        NotASpoolError: the name is not a log's.
        OSError: the log exists but cannot be read.
    """
    name = os.path.basename(path)
    if _log_version(name) is None:
        parsed = parse_segment_name(name)
        if parsed is None:
            reason = "not the name of a spool log"
        else:
            reason = f"a {'journal' if parsed[1] else 'segment'} file, not a whole log"
        raise NotASpoolError(path, reason)
    return log_info(path, ops=ops)


# -- purge ---------------------------------------------------------------------------

DeleteOutcome = Literal["deleted", "locked", "missing", "error"]


def delete_log(path: str, *, ops: FileOps | None = None) -> tuple[DeleteOutcome, str]:
    """Delete a log while holding its lock; never one a live logger holds.

    Returns the outcome and, for anything but ``deleted``, why.
    """
    ops = ops if ops is not None else FileOps()
    version2 = parse_run_name(os.path.basename(path)) is not None
    lock = os.path.join(path, LOCK_NAME) if version2 else path
    try:
        # A log directory without its lock file (its run died creating it) gets
        # one, as the takeover does, so that it can be locked and deleted.
        fd = ops.open(lock, os.O_RDWR | (os.O_CREAT if version2 else 0))
    except FileNotFoundError:
        return "missing", "no such file"
    except OSError as exc:
        return "error", exc.strerror or str(exc)
    try:
        if not ops.lock(fd):
            return "locked", "locked by a live logger"
        if not held_lock(fd, lock):
            return "locked", "replaced by a live logger meanwhile"
        if version2:
            for name in ops.listdir(path):
                if name != LOCK_NAME:
                    ops.unlink(os.path.join(path, name))
            ops.unlink(lock)
            ops.rmdir(path)
        else:
            ops.unlink(path)
            with contextlib.suppress(FileNotFoundError):
                ops.unlink(path + ".jnl")
    except FileNotFoundError:
        return "missing", "no such file"
    except OSError as exc:
        return "error", exc.strerror or str(exc)
    finally:
        ops.close_quietly(fd)
    with contextlib.suppress(OSError):
        ops.fsync_dir(os.path.dirname(path) or ".")
    return "deleted", ""


# -- replay --------------------------------------------------------------------------

DEFAULT_SERVICE: Final = "unknown_service"
DEFAULT_REPLAY_TIMEOUT: Final = 60.0
REPLAY_SESSION_PREFIX: Final = "spool-replay-"
"""The session id of a replay's own logger: ``spool-replay-<16 hex digits>``."""
_POLL_INTERVAL: Final = 0.1
# A replay delivers what it finds, however large or old: its logger must not
# trim what it takes over by the limits meant for an application's own runs.
_NO_SIZE_LIMIT: Final = 1 << 62
_NO_AGE_LIMIT: Final = 1000 * 365 * 86400.0


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayResult:
    """What :func:`replay_spool` did."""

    total: int
    """Events waiting in the unlocked logs when the replay started."""
    delivered: int
    """Events the server acknowledged."""
    dropped: int
    """Events dropped for good (refused by the server, or lost to a disk error)."""
    on_disk: int
    """Events still waiting on disk after the replay (in logs not drained)."""
    corrupt_lines: int
    """Lines skipped (and deleted with their segment) because they were corrupt."""
    export_failures: int
    """Failed POSTs during the replay."""
    logs: tuple[str, ...]
    """The logs found unlocked at the start and handed to the replay's logger."""
    skipped: tuple[str, ...]
    """Logs locked by a live logger: left alone."""
    timed_out: bool
    """The timeout passed before the logs were drained."""

    @property
    def ok(self) -> bool:
        """True when every event of the unlocked logs was delivered."""
        return self.dropped == 0 and self.on_disk == 0 and self.delivered >= self.total


def check_replay_target(directory: str, base_url: str) -> None:
    """Refuse now what :func:`replay_spool` would refuse, before anything is read.

    Raises:
        ConfigError: ``base_url`` is invalid, or ``directory`` is unsafe.
    """
    Config(base_url=base_url, storage_dir=directory, enabled=True, strict=False)
    check_storage_dir(directory)


def _dropped(stats: Stats) -> int:
    """Events gone for good, undelivered, according to ``stats``."""
    return (
        stats.dropped_permanent
        + stats.dropped_max_attempts
        + stats.dropped_spool_limit
        + stats.dropped_disk_error
    )


def _all_gone(paths: Iterable[str], ops: FileOps) -> bool:
    """True once none of ``paths`` exists (each was taken over, drained and deleted)."""
    for path in paths:
        try:
            ops.stat(path)
        except FileNotFoundError:
            continue
        return False
    return True


def _events_left(directory: str, session: str, sources: Iterable[str], ops: FileOps) -> int:
    """Events waiting in the sources not drained, and in the replay's own logs (if any)."""
    sources = set(sources)
    try:
        candidates = find_candidates(directory, ops)
    except FileNotFoundError:
        return 0
    left = 0
    for candidate in candidates:
        own = parse_run_name(os.path.basename(candidate.path))
        if candidate.path in sources or (own is not None and own[0] == session):
            entry = log_info(candidate.path, probe_locks=False, ops=ops)
            left += entry.events if entry is not None else 0
    return left


async def replay_spool(
    directory: str,
    base_url: str,
    # Not anyio.fail_after around the call: the timeout bounds only the wait
    # for delivery; leaving the logger and counting what is left come after it.
    timeout: float = DEFAULT_REPLAY_TIMEOUT,  # noqa: ASYNC109
    *,
    progress: Callable[[int, int], None] | None = None,
    service_name: str = DEFAULT_SERVICE,
    shutdown_timeout: float = 5.0,
    poll_interval: float = _POLL_INTERVAL,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReplayResult:
    """Deliver every unlocked log of ``directory`` to ``base_url`` now.

    An ordinary logger is opened on ``directory``, with the session id
    ``spool-replay-<hex>``, no attempt limit, no size or age limit and no
    pause between drain chunks: at start it takes over every log no live
    logger holds (version 1 files included) and drains it in place. Its
    stats are polled every ``poll_interval`` seconds, and ``progress(done,
    total)`` called each time, until every log found unlocked is gone
    (drained and deleted) or ``timeout`` seconds have passed; what is not
    delivered then stays where it was, for a later run. Logs locked by a live
    logger are listed in ``skipped`` and never touched.

    ``transport`` is the HTTP seam of ``open_event_logger``, for tests.

    Raises:
        ConfigError: ``base_url`` or ``service_name`` is invalid, or
            ``directory`` is unsafe (the SDK would not replay it).
        OSError: ``directory`` exists but cannot be listed, or a log in it
            cannot be read.
    """
    session = f"{REPLAY_SESSION_PREFIX}{uuid.uuid4().hex[:16]}"
    config = Config(
        base_url=base_url,
        storage_dir=directory,
        session_id=session,
        service_name=service_name,
        max_attempts=None,
        max_spool_bytes=_NO_SIZE_LIMIT,
        max_spool_age=_NO_AGE_LIMIT,
        # No live events to be fair to: the drain is not paced (several
        # chunks in flight, docs/delivery.md).
        batch_delay=0.0,
        shutdown_timeout=shutdown_timeout,
        export_timeout=min(10.0, max(timeout, 1.0)),
        # The user asked for this delivery explicitly: DO_NOT_TRACK or
        # EVENTLOG_STRICT in the environment must not turn it into a no-op.
        enabled=True,
        strict=False,
    )
    directory = config.storage_dir
    seams = _seams.current()
    ops = seams.file_ops if seams.file_ops is not None else FileOps()
    runner = seams.reader if seams.reader is not None else ThreadRunner()
    # A logger would run without its spool on an unsafe directory, and the
    # replay would wait for nothing: refuse it now.
    await runner(partial(check_storage_dir, directory))
    try:
        entries = await runner(partial(scan, directory, ops=ops))
    except FileNotFoundError:
        entries = []
    logs = [e for e in entries if e.version != 0]
    ready = [e for e in logs if not e.locked]
    sources = tuple(e.path for e in ready)
    skipped = tuple(e.path for e in logs if e.locked)
    if not sources:
        return ReplayResult(
            total=0,
            delivered=0,
            dropped=0,
            on_disk=0,
            corrupt_lines=0,
            export_failures=0,
            logs=(),
            skipped=skipped,
            timed_out=False,
        )
    # Leftover temp files are removed by the takeover too: wait for them as well.
    waiting = [*sources, *(e.path for e in entries if e.version == 0 and not e.locked)]
    total = sum(e.events for e in ready)
    if progress is not None:
        progress(0, total)
    async with open_event_logger(config, transport=transport) as log:
        with anyio.move_on_after(timeout) as scope:
            while True:
                stats = log.stats
                done = stats.replayed + _dropped(stats)
                if progress is not None:
                    progress(min(done, total), total)
                # An empty spool alone is not enough: it is empty before the
                # takeover has run too, hence the check that the logs are gone.
                if stats.spool_events == 0 and await runner(partial(_all_gone, waiting, ops)):
                    break
                await anyio.sleep(poll_interval)
    stats = log.stats
    return ReplayResult(
        total=total,
        delivered=stats.replayed,
        dropped=_dropped(stats),
        on_disk=await runner(partial(_events_left, directory, session, sources, ops)),
        corrupt_lines=stats.spool_corrupt_lines,
        export_failures=stats.export_failures,
        logs=sources,
        skipped=skipped,
        timed_out=scope.cancelled_caught,
    )
