"""``eventlog spool ls|show|replay|purge`` on a prepared spool directory (design §5, §8)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import io
import json
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio

from eventlog._cli_spool import (
    ReplayResult,
    add_spool_parser,
    format_age,
    replay_spool,
    scan_spool,
)
from eventlog._spool import Record, encode_line, parse_lines, spool_file_name
from eventlog._stats import Counters
from eventlog.collector import Faults, open_collector

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def run_cli(argv: list[str]) -> int:
    """Run ``eventlog <argv>`` with only ``spool`` registered, as the main CLI does."""
    parser = argparse.ArgumentParser(prog="eventlog")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_spool_parser(subparsers)
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


def internal(name: str, event_id: str) -> bytes:
    """An InternalEvent envelope the collector accepts."""
    return (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"%b","event_name":"%b",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z"}}' % (event_id.encode(), name.encode())
    )


def experiment(experiment_id: str, event_id: str) -> bytes:
    """An ExperimentEvent envelope the collector accepts."""
    return (
        b'{"event_type":"ExperimentEvent","event_data":{"event_id":"%b",'
        b'"timestamp":"2026-01-01T00:00:01.000Z","experiment_id":"%b","variation_id":1,'
        b'"environment":"production"}}' % (event_id.encode(), experiment_id.encode())
    )


class _Data(msgspec.Struct):
    """Just the event id of an envelope."""

    event_id: str


class _Envelope(msgspec.Struct):
    """Just the event data of an envelope."""

    event_data: _Data


def ids_on_disk(directory: Path) -> list[str]:
    """Event ids of every valid line of every spool file in ``directory``, sorted."""
    return sorted(
        msgspec.json.decode(record.payload, type=_Envelope).event_data.event_id
        for path in directory.glob("failed_events.*.jsonl")
        for record in parse_lines(path.read_bytes(), Counters())
    )


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A spool directory with two dead runs' files, a temp leftover and an unrelated file."""

    dir: Path
    a: Path
    b: Path
    temp: Path
    notes: Path
    ids: list[str]


@pytest.fixture
def prepared(spool_dir: Path) -> Prepared:
    """Write the files of :class:`Prepared`; file a is an hour older than file b."""
    spool_dir.mkdir(mode=0o700)
    a = spool_dir / spool_file_name("sess-a", "run-a")
    a.write_bytes(
        encode_line(Record(internal("a0", "a0" * 16)))
        + encode_line(Record(internal("a1", "a1" * 16), attempts=1))
        + b"{not json}\n"
        + encode_line(Record(internal("a2", "a2" * 16), attempts=3))
    )
    b = spool_dir / spool_file_name("sess-b", "run-b")
    b.write_bytes(
        encode_line(Record(experiment("exp-x", "x0" * 16)))
        + encode_line(Record(internal("b0", "b0" * 16)))
    )
    now = os.stat(b).st_mtime
    os.utime(a, (now - 3600, now - 3600))
    temp = spool_dir / (spool_file_name("sess-a", "dead") + ".tmp")
    temp.write_bytes(b'{"v":1,"attem')
    notes = spool_dir / "notes.txt"
    notes.write_text("keep me")
    ids = sorted(["a0" * 16, "a1" * 16, "a2" * 16, "x0" * 16, "b0" * 16])
    return Prepared(spool_dir, a, b, temp, notes, ids)


@pytest.fixture
def locked(prepared: Prepared) -> Iterator[Path]:
    """A third spool file, flocked by another live process for the test's duration."""
    path = prepared.dir / spool_file_name("sess-c", "live")
    path.write_bytes(encode_line(Record(internal("c0", "c0" * 16))))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        yield path
    finally:
        holder.communicate(b"")


def still_locked(path: Path) -> bool:
    """True if another process holds ``path``'s flock (probed and released at once)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def unused_loopback_url() -> str:
    """The URL of a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeTTY(io.StringIO):
    """A stdin that claims to be a terminal, holding the user's typed answers."""

    def isatty(self) -> bool:
        """Claim to be a terminal."""
        return True


