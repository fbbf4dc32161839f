"""``eventlog spool ls|show|replay|purge``: inspect and operate the spool (design §5, §8).

The spool belongs to the loggers that write it, so every subcommand follows
their locking rule: a file flocked by a live logger is read at most, never
changed. ``ls`` only probes the lock (taken and released at once), ``show``
takes none, ``replay`` lets an ordinary logger take over the unlocked files,
and ``purge`` deletes a file only while holding its lock.

``replay`` is :func:`replay_spool` (an async function, usable from tests and
programs) run under ``trio.run`` with a progress bar.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import functools
import os
import stat
import sys
import uuid
from typing import TYPE_CHECKING, Final, Literal

import anyio
import msgspec
import trio

from eventlog._cli_types import positive_int, positive_seconds, service_name
from eventlog._clock import SystemClock
from eventlog._config import Config, default_storage_dir
from eventlog._exceptions import ConfigError
from eventlog._logger import open_event_logger
from eventlog._replay import find_spool_files
from eventlog._spool import FILE_PREFIX, TEMP_SUFFIX, parse_file_name, parse_lines
from eventlog._stats import Counters

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from rich.console import Console

    from eventlog._stats import Stats

__all__ = [
    "ReplayResult",
    "SpoolEntry",
    "add_spool_parser",
    "replay_spool",
    "scan_spool",
]

DEFAULT_SERVICE: Final = "unknown_service"
DEFAULT_REPLAY_TIMEOUT: Final = 60.0
POLL_INTERVAL: Final = 0.1
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
# The replay logger's own spool file, where undelivered events end up, is
# recognised by this session id prefix.
_REPLAY_SESSION_PREFIX: Final = "spool-replay-"


# -- reading the directory -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spool file (or a rewrite's leftover temp file) as found on disk."""

    path: str
    name: str
    session: str
    run: str
    temp: bool
    events: int
    """Valid lines (events that a replay would deliver)."""
    corrupt: int
    """Torn, undecodable or checksum-failing lines."""
    size: int
    mtime: float
    locked: bool
    """Held by a live logger at the time of the probe."""

    def as_json(self, now: float) -> dict[str, object]:
        """The entry as JSON-ready values, its age taken at ``now``."""
        return {
            "file": self.name,
            "path": self.path,
            "kind": "temp" if self.temp else "spool",
            "session": self.session,
            "run": self.run,
            "events": self.events,
            "corrupt": self.corrupt,
            "bytes": self.size,
            "mtime": self.mtime,
            "age_seconds": round(max(now - self.mtime, 0.0), 3),
            "locked": self.locked,
        }


def _try_lock(fd: int) -> bool:
    """Take an exclusive non-blocking flock on ``fd``; False if someone else holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _probe_locked(fd: int) -> bool:
    """True if a live logger holds the file: lock and unlock at once.

    A probe that cannot tell (e.g. a filesystem without flock) says locked,
    so that nothing acts on a file that may be live.
    """
    try:
        if not _try_lock(fd):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        return True
    return False


def _read_all(fd: int) -> bytes:
    """Everything from ``fd``'s position to its end."""
    return b"".join(iter(lambda: os.read(fd, 1 << 20), b""))


def _split_name(name: str) -> tuple[str, str, bool] | None:
    """``(session, run, is_temp)`` of a spool or temp file name, else None."""
    temp = name.endswith(TEMP_SUFFIX)
    parsed = parse_file_name(name[: -len(TEMP_SUFFIX)] if temp else name)
    return None if parsed is None else (parsed[0], parsed[1], temp)


