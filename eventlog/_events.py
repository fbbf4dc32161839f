"""The wire format (docs/events.md) as frozen msgspec Structs.

An event is encoded once, when its batch is built, into the bytes of its
envelope; retries and the spool reuse those bytes, so the ``event_id`` and
every other field stay identical on every attempt. Fields with no value are
omitted (``omit_defaults``), never sent as ``null``.

These Structs are also written to the spool: follow msgspec's schema
evolution rules (new fields get defaults, no field is ever renamed).
"""

from __future__ import annotations

import functools
import time
from typing import Final

import msgspec

__all__ = [
    "Auth",
    "Batch",
    "Envelope",
    "ExperimentEvent",
    "ExperimentEventData",
    "InternalEvent",
    "InternalEventData",
    "ProcessInfo",
    "ServiceInfo",
    "format_timestamp",
    "second_bytes",
]


class Auth(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Account identifiers of the user the event is about."""

    account_uuid: str | None = None
    organization_uuid: str | None = None


class ServiceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The emitting application."""

    name: str
    version: str


class ProcessInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Facts about the emitting process at the time of the event."""

    pid: int
    uptime_s: float | None = None
    rss_bytes: int | None = None


class InternalEventData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``event_data`` of an ``InternalEvent``."""

    event_id: str
    event_name: str
    client_timestamp: str
    session_id: str | None = None
    device_id: str | None = None
    email: str | None = None
    auth: Auth | None = None
    env: dict[str, str | int | float | bool] | None = None
    process: ProcessInfo | None = None
    service: ServiceInfo | None = None
    app: dict[str, str | int | float | bool] | None = None
    sample_rate: float | None = None
    skill_name: str | None = None
    plugin_name: str | None = None
    marketplace_name: str | None = None
    additional_metadata: str | None = None


class InternalEvent(msgspec.Struct, frozen=True, tag_field="event_type", tag="InternalEvent"):
    """An application event: ``{"event_type": "InternalEvent", "event_data": {...}}``."""

    event_data: InternalEventData


class ExperimentEventData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``event_data`` of an ``ExperimentEvent``."""

    event_id: str
    timestamp: str
    experiment_id: str
    variation_id: int
    # No default: omit_defaults would leave it out of the body, and the wire format requires it.
    environment: str
    user_attributes: str | None = None
    experiment_metadata: str | None = None
    device_id: str | None = None
    session_id: str | None = None
    auth: Auth | None = None


class ExperimentEvent(msgspec.Struct, frozen=True, tag_field="event_type", tag="ExperimentEvent"):
    """An experiment assignment: ``{"event_type": "ExperimentEvent", ...}``."""

    event_data: ExperimentEventData


Envelope = InternalEvent | ExperimentEvent
"""One element of a batch's ``events`` list."""


class Batch(msgspec.Struct, frozen=True):
    """The body of one POST: ``{"events": [...]}``."""

    events: list[Envelope]


_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"


def format_timestamp(wall: float) -> str:
    """RFC 3339 UTC with exactly three fraction digits and ``Z``.

    Truncates to the millisecond, so a timestamp never lies in the future.
    The wall time is first rounded to the microsecond, its real resolution, so
    binary float error (1.001 s is 1000.9999999999999 ms) does not cost a
    millisecond.

    >>> format_timestamp(0.0015)
    '1970-01-01T00:00:00.001Z'
    >>> format_timestamp(1_767_225_601.001)
    '2026-01-01T00:00:01.001Z'
    """
    millis = round(wall * 1_000_000) // 1000
    seconds, fraction = divmod(millis, 1000)
    return f"{_format_second(seconds)}.{fraction:03d}Z"


@functools.lru_cache(maxsize=64)
def _format_second(seconds: int) -> str:
    # A batch's events mostly share a handful of seconds: format each once.
    return time.strftime(_TIMESTAMP_FORMAT, time.gmtime(seconds))


def second_bytes(seconds: int) -> bytes:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole Unix second, as ASCII bytes.

    >>> second_bytes(1_767_225_601)
    b'2026-01-01T00:00:01'
    """
    return _format_second(seconds).encode("ascii")
