"""The collector's ASGI application in process: every route, error and fault (docs/collector.md).

Requests go through ``httpx.ASGITransport`` to a :class:`CollectorApp` over an
in-memory store, or straight to its ASGI entry point for what a client library
would not send (a lifespan scope, a client leaving before its body). No
socket, no server: what needs real sockets and processes is in
``tests/integration/test_collector.py``.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any, cast

import httpx
import msgspec
import pytest
import trio
import trio.testing

from eventlog.collector import CollectorApp, Faults, Store
from tests.collector_support import (
    BATCH,
    batch,
    error_of,
    experiment,
    internal,
    stored_events,
    without_event_id,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from eventlog.collector._app import Message, Scope


def client(app: CollectorApp) -> httpx.AsyncClient:
    """An HTTP client whose requests go to ``app`` in process."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://collector")


@pytest.fixture
def app() -> Iterator[CollectorApp]:
    """A collector application over an in-memory store."""
    store = Store(":memory:")
    try:
        yield CollectorApp(store)
    finally:
        store.close()


@pytest.fixture
async def http(app: CollectorApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``app``."""
    async with client(app) as http:
        yield http


def pieces(body: bytes, size: int) -> list[Message]:
    """``body`` as the ASGI messages of a chunked request, ``size`` bytes each."""
    starts = range(0, len(body), size)
    return [
        {"type": "http.request", "body": body[at : at + size], "more_body": at + size < len(body)}
        for at in starts
    ]


def post(headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    """The ASGI scope of a POST of a batch."""
    return {"type": "http", "method": "POST", "path": BATCH, "headers": headers or []}


def answer(sent: list[Message]) -> tuple[int, Any]:
    """Status and decoded JSON body of the response ``sent`` by the app."""
    start, body = sent
    return cast("int", start["status"]), msgspec.json.decode(cast("bytes", body["body"]))


async def call(app: CollectorApp, scope: Scope, incoming: list[Message]) -> list[Message]:
    """Run ``app`` on one ASGI scope fed ``incoming``; the messages it sends."""
    sent: list[Message] = []
    pending = list(incoming)

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


# -- malformed batches: 400 ------------------------------------------------------


GOOD_0 = internal("good-0")
GOOD_2 = internal("good-2")
DEEP = msgspec.Raw(b"[" * 100_000 + b"]" * 100_000)


def among_good(bad: object) -> bytes:
    """A batch whose event 1 is ``bad`` and events 0 and 2 are valid."""
    return batch(GOOD_0, bad, GOOD_2)


MALFORMED: list[tuple[str, bytes, dict[str, str], tuple[str, ...]]] = [
    ("not-json", b"{not json", {}, ("not JSON",)),
    ("empty-body", b"", {}, ("not JSON",)),
    ("json-array", b"[1, 2]", {}, ("not a batch",)),
    ("no-events-key", b'{"event": []}', {}, ("not a batch", "events")),
    ("events-not-a-list", b'{"events": "many"}', {}, ("not a batch", "events")),
    (
        "unknown-event-type",
        among_good({"event_type": "BogusEvent", "event_data": {"event_id": "x"}}),
        {},
        ("events[1]", "event_type"),
    ),
    ("envelope-not-an-object", among_good([1, 2]), {}, ("events[1]",)),
    ("missing-event-id", among_good(without_event_id("x")), {}, ("events[1]", "event_id")),
    ("event-id-an-int", among_good(internal(7)), {}, ("events[1]", "event_id")),
    ("empty-event-id", among_good(internal("")), {}, ("events[1]", "event_id")),
    ("event-id-too-long", among_good(internal("e" * 129)), {}, ("events[1]", "event_id")),
    ("empty-event-name", among_good(internal("x", name="")), {}, ("events[1]", "event_name")),
    (
        "variation-id-a-string",
        among_good(experiment("x", variation_id="one")),
        {},
        ("events[1]", "variation_id"),
    ),
    (
        "metadata-not-a-string",
        among_good(internal("x", additional_metadata=5)),
        {},
        ("events[1]", "additional_metadata"),
    ),
    (
        "gzip-garbage",
        b"\x1f\x8b this is not gzip at all",
        {"content-encoding": "gzip"},
        ("not valid gzip",),
    ),
    (
        "gzip-truncated",
        gzip.compress(batch(GOOD_0, GOOD_2))[:-12],
        {"content-encoding": "gzip"},
        ("not valid gzip", "truncated"),
    ),
    (
        "gzip-trailing-garbage",
        gzip.compress(batch(GOOD_0, GOOD_2)) + b"garbage",
        {"content-encoding": "gzip"},
        ("not valid gzip", "7 bytes after member 1 are not a gzip member"),
    ),
    (
        "gzip-trailing-zero-padding",
        gzip.compress(batch(GOOD_0, GOOD_2)) + b"\0\0\0\0",
        {"content-encoding": "gzip"},
        ("not valid gzip", "4 bytes after member 1"),
    ),
    (
        "gzip-second-member-truncated",
        gzip.compress(batch(GOOD_0)[:10]) + gzip.compress(batch(GOOD_0)[10:])[:-3],
        {"content-encoding": "gzip"},
        ("not valid gzip", "truncated"),
    ),
    (
        "json-nested-100000-deep",
        b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        {},
        ("nested too deeply",),
    ),
    (
        "event-field-nested-100000-deep",
        among_good(internal("x", deep=DEEP)),
        {},
        ("nested too deeply",),
    ),
    (
        "gzip-of-garbage",
        gzip.compress(b"not json either"),
        {"content-encoding": "gzip"},
        ("not JSON",),
    ),
    (
        "unsupported-encoding",
        batch(GOOD_0),
        {"content-encoding": "br"},
        ("unsupported content-encoding",),
    ),
]


@pytest.mark.parametrize(
    ("body", "headers", "fragments"),
    [
        pytest.param(body, headers, fragments, id=name)
        for name, body, headers, fragments in MALFORMED
    ],
)
async def test_malformed_batch_gets_400_naming_the_problem_and_stores_nothing(
    app: CollectorApp,
    http: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    fragments: tuple[str, ...],
) -> None:
    """400 with a JSON error naming the event and field; nothing of the batch is stored."""
    assert (await http.post(BATCH, content=batch(internal("baseline")))).status_code == 200

    response = await http.post(
        BATCH, content=body, headers={"content-type": "application/json", **headers}
    )

    assert response.status_code == 400, response.text
    kind, message = error_of(response)
    assert kind == "invalid_request_error"
    for fragment in fragments:
        assert fragment in message
    assert app.store.event_ids() == {"baseline"}
    assert app.stats.rejected == 1
    assert (app.stats.received, app.stats.stored) == (1, 1)


async def test_a_client_gone_before_its_body_gets_400_and_nothing_is_stored(
    app: CollectorApp,
) -> None:
    """A disconnect where the body should be: 400 "request ended before its body", rejected."""
    assert answer(await call(app, post(), [{"type": "http.disconnect"}])) == (
        400,
        {"error": {"type": "invalid_request_error", "message": "request ended before its body"}},
    )
    assert (app.stats.rejected, app.store.count()) == (1, 0)


# -- accepted bodies -----------------------------------------------------------------


async def test_a_gzip_body_is_accepted(app: CollectorApp, http: httpx.AsyncClient) -> None:
    """A gzip body (Content-Encoding: gzip) is decompressed and stored."""
    response = await http.post(
        BATCH,
        content=gzip.compress(batch(internal("g1"), experiment("g2"))),
        headers={"content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "stored": 2, "duplicates": 0}
    assert app.store.event_ids() == {"g1", "g2"}


async def test_every_member_of_a_multi_member_gzip_body_is_read(
    app: CollectorApp, http: httpx.AsyncClient
) -> None:
    """RFC 1952 allows several members: they are decompressed and read as one body."""
    body = batch(internal("m1"), experiment("m2"))
    members = gzip.compress(body[:7]) + gzip.compress(b"") + gzip.compress(body[7:])
    response = await http.post(
        BATCH,
        content=members,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "stored": 2, "duplicates": 0}
    assert app.store.event_ids() == {"m1", "m2"}


async def test_a_body_sent_in_chunks_is_read_whole(app: CollectorApp) -> None:
    """A chunked body (no Content-Length) arriving in several pieces is joined and stored."""
    body = batch(internal("c1"), internal("c2"), experiment("c3"))
    status, _ = answer(await call(app, post(), pieces(body, 50)))
    assert status == 200
    assert app.store.event_ids() == {"c1", "c2", "c3"}


async def test_a_content_length_that_is_no_count_is_not_taken_for_one(app: CollectorApp) -> None:
    """Content-Length "1²" (digits int() refuses): no 413, no 500; the body read is stored."""
    body = batch(internal("odd-length"))
    scope = post([(b"content-length", "1²".encode())])
    status, _ = answer(await call(app, scope, [{"type": "http.request", "body": body}]))
    assert status == 200
    assert app.store.event_ids() == {"odd-length"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/jsonl",
        "application/json; charset=latin-1",
        "",
    ],
)
async def test_a_body_declared_not_json_gets_415(
    app: CollectorApp, http: httpx.AsyncClient, content_type: str
) -> None:
    """A Content-Type other than application/json (UTF-8) is 415, counted as rejected."""
    response = await http.post(
        BATCH, content=batch(internal("typed")), headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    assert error_of(response) == (
        "unsupported_media_type",
        f"unsupported content-type {content_type!r}: send application/json",
    )
    assert app.store.count() == 0
    assert app.stats.rejected == 1


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "Application/JSON",
        "application/json; charset=UTF-8",
        'application/json; charset="utf8"; profile=x',
    ],
)
async def test_json_content_types_and_none_are_accepted(
    app: CollectorApp, http: httpx.AsyncClient, content_type: str | None
) -> None:
    """application/json, in any case and with a UTF-8 charset, or no Content-Type: 200."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = await http.post(BATCH, content=batch(internal("typed")), headers=headers)
    assert response.status_code == 200, response.text
    assert app.store.event_ids() == {"typed"}


async def test_posting_the_same_batch_twice_stores_it_once(
    app: CollectorApp, http: httpx.AsyncClient
) -> None:
    """Deduplication by event_id: the second copy is accepted, counted, not stored."""
    body = batch(internal("d1"), internal("d2"), experiment("d3"))
    first = await http.post(BATCH, content=body)
    second = await http.post(BATCH, content=body)
    assert first.json() == {"accepted": 3, "stored": 3, "duplicates": 0}
    assert second.json() == {"accepted": 3, "stored": 0, "duplicates": 3}
    assert app.store.count() == 3
    assert (app.stats.received, app.stats.stored, app.stats.duplicates) == (6, 3, 3)


# -- too large: 413 ----------------------------------------------------------------


async def test_body_over_max_body_gets_413() -> None:
    """413 for a declared length, a chunked body and a gzip body that inflates past the limit."""
    big = batch(*(internal(f"big-{i:04d}") for i in range(40)))
    assert len(big) > 2000
    deflated = gzip.compress(batch(*(internal(f"zip-{i:04d}") for i in range(200))))
    assert len(deflated) < 2000

    store = Store(":memory:")
    app = CollectorApp(store, max_body=2000)
    async with client(app) as http:
        declared = await http.post(BATCH, content=big)
        assert (declared.status_code, declared.headers["connection"]) == (413, "close")
        assert error_of(declared) == ("request_too_large", f"body of {len(big)} bytes exceeds 2000")
        # No Content-Length: the limit applies to the bytes as they arrive.
        assert answer(await call(app, post(), pieces(big, 1500))) == (
            413,
            {"error": {"type": "request_too_large", "message": "body exceeds 2000 bytes"}},
        )
        inflated = await http.post(BATCH, content=deflated, headers={"content-encoding": "gzip"})
        assert inflated.status_code == 413
        assert error_of(inflated) == ("request_too_large", "decompressed body exceeds 2000 bytes")
        fits = await http.post(BATCH, content=batch(internal("small")))
        assert fits.status_code == 200
    assert store.event_ids() == {"small"}
    assert app.stats.rejected == 3
    store.close()


async def test_gzip_members_together_over_max_body_get_413() -> None:
    """The limit applies to the members' decompressed bytes together, not member by member."""
    body = batch(*(internal(f"z-{i:04d}") for i in range(12)))
    half = len(body) // 2
    members = gzip.compress(body[:half]) + gzip.compress(body[half:])
    assert len(members) < len(body) - half <= 1000 < len(body)
    store = Store(":memory:")
    async with client(CollectorApp(store, max_body=1000)) as http:
        response = await http.post(BATCH, content=members, headers={"content-encoding": "gzip"})
    assert response.status_code == 413
    assert error_of(response) == ("request_too_large", "decompressed body exceeds 1000 bytes")
    assert store.count() == 0
    store.close()


# -- the other routes ----------------------------------------------------------------


async def test_healthz(http: httpx.AsyncClient) -> None:
    """GET /healthz answers {"ok": true}."""
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}