def read_entry(path: str, *, probe_lock: bool = True) -> SpoolEntry | None:
    """Read and count ``path`` without keeping any lock; None if it vanished.

    With ``probe_lock`` the file's flock is tested on a separate descriptor
    and released at once; the content is read without a lock either way.
    """
    name = os.path.basename(path)
    session, run, temp = _split_name(name) or ("?", "?", name.endswith(TEMP_SUFFIX))
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        stat = os.fstat(fd)
        data = _read_all(fd)
        locked = _probe_locked(fd) if probe_lock else False
    except OSError:
        return None
    finally:
        os.close(fd)
    counters = Counters()
    events = len(parse_lines(data, counters))
    return SpoolEntry(
        path=path,
        name=name,
        session=session,
        run=run,
        temp=temp,
        events=events,
        corrupt=counters.spool_corrupt_lines,
        size=len(data),
        mtime=stat.st_mtime,
        locked=locked,
    )


def scan_spool(directory: str, *, probe_locks: bool = True) -> list[SpoolEntry]:
    """Every spool file of ``directory`` (oldest first), then leftover temp files.

    Raises:
        FileNotFoundError: the directory does not exist.
        OSError: it cannot be listed.
    """
    for attempt in range(3):
        try:
            paths, temps = find_spool_files(directory)
            break
        except FileNotFoundError:
            # find_spool_files stats each entry after listing: a file a live
            # logger removes in between raises too, which is no missing directory.
            if attempt == 2 or not os.path.isdir(directory):
                raise
    entries = (read_entry(path, probe_lock=probe_locks) for path in [*paths, *temps])
    return [entry for entry in entries if entry is not None]


# -- replay --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayResult:
    """What :func:`replay_spool` did."""

    total: int
    """Valid events in the unlocked spool files when the replay started."""
    delivered: int
    """Events the server acknowledged."""
    dropped: int
    """Events dropped for good (refused by the server, or lost to a disk error)."""
    on_disk: int
    """Events still in spool files after the replay (ours and files not taken over)."""
    corrupt_lines: int
    """Lines skipped (and discarded with their file) because they were corrupt."""
    export_failures: int
    """Failed POSTs during the replay."""
    files: tuple[str, ...]
    """The spool files found unlocked at the start and handed to the replay logger."""
    skipped: tuple[str, ...]
    """Spool files locked by a live logger: left alone."""
    timed_out: bool
    """The timeout passed before the spool was empty."""

    @property
    def ok(self) -> bool:
        """True when every event of the unlocked files was delivered."""
        return self.dropped == 0 and self.on_disk == 0 and self.delivered >= self.total


def _dropped(stats: Stats) -> int:
    """Events gone for good, undelivered, according to ``stats``."""
    return (
        stats.dropped_permanent
        + stats.dropped_max_attempts
        + stats.dropped_spool_limit
        + stats.dropped_disk_error
    )


def _all_gone(paths: Iterable[str]) -> bool:
    """True once none of ``paths`` exists (each has been taken over and removed)."""
    return not any(os.path.lexists(path) for path in paths)


