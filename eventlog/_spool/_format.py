"""The on-disk format of the spool, version 2 (docs/delivery.md, "Files").

Names::

    <storage_dir>/spool-v2.<session_id>.<run_id>/   one run's log, mode 0700
        lock                                          flock'ed while a run owns the log
        00000001.seg                                  segment 1: record lines
        00000001.jnl                                  its journal: settled and failed records
        ...
    <storage_dir>/failed_events.<session_id>.<run_id>.jsonl   a version 1 spool file

A **record line** is one event::

    {"v":2,"n":17,"attempts":1,"t":1767225600,"crc32":"9a0b1c2d","event":{...}}

``n`` is its number within the segment (the key of the journal), ``attempts``
its failed POSTs when it was written, ``t`` when it first reached a spool
(wall seconds), and ``crc32`` the CRC-32 of ``n``, ``attempts``, ``t`` and the
event's bytes, so that a torn or bit-flipped line is skipped and counted,
never delivered as garbage nor taken for another record. Version 1 lines
(``"v":1``, no ``n``, the CRC of the event alone) are read with their line
number as ``n``.

A **journal line** records what became of some records, as ranges of ``n``::

    {"crc32":"5e1f0c2a","done":[[0,199]]}
    {"crc32":"77a0e4d1","failed":[[200,399]]}

``done``: acknowledged or dropped for good, never to be sent again;
``failed``: one more failed POST each. A torn or corrupt journal line is
ignored: its records are sent again (a duplicate for the server's dedupe) or
get one attempt fewer, never lost.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "FORMAT_VERSION",
    "JOURNAL_SUFFIX",
    "LOCK_NAME",
    "RUN_PREFIX",
    "SEGMENT_SUFFIX",
    "V1_PREFIX",
    "V1_SUFFIX",
    "Journal",
    "Line",
    "encode_journal_line",
    "encode_record_line",
    "encode_record_lines",
    "iter_lines",
    "journal_name",
    "parse_journal",
    "parse_line",
    "parse_run_name",
    "parse_segment_name",
    "parse_v1_name",
    "read_lines",
    "run_name",
    "segment_name",
    "v1_name",
]

FORMAT_VERSION: Final = 2
RUN_PREFIX: Final = "spool-v2."
SEGMENT_SUFFIX: Final = ".seg"
JOURNAL_SUFFIX: Final = ".jnl"
LOCK_NAME: Final = "lock"
V1_PREFIX: Final = "failed_events."
V1_SUFFIX: Final = ".jsonl"

_ID: Final = r"[A-Za-z0-9_-]{1,128}"
_RUN_RE: Final = re.compile(rf"spool-v2\.(?P<session>{_ID})\.(?P<run>[A-Za-z0-9_-]{{1,64}})")
_V1_RE: Final = re.compile(
    rf"failed_events\.(?P<session>{_ID})\.(?P<run>[A-Za-z0-9_-]{{1,64}})\.jsonl"
)
_SEGMENT_RE: Final = re.compile(r"(?P<number>[0-9]{8})\.(?P<kind>seg|jnl)")


def run_name(session_id: str, run_id: str) -> str:
    """``spool-v2.<session_id>.<run_id>``: the directory of one run's log."""
    return f"{RUN_PREFIX}{session_id}.{run_id}"


def parse_run_name(name: str) -> tuple[str, str] | None:
    """``(session_id, run_id)`` of a run directory's name, else None."""
    match = _RUN_RE.fullmatch(name)
    return (match["session"], match["run"]) if match else None


def v1_name(session_id: str, run_id: str) -> str:
    """``failed_events.<session_id>.<run_id>.jsonl``: a version 1 spool file."""
    return f"{V1_PREFIX}{session_id}.{run_id}{V1_SUFFIX}"


def parse_v1_name(name: str) -> tuple[str, str] | None:
    """``(session_id, run_id)`` of a version 1 spool file's name, else None."""
    match = _V1_RE.fullmatch(name)
    return (match["session"], match["run"]) if match else None


def segment_name(number: int) -> str:
    """``00000017.seg``."""
    return f"{number:08d}{SEGMENT_SUFFIX}"


def journal_name(number: int) -> str:
    """``00000017.jnl``."""
    return f"{number:08d}{JOURNAL_SUFFIX}"


def parse_segment_name(name: str) -> tuple[int, bool] | None:
    """``(number, is_journal)`` of a segment or journal file's name, else None."""
    match = _SEGMENT_RE.fullmatch(name)
    return (int(match["number"]), match["kind"] == "jnl") if match else None


def _record_crc(number: int, attempts: int, spooled_at: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(b"%d,%d,%d," % (number, attempts, spooled_at)))


_RECORD_LINE: Final = b'{"v":2,"n":%d,"attempts":%d,"t":%d,"crc32":"%08x","event":%b}\n'


def encode_record_lines(items: Iterable[tuple[int, int, float, bytes]]) -> list[bytes]:
    """The record lines of ``(number, attempts, spooled_at, payload)`` items, in order.

    :func:`encode_record_line` in one loop: an append's lines are encoded
    by the hundred, and the calls cost as much as the checksums.
    """
    crc32 = zlib.crc32
    line = _RECORD_LINE
    lines: list[bytes] = []
    append = lines.append
    for number, attempts, spooled_at, payload in items:
        t = int(spooled_at)
        crc = crc32(payload, crc32(b"%d,%d,%d," % (number, attempts, t)))
        append(line % (number, attempts, t, crc, payload))
    return lines


