"""Helpers shared by the tests that look at raw request bodies and decoded events."""

from __future__ import annotations

import base64
import gzip
import json
import re
import zlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

import eventlog
from eventlog import _seams
from eventlog._spool._admin import SpooledEvent, read_events
from eventlog.testing import InternalEvent, InternalEventData

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from pathlib import Path

    from eventlog._spool import FileOps


EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
EVENT_ID_RE = re.compile(r"[0-9a-f]{32}")
# Every field of an EventContext set: identity, auth and app values of each type.
FULL_CONTEXT = eventlog.EventContext(
    device_id="dev-1",
    account_uuid="acc-1",
    organization_uuid="org-1",
    email="user@example.com",
    app={"channel": "beta", "build": 42, "ratio": 0.5, "trial": True},
)


class RawServer:
    """An ``httpx.MockTransport`` handler that keeps every request as it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={})

    def bodies(self) -> list[Any]:
        """Each request's body, parsed as JSON (gunzipped first when gzip-encoded)."""
        out: list[Any] = []
        for request in self.requests:
            content = request.content
            if request.headers.get("content-encoding") == "gzip":
                content = gzip.decompress(content)
            out.append(json.loads(content))
        return out

    def event_data(self) -> list[dict[str, Any]]:
        """``event_data`` of every event received, parsed from the raw JSON, in order."""
        return [event["event_data"] for body in self.bodies() for event in body["events"]]


def decode_metadata(encoded: object) -> Any:
    """``additional_metadata`` decoded: base64, then JSON."""
    assert isinstance(encoded, str)
    return json.loads(base64.b64decode(encoded, validate=True))


def internal(event: object) -> InternalEventData:
    """The ``event_data`` of an event that must be an ``InternalEvent``."""
    assert isinstance(event, InternalEvent)
    return event.event_data


def typed(mapping: Mapping[str, object]) -> list[tuple[str, type[object], object]]:
    """Entries with their types, so that True and 1 (equal in Python) are told apart."""
    return [(key, type(value), value) for key, value in mapping.items()]


def unaccounted(stats: eventlog.Stats) -> int:
    """The Stats invariant's gap: events (this run's and taken over) minus every outcome.

    0 once the logger is idle, whatever happened.
    """
    return (
        stats.emitted
        + stats.taken_over
        - stats.exported
        - stats.replayed
        - stats.dropped_invalid
        - stats.dropped_max_attempts
        - stats.dropped_permanent
        - stats.dropped_spool_limit
        - stats.dropped_disk_error
        - stats.spool_events
        - stats.queue_depth
    )


# -- the spool on disk, read the way `eventlog spool` reads it ----------------------------


def spool_logs(directory: Path) -> list[Path]:
    """Every run's spool in ``directory`` (version 2 directories and version 1 files), by name."""
    if not directory.exists():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.startswith("spool-v2.")
        or (p.name.startswith("failed_events.") and p.name.endswith(".jsonl"))
    )


def spooled_events(directory: Path) -> list[SpooledEvent]:
    """The events waiting in every spool of ``directory``, oldest log first."""
    events: list[SpooledEvent] = []
    for path in spool_logs(directory):
        found, _ = read_events(str(path))
        events += found
    return events


def v1_line(payload: bytes, attempts: int = 0, spooled_at: int = 0) -> bytes:
    """A version 1 spool line, as SDK versions before the segmented log wrote them."""
    return b'{"v":1,"attempts":%d,"t":%d,"crc32":"%08x","event":%b}\n' % (
        attempts,
        spooled_at,
        zlib.crc32(payload),
        payload,
    )


def v1_file(directory: Path, session: str, run: str) -> Path:
    """The path of a version 1 spool file of ``session`` and ``run`` in ``directory``."""
    return directory / f"failed_events.{session}.{run}.jsonl"


@asynccontextmanager
async def open_logger_with(
    ops: FileOps, config: eventlog.Config, **kwargs: Any
) -> AsyncIterator[eventlog.EventLogger]:
    """``open_event_logger`` whose spool uses the file operations ``ops`` (fault injection)."""
    with _seams.use(file_ops=ops):
        async with eventlog.open_event_logger(config, **kwargs) as log:
            yield log


def segment_files(directory: Path) -> list[Path]:
    """Every segment file of every version 2 spool in ``directory``."""
    return sorted(directory.glob("spool-v2.*/*.seg"))