async def test_events_route_filters_by_name_and_session_and_honours_limit(
    http: httpx.AsyncClient,
) -> None:
    """name= and session_id= filter (experiments by experiment_id); limit= caps; bad limits 400."""
    body = batch(
        internal("e1", name="open", session_id="s1"),
        internal("e2", name="open", session_id="s2"),
        internal("e3", name="close", session_id="s1"),
        internal("e4", name="close", session_id="s2"),
        internal("e5", name="close", session_id="s2"),
        experiment("e6", session_id="s1"),
    )
    assert (await http.post(BATCH, content=body)).status_code == 200

    def ids(events: list[dict[str, Any]]) -> list[str]:
        return sorted(e["event_data"]["event_id"] for e in events)

    assert ids(await stored_events(http)) == ["e1", "e2", "e3", "e4", "e5", "e6"]
    assert ids(await stored_events(http, name="open")) == ["e1", "e2"]
    assert ids(await stored_events(http, session_id="s2")) == ["e2", "e4", "e5"]
    assert ids(await stored_events(http, name="close", session_id="s2")) == ["e4", "e5"]
    assert ids(await stored_events(http, name="new-onboarding")) == ["e6"]
    assert await stored_events(http, name="nothing") == []
    assert len(await stored_events(http, limit="2")) == 2
    assert len(await stored_events(http, limit="10000")) == 6
    for limit in ("0", "abc", "-1", "10001", "1.5", "²"):
        response = await http.get("/api/events", params={"limit": limit})
        assert response.status_code == 400, limit
        assert error_of(response) == ("invalid_request_error", "limit must be 1 to 10000")