def _events_left(directory: str, session: str, sources: Iterable[str]) -> int:
    """Valid events in the replay logger's leftover file and in sources not taken over."""
    left = 0
    prefix = f"{FILE_PREFIX}{session}."
    with contextlib.suppress(OSError):
        paths, _ = find_spool_files(directory)
        for path in paths:
            if os.path.basename(path).startswith(prefix):
                entry = read_entry(path, probe_lock=False)
                left += entry.events if entry is not None else 0
    for path in sources:
        entry = read_entry(path, probe_lock=False)
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
    poll_interval: float = POLL_INTERVAL,
) -> ReplayResult:
    """Deliver every unlocked spool file of ``directory`` to ``base_url`` now.

    An ordinary logger is opened on ``directory`` with no attempt limit: at
    start it takes over every unlocked file into its own spool and drains it
    (design §5). Its stats are polled every ``poll_interval`` seconds, and
    ``progress(done, total)`` called each time, until the spool is empty or
    ``timeout`` seconds have passed; leaving the logger then keeps whatever is
    undelivered on disk, in a file of the session ``spool-replay-<hex>``.
    Files locked by a live logger are listed in ``skipped`` and never touched.

    Raises:
        ConfigError: ``base_url`` (or ``service_name``) is invalid.
        OSError: ``directory`` exists but cannot be listed.
    """
    session = f"{_REPLAY_SESSION_PREFIX}{uuid.uuid4().hex[:16]}"
    config = Config(
        base_url=base_url,
        storage_dir=directory,
        session_id=session,
        service_name=service_name,
        max_attempts=None,
        shutdown_timeout=shutdown_timeout,
        export_timeout=min(10.0, max(timeout, 1.0)),
        # The user asked for this delivery explicitly: DO_NOT_TRACK or
        # EVENTLOG_STRICT in the environment must not turn it into a no-op.
        enabled=True,
        strict=False,
    )
    directory = config.storage_dir
    try:
        entries = scan_spool(directory)
    except FileNotFoundError:
        entries = []
    live = [e for e in entries if not e.temp]
    sources = [e.path for e in live if not e.locked]
    skipped = tuple(e.path for e in live if e.locked)
    total = sum(e.events for e in live if not e.locked)
    if not sources:
        return ReplayResult(
            total=0,
            delivered=0,
            dropped=0,
            on_disk=0,
            corrupt_lines=0,
            export_failures=0,
            files=(),
            skipped=skipped,
            timed_out=False,
        )
    if progress is not None:
        progress(0, total)
    async with open_event_logger(config) as log:
        with anyio.move_on_after(timeout) as scope:
            while True:
                stats = log.stats
                done = stats.replayed + _dropped(stats)
                if progress is not None:
                    progress(min(done, total), total)
                # Empty spool alone is not enough: it is empty too before the
                # takeover has run, hence the check that the sources are gone.
                if stats.spool_bytes == 0 and done >= total and _all_gone(sources):
                    break
                await anyio.sleep(poll_interval)
    stats = log.stats
    return ReplayResult(
        total=total,
        delivered=stats.replayed,
        dropped=_dropped(stats),
        on_disk=_events_left(directory, session, sources),
        corrupt_lines=stats.spool_corrupt_lines,
        export_failures=stats.export_failures,
        files=tuple(sources),
        skipped=skipped,
        timed_out=scope.cancelled_caught,
    )


# -- purge ---------------------------------------------------------------------

DeleteOutcome = Literal["deleted", "locked", "missing", "error"]


def delete_unlocked(path: str) -> tuple[DeleteOutcome, str]:
    """Delete ``path`` while holding its flock; never a file a live logger holds.

    Returns the outcome and, for anything but ``deleted``, why.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return "missing", "no such file"
    except OSError as exc:
        return "error", exc.strerror or str(exc)
    try:
        if not _try_lock(fd):
            return "locked", "locked by a live logger"
        # A live logger may have renamed a new file into place between our
        # open and our lock: then we hold the old inode and the path is theirs.
        held, current = os.fstat(fd), os.stat(path, follow_symlinks=False)
        if held.st_nlink == 0 or (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
            return "locked", "replaced by a live logger meanwhile"
        os.unlink(path)
    except FileNotFoundError:
        return "missing", "no such file"
    except OSError as exc:
        return "error", exc.strerror or str(exc)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return "deleted", ""


# -- command line --------------------------------------------------------------


def _directory(args: argparse.Namespace) -> str:
    """``--dir``, else the default storage directory of ``--service``; absolute."""
    raw: str | None = args.dir
    chosen = raw if raw else default_storage_dir(args.service)
    return os.path.abspath(os.path.expanduser(chosen))


def _resolve(directory: str, file: str) -> str:
    """A FILE argument: a path if it has a separator, else a name within the directory."""
    if os.sep in file or (os.altsep is not None and os.altsep in file):
        return os.path.abspath(os.path.expanduser(file))
    inside = os.path.join(directory, file)
    if os.path.lexists(inside) or not os.path.lexists(file):
        return inside
    return os.path.abspath(file)


def format_age(seconds: float) -> str:
    """A short human age: ``42s``, ``5m 03s``, ``3h 07m``, ``2d 4h``."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _plural(count: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _write_json(value: object) -> None:
    """Write ``value`` to stdout as one JSON line."""
    # Straight to stdout: rich would wrap or highlight what must stay one JSON value a line.
    sys.stdout.write(msgspec.json.encode(value).decode("utf-8") + "\n")
    sys.stdout.flush()


