"""``eventlog spool ls|show|replay|purge``: inspect and operate the spool (docs/cli.md).

Presentation only: what is read, deleted or replayed, and how the logs are
locked, is :mod:`eventlog._spool._admin`, shared with the SDK. The spool
belongs to the loggers that write it, so every subcommand follows their
locking rule: a log flocked by a live logger is read at most, never changed.
``ls`` only probes the locks (taken and released at once), ``show`` takes
none, ``replay`` lets an ordinary logger take over the unlocked logs, and
``purge`` deletes a whole log only while holding its lock.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import TYPE_CHECKING, Final

import msgspec
import trio

from eventlog._cli_types import positive_int, positive_seconds, service_name
from eventlog._clock import SystemClock
from eventlog._config import Config, default_storage_dir
from eventlog._exceptions import ConfigError
from eventlog._spool import check_storage_dir
from eventlog._spool._admin import (
    DEFAULT_REPLAY_TIMEOUT,
    DEFAULT_SERVICE,
    LogInfo,
    NotASpoolError,
    delete_log,
    named_log,
    read_target,
    replay_spool,
    resolve_path,
    scan,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["add_spool_parser", "format_age"]


def _directory(args: argparse.Namespace) -> str:
    """``--dir``, else the default storage directory of ``--service``; absolute."""
    raw: str | None = args.dir
    chosen = raw if raw else default_storage_dir(args.service)
    return os.path.abspath(os.path.expanduser(chosen))


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
) -> list[LogInfo] | None:
    """The logs of ``directory``; None (after a message) if there is nothing to show.

    Raises:
        OSError: after a message, when the directory cannot be listed or read.
    """
    from rich.markup import escape

    try:
        entries = scan(directory)
    except FileNotFoundError:
        (err if quiet else out).print(
            f"No spool directory at {escape(directory)}: nothing spooled."
        )
        return None
    except OSError as exc:
        err.print(f"[red]error:[/] cannot list {escape(directory)}: {escape(str(exc))}")
        raise
    if not entries:
        (err if quiet else out).print(f"No spool logs in {escape(directory)}.")
        return None
    return entries


_FORMATS: Final = {2: "v2", 1: "v1", 0: "v1 temp"}


def _cmd_ls(args: argparse.Namespace) -> int:
    """``eventlog spool ls``."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out, err = Console(), Console(stderr=True, soft_wrap=True)
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
    table = Table(title=f"Spool logs in {escape(directory)}", title_justify="left")
    table.add_column("session", overflow="fold")
    table.add_column("run", overflow="fold")
    table.add_column("format")
    for column in ("segments", "events", "corrupt", "bytes", "age"):
        table.add_column(column, justify="right")
    table.add_column("locked")
    for entry in entries:
        table.add_row(
            escape(entry.session),
            escape(entry.run),
            _FORMATS[entry.version],
            str(entry.segments),
            str(entry.events),
            str(entry.corrupt),
            str(entry.size),
            format_age(now - entry.mtime),
            "yes" if entry.locked else "no",
        )
    out.print(table)
    logs = [e for e in entries if e.version != 0]
    out.print(
        f"{_plural(len(logs), 'log')}, {_plural(sum(e.events for e in logs), 'event')}, "
        f"{sum(e.locked for e in logs)} locked; "
        f"{_plural(len(entries) - len(logs), 'temp file')}."
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


def _cmd_show(args: argparse.Namespace) -> int:
    """``eventlog spool show LOG``: read-only, no lock taken."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out, err = Console(), Console(stderr=True, soft_wrap=True)
    path = resolve_path(_directory(args), args.file)
    try:
        contents = read_target(path)
    except NotASpoolError as exc:
        hint = "; `eventlog spool ls --dir` lists them" if exc.logs else ""
        err.print(f"[red]error:[/] not a spool log: {escape(path)} ({escape(exc.reason + hint)})")
        return 2
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {escape(path)}: {escape(exc.strerror or str(exc))}")
        return 1
    events = contents.events
    limit: int | None = args.limit
    shown = events if limit is None else events[:limit]
    if args.json:
        for event in shown:
            sys.stdout.write(event.payload.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()
    else:
        title = os.path.basename(contents.path)
        if contents.kind == "segment":
            title = os.path.join(os.path.basename(os.path.dirname(contents.path)), title)
        table = Table(title=escape(title), title_justify="left")
        columns = ["#", "event_type", "event_id", "name", "timestamp", "attempts"]
        if contents.kind == "log":
            columns.insert(1, "segment")
        for column in columns:
            # Ids and names fold; the short fixed-format fields stay whole.
            table.add_column(column, overflow="fold", no_wrap=column not in ("event_id", "name"))
        for index, event in enumerate(shown, 1):
            try:
                envelope = _ENVELOPE.decode(event.payload)
            except msgspec.DecodeError:
                envelope = _Envelope(event_type="(undecodable)")
            fields = envelope.event_data
            if fields.experiment_id is not None:
                name = f"{fields.experiment_id} (variation {fields.variation_id})"
            else:
                name = fields.event_name or "?"
            cells = [
                str(index),
                escape(envelope.event_type),
                escape(fields.event_id),
                escape(name),
                escape(fields.client_timestamp or fields.timestamp or "?"),
                str(event.attempts),
            ]
            if contents.kind == "log":
                cells.insert(1, str(event.segment))
            table.add_row(*cells)
        out.print(table)
    summary = err if args.json else out
    more = len(events) - len(shown)
    where = f" in {_plural(contents.segments, 'segment')}" if contents.kind == "log" else ""
    summary.print(
        _plural(len(events), "event")
        + where
        + (f" ({more} not shown, see --limit)" if more else "")
        + f", {_plural(contents.corrupt, 'corrupt line')} skipped."
    )
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    """``eventlog spool replay``: deliver the unlocked logs now."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    out, err = Console(), Console(stderr=True, soft_wrap=True)
    directory = _directory(args)
    try:
        Config(base_url=args.base_url, storage_dir=directory, enabled=True, strict=False)
        check_storage_dir(directory)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
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
            out.print(f"skipped (locked by a live logger): {escape(entry.name)}")
        out.print("Nothing to replay: every spool log is held by a live logger.")
        return 0
    total = sum(e.events for e in ready)
    question = (
        f"Deliver {_plural(total, 'event')} from {_plural(len(ready), 'log')} "
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
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {escape(directory)}: {escape(str(exc))}")
        return 1
    for path in result.skipped:
        out.print(f"skipped (locked by a live logger): {escape(os.path.basename(path))}")
    out.print(
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
        err.print(f"Timed out after {args.timeout:g}s; run it again once the server is up.")
    return 0 if result.ok else 1


def _cmd_purge(args: argparse.Namespace) -> int:
    """``eventlog spool purge``: delete unlocked logs whole, after confirmation."""
    from rich.console import Console
    from rich.markup import escape

    out, err = Console(), Console(stderr=True, soft_wrap=True)
    directory = _directory(args)
    failed = False
    if args.files:
        candidates: list[LogInfo] = []
        for file in dict.fromkeys(args.files):
            path = resolve_path(directory, file)
            try:
                entry = named_log(path)
            except NotASpoolError as exc:
                err.print(f"refused: {escape(file)} is {escape(exc.reason)}")
                failed = True
                continue
            except OSError as exc:
                err.print(f"cannot read {escape(path)}: {escape(exc.strerror or str(exc))}")
                failed = True
                continue
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
    question = f"Delete {_plural(len(targets), 'log')} ({_plural(events, 'event')})?"
    if not args.yes:
        if not sys.stdin.isatty():
            err.print(f"{question} Refused: no terminal to confirm on; pass --yes.")
            return 1
        if not _confirm(out, question):
            out.print("Nothing deleted.")
            return 1
    deleted = deleted_events = 0
    for entry in targets:
        outcome, why = delete_log(entry.path)
        if outcome == "deleted":
            deleted += 1
            deleted_events += entry.events
            out.print(f"deleted {escape(entry.name)} ({_plural(entry.events, 'event')})")
        else:
            failed = True
            out.print(f"skipped {escape(entry.name)}: {escape(why)}")
    out.print(f"Deleted {_plural(deleted, 'log')} ({_plural(deleted_events, 'event')}).")
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