async def test_stats_route_reports_every_count(app: CollectorApp, http: httpx.AsyncClient) -> None:
    """/api/stats: received, stored, duplicates, rejected, faulted, total."""
    empty = (await http.get("/api/stats")).json()
    assert empty == dict.fromkeys(
        ("received", "stored", "duplicates", "rejected", "faulted", "total"), 0
    )
    await http.post(BATCH, content=batch(internal("a"), internal("b")))
    await http.post(BATCH, content=batch(internal("b"), internal("c")))
    await http.post(BATCH, content=b"nope")
    app.faults.fail_rate = 1.0
    await http.post(BATCH, content=batch(internal("d")))
    stats = (await http.get("/api/stats")).json()
    assert stats == {
        "received": 4,
        "stored": 3,
        "duplicates": 1,
        "rejected": 1,
        "faulted": 1,
        "total": 3,
    }


async def test_total_counts_earlier_runs_of_a_database_file(tmp_path: Path) -> None:
    """A collector reopened on the same SQLite file keeps its events and dedupes against them."""
    db = str(tmp_path / "collector.sqlite")
    first = Store(db)
    async with client(CollectorApp(first)) as http:
        await http.post(BATCH, content=batch(internal("a"), internal("b")))
    first.close()
    second = Store(db)
    async with client(CollectorApp(second)) as http:
        response = await http.post(BATCH, content=batch(internal("b"), internal("c")))
        assert response.json() == {"accepted": 2, "stored": 1, "duplicates": 1}
        stats = (await http.get("/api/stats")).json()
        assert (stats["stored"], stats["duplicates"], stats["total"]) == (1, 1, 3)
    assert second.event_ids() == {"a", "b", "c"}
    second.close()


