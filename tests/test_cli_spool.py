"""``eventlog spool ls|show|replay|purge`` on a prepared storage directory (docs/cli.md).

The directory holds version 2 logs (``spool-v2.<session>.<run>/`` with a lock
file, segments and journals) planted byte for byte with the SDK's own line
encoders, version 1 files (``failed_events.<session>.<run>.jsonl``, which
every command still handles) and a version 1 rewrite's temp leftover; one
test reads what a live logger of this SDK wrote.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import functools
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import msgspec
import pytest
import trio
import trio.testing

import eventlog
from eventlog._cli import _spool as cli_spool
from eventlog._cli._output import Column, table_lines
from eventlog._cli._spool import add_spool_parser, format_age
from eventlog._exceptions import ConfigError
from eventlog._spool import FileOps
from eventlog._spool._admin import (
    ReplayResult,
    replay_spool,
    resolve_path,
    scan,
    spool_directory,
)
from eventlog._spool._admin import (
    delete_log as admin_delete_log,
)
from eventlog._spool._format import (
    encode_journal_line,
    encode_record_line,
    journal_name,
    segment_name,
)
from eventlog.collector import Faults, open_collector
from eventlog.testing import CapturingTransport
from tests.helpers import RawServer, spool_logs, spooled_events, v1_file, v1_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import MakeConfig

ROOT = Path(__file__).resolve().parent.parent


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


def record(number: int, payload: bytes, attempts: int = 0, spooled_at: float = 0) -> bytes:
    """A version 2 record line, as the SDK writes it."""
    return encode_record_line(number, attempts, spooled_at, payload)


def plant_log(
    directory: Path,
    session: str,
    run: str,
    segments: dict[int, bytes],
    journals: dict[int, bytes] | None = None,
) -> Path:
    """A version 2 log directory with its lock file, segments and journals."""
    log = directory / f"spool-v2.{session}.{run}"
    log.mkdir(mode=0o700)
    (log / "lock").touch()
    for number, data in segments.items():
        (log / segment_name(number)).write_bytes(data)
    for number, data in (journals or {}).items():
        (log / journal_name(number)).write_bytes(data)
    return log


def set_mtime(path: Path, when: float) -> None:
    """Set the modification time of ``path`` and, for a directory, of everything in it."""
    for item in [*(path.iterdir() if path.is_dir() else ()), path]:
        os.utime(item, (when, when))


def log_bytes(log: Path) -> int:
    """Bytes of a log directory's files."""
    return sum(p.stat().st_size for p in log.iterdir())


class _Data(msgspec.Struct):
    """Just the event id of an envelope."""

    event_id: str


class _Envelope(msgspec.Struct):
    """Just the event data of an envelope."""

    event_data: _Data


def event_id(payload: bytes) -> str:
    """The event id of an envelope."""
    return msgspec.json.decode(payload, type=_Envelope).event_data.event_id


def ids_on_disk(directory: Path) -> list[str]:
    """Event ids of every event waiting in every log of ``directory``, sorted."""
    return sorted(event_id(e.payload) for e in spooled_events(directory))


A0, A1, A2, AX, X0, B0, C0 = (f"{n}" * 16 for n in ("a0", "a1", "a2", "ax", "x0", "b0", "c0"))


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A storage directory with two dead runs' logs, a temp leftover and an unrelated file.

    ``a``: a version 2 log of two segments, an hour old: a0, a1 (1 failed
    attempt), a corrupt line and ax (acknowledged in the journal) in segment
    1; a2 (2 failed attempts in its line, 1 in the journal) in segment 2.
    ``b``: a version 1 file a minute old, with an experiment x0 and b0.
    """

    dir: Path
    a: Path
    b: Path
    temp: Path
    notes: Path
    ids: list[str]


@pytest.fixture
def prepared(spool_dir: Path) -> Prepared:
    """Write the files of :class:`Prepared`."""
    spool_dir.mkdir(mode=0o700)
    a = plant_log(
        spool_dir,
        "sess-a",
        "run-a",
        {
            1: record(0, internal("a0", A0))
            + record(1, internal("a1", A1), attempts=1)
            + b"{not json}\n"
            + record(2, internal("ax", AX)),
            2: record(0, internal("a2", A2), attempts=2),
        },
        {1: encode_journal_line("done", [2]), 2: encode_journal_line("failed", [0])},
    )
    b = v1_file(spool_dir, "sess-b", "run-b")
    b.write_bytes(v1_line(experiment("exp-x", X0)) + v1_line(internal("b0", B0)))
    temp = spool_dir / (v1_file(spool_dir, "sess-a", "dead").name + ".tmp")
    temp.write_bytes(b'{"v":1,"attem')
    notes = spool_dir / "notes.txt"
    notes.write_text("keep me")
    now = time.time()
    set_mtime(a, now - 3600)
    set_mtime(b, now - 60)
    return Prepared(spool_dir, a, b, temp, notes, sorted([A0, A1, A2, X0, B0]))


@contextmanager
def held_by_another_process(lock: Path) -> Iterator[None]:
    """``lock`` flocked by another live process for the duration of the block."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        yield
    finally:
        holder.communicate(b"")


@dataclasses.dataclass(frozen=True)
class Locked:
    """A live logger's log: the log (directory or file) and the file its lock is on."""

    log: Path
    lock: Path

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the log, by name, with its bytes."""
        files = sorted(self.log.iterdir()) if self.log.is_dir() else [self.log]
        return {p.name: p.read_bytes() for p in files}


@pytest.fixture(params=["v2", "v1"])
def locked(request: pytest.FixtureRequest, prepared: Prepared) -> Iterator[Locked]:
    """A third log (version 2 or 1) with event c0, flocked by another live process."""
    if request.param == "v2":
        log = plant_log(prepared.dir, "sess-c", "live", {1: record(0, internal("c0", C0))})
        lock = log / "lock"
    else:
        log = lock = v1_file(prepared.dir, "sess-c", "live")
        log.write_bytes(v1_line(internal("c0", C0)))
    with held_by_another_process(lock):
        yield Locked(log, lock)


def still_locked(path: Path) -> bool:
    """True if someone holds ``path``'s flock (probed on a new descriptor, released at once)."""
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


