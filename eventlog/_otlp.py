"""OTLP/HTTP JSON output (``Config(protocol="otlp")``): events as OpenTelemetry logs.

Each envelope becomes one ``LogRecord`` of an ``ExportLogsServiceRequest``
posted to ``{base_url}/v1/logs``, so any OpenTelemetry Collector (and the
engines behind it) can receive eventlog's events. The spool keeps eventlog's
own envelopes; the conversion happens when a chunk is posted, so switching the
protocol never strands spooled events.

Mapping:

* ``eventName`` and ``body``: the event name (``experiment`` for an
  experiment assignment), ``timeUnixNano``: the event's own timestamp,
  ``observedTimeUnixNano``: when it was posted, severity INFO;
* attributes: every other ``event_data`` field, flattened with dots
  (``event_id``, ``session_id``, ``env.platform``, ``process.pid``,
  ``auth.account_uuid``, ``app.channel``, ...), and the metadata decoded from
  ``additional_metadata`` as ``metadata.<key>`` with its JSON type;
* resource: ``service.name``, ``service.version`` and ``telemetry.sdk.*``.

Response handling follows the OTLP specification: 429, 502, 503 and 504 are
retryable (with ``Retry-After``), other 4xx and 5xx are not; a 2xx may carry
``partialSuccess.rejectedLogRecords``, counted as permanently dropped.
"""

from __future__ import annotations

import base64
import calendar
import time
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from eventlog._version import __version__

__all__ = ["OTLP_PATH", "RETRYABLE", "encode_request", "parse_partial_success"]

OTLP_PATH: Final = "/v1/logs"
RETRYABLE: Final = frozenset({429, 502, 503, 504})
_SKIP: Final = frozenset(
    {"event_name", "client_timestamp", "timestamp", "additional_metadata", "service"}
)

AnyValue = dict[str, object]
KeyValue = dict[str, object]


def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # proto3 JSON: int64 as a string
    if isinstance(value, float):
        return {"doubleValue": value}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def _flatten(prefix: str, value: object, out: list[KeyValue]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out.append({"key": prefix, "value": _any(value)})


def _unix_nanos(rfc3339: str) -> str:
    """``2026-01-01T00:00:00.123Z`` as nanoseconds since the epoch (a string)."""
    seconds = calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))
    millis = int(rfc3339[20:23]) if len(rfc3339) >= 23 else 0
    return str(seconds * 1_000_000_000 + millis * 1_000_000)


def _record(payload: bytes, observed: str) -> dict[str, object]:
    # Decoded as plain JSON, not into the wire Structs: configured proto_fields
    # beyond the Structs' own are spliced into event_data and must come along.
    envelope = msgspec.json.decode(payload)
    event_type = str(envelope.get("event_type", ""))
    data: dict[str, object] = dict(envelope.get("event_data", {}))
    attributes: list[KeyValue] = [{"key": "event_type", "value": _any(event_type)}]
    for key, value in data.items():
        if key not in _SKIP:
            _flatten(key, value, attributes)
    if event_type == "InternalEvent":
        name = str(data.get("event_name", ""))
        stamp = str(data.get("client_timestamp", ""))
        encoded = data.get("additional_metadata")
        if isinstance(encoded, str):
            metadata = msgspec.json.decode(base64.b64decode(encoded))
            if isinstance(metadata, dict):
                attributes += [
                    {"key": f"metadata.{k}", "value": _any(v)} for k, v in metadata.items()
                ]
    else:
        name = "experiment"
        stamp = str(data.get("timestamp", ""))
    return {
        "timeUnixNano": _unix_nanos(stamp),
        "observedTimeUnixNano": observed,
        "severityNumber": 9,
        "severityText": "INFO",
        "eventName": name,
        "body": {"stringValue": name},
        "attributes": attributes,
    }


def encode_request(
    payloads: Sequence[bytes], *, service_name: str, service_version: str, now: float
) -> bytes:
    """The JSON ``ExportLogsServiceRequest`` for a chunk of encoded envelopes."""
    observed = str(round(now * 1_000_000) * 1000)  # microseconds: no float noise
    resource = [
        {"key": "service.name", "value": _any(service_name)},
        {"key": "service.version", "value": _any(service_version)},
        {"key": "telemetry.sdk.name", "value": _any("eventlog")},
        {"key": "telemetry.sdk.language", "value": _any("python")},
        {"key": "telemetry.sdk.version", "value": _any(__version__)},
    ]
    records = [_record(payload, observed) for payload in payloads]
    request = {
        "resourceLogs": [
            {
                "resource": {"attributes": resource},
                "scopeLogs": [
                    {"scope": {"name": "eventlog", "version": __version__}, "logRecords": records}
                ],
            }
        ]
    }
    return msgspec.json.encode(request)


class _PartialSuccess(msgspec.Struct):
    rejectedLogRecords: int | str = 0
    errorMessage: str = ""


class _Response(msgspec.Struct):
    partialSuccess: _PartialSuccess | None = None


def parse_partial_success(body: bytes) -> tuple[int, str]:
    """``(rejected log records, error message)`` of an OTLP success response."""
    try:
        response = msgspec.json.decode(body or b"{}", type=_Response)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0, ""
    partial = response.partialSuccess
    if partial is None:
        return 0, ""
    try:
        rejected = int(partial.rejectedLogRecords)
    except ValueError:
        rejected = 0
    return max(rejected, 0), partial.errorMessage
