"""Helpers of the collector's tests: envelopes, batches, and reading its JSON answers."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import httpx

BATCH = "/api/event_logging/batch"
TIMESTAMP = "2026-01-01T00:00:00.000Z"


def internal(
    event_id: object, name: str = "clicked", session_id: str = "s1", **data: object
) -> dict[str, object]:
    """An InternalEvent envelope; ``data`` overrides or adds ``event_data`` fields."""
    event_data: dict[str, object] = {
        "event_id": event_id,
        "event_name": name,
        "client_timestamp": TIMESTAMP,
        "session_id": session_id,
    }
    event_data.update(data)
    return {"event_type": "InternalEvent", "event_data": event_data}


def experiment(event_id: str, **data: object) -> dict[str, object]:
    """An ExperimentEvent envelope; ``data`` overrides or adds ``event_data`` fields."""
    event_data: dict[str, object] = {
        "event_id": event_id,
        "timestamp": TIMESTAMP,
        "experiment_id": "new-onboarding",
        "variation_id": 1,
        "environment": "production",
    }
    event_data.update(data)
    return {"event_type": "ExperimentEvent", "event_data": event_data}


def batch(*envelopes: object) -> bytes:
    """The JSON body of one POST."""
    return msgspec.json.encode({"events": list(envelopes)})


def without_event_id(event_id: str) -> dict[str, object]:
    """An InternalEvent with no ``event_id`` at all."""
    envelope = internal(event_id)
    data = envelope["event_data"]
    assert isinstance(data, dict)
    del data["event_id"]
    return envelope


def error_of(response: httpx.Response) -> tuple[str, str]:
    """``(type, message)`` of the collector's JSON error body."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message"}
    return body["error"]["type"], body["error"]["message"]


def metadata_of(envelope: dict[str, Any]) -> dict[str, Any]:
    """The decoded ``additional_metadata`` of an InternalEvent envelope."""
    decoded: dict[str, Any] = json.loads(
        base64.b64decode(envelope["event_data"]["additional_metadata"])
    )
    return decoded


async def stored_events(http: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """``GET /api/events`` with ``params``; the envelopes it returns."""
    response = await http.get("/api/events", params=params)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events