def cells(row: str) -> list[str]:
    """The cells of one row of a table, as printed when the output is not a terminal."""
    return re.split(r" {2,}", row.strip())


# -- ls --------------------------------------------------------------------------


def test_ls_table_lists_logs_version_1_files_and_temp_files(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """One row per log, oldest first, with its format, segments, counts, bytes, age, lock, name."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    out = capsys.readouterr().out
    rows = [cells(line) for line in out.splitlines() if "sess-" in line]
    assert rows == [
        ["v2", "2", "3", "1", str(log_bytes(prepared.a)), "1h 00m", "no", prepared.a.name],
        ["v1", "1", "2", "0", str(prepared.b.stat().st_size), "1m 00s", "no", prepared.b.name],
        ["v1 temp", "1", "0", "1", "13", "0s", "no", prepared.temp.name],
    ]
    assert "notes" not in out
    assert "2 logs, 5 events, 0 locked; 1 temp file." in out


def test_ls_json_lines_parse(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one JSON object per log and nothing else on stdout."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {prepared.a.name, prepared.b.name, prepared.temp.name}
    a = by_name[prepared.a.name]
    assert (a["session"], a["run"], a["version"], a["kind"]) == ("sess-a", "run-a", 2, "spool")
    assert (a["segments"], a["events"], a["corrupt"], a["locked"]) == (2, 3, 1, False)
    assert a["path"] == str(prepared.a)
    assert a["bytes"] == log_bytes(prepared.a)
    assert 3590 < a["age_seconds"] < 3700
    b = by_name[prepared.b.name]
    assert (b["version"], b["segments"], b["events"]) == (1, 1, 2)
    temp = by_name[prepared.temp.name]
    assert (temp["kind"], temp["version"], temp["events"], temp["corrupt"]) == ("temp", 0, 0, 1)


def test_ls_marks_a_live_loggers_log_locked_and_leaves_its_lock(
    prepared: Prepared, locked: Locked, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log flocked by another process shows locked; the probe does not keep or break it."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir), "--json"]) == 0
    rows = {row["name"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[locked.log.name]["locked"] is True
    assert rows[locked.log.name]["events"] == 1
    assert rows[prepared.a.name]["locked"] is False
    assert still_locked(locked.lock)
    assert not still_locked(prepared.a / "lock")
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "sess-c" in line]
    assert cells(row)[-2:] == ["yes", locked.log.name]


def test_ls_missing_or_empty_directory_says_so(
    spool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No directory, or one without logs: a message and exit 0; --json keeps stdout empty."""
    assert run_cli(["spool", "ls", "--dir", str(spool_dir)]) == 0
    assert "No spool directory" in capsys.readouterr().out
    spool_dir.mkdir()
    (spool_dir / "notes.txt").write_text("not a spool log")
    assert run_cli(["spool", "ls", "--dir", str(spool_dir)]) == 0
    assert "No spool logs" in capsys.readouterr().out
    assert run_cli(["spool", "ls", "--dir", str(spool_dir), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "No spool logs" in captured.err


def test_ls_passes_over_entries_that_only_have_a_logs_name(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file named like a log directory, or a directory named like a version 1 file, is no log."""
    (prepared.dir / "spool-v2.odd.file").write_text("not a directory")
    v1_file(prepared.dir, "odd", "dir").mkdir()
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir), "--json"]) == 0
    names = [json.loads(line)["name"] for line in capsys.readouterr().out.splitlines()]
    assert names == [prepared.a.name, prepared.b.name, prepared.temp.name]


def test_default_directory_follows_eventlog_home(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --dir the spool is $EVENTLOG_HOME/telemetry, as for Config's default."""
    monkeypatch.setenv("EVENTLOG_HOME", str(prepared.dir.parent))
    assert prepared.dir.name == "telemetry"
    assert run_cli(["spool", "ls", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


class VanishingOps(FileOps):
    """Lists the storage directory, then removes a log before the caller stats it, once."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim
        self.done = False

    def listdir(self, path: str) -> list[str]:
        """The names, listed before the victim goes."""
        names = super().listdir(path)
        if not self.done and path == str(self.victim.parent):
            self.done = True
            shutil.rmtree(self.victim)
        return names


def test_a_log_vanishing_during_the_listing_is_not_a_missing_directory(
    prepared: Prepared,
) -> None:
    """A log drained and deleted between the listing and its stat does not hide the others."""
    entries = scan(str(prepared.dir), ops=VanishingOps(prepared.a))
    assert [e.name for e in entries] == [prepared.b.name, prepared.temp.name]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (59.9, "59s"), (61, "1m 01s"), (7320, "2h 02m"), (1e6, "11d 13h")],
)
def test_format_age(seconds: float, text: str) -> None:
    """Ages read as seconds, minutes, hours or days."""
    assert format_age(seconds) == text


# -- what a live logger of this SDK writes -----------------------------------------


async def test_the_commands_read_and_respect_what_a_live_logger_writes(
    make_config: MakeConfig,
    spool_dir: Path,
    autojump_clock: trio.testing.MockClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A live logger's log lists as locked and shows its events; purge waits until it closes."""
    down = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(make_config(), transport=down) as log:
        for name in ("e0", "e1", "e2"):
            log.log_event(name)
        await log.flush()
        await trio.sleep(1)
        assert log.stats.spool_bytes > 0
        assert run_cli(["spool", "ls", "--dir", str(spool_dir), "--json"]) == 0
        (row,) = map(json.loads, capsys.readouterr().out.splitlines())
        assert (row["version"], row["events"], row["locked"]) == (2, 3, True)
        assert run_cli(["spool", "show", row["name"], "--dir", str(spool_dir), "--json"]) == 0
        shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [e["event_data"]["event_name"] for e in shown] == ["e0", "e1", "e2"]
        assert run_cli(["spool", "purge", "--dir", str(spool_dir), "--yes"]) == 1
        assert "skipped (locked by a live logger)" in capsys.readouterr().out
        assert [p.name for p in spool_logs(spool_dir)] == [row["name"]]
    assert run_cli(["spool", "purge", "--dir", str(spool_dir), "--yes"]) == 0
    assert "Deleted 1 log (3 events)." in capsys.readouterr().out
    assert spool_logs(spool_dir) == []


# -- show ------------------------------------------------------------------------


def test_show_a_log_by_name_prints_its_waiting_events(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log's name within --dir is enough; settled records are left out, journal failures added."""
    assert run_cli(["spool", "show", prepared.a.name, "--dir", str(prepared.dir)]) == 0
    out = capsys.readouterr().out
    header = cells(out.splitlines()[1])
    assert header == ["#", "segment", "attempts", "event_type", "timestamp", "event_id", "name"]
    rows = [cells(line) for line in out.splitlines() if "InternalEvent" in line]
    assert [(r[1], r[5], r[6], r[2]) for r in rows] == [
        ("1", A0, "a0", "0"),
        ("1", A1, "a1", "1"),
        ("2", A2, "a2", "3"),
    ]
    assert "ax" not in out
    assert "3 events in 2 segments, 1 corrupt line skipped." in out


def test_show_one_segment_of_a_log(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """LOG/SEGMENT within --dir shows that segment's waiting events, with its journal applied."""
    segment = f"{prepared.a.name}/{segment_name(1)}"
    assert run_cli(["spool", "show", segment, "--dir", str(prepared.dir)]) == 0
    out = capsys.readouterr().out
    assert segment in out
    rows = [cells(line) for line in out.splitlines() if "InternalEvent" in line]
    assert [r[5] for r in rows] == ["a0", "a1"]
    assert "2 events, 1 corrupt line skipped." in out


def test_show_a_version_1_file_by_path(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path works without --dir; an experiment shows its experiment id."""
    assert run_cli(["spool", "show", str(prepared.b)]) == 0
    out = capsys.readouterr().out
    assert "ExperimentEvent" in out
    assert "exp-x (variation 1)" in out
    assert "2 events, 0 corrupt lines skipped." in out


def test_show_a_version_1_file_leaves_out_what_its_journal_settled(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version 1 file partly drained by a successor (its ``.jnl``) shows only what waits."""
    journal = prepared.b.with_name(prepared.b.name + ".jnl")
    journal.write_bytes(encode_journal_line("done", [0]) + encode_journal_line("failed", [1]))
    assert run_cli(["spool", "show", str(prepared.b), "--json"]) == 0
    captured = capsys.readouterr()
    assert [event_id(line.encode()) for line in captured.out.splitlines()] == [B0]
    assert "1 event, 0 corrupt lines skipped." in captured.err


def test_show_json_prints_raw_envelopes_up_to_the_limit(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the envelopes exactly as posted; --limit cuts; the summary goes to stderr."""
    assert run_cli(["spool", "show", str(prepared.a), "--json", "--limit", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.encode() for line in lines] == [internal("a0", A0), internal("a1", A1)]
    assert "3 events in 2 segments (1 not shown, see --limit), 1 corrupt line skipped." in (
        captured.err
    )


def test_show_reads_a_locked_log_without_disturbing_it(
    locked: Locked, capsys: pytest.CaptureFixture[str]
) -> None:
    """show works on a live logger's log, read-only, and the lock stays with its owner."""
    before = locked.snapshot()
    assert run_cli(["spool", "show", str(locked.log), "--json"]) == 0
    assert capsys.readouterr().out.encode() == internal("c0", C0) + b"\n"
    assert locked.snapshot() == before
    assert still_locked(locked.lock)


def test_show_missing_log_fails(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """A log that does not exist: an error on stderr naming it within --dir, and exit 1."""
    assert run_cli(["spool", "show", "spool-v2.no.pe", "--dir", str(prepared.dir)]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {prepared.dir / 'spool-v2.no.pe'}" in " ".join(err.split())


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
            f"error: not a spool log: {path} (its name is not a spool file name and "
            f"none of its {lines} is a spool record)\n"
        )


def test_show_refuses_what_is_neither_a_file_nor_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO is refused with exit 2, without reading it (that would block)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert run_cli(["spool", "show", str(fifo)]) == 2
    assert capsys.readouterr().err == (
        f"error: not a spool log: {fifo} (neither a directory nor a regular file)\n"
    )


def test_show_refuses_directories_and_journals_that_are_no_log(
    prepared: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain directory, the storage directory itself and a journal are refused with exit 2."""
    plain = tmp_path / "plain"
    plain.mkdir()
    journal = prepared.a / journal_name(1)
    for path, why in [
        (plain, "a directory without a lock file or a segment"),
        (
            prepared.dir,
            "a directory holding 3 spool logs, not a log itself; "
            "`eventlog spool ls --dir` lists them",
        ),
        (journal, f"a journal, not a segment: give {segment_name(1)} or its log directory"),
    ]:
        assert run_cli(["spool", "show", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"error: not a spool log: {path} ({why})\n"


def test_show_accepts_copies_and_damaged_logs(
    prepared: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy under another name still shows; one named as a spool file may be all torn."""
    renamed = tmp_path / "copy.txt"
    renamed.write_bytes(prepared.b.read_bytes())
    assert run_cli(["spool", "show", str(renamed)]) == 0
    assert "2 events, 0 corrupt lines skipped." in capsys.readouterr().out
    copy = tmp_path / "backup"
    shutil.copytree(prepared.a, copy)
    assert run_cli(["spool", "show", str(copy)]) == 0
    assert "3 events in 2 segments, 1 corrupt line skipped." in capsys.readouterr().out
    torn = v1_file(prepared.dir, "sess-t", "torn")
    torn.write_bytes(b"{not json}\n" + v1_line(internal("t0", "t0" * 16))[:20])
    assert run_cli(["spool", "show", str(torn)]) == 0
    assert "0 events, 2 corrupt lines skipped." in capsys.readouterr().out
    assert run_cli(["spool", "show", str(prepared.temp)]) == 0
    assert "0 events, 1 corrupt line skipped." in capsys.readouterr().out
    empty = plant_log(prepared.dir, "sess-e", "empty", {})
    assert run_cli(["spool", "show", str(empty)]) == 0
    assert "0 events in 0 segments, 0 corrupt lines skipped." in capsys.readouterr().out


def test_a_relative_path_is_looked_up_in_the_spool_directory_first(
    prepared: Prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names and LOG/SEGMENT paths are within --dir when there; else in the current directory."""
    monkeypatch.chdir(tmp_path)
    directory = str(prepared.dir)
    segment = f"{prepared.a.name}/{segment_name(1)}"
    assert resolve_path(directory, prepared.a.name) == str(prepared.a)
    assert resolve_path(directory, segment) == str(prepared.a / segment_name(1))
    assert resolve_path(directory, f"{prepared.a.name}/") == str(prepared.a)
    (tmp_path / "here.jsonl").touch()
    assert resolve_path(directory, "here.jsonl") == str(tmp_path / "here.jsonl")
    assert resolve_path(directory, "gone.jsonl") == str(prepared.dir / "gone.jsonl")
    assert resolve_path(directory, "sub/gone.jsonl") == str(tmp_path / "sub" / "gone.jsonl")
    assert resolve_path(directory, str(prepared.b)) == str(prepared.b)


# -- purge -----------------------------------------------------------------------


def test_purge_without_yes_and_without_a_terminal_refuses(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --yes and stdin is not a TTY: nothing is deleted, exit 1."""
    assert run_cli(["spool", "purge", "--dir", str(prepared.dir)]) == 1
    assert "Delete 3 logs (5 events)? Refused" in capsys.readouterr().err
    assert prepared.a.exists()
    assert prepared.b.exists()
    assert prepared.temp.exists()


def test_purge_yes_deletes_unlocked_logs_whole_and_refuses_the_locked_one(
    prepared: Prepared, locked: Locked, capsys: pytest.CaptureFixture[str]
) -> None:
    """--yes deletes the dead runs' logs and the temp leftover; a live logger's log stays."""
    journal = prepared.b.with_name(prepared.b.name + ".jnl")
    journal.write_bytes(encode_journal_line("failed", [0]))
    before = locked.snapshot()
    assert run_cli(["spool", "purge", "--dir", str(prepared.dir), "--yes"]) == 1
    out = capsys.readouterr().out
    assert f"skipped (locked by a live logger): {locked.log.name}" in out
    assert f"deleted {prepared.a.name} (3 events)" in out
    assert "Deleted 3 logs (5 events)." in out
    assert not prepared.a.exists()
    assert not prepared.b.exists()
    assert not journal.exists()
    assert not prepared.temp.exists()
    assert locked.snapshot() == before
    assert still_locked(locked.lock)
    assert sorted(p.name for p in prepared.dir.iterdir()) == sorted(
        [locked.log.name, prepared.notes.name]
    )


def test_purge_named_logs_only(prepared: Prepared, capsys: pytest.CaptureFixture[str]) -> None:
    """Given logs, purge deletes just those; exit 0 when all went."""
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", prepared.a.name]
    assert run_cli([*argv, str(prepared.b)]) == 0
    out = capsys.readouterr().out
    assert f"deleted {prepared.a.name} (3 events)" in out
    assert f"deleted {prepared.b.name} (2 events)" in out
    assert not prepared.a.exists()
    assert not prepared.b.exists()
    assert prepared.temp.exists()


def test_purge_refuses_what_is_not_a_whole_log(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A segment, a journal or another file is never deleted; a missing log is reported."""
    segment = f"{prepared.a.name}/{segment_name(1)}"
    journal = f"{prepared.a.name}/{journal_name(1)}"
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", "notes.txt", segment, journal]
    assert run_cli(argv) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "refused: notes.txt is not the name of a spool log" in err
    assert f"refused: {segment} is a segment file, not a whole log" in err
    assert f"refused: {journal} is a journal file, not a whole log" in err
    assert prepared.notes.read_text() == "keep me"
    assert (prepared.a / segment_name(1)).exists()
    assert (prepared.a / journal_name(1)).exists()
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", "spool-v2.no.pe"]
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
    status = run_cli(["spool", "purge", "--dir", str(prepared.dir), prepared.a.name])
    assert status == (0 if deleted else 1)
    assert "Delete 1 log (3 events)? [y/N]" in capsys.readouterr().out
    assert prepared.a.exists() is not deleted


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


# -- replay ----------------------------------------------------------------------


def test_replay_refuses_a_non_loopback_http_url(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base URL Config refuses is a usage error, before any log is touched."""
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", "http://example.com"]
    assert run_cli(argv) == 2
    assert "base_url" in capsys.readouterr().err
    assert ids_on_disk(prepared.dir) == prepared.ids


def test_replay_refuses_a_directory_the_sdk_would_not_replay(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """A storage directory writable by others is refused with exit 2, not waited on."""
    prepared.dir.chmod(0o770)
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", unused_loopback_url()]
    assert run_cli(argv) == 2
    assert "writable by group or others" in " ".join(capsys.readouterr().err.split())
    assert ids_on_disk(prepared.dir) == prepared.ids
    with pytest.raises(ConfigError, match="storage_dir"):
        trio.run(replay_spool, str(prepared.dir), "http://127.0.0.1:8787")


def test_replay_with_nothing_to_replay_succeeds(
    spool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty spool is delivered by definition: exit 0 without contacting anyone."""
    argv = ["spool", "replay", "--dir", str(spool_dir), "--base-url", unused_loopback_url()]
    assert run_cli(argv) == 0
    assert "No spool directory" in capsys.readouterr().out
    assert not spool_dir.exists()


def test_replay_with_every_log_locked_succeeds_without_sending(
    spool_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only live loggers' logs: nothing to replay, exit 0, the logs untouched."""
    spool_dir.mkdir(mode=0o700)
    log = plant_log(spool_dir, "sess-c", "live", {1: record(0, internal("c0", C0))})
    argv = ["spool", "replay", "--dir", str(spool_dir), "--base-url", unused_loopback_url()]
    with held_by_another_process(log / "lock"):
        assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert f"skipped (locked by a live logger): {log.name}" in out
    assert "Nothing to replay: every spool log is held by a live logger." in out
    assert ids_on_disk(spool_dir) == [C0]


async def test_replay_delivers_every_unlocked_log(
    prepared: Prepared, autojump_clock: trio.testing.MockClock
) -> None:
    """Every waiting event is posted once; the logs and the temp leftover are gone after."""
    server = RawServer()
    seen: list[tuple[int, int]] = []
    result = await replay_spool(
        str(prepared.dir),
        "http://127.0.0.1:8787",
        5.0,
        progress=lambda done, total: seen.append((done, total)),
        transport=httpx.MockTransport(server),
    )
    assert sorted(e["event_id"] for e in server.event_data()) == prepared.ids
    assert result == ReplayResult(
        total=5,
        delivered=5,
        dropped=0,
        on_disk=0,
        corrupt_lines=1,
        export_failures=0,
        logs=(str(prepared.a), str(prepared.b)),
        skipped=(),
        timed_out=False,
    )
    assert result.ok
    assert seen[0] == (0, 5)
    assert seen[-1] == (5, 5)
    assert sorted(p.name for p in prepared.dir.iterdir()) == ["notes.txt"]


async def test_replay_skips_a_locked_log_and_leaves_it_intact(
    prepared: Prepared, locked: Locked, autojump_clock: trio.testing.MockClock
) -> None:
    """A live logger's log is listed as skipped, never sent and never changed."""
    before = locked.snapshot()
    server = RawServer()
    result = await replay_spool(
        str(prepared.dir), "http://127.0.0.1:8787", 5.0, transport=httpx.MockTransport(server)
    )
    assert sorted(e["event_id"] for e in server.event_data()) == prepared.ids
    assert result.skipped == (str(locked.log),)
    assert (result.total, result.delivered, result.on_disk) == (5, 5, 0)
    assert result.ok
    assert locked.snapshot() == before
    assert still_locked(locked.lock)


async def test_replay_during_an_outage_loses_nothing(
    prepared: Prepared, autojump_clock: trio.testing.MockClock
) -> None:
    """An outage past the timeout: the events stay in their logs; a later replay delivers them."""
    down = CapturingTransport(status_code=503)
    result = await replay_spool(str(prepared.dir), "http://127.0.0.1:8787", 30.0, transport=down)
    assert not result.ok
    assert (result.delivered, result.on_disk, result.dropped, result.timed_out) == (0, 5, 0, True)
    assert result.export_failures >= 1
    assert ids_on_disk(prepared.dir) == prepared.ids
    assert spool_logs(prepared.dir) == sorted([prepared.a, prepared.b])

    server = RawServer()
    up = await replay_spool(
        str(prepared.dir), "http://127.0.0.1:8787", 30.0, transport=httpx.MockTransport(server)
    )
    assert sorted(e["event_id"] for e in server.event_data()) == prepared.ids
    assert (up.total, up.delivered, up.on_disk, up.timed_out) == (5, 5, 0, False)
    assert ids_on_disk(prepared.dir) == []


async def test_replay_delivers_what_an_applications_limits_would_trim(
    spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A month-old log is delivered, not dropped by max_spool_age: the user asked for it."""
    spool_dir.mkdir(mode=0o700)
    month_ago = time.time() - 30 * 86400
    log = plant_log(
        spool_dir, "old", "run", {1: record(0, internal("o0", "o0" * 16), spooled_at=month_ago)}
    )
    set_mtime(log, month_ago)
    server = RawServer()
    result = await replay_spool(
        str(spool_dir), "http://127.0.0.1:8787", 5.0, transport=httpx.MockTransport(server)
    )
    assert [e["event_id"] for e in server.event_data()] == ["o0" * 16]
    assert (result.delivered, result.dropped, result.ok) == (1, 0, True)


async def test_replay_does_not_pause_between_chunks(
    spool_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """No live traffic to be fair to: ten chunks go out back to back, well within 0.5 s."""
    spool_dir.mkdir(mode=0o700)
    lines = b"".join(record(n, internal(f"e{n}", f"{n:032x}")) for n in range(2000))
    plant_log(spool_dir, "big", "run", {1: lines})
    server = RawServer()
    start = trio.current_time()
    result = await replay_spool(
        str(spool_dir), "http://127.0.0.1:8787", 0.5, transport=httpx.MockTransport(server)
    )
    assert (result.delivered, result.timed_out) == (2000, False)
    assert trio.current_time() - start < 0.5


# -- replay against the real collector -------------------------------------------------


@pytest.mark.integration
def test_replay_command_with_the_server_down_keeps_every_event_on_disk(
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
async def test_replay_command_exits_0_once_everything_is_delivered(
    prepared: Prepared, locked: Locked, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command (its own trio.run, in a worker thread) reports skipped and delivered events."""
    async with open_collector() as collector:
        argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", collector.url]
        status = await trio.to_thread.run_sync(run_cli, argv)
        assert sorted(await collector.event_ids()) == prepared.ids
    assert status == 0
    out = capsys.readouterr().out
    assert f"Replaying 5 events from 2 logs to {collector.url}." in out
    assert f"skipped (locked by a live logger): {locked.log.name}" in out
    assert "Delivered 5 of 5 events; 0 still on disk; 0 dropped; 1 corrupt line discarded" in out
    assert ids_on_disk(prepared.dir) == [C0]
    assert sorted(p.name for p in prepared.dir.iterdir()) == sorted(
        [locked.log.name, prepared.notes.name]
    )


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


def test_purge_deletes_a_log_left_without_its_lock_file(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty log directory whose run died before creating its lock file is purged too."""
    orphan = prepared.dir / "spool-v2.dead.run"
    orphan.mkdir(mode=0o700)
    assert run_cli(["spool", "purge", "--dir", str(prepared.dir), "--yes", orphan.name]) == 0
    assert f"deleted {orphan.name} (0 events)" in capsys.readouterr().out
    assert not orphan.exists()


async def test_replay_does_not_wait_for_a_log_left_without_its_lock_file(
    prepared: Prepared, autojump_clock: trio.testing.MockClock
) -> None:
    """An empty log directory whose run died before creating its lock file is removed at once."""
    orphan = prepared.dir / "spool-v2.dead.run"
    orphan.mkdir(mode=0o700)
    server = RawServer()
    result = await replay_spool(
        str(prepared.dir), "http://127.0.0.1:8787", 30.0, transport=httpx.MockTransport(server)
    )
    assert (result.delivered, result.timed_out, result.ok) == (5, False, True)
    assert not orphan.exists()


# -- which directory, and why ------------------------------------------------------------


def test_ls_names_the_directory_given_with_dir(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --dir, the first line names the directory and says that --dir chose it."""
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"Spool directory (--dir): {prepared.dir}"


@pytest.mark.parametrize("origin", ["home", "XDG_STATE_HOME", "EVENTLOG_HOME"])
def test_ls_explains_the_default_directory_of_a_service(
    origin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --dir: Config's default storage_dir, the rule that chose it, and --dir's use."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("EVENTLOG_HOME", raising=False)
    if origin == "home":
        path = tmp_path / "home" / ".local" / "state" / "eventlog" / "myapp" / "telemetry"
        rule = "(~/.local/state/eventlog/myapp/telemetry: the default storage_dir of "
        rule += "service_name 'myapp' (--service), as XDG_STATE_HOME is unset;"
    elif origin == "XDG_STATE_HOME":
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        path = tmp_path / "state" / "eventlog" / "myapp" / "telemetry"
        rule = "($XDG_STATE_HOME/eventlog/myapp/telemetry: the default storage_dir of "
        rule += "service_name 'myapp' (--service);"
    else:
        monkeypatch.setenv("EVENTLOG_HOME", str(tmp_path / "eh"))
        path = tmp_path / "eh" / "telemetry"
        rule = "($EVENTLOG_HOME/telemetry: the default storage_dir of every service while "
        rule += "EVENTLOG_HOME is set;"
    config = eventlog.Config(base_url="http://127.0.0.1:8787", service_name="myapp")
    assert config.storage_dir == str(path)
    assert spool_directory(None, "myapp").origin == origin
    assert run_cli(["spool", "ls", "--service", "myapp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Spool directory: {path}"
    assert lines[1] == f"  {rule} for an application that sets storage_dir, give it as --dir)"
    assert lines[2] == f"No spool directory at {path}: nothing spooled."
    assert run_cli(["spool", "ls", "--service", "myapp", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[0] == f"Spool directory: {path}"


def test_the_readme_examples_storage_dir_is_where_spool_ls_service_looks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's storage_dir is its service_name's default: spool ls --service finds it."""
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("EVENTLOG_HOME", raising=False)
    readme = (ROOT / "README.md").read_text()
    storage = re.search(r'storage_dir="([^"]+)"', readme)
    service = re.search(r'service_name="([^"]+)"', readme)
    assert storage is not None
    assert service is not None
    where = spool_directory(None, service.group(1))
    assert where.path == os.path.expanduser(storage.group(1))
    assert f"eventlog spool ls --service {service.group(1)}" in readme


# -- fitting the terminal ----------------------------------------------------------------


def test_a_table_that_fits_is_one_line_per_row() -> None:
    """Columns two spaces apart, numbers right-aligned; without a width nothing moves."""
    columns = [Column("n", numeric=True), Column("name", token=True)]
    rows = [("1", "a" * 100), ("10", "b")]
    expected = [(" n  name", True), (" 1  " + "a" * 100, False), ("10  b", False)]
    assert table_lines(columns, rows, None) == expected
    assert table_lines(columns, rows[1:], 80) == [(" n  name", True), ("10  b", False)]


def test_a_table_too_wide_moves_its_tokens_to_lines_of_their_own() -> None:
    """The rightmost tokens leave the row first; side by side when they fit, else one a line."""
    columns = [Column("n", numeric=True), Column("id", token=True), Column("name", token=True)]
    rows = [("1", "i" * 32, "x" * 30)]
    assert table_lines(columns, rows, 70) == [
        ("n  id" + " " * 32 + "name", True),
        ("1  " + "i" * 32 + "  " + "x" * 30, False),
    ]
    assert table_lines(columns, rows, 60) == [
        ("n  id", True),
        ("    name", True),
        ("1  " + "i" * 32, False),
        ("    " + "x" * 30, False),
    ]
    assert table_lines(columns, rows, 30) == [
        ("n", True),
        ("    id", True),
        ("    name", True),
        ("1", False),
        ("    " + "i" * 32, False),
        ("    " + "x" * 30, False),
    ]


def test_only_tokens_leave_a_row_too_wide_even_for_a_terminal_too_narrow() -> None:
    """A column that is no token stays in the row, past the width if it must; tokens move."""
    columns = [Column("n", numeric=True), Column("log", token=True), Column("state")]
    rows = [("1", "l" * 40, "locked")]
    expected = [
        ("n  state", True),
        ("    log", True),
        ("1  locked", False),
        ("    " + "l" * 40, False),
    ]
    assert table_lines(columns, rows, 20) == expected
    assert table_lines(columns, rows, 5) == expected


class TTY(io.StringIO):
    """A stdout that claims to be a terminal: rich renders to it."""

    def isatty(self) -> bool:
        """Claim to be a terminal."""
        return True


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal80(monkeypatch: pytest.MonkeyPatch) -> TTY:
    """Make stdout an 80-column terminal, written to by rich; call it in the test's body.

    (pytest puts its own stdout back between a fixture's setup and the test.)
    """
    screen = TTY()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "xterm")  # a terminal rich styles
    for variable in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)
    return screen


def fits(text: str, width: int, tokens: list[str]) -> list[str]:
    """The lines of ``text``, checked: none wider than ``width`` unless it is one token alone.

    Also checks that nothing was cut (no ellipsis) and that each of ``tokens``
    is whole on one line.
    """
    lines = _ANSI.sub("", text).splitlines()
    for line in lines:
        assert len(line) <= width or " " not in line.strip(), line
    assert "…" not in text
    for token in tokens:
        assert any(token in line for line in lines), f"{token} broken in:\n{text}"
    return lines


def test_ls_and_show_fit_80_columns_without_cutting_a_name(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (rich), no line is wider, no word is cut, names and ids stay whole."""
    screen = terminal80(monkeypatch)
    long_log = plant_log(
        prepared.dir, "f" * 32, "e" * 32, {1: record(0, experiment("onboarding-" * 4, "9" * 32))}
    )
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    names = [prepared.a.name, prepared.b.name, prepared.temp.name, long_log.name]
    lines = fits(screen.getvalue(), 80, [str(prepared.dir), *names])
    assert _ANSI.sub("", screen.getvalue()) != screen.getvalue()  # rich styled it
    assert lines[-1] == "3 logs, 6 events, 0 locked; 1 temp file."
    screen.seek(0)
    screen.truncate()
    assert run_cli(["spool", "show", str(long_log)]) == 0
    fits(screen.getvalue(), 80, [str(long_log), "9" * 32, "onboarding-" * 4 + " (variation 1)"])
    screen.seek(0)
    screen.truncate()
    assert run_cli(["spool", "show", str(prepared.a)]) == 0
    fits(screen.getvalue(), 80, [A0, A1, A2, "2026-01-01T00:00:00.000Z"])


def test_plain_text_on_a_terminal_fits_it_too(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without rich, on an 80-column terminal: the same text, unstyled, fitted alike."""
    screen = terminal80(monkeypatch)
    monkeypatch.setitem(sys.modules, "rich.console", None)  # as if rich were not installed
    assert run_cli(["spool", "ls", "--dir", str(prepared.dir)]) == 0
    names = [prepared.a.name, prepared.b.name, prepared.temp.name]
    lines = fits(screen.getvalue(), 80, [str(prepared.dir), *names])
    assert _ANSI.sub("", screen.getvalue()) == screen.getvalue()
    header = lines.index("format   segments  events  corrupt  bytes     age  locked")
    assert lines[header + 1] == "    log"
    assert lines[header + 2].split()[:4] == ["v2", "2", "3", "1"]
    assert lines[header + 3] == f"    {prepared.a.name}"


def test_replay_on_a_terminal_asks_then_shows_its_progress(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the replay asks first, then draws a progress bar to the last event."""
    screen = terminal80(monkeypatch)
    monkeypatch.setattr(sys, "stdin", FakeTTY("y\n"))
    server = RawServer()
    monkeypatch.setattr(
        cli_spool,
        "replay_spool",
        functools.partial(replay_spool, transport=httpx.MockTransport(server)),
    )
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", "http://127.0.0.1:8787"]
    assert run_cli(argv) == 0
    text = _ANSI.sub("", screen.getvalue())
    assert "Deliver 5 events from 2 logs to http://127.0.0.1:8787? [y/N]" in text
    assert "5/5" in text
    assert "Delivered 5 of 5 events; 0 still on disk; 0 dropped; 1 corrupt line discarded." in text
    assert sorted(e["event_id"] for e in server.event_data()) == prepared.ids


def test_piped_output_is_not_wrapped(prepared: Prepared, tmp_path: Path) -> None:
    """Not a terminal, COLUMNS=80: a long path and each row stay on one line each."""
    deep = tmp_path / ("a-directory-with-a-rather-long-name-" * 3) / "telemetry"
    deep.parent.mkdir()
    shutil.copytree(prepared.dir, deep)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLOG_")}
    env["COLUMNS"] = "80"
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", "spool", "ls", "--dir", str(deep)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == f"Spool directory (--dir): {deep}"
    assert lines[1].split() == [
        "format", "segments", "events", "corrupt", "bytes", "age", "locked", "log"
    ]  # fmt: skip
    assert [line.split()[-1] for line in lines[2:5]] == [
        prepared.a.name,
        prepared.b.name,
        prepared.temp.name,
    ]
    assert len(lines) == 6


# -- the core install: neither rich nor trio ------------------------------------------------

_CORE = """
import functools, sys
sys.modules["rich"] = sys.modules["trio"] = sys.modules["hypercorn"] = None
import httpx
import eventlog._cli._spool as commands
from eventlog._cli import main

# The replay posts to a MockTransport that accepts everything.
accept = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
commands.replay_spool = functools.partial(commands.replay_spool, transport=accept)
print("backend", commands.async_backend(), flush=True)
for argv in sys.argv[1:]:
    try:
        main(argv.split("|"))
    except SystemExit as exc:
        print("exit", exc.code, flush=True)
"""


def test_the_spool_commands_run_without_rich_and_trio(prepared: Prepared) -> None:
    """A core install: ls and show print plain tables, replay runs on asyncio, purge works."""
    directory = str(prepared.dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLOG_")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CORE,
            f"spool|ls|--dir|{directory}",
            f"spool|show|--dir|{directory}|{prepared.a.name}",
            f"spool|replay|--dir|{directory}|--base-url|http://127.0.0.1:8787|--timeout|20",
            f"spool|purge|--dir|{directory}|--yes",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.stderr == ""
    out = done.stdout
    assert out.startswith("backend asyncio\n")
    assert [line for line in out.splitlines() if line.startswith("exit")] == ["exit 0"] * 4
    header = ["format", "segments", "events", "corrupt", "bytes", "age", "locked", "log"]
    assert header in [cells(line) for line in out.splitlines()]
    assert cells(next(line for line in out.splitlines() if A0 in line))[5:] == [A0, "a0"]
    assert "Replaying 5 events from 2 logs to http://127.0.0.1:8787." in out
    assert "Delivered 5 of 5 events; 0 still on disk; 0 dropped; 1 corrupt line discarded." in out
    assert "No spool logs in" in out  # purge: the replay left nothing
    assert sorted(p.name for p in prepared.dir.iterdir()) == ["notes.txt"]


# -- what the commands cannot do, and say --------------------------------------------


def damage(prepared: Prepared) -> Path:
    """A fourth log, one of whose segments is a directory: a log that cannot be read."""
    log = plant_log(prepared.dir, "sess-d", "damaged", {})
    (log / segment_name(1)).mkdir()
    return log


def test_a_log_that_cannot_be_read_fails_ls_replay_and_purge_with_a_reason(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """ls, replay and purge: an error line naming the directory or the log, exit 1."""
    log = damage(prepared)
    where = ["--dir", str(prepared.dir)]
    assert run_cli(["spool", "ls", *where]) == 1
    assert f"cannot list {prepared.dir}: [Errno 21] Is a directory" in capsys.readouterr().err
    assert run_cli(["spool", "replay", *where, "--base-url", unused_loopback_url(), "--yes"]) == 1
    assert f"cannot list {prepared.dir}" in capsys.readouterr().err
    assert run_cli(["spool", "purge", *where, "--yes"]) == 1
    assert f"cannot list {prepared.dir}" in capsys.readouterr().err
    assert prepared.a.exists()
    # Named, the logs that can be read are still deleted.
    assert run_cli(["spool", "purge", *where, "--yes", log.name, prepared.a.name]) == 1
    assert f"cannot read {log}: Is a directory" in capsys.readouterr().err
    assert (log.exists(), prepared.a.exists()) == (True, False)


def test_replay_on_a_terminal_answered_no_sends_nothing(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal, an answer other than yes: "Nothing sent.", exit 1, the logs as they were."""
    monkeypatch.setattr(sys, "stdin", FakeTTY("n\n"))
    url = unused_loopback_url()
    assert run_cli(["spool", "replay", "--dir", str(prepared.dir), "--base-url", url]) == 1
    out = capsys.readouterr().out
    assert f"Deliver 5 events from 2 logs to {url}? [y/N]" in out
    assert out.endswith("? [y/N] Nothing sent.\n")  # the answer typed is not echoed here
    assert ids_on_disk(prepared.dir) == prepared.ids


def replaying(
    monkeypatch: pytest.MonkeyPatch, outcome: ReplayResult | BaseException
) -> list[tuple[str, str, float]]:
    """Make the replay command's replay return or raise ``outcome``; its calls' arguments."""
    calls: list[tuple[str, str, float]] = []

    async def replay(directory: str, base_url: str, seconds: float, **_: object) -> ReplayResult:
        calls.append((directory, base_url, seconds))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(cli_spool, "replay_spool", replay)
    return calls


def test_replay_reports_what_it_left_skipped_dropped_and_timed_out(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partial replay: a line per log skipped, every count in the summary, the timeout; exit 1."""
    skipped = str(prepared.dir / "spool-v2.sess-c.live")
    result = ReplayResult(
        total=5,
        delivered=2,
        dropped=1,
        on_disk=2,
        corrupt_lines=1,
        export_failures=3,
        logs=(str(prepared.a), str(prepared.b)),
        skipped=(skipped,),
        timed_out=True,
    )
    calls = replaying(monkeypatch, result)
    url = unused_loopback_url()
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", url, "--timeout", "7.5"]
    assert run_cli(argv) == 1
    assert calls == [(str(prepared.dir), url, 7.5)]
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-2:] == [
        "skipped (locked by a live logger): spool-v2.sess-c.live",
        "Delivered 2 of 5 events; 2 still on disk; 1 dropped; 1 corrupt line discarded; "
        "3 failed POSTs.",
    ]
    assert captured.err == "Timed out after 7.5s; run it again once the server is up.\n"


@pytest.mark.parametrize(
    "interrupt",
    [
        pytest.param(KeyboardInterrupt(), id="bare"),
        pytest.param(BaseExceptionGroup("g", [KeyboardInterrupt()]), id="in-a-group"),
    ],
)
def test_ctrl_c_during_a_replay_exits_130_and_says_the_events_stay(
    prepared: Prepared,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    interrupt: BaseException,
) -> None:
    """Ctrl-C while replaying: one line saying nothing undelivered is lost, exit 130."""
    replaying(monkeypatch, interrupt)
    url = unused_loopback_url()
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", url, "--yes"]
    assert run_cli(argv) == 130
    assert capsys.readouterr().err == "Interrupted: undelivered events stay on disk.\n"


def test_replay_failing_on_the_disk_says_so_and_anything_else_propagates(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OSError during the replay is one line and exit 1; another error is not hidden."""
    argv = ["spool", "replay", "--dir", str(prepared.dir), "--base-url", unused_loopback_url()]
    replaying(monkeypatch, PermissionError(13, "Permission denied"))
    assert run_cli([*argv, "--yes"]) == 1
    err = capsys.readouterr().err
    assert f"cannot read {prepared.dir}: [Errno 13] Permission denied" in err
    replaying(monkeypatch, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        run_cli([*argv, "--yes"])


def test_purge_reports_a_log_gone_before_its_turn(
    prepared: Prepared, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log drained and deleted by a logger after the listing: "skipped", the others deleted."""

    def delete_log(path: str) -> tuple[str, str]:
        if path == str(prepared.a):
            shutil.rmtree(path)  # its logger's takeover drained it meanwhile
        return admin_delete_log(path)

    monkeypatch.setattr(cli_spool, "delete_log", delete_log)
    argv = ["spool", "purge", "--dir", str(prepared.dir), "--yes", prepared.a.name]
    assert run_cli([*argv, prepared.b.name]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"skipped {prepared.a.name}: no such file" in out
    assert f"deleted {prepared.b.name} (2 events)" in out
    assert out[-1] == "Deleted 1 log (2 events)."