def _confirm(console: Console, question: str) -> bool:
    """Ask ``question [y/N]`` on the terminal; EOF counts as no."""
    try:
        answer = console.input(f"{question} \\[y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def _scan_or_report(
    directory: str, err: Console, out: Console, *, quiet: bool
) -> list[SpoolEntry] | None:
    """The entries of ``directory``; None (after a message) if there is nothing to show."""
    from rich.markup import escape

    try:
        entries = scan_spool(directory)
    except FileNotFoundError:
        (err if quiet else out).print(
            f"No spool directory at {escape(directory)}: nothing spooled."
        )
        return None
    except OSError as exc:
        err.print(f"[red]error:[/] cannot list {escape(directory)}: {escape(str(exc))}")
        raise
    if not entries:
        (err if quiet else out).print(f"No spool files in {escape(directory)}.")
        return None
    return entries


def _cmd_ls(args: argparse.Namespace) -> int:
    """``eventlog spool ls``."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out, err = Console(), Console(stderr=True)
    directory = _directory(args)
    try:
        entries = _scan_or_report(directory, err, out, quiet=args.json)
    except OSError:
        return 1
    if entries is None:
        return 0
    now = SystemClock().wall_time()
    if args.json:
        for entry in entries:
            _write_json(entry.as_json(now))
        return 0
    table = Table(title=f"Spool files in {escape(directory)}", title_justify="left")
    table.add_column("session", overflow="fold")
    table.add_column("run", overflow="fold")
    table.add_column("events", justify="right")
    table.add_column("corrupt", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("age", justify="right")
    table.add_column("locked")
    for entry in entries:
        table.add_row(
            escape(entry.session),
            escape(entry.run) + (" (temp)" if entry.temp else ""),
            str(entry.events),
            str(entry.corrupt),
            str(entry.size),
            format_age(now - entry.mtime),
            "yes" if entry.locked else "no",
        )
    out.print(table)
    spool = [e for e in entries if not e.temp]
    out.print(
        f"{_plural(len(spool), 'spool file')}, {_plural(sum(e.events for e in spool), 'event')}, "
        f"{sum(e.locked for e in spool)} locked; {_plural(len(entries) - len(spool), 'temp file')}."
    )
    return 0


class _EventData(msgspec.Struct):
    """The ``event_data`` fields ``show`` prints, of either event type; all optional."""

    event_id: str = "?"
    event_name: str | None = None
    experiment_id: str | None = None
    variation_id: int | None = None
    client_timestamp: str | None = None
    timestamp: str | None = None


class _Envelope(msgspec.Struct):
    """A lenient envelope: ``show`` prints what it can of any JSON object."""

    event_type: str = "?"
    event_data: _EventData = msgspec.field(default_factory=_EventData)


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)


def _not_spool(path: str, data: bytes, records: int) -> str | None:
    """Why ``path`` is no spool file, or None.

    A file named like a spool (or temp) file is one, however damaged its
    lines: ``show`` then counts them as corrupt. Any other file is one only
    if at least one of its lines is a well-formed spool record.
    """
    if records or _split_name(os.path.basename(path)) is not None:
        return None
    lines = sum(1 for line in data.split(b"\n") if line.strip())
    return (
        f"its name is not a spool file name and none of its {_plural(lines, 'line')} "
        "is a spool record"
    )


def _cmd_show(args: argparse.Namespace) -> int:
    """``eventlog spool show FILE``: read-only, no lock taken."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out, err = Console(), Console(stderr=True, soft_wrap=True)
    path = _resolve(_directory(args), args.file)
    try:
        # A FIFO or a device is no spool file, and reading one could block forever.
        if not stat.S_ISREG(os.stat(path).st_mode):
            err.print(f"[red]error:[/] not a spool file: {escape(path)} is not a regular file")
            return 2
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {escape(path)}: {escape(exc.strerror or str(exc))}")
        return 1
    counters = Counters()
    records = parse_lines(data, counters)
    why = _not_spool(path, data, len(records))
    if why is not None:
        err.print(f"[red]error:[/] not a spool file: {escape(path)} ({escape(why)})")
        return 2
    limit: int | None = args.limit
    shown = records if limit is None else records[:limit]
    if args.json:
        for record in shown:
            sys.stdout.write(record.payload.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
    else:
        table = Table(title=escape(os.path.basename(path)), title_justify="left")
        for column in ("#", "event_type", "event_id", "name", "timestamp", "attempts"):
            # Ids and names fold; the short fixed-format fields stay whole.
            table.add_column(column, overflow="fold", no_wrap=column not in ("event_id", "name"))
        for index, record in enumerate(shown, 1):
            try:
                envelope = _ENVELOPE.decode(record.payload)
            except msgspec.DecodeError:
                envelope = _Envelope(event_type="(undecodable)")
            fields = envelope.event_data
            if fields.experiment_id is not None:
                name = f"{fields.experiment_id} (variation {fields.variation_id})"
            else:
                name = fields.event_name or "?"
            table.add_row(
                str(index),
                escape(envelope.event_type),
                escape(fields.event_id),
                escape(name),
                escape(fields.client_timestamp or fields.timestamp or "?"),
                str(record.attempts),
            )
        out.print(table)
    summary = err if args.json else out
    more = len(records) - len(shown)
    summary.print(
        _plural(len(records), "event")
        + (f" ({more} not shown, see --limit)" if more else "")
        + f", {_plural(counters.spool_corrupt_lines, 'corrupt line')} skipped."
    )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    """``eventlog spool replay``: deliver the unlocked files now."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    out, err = Console(), Console(stderr=True)
    directory = _directory(args)
    try:
        Config(base_url=args.base_url, storage_dir=directory, enabled=True, strict=False)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    try:
        entries = _scan_or_report(directory, err, out, quiet=False)
    except OSError:
        return 1
    if entries is None:
        return 0
    live = [e for e in entries if not e.temp]
    ready = [e for e in live if not e.locked]
    if not ready:
        for entry in live:
            out.print(f"skipped (locked by a live logger): {escape(entry.name)}")
        out.print("Nothing to replay: every spool file is held by a live logger.")
        return 0
    total = sum(e.events for e in ready)
    question = (
        f"Deliver {_plural(total, 'event')} from {_plural(len(ready), 'file')} "
        f"to {escape(args.base_url)}?"
    )
    # Delivering is not destructive, so scripts need no --yes; a person is asked.
    if not args.yes and sys.stdin.isatty() and not _confirm(out, question):
        out.print("Nothing sent.")
        return 1
    columns = (
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=out) as bar:
            task = bar.add_task("replay", total=total)

            def show(done: int, of: int) -> None:
                """Move the bar to ``done`` of ``of`` events."""
                bar.update(task, completed=done, total=of)

            result = trio.run(
                functools.partial(
                    replay_spool,
                    directory,
                    args.base_url,
                    args.timeout,
                    progress=show,
                    service_name=args.service,
                )
            )
    except KeyboardInterrupt:
        err.print("Interrupted: undelivered events stay on disk.")
        return 130
    for path in result.skipped:
        out.print(f"skipped (locked by a live logger): {escape(os.path.basename(path))}")
    out.print(
        f"Delivered {result.delivered} of {result.total} events; "
        f"{result.on_disk} still on disk; {result.dropped} dropped"
        + (f"; {result.corrupt_lines} corrupt lines discarded" if result.corrupt_lines else "")
        + (f"; {result.export_failures} failed POSTs" if result.export_failures else "")
        + "."
    )
    if result.timed_out and not result.ok:
        err.print(f"Timed out after {args.timeout:g}s; run it again once the server is up.")
    return 0 if result.ok else 1


def _cmd_purge(args: argparse.Namespace) -> int:
    """``eventlog spool purge``: delete unlocked spool files after confirmation."""
    from rich.console import Console
    from rich.markup import escape

    out, err = Console(), Console(stderr=True)
    directory = _directory(args)
    failed = False
    if args.files:
        candidates: list[SpoolEntry] = []
        for file in dict.fromkeys(args.files):
            path = _resolve(directory, file)
            if _split_name(os.path.basename(path)) is None:
                err.print(f"refused: {escape(file)} is not a spool file name")
                failed = True
                continue
            entry = read_entry(path)
            if entry is None:
                err.print(f"not found: {escape(path)}")
                failed = True
                continue
            candidates.append(entry)
    else:
        try:
            found = _scan_or_report(directory, err, out, quiet=False)
        except OSError:
            return 1
        if found is None:
            return 0
        candidates = found
    for entry in candidates:
        if entry.locked:
            out.print(f"skipped (locked by a live logger): {escape(entry.name)}")
            failed = True
    targets = [e for e in candidates if not e.locked]
    if not targets:
        if candidates:
            out.print("Nothing deleted.")
        return 1 if failed else 0
    events = sum(e.events for e in targets)
    question = f"Delete {_plural(len(targets), 'file')} ({_plural(events, 'event')})?"
    if not args.yes:
        if not sys.stdin.isatty():
            err.print(f"{question} Refused: no terminal to confirm on; pass --yes.")
            return 1
        if not _confirm(out, question):
            out.print("Nothing deleted.")
            return 1
    deleted = deleted_events = 0
    for entry in targets:
        outcome, why = delete_unlocked(entry.path)
        if outcome == "deleted":
            deleted += 1
            deleted_events += entry.events
            out.print(f"deleted {escape(entry.name)} ({entry.events} events)")
        else:
            failed = True
            out.print(f"skipped {escape(entry.name)}: {escape(why)}")
    out.print(f"Deleted {_plural(deleted, 'file')} ({_plural(deleted_events, 'event')}).")
    return 1 if failed else 0


def add_spool_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `spool` with subcommands ls|show|replay|purge on the given subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        metavar="PATH",
        help="spool directory (default: the storage directory of --service, "
        "$EVENTLOG_HOME/telemetry when set)",
    )
    common.add_argument(
        "--service",
        metavar="NAME",
        type=service_name,
        default=DEFAULT_SERVICE,
        help=f"service whose default storage directory to use (default: {DEFAULT_SERVICE})",
    )
    spool = subparsers.add_parser(
        "spool",
        help="inspect and operate the on-disk spool",
        description="Inspect and operate the spool of undelivered events. Files held by a "
        "live logger are never changed.",
    )
    commands = spool.add_subparsers(dest="spool_command", metavar="COMMAND", required=True)

    ls = commands.add_parser(
        "ls", parents=[common], help="list spool files", description="List spool files."
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per file")
    ls.set_defaults(func=_cmd_ls)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="print the events of one spool file",
        description="Print the events of one spool file (read-only, also for locked files). "
        "Exit status 2 for a file that is not a spool file.",
    )
    show.add_argument("file", metavar="FILE", help="a path, or a file name within --dir")
    show.add_argument("--limit", type=positive_int, metavar="N", help="show the first N events")
    show.add_argument("--json", action="store_true", help="print the raw envelopes, one a line")
    show.set_defaults(func=_cmd_show)

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="deliver the unlocked spool files now",
        description="Deliver every spool file no live logger holds; what cannot be "
        "delivered stays on disk. Exit status 1 unless everything was delivered.",
    )
    replay.add_argument("--base-url", required=True, metavar="URL", help="the collector")
    replay.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_REPLAY_TIMEOUT,
        metavar="SECONDS",
        help=f"give up after this long (default: {DEFAULT_REPLAY_TIMEOUT:g})",
    )
    replay.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    replay.set_defaults(func=_cmd_replay)

    purge = commands.add_parser(
        "purge",
        parents=[common],
        help="delete spool files",
        description="Delete the given spool files, or all of them; locked files are refused.",
    )
    purge.add_argument("files", nargs="*", metavar="FILE", help="paths or names within --dir")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=_cmd_purge)