def encode_record_line(number: int, attempts: int, spooled_at: float, payload: bytes) -> bytes:
    """The record line of one event, newline included."""
    t = int(spooled_at)
    return b'{"v":2,"n":%d,"attempts":%d,"t":%d,"crc32":"%08x","event":%b}\n' % (
        number,
        attempts,
        t,
        _record_crc(number, attempts, t, payload),
        payload,
    )


class _Line(msgspec.Struct):
    v: int
    attempts: int
    crc32: str
    event: msgspec.Raw
    t: int = 0  # added after version 1 shipped: optional
    n: int = -1  # version 2


_LINE_DECODER: Final = msgspec.json.Decoder(_Line)


class Line(NamedTuple):
    """One valid record line, as read."""

    number: int
    attempts: int
    spooled_at: float
    payload: bytes


def iter_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of every line of a file read in ``chunks``, newline excluded.

    A line at a time, never one split of the whole file: a thread indexing a
    big segment must let go of the interpreter's lock often, or the event
    loop waits for it.
    """
    offset = 0
    tail = b""
    for chunk in chunks:
        data = tail + chunk if tail else chunk
        start = 0
        find = data.find
        while (end := find(b"\n", start)) >= 0:
            yield offset + start, data[start:end]
            start = end + 1
        offset += start
        tail = data[start:]
    if tail:
        yield offset, tail


def parse_line(raw: bytes, position: int, *, payload: bool = True) -> Line | None:
    """The record of one line (``position``: its line number in the file), or None if invalid.

    Invalid: undecodable (a torn tail, garbage, a flipped bit, even invalid
    UTF-8), a checksum mismatch, a negative attempt count or number.
    """
    try:
        parsed = _LINE_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
        return None
    event = bytes(parsed.event)
    if parsed.v >= 2:
        number = parsed.n
        expected = _record_crc(number, parsed.attempts, parsed.t, event)
    else:
        number = position
        expected = zlib.crc32(event)
    if f"{expected:08x}" != parsed.crc32 or parsed.attempts < 0 or number < 0:
        return None
    return Line(number, parsed.attempts, float(parsed.t), event if payload else b"")


def read_lines(data: bytes, *, payloads: bool = True) -> tuple[list[Line], int]:
    """Every valid record line of ``data``, and how many lines were skipped.

    Lines are decoded one by one (not with ``decode_lines``) so that one bad
    line costs only itself; a torn last line, undecodable lines and checksum
    mismatches are skipped and counted. Version 1 lines are numbered by their
    position. With ``payloads=False`` the lines carry an empty payload (to
    index a segment without holding its events).
    """
    lines: list[Line] = []
    skipped = 0
    for position, (_, raw) in enumerate(iter_lines((data,))):
        if not raw.strip():
            continue
        line = parse_line(raw, position, payload=payloads)
        if line is None:
            skipped += 1
        else:
            lines.append(line)
    return lines, skipped


def encode_journal_line(kind: str, numbers: list[int]) -> bytes:
    """A journal line marking ``numbers`` as ``"done"`` or ``"failed"``, newline included."""
    body = b'"%b":%b' % (kind.encode("ascii"), msgspec.json.encode(_ranges(numbers)))
    return b'{"crc32":"%08x",%b}\n' % (zlib.crc32(body), body)


def _ranges(numbers: list[int]) -> list[list[int]]:
    """``[1, 2, 3, 7]`` as ``[[1, 3], [7, 7]]``."""
    ranges: list[list[int]] = []
    for number in sorted(numbers):
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1][1] = number
        elif not ranges or ranges[-1][1] < number:
            ranges.append([number, number])
    return ranges


class _JournalLine(msgspec.Struct):
    crc32: str
    done: list[tuple[int, int]] | None = None
    failed: list[tuple[int, int]] | None = None


_JOURNAL_DECODER: Final = msgspec.json.Decoder(_JournalLine)


class Journal(NamedTuple):
    """What a segment's journal says: settled records, and extra failed attempts."""

    done: set[int]
    failed: dict[int, int]


# A journal line never names more records than a segment can hold.
_MAX_RANGE: Final = 1 << 24


def parse_journal(data: bytes) -> Journal:
    """The settled and failed record numbers of a journal; bad lines are ignored."""
    done: set[int] = set()
    failed: dict[int, int] = {}
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = _JOURNAL_DECODER.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
            continue
        kind = "done" if line.done is not None else "failed"
        ranges = line.done if line.done is not None else line.failed
        if ranges is None:
            continue
        body = b'"%b":%b' % (kind.encode("ascii"), msgspec.json.encode([list(r) for r in ranges]))
        if f"{zlib.crc32(body):08x}" != line.crc32:
            continue
        numbers = [
            number
            for first, last in ranges
            if 0 <= first <= last and last - first < _MAX_RANGE
            for number in range(first, last + 1)
        ]
        if kind == "done":
            done.update(numbers)
        else:
            for number in numbers:
                failed[number] = failed.get(number, 0) + 1
    return Journal(done, failed)