async def test_unknown_path_404_and_wrong_method_405(http: httpx.AsyncClient) -> None:
    """404 names the route; GET on the batch path and PUT on /api/control are 405."""
    missing = await http.get("/nowhere")
    assert missing.status_code == 404
    assert error_of(missing) == ("not_found", "no route for GET /nowhere")
    assert (await http.post("/healthz")).status_code == 404
    batch_get = await http.get(BATCH)
    assert batch_get.status_code == 405
    assert error_of(batch_get) == ("method_not_allowed", "use POST")
    put = await http.put("/api/control", json={})
    assert put.status_code == 405
    assert error_of(put) == ("method_not_allowed", "use GET or POST")


async def test_lifespan_startup_and_shutdown_are_acknowledged(app: CollectorApp) -> None:
    """A lifespan scope: startup and shutdown each get their ``.complete``; others are ignored."""
    sent = await call(
        app,
        {"type": "lifespan"},
        [{"type": "lifespan.startup"}, {"type": "lifespan.other"}, {"type": "lifespan.shutdown"}],
    )
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


async def test_a_websocket_scope_gets_no_answer(app: CollectorApp) -> None:
    """A scope other than http and lifespan is left alone: nothing sent, nothing read."""
    assert await call(app, {"type": "websocket", "path": "/healthz"}, []) == []


