"""``eventlog spool ls|show|replay|purge``: inspect and operate the spool (docs/cli.md).

Presentation only: arguments, text and exit statuses. What is read, deleted
or replayed, and how the logs are locked, is :mod:`eventlog._spool._admin`,
shared with the SDK. The spool belongs to the loggers that write it, so
every subcommand follows their locking rule: a log flocked by a live logger
is read at most, never changed. ``ls`` only probes the locks (taken and
released at once), ``show`` takes none, ``replay`` lets an ordinary logger
take over the unlocked logs, and ``purge`` deletes a whole log only while
holding its lock.

These commands need neither rich nor trio (the core install): without rich
they print plain text, and ``replay`` runs on trio when it is installed,
else on asyncio.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import TYPE_CHECKING, Final

import anyio
import msgspec

from eventlog._cli._errors import is_interrupt
from eventlog._cli._output import Column, Stream, confirm
from eventlog._cli._types import positive_int, positive_seconds, service_name
from eventlog._clock import SystemClock
from eventlog._exceptions import ConfigError
from eventlog._spool._admin import (
    DEFAULT_REPLAY_TIMEOUT,
    DEFAULT_SERVICE,
    LogInfo,
    NotASpoolError,
    SpoolDirectory,
    check_replay_target,
    delete_log,
    describe_event,
    named_log,
    read_target,
    replay_spool,
    resolve_path,
    scan,
    spool_directory,
)

if TYPE_CHECKING:
    from eventlog._spool._admin import ReplayResult

__all__ = ["add_spool_parser", "async_backend", "explain_directory", "format_age"]


def _streams() -> tuple[Stream, Stream]:
    return Stream.to(sys.stdout), Stream.to(sys.stderr)


def _directory(args: argparse.Namespace) -> SpoolDirectory:
    """``--dir``, else the default storage directory of ``--service``."""
    return spool_directory(args.dir, args.service)


def explain_directory(where: SpoolDirectory) -> str:
    """Which directory a command looks in and why, in a line or two."""
    if where.origin == "dir":
        return f"Spool directory (--dir): {where.path}"
    if where.origin == "EVENTLOG_HOME":
        rule = "$EVENTLOG_HOME/telemetry: the default storage_dir of every service while "
        rule += "EVENTLOG_HOME is set"
    else:
        base = "$XDG_STATE_HOME" if where.origin == "XDG_STATE_HOME" else "~/.local/state"
        rule = (
            f"{base}/eventlog/{where.service_name}/telemetry: the default storage_dir of "
            f"service_name {where.service_name!r} (--service)"
        )
        if where.origin == "home":
            rule += ", as XDG_STATE_HOME is unset"
    return (
        f"Spool directory: {where.path}\n"
        f"  ({rule}; for an application that sets storage_dir, give it as --dir)"
    )


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
    """``1 log``, ``2 logs``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _write_json(value: object) -> None:
    """Write ``value`` to stdout as one JSON line."""
    sys.stdout.write(msgspec.json.encode(value).decode("utf-8") + "\n")
    sys.stdout.flush()


def async_backend() -> str:
    """``trio`` when it is installed (the ``cli`` extra), else ``asyncio``."""
    try:
        import trio  # noqa: F401
    except ImportError:
        return "asyncio"
    return "trio"


def _scan_or_report(
    directory: str, err: Stream, out: Stream, *, quiet: bool
) -> list[LogInfo] | None:
    """The logs of ``directory``; None (after a message) if there is nothing to show.

    Raises:
        OSError: after a message, when the directory cannot be listed or read.
    """
    try:
        entries = scan(directory)
    except FileNotFoundError:
        (err if quiet else out).say(f"No spool directory at {directory}: nothing spooled.")
        return None
    except OSError as exc:
        err.error(f"cannot list {directory}: {exc}")
        raise
    if not entries:
        (err if quiet else out).say(f"No spool logs in {directory}.")
        return None
    return entries


_FORMATS: Final = {2: "v2", 1: "v1", 0: "v1 temp"}
_LS_COLUMNS: Final = (
    Column("format"),
    *(Column(name, numeric=True) for name in ("segments", "events", "corrupt", "bytes", "age")),
    Column("locked"),
    Column("log", token=True),
)


