"""eventlog.testing.CapturingTransport: what it decodes, how it answers, how it is queried."""

from __future__ import annotations

import base64
import gzip

import httpx
import msgspec
import pytest
import trio
import trio.testing

from eventlog.testing import (
    Batch,
    CapturingTransport,
    Envelope,
    ExperimentEvent,
    ExperimentEventData,
    InternalEvent,
    InternalEventData,
    metadata_of,
)

URL = "http://127.0.0.1:8787/v1/events"


def internal(name: str, metadata: dict[str, object] | None = None) -> InternalEvent:
    """An InternalEvent named ``name``, with ``metadata`` encoded as the SDK encodes it."""
    encoded = None if metadata is None else base64.b64encode(msgspec.json.encode(metadata))
    return InternalEvent(
        InternalEventData(
            event_id=f"id-{name}",
            event_name=name,
            client_timestamp="2026-01-01T00:00:00.000Z",
            additional_metadata=None if encoded is None else encoded.decode(),
        )
    )


EXPERIMENT = ExperimentEvent(
    ExperimentEventData(
        event_id="id-exp",
        timestamp="2026-01-01T00:00:00.000Z",
        experiment_id="new-onboarding",
        variation_id=1,
        environment="production",
    )
)


def body(*events: Envelope) -> bytes:
    """The JSON body of a batch of ``events``."""
    return msgspec.json.encode(Batch(events=list(events)))


async def post(
    transport: CapturingTransport, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST ``content`` through ``transport``, as the logger's client does."""
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(URL, content=content, headers=headers)


async def test_a_gzip_body_is_decoded() -> None:
    """A gzip-encoded batch is decompressed before it is decoded and acknowledged."""
    transport = CapturingTransport()
    response = await post(
        transport, gzip.compress(body(internal("zipped"))), {"content-encoding": "gzip"}
    )
    assert response.status_code == 200
    assert transport.event_names() == ["zipped"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"not gzip at all", {"content-encoding": "gzip"}),
        (gzip.compress(b'{"events": []}')[:-4], {"content-encoding": "gzip"}),
        (b"{not json", {}),
        (b'{"events": [{"event_type": "Unknown"}]}', {}),
    ],
    ids=["not-gzip", "truncated-gzip", "not-json", "not-a-batch"],
)
async def test_an_undecodable_body_is_kept_with_no_events(
    content: bytes, headers: dict[str, str]
) -> None:
    """A body that is no batch is still answered and recorded, with no events."""
    transport = CapturingTransport()
    response = await post(transport, content, headers)
    assert response.status_code == 200
    [request] = transport.requests
    assert request.events == []
    assert request.delivered


async def test_an_outage_answers_its_status_and_retry_after_in_its_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Requests inside [start, end) get the outage's status and Retry-After; later ones 200."""
    transport = CapturingTransport()
    transport.outage(0.0, 10.0, status=503, retry_after="7")
    during = await post(transport, body(internal("during")))
    await trio.sleep(10.0)
    after = await post(transport, body(internal("after")))
    assert (during.status_code, during.headers["retry-after"]) == (503, "7")
    assert after.status_code == 200
    assert "retry-after" not in after.headers
    assert transport.attempt_times == [0.0, 10.0]
    assert transport.event_names() == ["after"]


async def test_scripted_failures_come_first_then_the_default_status() -> None:
    """fail_next answers the next requests with its status (and Retry-After), then 200."""
    transport = CapturingTransport()
    transport.fail_next(1, status=429, retry_after="2")
    failed = await post(transport, body(internal("a")))
    ok = await post(transport, body(internal("a")))
    assert (failed.status_code, failed.headers["retry-after"]) == (429, "2")
    assert ok.status_code == 200
    assert failed.json() == {"error": {"message": "scripted failure"}}
    assert [r.delivered for r in transport.requests] == [False, True]


async def test_delivered_filters_by_name_and_metadata() -> None:
    """delivered() keeps InternalEvents whose name and every given metadata key match."""
    transport = CapturingTransport()
    await post(
        transport,
        body(
            internal("search", {"results": 12, "page": 1}),
            EXPERIMENT,
            internal("search", {"results": 0}),
            internal("search"),
            internal("click", {"results": 12}),
        ),
    )
    assert [d.event_name for d in transport.delivered()] == ["search", "search", "search", "click"]
    assert len(transport.delivered("search")) == 3
    [match] = transport.delivered("search", results=12)
    assert metadata_of(match) == {"results": 12, "page": 1}
    assert [d.event_name for d in transport.delivered(results=12)] == ["search", "click"]
    assert transport.delivered("search", results=12, page=2) == []
    assert transport.event_ids() == ["id-search", "id-exp", "id-search", "id-search", "id-click"]


def test_metadata_of_an_event_without_metadata_is_empty() -> None:
    """metadata_of gives {} for an event that carries no additional_metadata."""
    assert metadata_of(internal("bare").event_data) == {}


async def test_assert_delivered_says_what_was_delivered_instead() -> None:
    """assert_delivered returns the matches, or fails listing what was delivered."""
    transport = CapturingTransport()
    await post(transport, body(internal("search", {"results": 12}), internal("search")))
    assert len(transport.assert_delivered("search")) == 2
    assert len(transport.assert_delivered("search", count=1, results=12)) == 1
    with pytest.raises(AssertionError) as missing:
        transport.assert_delivered("click")
    assert str(missing.value) == (
        "expected at least one delivered 'click' event(s) with {}, found 0; "
        "delivered: [('search', {'results': 12}), ('search', {})]"
    )
    with pytest.raises(AssertionError, match=r"expected exactly 3 delivered 'search'.*found 2"):
        transport.assert_delivered("search", count=3)


async def test_auth_size_and_latency_are_answered_as_configured(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """reject_auth: 401 with an Authorization header; max_events: 413 above it; latency waits."""
    transport = CapturingTransport(reject_auth=True, max_events=1, latency=2.5)
    transport.outage(100.0, 200.0)
    transport.fail_next(1, status=500)
    failed = await post(transport, body(internal("a")))
    refused = await post(transport, body(internal("a")), {"authorization": "Bearer x"})
    too_big = await post(transport, body(internal("a"), internal("b")))
    ok = await post(transport, body(internal("a")))
    await trio.sleep(100.0 - trio.current_time())
    down = await post(transport, body(internal("a")))
    answers = [failed, refused, too_big, ok, down]
    assert [r.status_code for r in answers] == [500, 401, 413, 200, 503]
    assert all("retry-after" not in r.headers for r in answers)
    assert transport.attempt_times == [0.0, 2.5, 5.0, 7.5, 100.0]
    assert transport.max_in_flight == 1