# -- fault control -------------------------------------------------------------------


async def test_control_route_reads_and_changes_faults(
    app: CollectorApp, http: httpx.AsyncClient
) -> None:
    """GET shows the settings (not the token); POST changes them and answers the new ones."""
    initial = (await http.get("/api/control")).json()
    assert initial == {
        "outage_left": 0.0,
        "retry_after": None,
        "fail_rate": 0.0,
        "fail_status": 503,
        "latency": 0.0,
        "require_token": False,
    }
    change = {"retry_after": 2, "fail_rate": 0.5, "fail_status": 429, "require_token": "t0ken"}
    changed = await http.post("/api/control", json=change)
    assert changed.status_code == 200
    assert changed.json() == {**initial, **change, "require_token": True}
    assert "t0ken" not in changed.text
    assert (await http.get("/api/control")).json() == changed.json()
    assert app.faults.require_token == "t0ken"
    assert app.faults.fail_status == 429

    reset = await http.post("/api/control", json={"require_token": None, "fail_rate": 0})
    assert reset.json()["require_token"] is False
    assert app.faults.describe()["require_token"] is False
    assert (await http.post("/api/control", content=b"")).status_code == 200  # empty: no change


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b'{"fail_rate": 2}', "fail_rate", id="fail-rate-2"),
        pytest.param(b'{"fail_rate": -0.1}', "fail_rate", id="fail-rate-negative"),
        pytest.param(b'{"bogus": 1}', "bogus", id="unknown-field"),
        pytest.param(b'{"outage": -1}', "outage", id="negative-outage"),
        pytest.param(b'{"latency": "slow"}', "latency", id="latency-a-string"),
        pytest.param(b'{"retry_after": -3}', "retry_after", id="negative-retry-after"),
        pytest.param(b'{"outage": 1e300}', "outage must be", id="outage-1e300"),
        pytest.param(b'{"retry_after": 86401}', "retry_after", id="retry-after-over-a-day"),
        pytest.param(b'{"latency": 1e9}', "latency", id="latency-1e9"),
        pytest.param(b'{"fail_status": 200}', "fail_status", id="fail-status-2xx"),
        pytest.param(b'{"latency": 0.5, "fail_rate": 2}', "fail_rate", id="one-bad-of-two"),
        pytest.param(b"not json", "JSON", id="not-json"),
        pytest.param(b"[]", "object", id="not-an-object"),
    ],
)
async def test_control_route_refuses_bad_changes_whole(
    app: CollectorApp, http: httpx.AsyncClient, body: bytes, fragment: str
) -> None:
    """400 naming the problem; no setting changes, not even the valid ones of the body."""
    before = (await http.get("/api/control")).json()
    response = await http.post("/api/control", content=body)
    assert response.status_code == 400, response.text
    kind, message = error_of(response)
    assert kind == "invalid_request_error"
    assert fragment in message
    assert (await http.get("/api/control")).json() == before
    assert app.faults.latency == 0.0


async def test_a_control_body_over_max_body_gets_413_and_changes_nothing() -> None:
    """POST /api/control obeys max_body too: 413, and the faults stay as they were."""
    store = Store(":memory:")
    app = CollectorApp(store, max_body=100)
    scope: Scope = {"type": "http", "method": "POST", "path": "/api/control", "headers": []}
    body = b'{"latency": 1}' + b" " * 200
    assert answer(await call(app, scope, pieces(body, 150))) == (
        413,
        {"error": {"type": "invalid_request_error", "message": "body exceeds 100 bytes"}},
    )
    assert app.faults.latency == 0.0
    store.close()