def _cmd_ls(args: argparse.Namespace) -> int:
    """``eventlog spool ls``."""
    out, err = _streams()
    where = _directory(args)
    (err if args.json else out).say(explain_directory(where))
    try:
        entries = _scan_or_report(where.path, err, out, quiet=args.json)
    except OSError:
        return 1
    if entries is None:
        return 0
    now = SystemClock().wall_time()
    if args.json:
        for entry in entries:
            _write_json(entry.as_json(now))
        return 0
    rows = [
        (
            _FORMATS[entry.version],
            str(entry.segments),
            str(entry.events),
            str(entry.corrupt),
            str(entry.size),
            format_age(now - entry.mtime),
            "yes" if entry.locked else "no",
            entry.name,
        )
        for entry in entries
    ]
    out.table(_LS_COLUMNS, rows)
    logs = [e for e in entries if e.version != 0]
    out.say(
        f"{_plural(len(logs), 'log')}, {_plural(sum(e.events for e in logs), 'event')}, "
        f"{sum(e.locked for e in logs)} locked; "
        f"{_plural(len(entries) - len(logs), 'temp file')}."
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    """``eventlog spool show LOG``: read-only, no lock taken."""
    out, err = _streams()
    path = resolve_path(_directory(args).path, args.file)
    try:
        contents = read_target(path)
    except NotASpoolError as exc:
        hint = "; `eventlog spool ls --dir` lists them" if exc.logs else ""
        err.error(f"not a spool log: {path} ({exc.reason}{hint})")
        return 2
    except OSError as exc:
        err.error(f"cannot read {path}: {exc.strerror or exc}")
        return 1
    events = contents.events
    limit: int | None = args.limit
    shown = events if limit is None else events[:limit]
    if args.json:
        for event in shown:
            sys.stdout.write(event.payload.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
    else:
        out.say(f"Waiting in {contents.path}")
        segments = contents.kind == "log"
        columns = [
            Column("#", numeric=True),
            *([Column("segment", numeric=True)] if segments else []),
            Column("attempts", numeric=True),
            Column("event_type"),
            Column("timestamp"),
            Column("event_id", token=True),
            Column("name", token=True),
        ]
        rows = []
        for index, event in enumerate(shown, 1):
            summary = describe_event(event.payload)
            rows.append(
                (
                    str(index),
                    *([str(event.segment)] if segments else []),
                    str(event.attempts),
                    summary.event_type,
                    summary.timestamp,
                    summary.event_id,
                    summary.name,
                )
            )
        out.table(columns, rows)
    summary_stream = err if args.json else out
    more = len(events) - len(shown)
    where = f" in {_plural(contents.segments, 'segment')}" if contents.kind == "log" else ""
    summary_stream.say(
        _plural(len(events), "event")
        + where
        + (f" ({more} not shown, see --limit)" if more else "")
        + f", {_plural(contents.corrupt, 'corrupt line')} skipped."
    )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    """``eventlog spool replay``: deliver the unlocked logs now."""
    out, err = _streams()
    directory = _directory(args).path
    try:
        check_replay_target(directory, args.base_url)
    except ConfigError as exc:
        err.error(str(exc))
        return 2
    try:
        entries = _scan_or_report(directory, err, out, quiet=False)
    except OSError:
        return 1
    if entries is None:
        return 0
    logs = [e for e in entries if e.version != 0]
    ready = [e for e in logs if not e.locked]
    if not ready:
        for entry in logs:
            out.say(f"skipped (locked by a live logger): {entry.name}")
        out.say("Nothing to replay: every spool log is held by a live logger.")
        return 0
    total = sum(e.events for e in ready)
    what = f"{_plural(total, 'event')} from {_plural(len(ready), 'log')} to {args.base_url}"
    # Delivering is not destructive, so scripts need no --yes; a person is asked.
    if not args.yes and sys.stdin.isatty() and not confirm(f"Deliver {what}?"):
        out.say("Nothing sent.")
        return 1
    out.say(f"Replaying {what}.")
    try:
        with out.progress("replaying", total) as show:
            result: ReplayResult = anyio.run(
                functools.partial(
                    replay_spool,
                    directory,
                    args.base_url,
                    args.timeout,
                    progress=show,
                    service_name=args.service,
                ),
                backend=async_backend(),
            )
    except OSError as exc:
        err.error(f"cannot read {directory}: {exc}")
        return 1
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        err.say("Interrupted: undelivered events stay on disk.")
        return 130
    for path in result.skipped:
        out.say(f"skipped (locked by a live logger): {os.path.basename(path)}")
    out.say(
        f"Delivered {result.delivered} of {result.total} events; "
        f"{result.on_disk} still on disk; {result.dropped} dropped"
        + (
            f"; {_plural(result.corrupt_lines, 'corrupt line')} discarded"
            if result.corrupt_lines
            else ""
        )
        + (f"; {_plural(result.export_failures, 'failed POST')}" if result.export_failures else "")
        + "."
    )
    if result.timed_out and not result.ok:
        err.say(f"Timed out after {args.timeout:g}s; run it again once the server is up.")
    return 0 if result.ok else 1


def _cmd_purge(args: argparse.Namespace) -> int:
    """``eventlog spool purge``: delete unlocked logs whole, after confirmation."""
    out, err = _streams()
    directory = _directory(args).path
    failed = False
    if args.files:
        candidates: list[LogInfo] = []
        for file in dict.fromkeys(args.files):
            path = resolve_path(directory, file)
            try:
                entry = named_log(path)
            except NotASpoolError as exc:
                err.say(f"refused: {file} is {exc.reason}")
                failed = True
                continue
            except OSError as exc:
                err.say(f"cannot read {path}: {exc.strerror or exc}")
                failed = True
                continue
            if entry is None:
                err.say(f"not found: {path}")
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
            out.say(f"skipped (locked by a live logger): {entry.name}")
            failed = True
    targets = [e for e in candidates if not e.locked]
    if not targets:
        if candidates:
            out.say("Nothing deleted.")
        return 1 if failed else 0
    events = sum(e.events for e in targets)
    question = f"Delete {_plural(len(targets), 'log')} ({_plural(events, 'event')})?"
    if not args.yes:
        if not sys.stdin.isatty():
            err.say(f"{question} Refused: no terminal to confirm on; pass --yes.")
            return 1
        if not confirm(question):
            out.say("Nothing deleted.")
            return 1
    deleted = deleted_events = 0
    for entry in targets:
        outcome, why = delete_log(entry.path)
        if outcome == "deleted":
            deleted += 1
            deleted_events += entry.events
            out.say(f"deleted {entry.name} ({_plural(entry.events, 'event')})")
        else:
            failed = True
            out.say(f"skipped {entry.name}: {why}")
    out.say(f"Deleted {_plural(deleted, 'log')} ({_plural(deleted_events, 'event')}).")
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
        description="Inspect and operate the spool of undelivered events: one log per "
        "logger run. Logs held by a live logger are never changed.",
    )
    commands = spool.add_subparsers(dest="spool_command", metavar="COMMAND", required=True)

    ls = commands.add_parser(
        "ls", parents=[common], help="list spool logs", description="List the spool logs."
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per log")
    ls.set_defaults(func=_cmd_ls)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="print the waiting events of a log, a segment or a version 1 file",
        description="Print the events waiting in one log directory, segment file or "
        "version 1 file (read-only, also for locked logs). Exit status 2 for a path "
        "that is none of these.",
    )
    show.add_argument(
        "file", metavar="LOG", help="a path, or a name within --dir (a log, or LOG/SEGMENT)"
    )
    show.add_argument("--limit", type=positive_int, metavar="N", help="show the first N events")
    show.add_argument("--json", action="store_true", help="print the raw envelopes, one a line")
    show.set_defaults(func=_cmd_show)

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="deliver the unlocked spool logs now",
        description="Deliver every spool log no live logger holds; what cannot be "
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
        help="delete spool logs",
        description="Delete the given spool logs whole, or all of them; locked logs are refused.",
    )
    purge.add_argument("files", nargs="*", metavar="LOG", help="paths or names within --dir")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=_cmd_purge)
