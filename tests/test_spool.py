"""The spool file: line format, checksums, locks, atomic rewrite, lazy creation."""

from __future__ import annotations

import fcntl
import os
import stat
import zlib
from pathlib import Path

import pytest

from eventlog._spool import (
    Record,
    RecordState,
    Spool,
    SpoolFile,
    encode_line,
    parse_file_name,
    parse_lines,
    spool_file_name,
)
from eventlog._stats import Counters

PAYLOAD = b'{"event_type":"InternalEvent","event_data":{"event_id":"a"}}'


def make_spool(directory: Path, run: str = "run1") -> tuple[Spool, Counters]:
    counters = Counters()
    return Spool(str(directory), "sess", run, counters), counters


def test_line_format() -> None:
    """A line is versioned JSON: attempts, first-spooled time, CRC-32, the envelope verbatim."""
    line = encode_line(Record(PAYLOAD, attempts=3, spooled_at=1767225600.9))
    crc = f"{zlib.crc32(PAYLOAD):08x}".encode()
    head = b'{"v":1,"attempts":3,"t":1767225600,"crc32":"' + crc + b'","event":'
    assert line == head + PAYLOAD + b"}\n"


def test_lines_without_t_from_the_first_format_still_parse() -> None:
    """A line written before ``t`` existed parses, with an unknown (0) spool time."""
    crc = f"{zlib.crc32(PAYLOAD):08x}".encode()
    old = b'{"v":1,"attempts":2,"crc32":"' + crc + b'","event":' + PAYLOAD + b"}\n"
    [record] = parse_lines(old, Counters())
    assert (record.payload, record.attempts, record.spooled_at) == (PAYLOAD, 2, 0.0)


def test_roundtrip_keeps_payload_bytes_and_attempts() -> None:
    """Parsing what was encoded gives back the same bytes and attempt counts."""
    counters = Counters()
    data = encode_line(Record(PAYLOAD, 2)) + encode_line(Record(b'{"x":[1,2]}', 0))
    records = parse_lines(data, counters)
    assert [(r.payload, r.attempts) for r in records] == [(PAYLOAD, 2), (b'{"x":[1,2]}', 0)]
    assert all(r.persisted for r in records)
    assert counters.spool_corrupt_lines == 0


def test_corrupt_torn_and_mismatching_lines_are_skipped_and_counted() -> None:
    """Garbage, a checksum mismatch and a torn last line cost only themselves."""
    good = encode_line(Record(PAYLOAD, 1))
    flipped = good.replace(b'"a"', b'"b"')  # payload changed, checksum not
    torn = encode_line(Record(PAYLOAD, 0))[:-20]
    negative = good.replace(b'"attempts":1', b'"attempts":-1')
    data = good + b"not json\n" + flipped + b"\n\n" + negative + good + torn
    counters = Counters()
    records = parse_lines(data, counters)
    assert len(records) == 2
    assert counters.spool_corrupt_lines == 4


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    """A newer writer's extra fields do not make a line corrupt."""
    line = encode_line(Record(PAYLOAD, 1)).replace(b'{"v":1,', b'{"v":2,"future":true,')
    counters = Counters()
    assert len(parse_lines(line, counters)) == 1


def test_file_names() -> None:
    """Spool file names carry the session and the run, and nothing else parses."""
    name = spool_file_name("sess-1", "abc")
    assert name == "failed_events.sess-1.abc.jsonl"
    assert parse_file_name(name) == ("sess-1", "abc")
    assert parse_file_name("failed_events.x.jsonl") is None
    assert parse_file_name(name + ".tmp") is None


def test_file_is_created_lazily_with_private_permissions(tmp_path: Path) -> None:
    """No file until the first append; then the directory is 0700 and the file 0600."""
    directory = tmp_path / "d"
    spool, _ = make_spool(directory)
    assert not directory.exists()
    spool.append([Record(PAYLOAD)])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat(spool.path).st_mode) == 0o600
    assert Path(spool.path).read_bytes() == encode_line(Record(PAYLOAD))
    assert spool.size == len(encode_line(Record(PAYLOAD)))
    spool.close()


def test_run_file_is_locked_against_the_same_process(tmp_path: Path) -> None:
    """While the run lives, another open of its file cannot take the lock."""
    spool, _ = make_spool(tmp_path)
    spool.append([Record(PAYLOAD)])
    assert SpoolFile.claim(spool.path, Counters()) is None
    fd = os.open(spool.path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    spool.close()
    claimed = SpoolFile.claim(spool.path, Counters())
    assert claimed is not None
    assert [r.payload for r in claimed.records] == [PAYLOAD]
    claimed.release()


def test_rewrite_keeps_the_lock_and_drops_settled_records(tmp_path: Path) -> None:
    """After settle() the file holds only pending records and is still locked."""
    spool, _ = make_spool(tmp_path)
    records = [Record(b'{"n":%d}' % i) for i in range(4)]
    spool.append(records)
    records[0].state = RecordState.ACKED
    records[2].state = RecordState.DROPPED
    records[3].attempts = 5
    spool.settle()
    claimed_counters = Counters()
    assert SpoolFile.claim(spool.path, claimed_counters) is None
    data = Path(spool.path).read_bytes()
    assert [(r.payload, r.attempts) for r in parse_lines(data, Counters())] == [
        (b'{"n":1}', 0),
        (b'{"n":3}', 5),
    ]
    assert not Path(spool.path + ".tmp").exists()
    assert spool.size == len(data)
    spool.close()
    assert Path(spool.path).exists()


def test_settling_everything_removes_the_file(tmp_path: Path) -> None:
    """An empty spool leaves no file behind."""
    spool, _ = make_spool(tmp_path)
    record = Record(PAYLOAD)
    spool.append([record])
    record.state = RecordState.ACKED
    spool.settle()
    assert not Path(spool.path).exists()
    assert spool.size == 0
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_claim_of_a_missing_file_is_none(tmp_path: Path) -> None:
    """A file that vanished between listing and claiming is skipped."""
    assert SpoolFile.claim(str(tmp_path / "nope"), Counters()) is None


def test_disk_errors_keep_records_in_memory_and_count_losses_at_close(tmp_path: Path) -> None:
    """When the directory cannot be created, records stay in memory; close counts the loss."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    spool, counters = make_spool(blocker / "sub")
    spool.append([Record(PAYLOAD), Record(PAYLOAD)])
    assert len(spool) == 2
    assert not any(r.persisted for r in spool)
    spool.close()
    assert counters.dropped_disk_error == 2