async def test_outage_answers_503_with_retry_after(
    app: CollectorApp, http: httpx.AsyncClient
) -> None:
    """Retry-After is the outage time left, or the configured value; the batch is not stored."""
    await http.post("/api/control", json={"outage": 30})
    response = await http.post(BATCH, content=batch(internal("o1")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert error_of(response)[0] == "overloaded_error"

    await http.post("/api/control", json={"retry_after": 1.5})
    response = await http.post(BATCH, content=batch(internal("o1")))
    assert (response.status_code, response.headers["retry-after"]) == (503, "2")
    assert app.store.count() == 0
    assert app.stats.faulted == 2

    await http.post("/api/control", json={"outage": 0})
    assert (await http.post(BATCH, content=batch(internal("o1")))).status_code == 200


async def test_an_outage_ends_on_its_own(
    app: CollectorApp, http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    """An outage of 5 s answers 503 until 5 s have passed, then batches are stored again."""
    await http.post("/api/control", json={"outage": 5})
    assert (await http.post(BATCH, content=batch(internal("early")))).status_code == 503
    await trio.sleep(5)
    assert (await http.get("/api/control")).json()["outage_left"] == 0
    assert (await http.post(BATCH, content=batch(internal("late")))).status_code == 200
    assert app.store.event_ids() == {"late"}


async def test_retry_after_is_whole_seconds_at_most_a_day(
    app: CollectorApp, http: httpx.AsyncClient
) -> None:
    """Retry-After is an integer (rounded up), and never above a day, whatever Python set."""
    expected = [
        (0.2, "1"),
        (3.0, "3"),
        (86_400.0, "86400"),
        (1e300, "86400"),
        (float("inf"), "86400"),
    ]
    for retry_after, header in expected:
        app.faults.outage_until = trio.current_time() + 1e300
        app.faults.retry_after = retry_after
        response = await http.post(BATCH, content=batch(internal("o1")))
        assert (response.status_code, response.headers["retry-after"]) == (503, header)
    app.faults.retry_after = None
    response = await http.post(BATCH, content=batch(internal("o1")))
    assert response.headers["retry-after"] == "86400"


async def test_random_failures_use_fail_status(app: CollectorApp, http: httpx.AsyncClient) -> None:
    """fail_rate=1 with fail_status=500: every batch gets 500 and nothing is stored."""
    await http.post("/api/control", json={"fail_rate": 1, "fail_status": 500})
    for n in range(3):
        response = await http.post(BATCH, content=batch(internal(f"f{n}")))
        assert response.status_code == 500
        assert error_of(response) == ("injected_failure", "injected random failure")
    assert app.store.count() == 0
    assert app.stats.faulted == 3
    # Faults apply to the batch route only.
    assert (await http.get("/healthz")).status_code == 200


async def test_a_seeded_fail_rate_fails_the_same_batches_every_run() -> None:
    """fail_rate=0.5 with a seed: the same pattern of 503 and 200 from two collectors."""

    async def statuses() -> list[int]:
        store = Store(":memory:")
        async with client(CollectorApp(store, faults=Faults(fail_rate=0.5, seed=7))) as http:
            answers = [
                (await http.post(BATCH, content=batch(internal(f"r{n}")))).status_code
                for n in range(12)
            ]
        store.close()
        return answers

    first = await statuses()
    assert set(first) == {200, 503}
    assert await statuses() == first


async def test_a_required_token_refuses_batches_without_it(
    app: CollectorApp, http: httpx.AsyncClient
) -> None:
    """require_token: 401 without the bearer token or with another; 200 with it."""
    app.faults.require_token = "sekret"
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "sekret"}):
        response = await http.post(BATCH, content=batch(internal("t")), headers=headers)
        assert response.status_code == 401
        assert error_of(response) == ("authentication_error", "missing or wrong bearer token")
        assert "sekret" not in response.text
    good = {"authorization": "Bearer sekret"}
    assert (await http.post(BATCH, content=batch(internal("t")), headers=good)).status_code == 200
    assert (app.stats.faulted, app.store.event_ids()) == (3, {"t"})


async def test_latency_delays_batch_answers(
    http: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    """latency=0.2: a batch answer takes 0.2 s; other routes do not wait."""
    await http.post("/api/control", json={"latency": 0.2})
    started = trio.current_time()
    response = await http.post(BATCH, content=batch(internal("slow")))
    assert trio.current_time() - started >= 0.2
    assert response.status_code == 200
    started = trio.current_time()
    assert (await http.get("/healthz")).status_code == 200
    assert trio.current_time() - started < 0.2