# -- ls --------------------------------------------------------------------------


def test_ls_table_lists_spool_and_temp_files(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has one row per file, oldest first, with counts and the temp leftover."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "sess-" in line]
    assert len(rows) == 3
    assert "run-a" in rows[0]
    assert rows[0].split("│")[3:5] == ["      3 ", "       1 "]
    assert "run-b" in rows[1]
    assert "dead (temp)" in rows[2]
    assert "1h 00m" in rows[0]
    assert "notes" not in out
    assert "2 spool files, 5 events, 0 locked; 1 temp file." in out


def test_ls_json_lines_parse(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one JSON object per file and nothing else on stdout."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_file = {row["file"]: row for row in rows}
    assert set(by_file) == {prepared.a.name, prepared.b.name, prepared.temp.name}
    a = by_file[prepared.a.name]
    assert (a["session"], a["run"], a["kind"]) == ("sess-a", "run-a", "spool")
    assert (a["events"], a["corrupt"], a["locked"]) == (3, 1, False)
    assert a["bytes"] == prepared.a.stat().st_size
    assert 3590 < a["age_seconds"] < 3700
    assert by_file[prepared.b.name]["events"] == 2
    temp = by_file[prepared.temp.name]
    assert (temp["kind"], temp["events"], temp["corrupt"]) == ("temp", 0, 1)


def test_ls_marks_a_live_loggers_file_locked_and_leaves_its_lock(
    prepared: Prepared, locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file flocked by another process shows locked; the probe does not keep or break it."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir), "--json"]) == 0
    rows = {row["file"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[locked.name]["locked"] is True
    assert rows[locked.name]["events"] == 1
    assert rows[prepared.a.name]["locked"] is False
    assert still_locked(locked)
    assert not still_locked(prepared.a)
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "sess-c" in line]
    assert "yes" in row


def test_ls_missing_or_empty_directory_says_so(
    spool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No directory, or one without spool files: a message and exit 0; --json keeps stdout empty."""
    assert run_cli(["spool", "ls", "--dir", str(spool_dir)]) == 0
    assert "No spool directory" in capsys.readouterr().out
    spool_dir.mkdir()
    (spool_dir / "notes.txt").write_text("not a spool file")
    assert run_cli(["spool", "ls", "--dir", str(spool_dir)]) == 0
    assert "No spool files" in capsys.readouterr().out
    assert run_cli(["spool", "ls", "--dir", str(spool_dir), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "No spool files" in captured.err


def test_default_directory_follows_eventlog_home(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --dir the spool is $EVENTLOG_HOME/telemetry, as for Config's default."""
    monkeypatch.setenv("EVENTLOG_HOME", str(prepared.dir.parent))
    assert prepared.dir.name == "telemetry"
    assert run_cli(["spool", "ls", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


# -- show ------------------------------------------------------------------------


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give rich 200 columns, so that no table cell is folded in what the test parses."""
    monkeypatch.setenv("COLUMNS", "200")


def test_show_by_name_prints_events_and_counts_corrupt_lines(
    prepared: Prepared, wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name within --dir is enough; each event is a row; corrupt lines are reported."""
    assert run_cli(["spool", "show", prepared.a.name, "--dir", str(prepared.dir)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "InternalEvent" in line]
    assert [row.split("│")[4].strip() for row in rows] == ["a0", "a1", "a2"]
    assert [row.split("│")[6].strip() for row in rows] == ["0", "1", "3"]
    assert "3 events, 1 corrupt line skipped." in out


def test_show_experiment_events_by_path(
    prepared: Prepared, wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path works without --dir; an experiment shows its experiment id."""
    assert run_cli(["spool", "show", str(prepared.b)]) == 0
    out = capsys.readouterr().out
    assert "ExperimentEvent" in out
    assert "exp-x" in out
    assert "2 events, 0 corrupt lines skipped." in out


def test_show_json_prints_raw_envelopes_up_to_the_limit(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the envelopes exactly as posted; --limit cuts; the summary goes to stderr."""
    assert run_cli(["spool", "show", str(prepared.a), "--json", "--limit", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.encode() for line in lines] == [
        internal("a0", "a0" * 16),
        internal("a1", "a1" * 16),
    ]
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert "3 events (1 not shown, see --limit), 1 corrupt line skipped." in captured.err


def test_show_reads_a_locked_file_without_disturbing_it(
    locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """show works on a live logger's file, read-only, and the lock stays with its owner."""
    before = locked.read_bytes()
    assert run_cli(["spool", "show", str(locked), "--json"]) == 0
    assert capsys.readouterr().out.encode() == internal("c0", "c0" * 16) + b"\n"
    assert locked.read_bytes() == before
    assert still_locked(locked)


def test_show_missing_file_fails(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not exist: an error on stderr and exit 1."""
    missing = spool_file_name("nope", "nope")
    assert run_cli(["spool", "show", missing, "--dir", str(prepared.dir)]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_show_refuses_a_file_that_is_not_a_spool_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not named like a spool file and no line a spool record: one line on stderr, exit 2."""
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n\ndaemon:x:1:1::/:/bin/false\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for path, lines in [(passwd, "2 lines"), (empty, "0 lines")]:
        assert run_cli(["spool", "show", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"error: not a spool file: {path} (its name is not a spool file name and "
            f"none of its {lines} is a spool record)\n"
        )


def test_show_refuses_what_is_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory or a FIFO is refused with exit 2, without reading it (a FIFO would block)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):
        assert run_cli(["spool", "show", str(path)]) == 2
        assert capsys.readouterr().err == (
            f"error: not a spool file: {path} is not a regular file\n"
        )


def test_show_accepts_a_renamed_spool_file_and_a_damaged_spool_file(
    prepared: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spool file under another name still shows; one named as a spool file may be all torn."""
    renamed = tmp_path / "copy.txt"
    renamed.write_bytes(prepared.a.read_bytes())
    assert run_cli(["spool", "show", str(renamed)]) == 0
    assert "3 events, 1 corrupt line skipped." in capsys.readouterr().out
    torn = prepared.dir / spool_file_name("sess-t", "torn")
    torn.write_bytes(b"{not json}\n" + encode_line(Record(internal("t0", "t0" * 16)))[:20])
    assert run_cli(["spool", "show", str(torn)]) == 0
    assert "0 events, 2 corrupt lines skipped." in capsys.readouterr().out
    assert run_cli(["spool", "show", str(prepared.temp)]) == 0
    assert "0 events, 1 corrupt line skipped." in capsys.readouterr().out


# -- purge -----------------------------------------------------------------------


def test_purge_without_yes_and_without_a_terminal_refuses(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --yes and stdin is not a TTY: nothing is deleted, exit 1."""
    assert run_cli(["spool", "purge", "--dir", str(prepared.dir)]) == 1
    assert "Delete 3 files (5 events)? Refused" in capsys.readouterr().err
    assert prepared.a.exists()
    assert prepared.b.exists()
    assert prepared.temp.exists()


def test_purge_yes_deletes_unlocked_files_and_refuses_the_locked_one(
    prepared: Prepared, locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--yes deletes the dead runs' files and the temp leftover; a live logger's file stays."""
    before = locked.read_bytes()
    assert run_cli(["spool", "purge", "--dir", str(prepared.dir), "--yes"]) == 1
    out = capsys.readouterr().out
    assert f"skipped (locked by a live logger): {locked.name}" in out
    assert "Deleted 3 files (5 events)." in out
    assert not prepared.a.exists()
    assert not prepared.b.exists()
    assert not prepared.temp.exists()
    assert locked.read_bytes() == before
    assert still_locked(locked)
    assert prepared.notes.read_text() == "keep me"


def test_purge_named_files_only(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """Given files, purge deletes just those; exit 0 when all went."""
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", prepared.a.name]
    assert run_cli(argv) == 0
    assert f"deleted {prepared.a.name} (3 events)" in capsys.readouterr().out
    assert not prepared.a.exists()
    assert prepared.b.exists()


def test_purge_refuses_files_that_are_not_spool_files(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name that is not a spool file name is never deleted, nor a missing one counted as done."""
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", "notes.txt", "gone.jsonl"]
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "notes.txt is not a spool file name" in err
    assert prepared.notes.read_text() == "keep me"
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", spool_file_name("no", "pe")]
    assert run_cli(argv) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize(("answer", "deleted"), [("y\n", True), ("n\n", False), ("", False)])
def test_purge_asks_on_a_terminal(
    prepared: Prepared,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    deleted: bool,
) -> None:
    """On a TTY purge asks; only yes deletes (no, or end of input, keeps everything)."""
    monkeypatch.setattr(sys, "stdin", FakeTTY(answer))
    status = run_cli(["spool", "purge", "--dir", str(prepared.dir), prepared.b.name])
    assert status == (0 if deleted else 1)
    assert "Delete 1 file (2 events)? [y/N]" in capsys.readouterr().out
    assert prepared.b.exists() is not deleted


# -- usage -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["spool"],
        ["spool", "replay", "--dir", "x"],
        ["spool", "show", "f", "--limit", "0"],
        ["spool", "replay", "--base-url", "http://127.0.0.1:1", "--timeout", "-1"],
        ["spool", "ls", "--service", "a/b"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A missing subcommand, a missing --base-url or a bad value is argparse's exit 2."""
    with pytest.raises(SystemExit) as exc_info:
        run_cli(argv)
    assert exc_info.value.code == 2
    assert "usage: eventlog spool" in capsys.readouterr().err


def test_replay_refuses_a_non_loopback_http_url(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base URL Config refuses is a usage error, before any file is touched."""
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", "http://example.com"]
    assert run_cli(argv) == 2
    assert "base_url" in capsys.readouterr().err
    assert ids_on_disk(prepared.dir) == prepared.ids


def test_replay_with_nothing_to_replay_succeeds(
    spool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty spool is delivered by definition: exit 0 without contacting anyone."""
    url = unused_loopback_url()
    argv = ["spool", "replay", "--dir", str(spool_dir), "--base-url", url]
    assert run_cli(argv) == 0
    assert "No spool directory" in capsys.readouterr().out
    assert not spool_dir.exists()


def test_a_file_vanishing_during_the_listing_is_not_a_missing_directory(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live logger removing its file between listing and stat does not hide the others."""
    real_scandir = os.scandir
    vanished: list[str] = []

    @contextlib.contextmanager
    def racing_scandir(path: str) -> Iterator[Iterator[os.DirEntry[str]]]:
        """List the directory, then remove file b before the caller stats it, once."""
        with real_scandir(path) as it:
            entries = list(it)
        if not vanished:
            vanished.append(prepared.b.name)
            prepared.b.unlink()
        yield iter(entries)

    monkeypatch.setattr(os, "scandir", racing_scandir)
    entries = scan_spool(str(prepared.dir))
    assert [e.name for e in entries] == [prepared.a.name, prepared.temp.name]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (59.9, "59s"), (61, "1m 01s"), (7320, "2h 02m"), (1e6, "11d 13h")],
)
def test_format_age(seconds: float, text: str) -> None:
    """Ages read as seconds, minutes, hours or days."""
    assert format_age(seconds) == text


# -- replay ----------------------------------------------------------------------


@pytest.mark.integration
def test_replay_with_the_server_down_keeps_every_event_on_disk(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens: exit 1 after --timeout, every event still on disk, none lost."""
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", unused_loopback_url()]
    assert run_cli([*argv, "--timeout", "0.5", "--yes"]) == 1
    captured = capsys.readouterr()
    assert "Delivered 0 of 5 events; 5 still on disk; 0 dropped" in captured.out
    assert "Timed out" in captured.err
    assert ids_on_disk(prepared.dir) == prepared.ids
    assert prepared.notes.read_text() == "keep me"


@pytest.mark.integration
async def test_replay_delivers_every_unlocked_file_to_the_collector(prepared: Prepared) -> None:
    """Every valid event reaches the collector; the spool files and the temp leftover are gone."""
    seen: list[tuple[int, int]] = []
    async with open_collector() as collector:
        result = await replay_spool(
            str(prepared.dir), collector.url, 5.0, progress=lambda d, t: seen.append((d, t))
        )
        assert sorted(await collector.event_ids()) == prepared.ids
    assert result == ReplayResult(
        total=5,
        delivered=5,
        dropped=0,
        on_disk=0,
        corrupt_lines=1,
        export_failures=0,
        files=(str(prepared.a), str(prepared.b)),
        skipped=(),
        timed_out=False,
    )
    assert result.ok
    assert seen[0] == (0, 5)
    assert seen[-1] == (5, 5)
    assert sorted(p.name for p in prepared.dir.iterdir()) == ["notes.txt"]


@pytest.mark.integration
async def test_replay_command_exits_0_once_everything_is_delivered(
    prepared: Prepared, locked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command (its own trio.run, in a worker thread) reports skipped and delivered events."""
    async with open_collector() as collector:
        argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", collector.url]
        status = await trio.to_thread.run_sync(run_cli, argv)
        assert sorted(await collector.event_ids()) == prepared.ids
    assert status == 0
    out = capsys.readouterr().out
    assert "replaying" in out
    assert "5/5" in out
    assert f"skipped (locked by a live logger): {locked.name}" in out
    assert "Delivered 5 of 5 events; 0 still on disk; 0 dropped; 1 corrupt line" in out
    assert ids_on_disk(prepared.dir) == ["c0" * 16]


@pytest.mark.integration
async def test_replay_skips_a_locked_file_and_leaves_it_intact(
    prepared: Prepared, locked: Path
) -> None:
    """A live logger's file is listed as skipped, never sent and never changed."""
    before = locked.read_bytes()
    async with open_collector() as collector:
        result = await replay_spool(str(prepared.dir), collector.url, 5.0)
        assert sorted(await collector.event_ids()) == prepared.ids
    assert result.skipped == (str(locked),)
    assert (result.total, result.delivered, result.on_disk) == (5, 5, 0)
    assert result.ok
    assert locked.read_bytes() == before
    assert still_locked(locked)


@pytest.mark.integration
async def test_replay_rides_out_a_short_outage(prepared: Prepared) -> None:
    """503s for a moment: the replay backs off, retries and delivers everything in time."""
    faults = Faults(outage_until=trio.current_time() + 0.3, retry_after=0.1)
    async with open_collector(faults=faults) as collector:
        result = await replay_spool(str(prepared.dir), collector.url, 5.0)
        assert sorted(await collector.event_ids()) == prepared.ids
    assert result.export_failures >= 1
    assert (result.delivered, result.on_disk, result.timed_out) == (5, 0, False)
    assert ids_on_disk(prepared.dir) == []


@pytest.mark.integration
async def test_replay_during_a_long_outage_loses_nothing(prepared: Prepared) -> None:
    """An outage past the timeout: the events stay on disk, and a later replay delivers them."""
    faults = Faults(outage_until=trio.current_time() + 3600)
    async with open_collector(faults=faults) as collector:
        down = await replay_spool(str(prepared.dir), collector.url, 0.3)
        assert not down.ok
        assert (down.delivered, down.on_disk, down.dropped, down.timed_out) == (0, 5, 0, True)
        assert ids_on_disk(prepared.dir) == prepared.ids
        assert await collector.count() == 0

        faults.outage_until = 0.0
        up = await replay_spool(str(prepared.dir), collector.url, 5.0)
        assert sorted(await collector.event_ids()) == prepared.ids
    assert (up.total, up.delivered, up.on_disk, up.corrupt_lines) == (5, 5, 0, 0)
    assert ids_on_disk(prepared.dir) == []
