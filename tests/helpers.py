"""Helpers shared by the tests that look at raw request bodies and decoded events."""

from __future__ import annotations

import base64
import gzip
import json
from typing import TYPE_CHECKING, Any

import httpx

from eventlog.testing import InternalEvent, InternalEventData

if TYPE_CHECKING:
    from collections.abc import Mapping

    import eventlog


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
