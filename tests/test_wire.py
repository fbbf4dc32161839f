"""The wire format of docs/events.md (InternalEvent), through the public API.

Every test opens a logger with ``eventlog.open_event_logger`` and reads what
reached the fake server: ``CapturingTransport`` for decoded events and headers,
an ``httpx.MockTransport`` handler where the raw bytes matter.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import re
import tempfile
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog.testing import (
    CapturingTransport,
    FrozenWallClock,
    InternalEventData,
    ServiceInfo,
)
from tests.helpers import RawServer, decode_metadata, internal, typed

if TYPE_CHECKING:
    from tests.conftest import MakeConfig

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ENDPOINT = "http://127.0.0.1:8787/api/event_logging/batch"
HOISTED = ("skill_name", "plugin_name", "marketplace_name")
TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
EVENT_ID_RE = re.compile(r"[0-9a-f]{32}")


def without_enrichment(body: Any) -> Any:
    """``body`` with each event's automatic ``env`` and ``process`` removed (checked present)."""
    for event in body["events"]:
        data = event["event_data"]
        assert set(data.pop("env")) >= {"platform", "arch", "python_version", "os_version", "is_ci"}
        assert data.pop("process")["pid"] == os.getpid()
    return body


def delivered(transport: CapturingTransport) -> list[InternalEventData]:
    return [internal(e) for e in transport.events()]


def b64json(value: object) -> str:
    """``additional_metadata`` as the SDK encodes it: base64 of compact JSON."""
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")


def null_paths(value: object, path: str = "$") -> Iterator[str]:
    """Where ``null`` occurs in a parsed JSON document."""
    if value is None:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from null_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from null_paths(item, f"{path}[{index}]")


# -- body shape ----------------------------------------------------------------------


async def test_body_is_a_batch_of_internal_events(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """One POST to base_url + path whose JSON body is exactly {"events": [InternalEvent]}."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(session_id="sess-1"),
        transport=httpx.MockTransport(server),
        clock=FrozenWallClock(epoch=EPOCH),
    ) as log:
        log.log_event("app_started", {"cold_start_ms": 41.5, "first_run": True})
        await log.flush()
    [request] = server.requests
    assert request.method == "POST"
    assert str(request.url) == ENDPOINT
    [body] = server.bodies()
    event_id = body["events"][0]["event_data"]["event_id"]
    assert without_enrichment(body) == {
        "events": [
            {
                "event_type": "InternalEvent",
                "event_data": {
                    "event_id": event_id,
                    "event_name": "app_started",
                    "client_timestamp": "2026-01-01T00:00:00.000Z",
                    "session_id": "sess-1",
                    "service": {"name": "testapp", "version": "1.2.3"},
                    "additional_metadata": b64json({"cold_start_ms": 41.5, "first_run": True}),
                },
            }
        ]
    }
    assert EVENT_ID_RE.fullmatch(event_id)


async def test_batch_holds_every_event_in_emit_order(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Events queued together travel in one body, in the order they were logged."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server)
    ) as log:
        for i in range(5):
            log.log_event(f"e{i}", {"i": i})
        await log.flush()
    [body] = server.bodies()
    assert [e["event_type"] for e in body["events"]] == ["InternalEvent"] * 5
    assert [e["event_data"]["event_name"] for e in body["events"]] == [f"e{i}" for i in range(5)]
    assert [decode_metadata(e["event_data"]["additional_metadata"]) for e in body["events"]] == [
        {"i": i} for i in range(5)
    ]


@pytest.mark.parametrize(
    "metadata",
    [None, {}, {"_PROTO_user_email": "someone@example.com"}],
    ids=["none", "empty", "only-stripped-proto"],
)
async def test_fields_without_a_value_are_absent_not_null(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, metadata: Any
) -> None:
    """No null in the body; additional_metadata is absent when nothing is left to send."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server)
    ) as log:
        log.log_event("bare", metadata)
        await log.flush()
    [body] = server.bodies()
    assert list(null_paths(body)) == []
    assert b"null" not in server.requests[0].content
    [event] = body["events"]
    assert sorted(event["event_data"]) == [
        "client_timestamp",
        "env",
        "event_id",
        "event_name",
        "process",
        "service",
        "session_id",
    ]
    assert log.stats.exported == 1


async def test_none_metadata_values_stay_null_inside_additional_metadata(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A None value is kept as null in the metadata JSON, never at the top level."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server)
    ) as log:
        log.log_event("e", {"missing": None, "n": 1})
        await log.flush()
    [body] = server.bodies()
    assert list(null_paths(body)) == []
    encoded = body["events"][0]["event_data"]["additional_metadata"]
    assert base64.b64decode(encoded) == b'{"missing":null,"n":1}'


# -- client_timestamp -----------------------------------------------------------------


async def test_client_timestamp_is_the_emit_time_not_the_export_time(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Emitted at t=1.2345, exported at t=10: the timestamp says 00:00:01.234Z."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=EPOCH)
    ) as log:
        await trio.sleep(1.2345)
        log.log_event("a")
        await trio.sleep(20)
    assert transport.attempt_times == [10.0]
    assert [d.client_timestamp for d in delivered(transport)] == ["2026-01-01T00:00:01.234Z"]


@pytest.mark.parametrize(
    ("epoch", "at", "expected"),
    [
        (EPOCH, 0.0, "2026-01-01T00:00:00.000Z"),
        (EPOCH, 0.0009, "2026-01-01T00:00:00.000Z"),
        (EPOCH, 1.2345, "2026-01-01T00:00:01.234Z"),
        (EPOCH, 59.9995, "2026-01-01T00:00:59.999Z"),
        (EPOCH, 3661.5005, "2026-01-01T01:01:01.500Z"),
        (1_835_395_199.0, 1.0005, "2028-02-29T00:00:00.000Z"),
        (0.0, 0.5, "1970-01-01T00:00:00.500Z"),
    ],
)
async def test_client_timestamp_is_rfc3339_utc_truncated_to_milliseconds(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    epoch: float,
    at: float,
    expected: str,
) -> None:
    """Three fraction digits, truncated (never rounded up), UTC with a trailing Z."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=epoch)
    ) as log:
        await trio.sleep(at)
        log.log_event("a")
        await log.flush()
    [data] = delivered(transport)
    assert data.client_timestamp == expected
    assert TIMESTAMP_RE.fullmatch(data.client_timestamp)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (1.001, "1970-01-01T00:00:01.001Z"),
        (1.003, "1970-01-01T00:00:01.003Z"),
        (1.019, "1970-01-01T00:00:01.019Z"),
    ],
)
async def test_client_timestamp_does_not_lose_a_millisecond_to_float_error(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, at: float, expected: str
) -> None:
    """A clock reading of 1.001 s (1000.9999999999999 ms in binary) is stamped .001Z."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=0.0)
    ) as log:
        await trio.sleep(at)
        log.log_event("a")
        await log.flush()
    assert [d.client_timestamp for d in delivered(transport)] == [expected]


# -- additional_metadata -------------------------------------------------------------


async def test_additional_metadata_is_base64_json_that_roundtrips(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Ints, floats, bools and None come back from base64 JSON with their values and types."""
    metadata: dict[str, int | float | bool | None] = {
        "count": 7,
        "negative": -3,
        "zero": 0,
        "int64_max": 2**63 - 1,
        "int64_min": -(2**63),
        "ratio": 41.5,
        "tenth": 0.1,
        "huge": 1e308,
        "subnormal": 5e-324,
        "whole_float": 2.0,
        "yes": True,
        "no": False,
        "missing": None,
        "clé ünïcode 日本": 1,
        "k" * 128: 2,
    }
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("e", metadata)
        await log.flush()
    [data] = delivered(transport)
    assert data.additional_metadata is not None
    assert re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", data.additional_metadata)
    assert typed(decode_metadata(data.additional_metadata)) == typed(metadata)


async def test_ints_beyond_64_bits_reach_the_wire_exactly(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """msgspec encodes arbitrary-precision ints: 2**64 and -(2**70) are sent digit for digit."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("e", {"big": 2**64, "very_negative": -(2**70)})
        await log.flush()
    [data] = delivered(transport)
    assert data.additional_metadata is not None
    assert base64.b64decode(data.additional_metadata) == (
        b'{"big":18446744073709551616,"very_negative":-1180591620717411303424}'
    )
    assert log.stats.dropped_invalid == 0


async def test_any_mapping_is_accepted_as_metadata(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Metadata may be any Mapping, not only a dict."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("e", types.MappingProxyType({"n": 1}))
        await log.flush()
    [data] = delivered(transport)
    assert decode_metadata(data.additional_metadata) == {"n": 1}


# -- _PROTO_ keys ----------------------------------------------------------------------


async def test_proto_fields_are_hoisted_and_other_proto_keys_stripped(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """_PROTO_skill/plugin/marketplace_name become top-level fields; other _PROTO_ keys vanish."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server)
    ) as log:
        log.log_event(
            "skill_used",
            {
                "_PROTO_skill_name": "pdf-reader",
                "_PROTO_plugin_name": "docs",
                "_PROTO_marketplace_name": "official",
                "_PROTO_user_email": "someone@example.com",
                "_PROTO_": "bare prefix",
                "duration_ms": 12,
            },
        )
        await log.flush()
    [body] = server.bodies()
    data = body["events"][0]["event_data"]
    assert data["skill_name"] == "pdf-reader"
    assert data["plugin_name"] == "docs"
    assert data["marketplace_name"] == "official"
    assert decode_metadata(data["additional_metadata"]) == {"duration_ms": 12}
    assert not [key for key in data if "PROTO" in key]
    content = server.requests[0].content
    assert b"someone@example.com" not in content
    assert b"bare prefix" not in content
    assert log.stats.exported == 1


async def test_hoisted_fields_are_absent_when_not_given(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Only the _PROTO_ fields that were logged appear at the top level."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("e", {"_PROTO_plugin_name": "docs"})
        await log.flush()
    [data] = delivered(transport)
    assert (data.skill_name, data.plugin_name, data.marketplace_name) == (None, "docs", None)
    assert data.additional_metadata is None


async def test_stripped_proto_keys_may_hold_any_value(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A non-hoisted _PROTO_ key is stripped whatever its value; the event is still valid."""
    transport = CapturingTransport()
    values: list[Any] = [["a", "list"], {"a": "dict"}, math.nan, None, 3]
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        for i, value in enumerate(values):
            log.log_event(f"e{i}", {"_PROTO_other": value, "n": i})
        await log.flush()
    assert [decode_metadata(d.additional_metadata) for d in delivered(transport)] == [
        {"n": i} for i in range(len(values))
    ]
    assert log.stats.dropped_invalid == 0


@pytest.mark.parametrize("key", [f"_PROTO_{field}" for field in HOISTED])
@pytest.mark.parametrize("value", [1, 1.5, True, None, ["pdf"], b"pdf"], ids=repr)
async def test_non_string_under_a_hoisted_proto_key_drops_the_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, key: str, value: Any
) -> None:
    """A hoisted _PROTO_ field must be a string: otherwise the event is dropped and counted."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("before")
        log.log_event("bad", {key: value})
        log.log_event("after")
        await log.flush()
    assert transport.event_names() == ["before", "after"]
    assert log.stats.dropped_invalid == 1


# -- invalid events --------------------------------------------------------------------


class ExplodingMapping(Mapping[str, int]):
    """A Mapping whose every access raises, as a buggy user type might."""

    def __getitem__(self, key: str) -> int:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        raise RuntimeError("boom")


INVALID_EVENTS: list[tuple[str, Any, Any]] = [
    ("string-value", "e", {"path": "/home/alice/secret.txt"}),
    ("empty-string-value", "e", {"s": ""}),
    ("list-value", "e", {"xs": [1, 2]}),
    ("tuple-value", "e", {"xs": (1, 2)}),
    ("dict-value", "e", {"nested": {"a": 1}}),
    ("bytes-value", "e", {"b": b"raw"}),
    ("object-value", "e", {"o": object()}),
    ("nan", "e", {"x": math.nan}),
    ("inf", "e", {"x": math.inf}),
    ("minus-inf", "e", {"x": -math.inf}),
    ("int-key", "e", {1: 2}),
    ("none-key", "e", {None: 1}),
    ("lone-surrogate-key", "e", {"\ud800": 1}),
    ("lone-surrogate-proto-value", "e", {"_PROTO_skill_name": "\udfff"}),
    ("metadata-list", "e", [("a", 1)]),
    ("metadata-str", "e", "a=1"),
    ("metadata-int", "e", 1),
    ("metadata-raises", "e", ExplodingMapping()),
    ("empty-name", "", None),
    ("none-name", None, None),
    ("int-name", 42, None),
    ("bytes-name", b"e", None),
    ("name-257-chars", "x" * 257, None),
    ("newline-name", "a\nb", None),
    ("tab-name", "a\tb", None),
    ("nul-name", "a\x00", None),
    ("surrogate-name", "a\ud800", None),
]


@pytest.mark.parametrize(
    ("name", "metadata"),
    [pytest.param(name, metadata, id=case) for case, name, metadata in INVALID_EVENTS],
)
async def test_invalid_event_is_counted_and_the_rest_of_the_batch_delivered(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, name: Any, metadata: Any
) -> None:
    """log_event does not raise; the invalid event is never sent; its neighbours are."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("before", {"n": 1})
        log.log_event(name, metadata)
        log.log_event("after", {"n": 2})
        await log.flush()
        stats = log.stats
    assert transport.event_names() == ["before", "after"]
    assert len(transport.requests) == 1
    assert stats.emitted == 3
    assert stats.dropped_invalid == 1
    assert stats.exported == 2


async def test_a_batch_of_only_invalid_events_sends_nothing(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Every invalid case at once: all counted, no POST at all, nothing spooled."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        for _, name, metadata in INVALID_EVENTS:
            log.log_event(name, metadata)
        await log.flush()
        stats = log.stats
    assert transport.requests == []
    assert stats.dropped_invalid == len(INVALID_EVENTS)
    assert stats.exported == 0
    assert stats.spooled == 0


@pytest.mark.parametrize(
    "name",
    ["x", "x" * 256, "café ☕ clicked", "app.started:v2 (beta)"],
    ids=["one-char", "256-chars", "unicode", "punctuation"],
)
async def test_valid_names_at_the_limits_are_delivered(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, name: str
) -> None:
    """Any printable name of 1 to 256 characters is valid and sent unchanged."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event(name)
        await log.flush()
    assert transport.event_names() == [name]
    assert log.stats.dropped_invalid == 0


# -- event_id ---------------------------------------------------------------------------


async def test_event_ids_are_32_lowercase_hex_and_unique(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Across several batches every event gets its own 32-hex-digit id."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        for i in range(450):
            log.log_event(f"e{i}")
        await log.flush()
    ids = transport.event_ids()
    assert len(transport.requests) == 3
    assert len(ids) == 450
    assert all(EVENT_ID_RE.fullmatch(event_id) for event_id in ids)
    assert len(set(ids)) == 450


async def test_event_id_and_body_are_identical_on_retry(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The retry after a 503 carries the same events, ids and timestamps included."""
    transport = CapturingTransport()
    transport.fail_next(1, status=503)
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=EPOCH)
    ) as log:
        for i in range(3):
            log.log_event(f"e{i}", {"i": i})
        await trio.sleep(20)
    failed, retried = transport.requests
    assert (failed.status, retried.status) == (503, 200)
    assert (failed.time, retried.time) == (10.0, 10.5)
    assert [internal(e).event_id for e in failed.events] == transport.event_ids()
    assert failed.events == retried.events
    assert len(set(transport.event_ids())) == 3
    assert log.stats.exported == 3


async def test_two_loggers_never_share_an_event_id(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Loggers open at the same time, same config and session: disjoint ids."""
    t1, t2 = CapturingTransport(), CapturingTransport()
    config = make_config(session_id="shared-session")
    async with (
        eventlog.open_event_logger(config, transport=t1) as log1,
        eventlog.open_event_logger(config, transport=t2) as log2,
    ):
        for i in range(10):
            log1.log_event(f"e{i}")
            log2.log_event(f"e{i}")
        await log1.flush()
        await log2.flush()
    assert len(t1.event_ids()) == len(t2.event_ids()) == 10
    assert set(t1.event_ids()).isdisjoint(t2.event_ids())


# -- session and service ----------------------------------------------------------------


async def test_session_id_and_service_are_in_every_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """session_id and service {name, version} come from the Config, on each event."""
    transport = CapturingTransport()
    config = make_config(session_id="sess-42", service_name="testapp", service_version="1.2.3")
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(4):
            log.log_event(f"e{i}", {"i": i} if i % 2 else None)
        await log.flush()
    data = delivered(transport)
    assert [d.session_id for d in data] == ["sess-42"] * 4
    assert [d.service for d in data] == [ServiceInfo(name="testapp", version="1.2.3")] * 4


async def test_default_session_id_is_the_configs_on_every_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Without an explicit session_id the random one of the Config is used throughout."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        log.log_event("b")
        await log.flush()
    assert [d.session_id for d in delivered(transport)] == [log.config.session_id] * 2


# -- headers and gzip -------------------------------------------------------------------


async def test_request_headers(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Content-Type, User-Agent with both versions, x-service-name; no encoding, no auth."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        await log.flush()
    [request] = transport.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"eventlog-python/{eventlog.__version__} testapp/1.2.3"
    assert request.headers["x-service-name"] == "testapp"
    assert "content-encoding" not in request.headers
    assert "authorization" not in request.headers


async def test_gzip_bodies_decode_to_the_batch(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Config(gzip=True): Content-Encoding: gzip, and the server decodes the same events."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(gzip=True), transport=transport) as log:
        log.log_event("a", {"n": 1})
        log.log_event("b")
        await log.flush()
    [request] = transport.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/json"
    assert transport.event_names() == ["a", "b"]
    assert decode_metadata(delivered(transport)[0].additional_metadata) == {"n": 1}


async def test_gzip_raw_body_gunzips_to_the_json_batch(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The raw gzip body is a gzip stream of the same JSON a plain body would carry."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(gzip=True, session_id="sess-1"),
        transport=httpx.MockTransport(server),
        clock=FrozenWallClock(epoch=EPOCH),
    ) as log:
        log.log_event("a")
        await log.flush()
    [request] = server.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.content[:2] == b"\x1f\x8b"
    body = json.loads(gzip.decompress(request.content))
    event_id = body["events"][0]["event_data"]["event_id"]
    assert without_enrichment(body) == {
        "events": [
            {
                "event_type": "InternalEvent",
                "event_data": {
                    "event_id": event_id,
                    "event_name": "a",
                    "client_timestamp": "2026-01-01T00:00:00.000Z",
                    "session_id": "sess-1",
                    "service": {"name": "testapp", "version": "1.2.3"},
                },
            }
        ]
    }


# -- ambient access -----------------------------------------------------------------------


async def test_current_logger_and_log_event_inside_the_block(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Inside the block current_logger() is the logger and eventlog.log_event uses it."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        assert eventlog.current_logger() is log
        eventlog.log_event("ambient", {"n": 1})
        await log.flush()
    assert transport.event_names() == ["ambient"]
    assert decode_metadata(delivered(transport)[0].additional_metadata) == {"n": 1}
    assert log.stats.exported == 1


async def test_tasks_started_inside_the_block_see_the_logger(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Tasks of a nursery opened in the block inherit the logger through the context."""
    transport = CapturingTransport()
    seen: list[eventlog.EventLogger | None] = []

    async def worker(i: int) -> None:
        await trio.sleep(i)
        seen.append(eventlog.current_logger())
        eventlog.log_event(f"task{i}")

    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(worker, i)
        await log.flush()
    assert seen == [log, log, log]
    assert transport.event_names() == ["task0", "task1", "task2"]


async def test_outside_any_block_log_event_is_a_silent_no_op(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No logger: current_logger() is None and eventlog.log_event neither raises nor acts."""
    assert eventlog.current_logger() is None
    eventlog.log_event("nobody_listens", {"n": 1})
    bad_name: Any = None
    bad_metadata: Any = ["not", "a", "mapping"]
    eventlog.log_event(bad_name, bad_metadata)
    assert eventlog.current_logger() is None


async def test_nested_blocks_restore_the_outer_logger(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The inner logger is current inside the inner block; the outer one again after it."""
    outer_transport, inner_transport = CapturingTransport(), CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=outer_transport) as outer:
        eventlog.log_event("outer_before")
        async with eventlog.open_event_logger(make_config(), transport=inner_transport) as inner:
            assert eventlog.current_logger() is inner
            eventlog.log_event("inner")
        assert eventlog.current_logger() is outer
        eventlog.log_event("outer_after")
        await outer.flush()
    assert eventlog.current_logger() is None
    assert outer_transport.event_names() == ["outer_before", "outer_after"]
    assert inner_transport.event_names() == ["inner"]


async def test_sequential_blocks_each_have_their_own_logger(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """After a block exits no logger is current; the next block's logger takes over."""
    first_transport, second_transport = CapturingTransport(), CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=first_transport) as first:
        eventlog.log_event("first")
    assert eventlog.current_logger() is None
    eventlog.log_event("between")
    async with eventlog.open_event_logger(make_config(), transport=second_transport) as second:
        assert eventlog.current_logger() is second
        eventlog.log_event("second")
    assert eventlog.current_logger() is None
    assert second is not first
    assert first_transport.event_names() == ["first"]
    assert second_transport.event_names() == ["second"]
    assert first.stats.dropped_after_shutdown == 0


# -- stats ---------------------------------------------------------------------------------


async def test_stats_is_a_frozen_snapshot(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """log.stats is an eventlog.Stats whose fields cannot be assigned and that never changes."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        log.log_event("b", {"n": 1})
        log.log_event("", None)
        before = log.stats
        assert isinstance(before, eventlog.Stats)
        for field in eventlog.Stats.__struct_fields__:
            with pytest.raises(AttributeError):
                setattr(before, field, 99)
        await log.flush()
        after = log.stats
    assert before == eventlog.Stats(emitted=3, queue_depth=3)
    assert after == eventlog.Stats(emitted=3, exported=2, dropped_invalid=1)


async def test_emitted_counts_every_queued_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """emitted grows with each log_event, before and after export, invalid ones included."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        counts: list[int] = []
        for i in range(5):
            log.log_event(f"e{i}" if i != 2 else "bad\n")
            counts.append(log.stats.emitted)
        await log.flush()
        log.log_event("late")
        counts.append(log.stats.emitted)
        await log.flush()
        stats = log.stats
    assert counts == [1, 2, 3, 4, 5, 6]
    assert stats.emitted == 6
    assert stats.exported == 5
    assert stats.dropped_invalid == 1
    assert stats.queue_depth == 0


# -- arbitrary metadata (hypothesis) -----------------------------------------------------

PROTO_KEYS = (*(f"_PROTO_{field}" for field in HOISTED), "_PROTO_other")
FINITE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
SCALARS = st.one_of(FINITE, st.floats(), NON_FINITE, st.text(max_size=8))
ARBITRARY_METADATA = st.dictionaries(
    st.one_of(st.text(max_size=8), st.sampled_from(PROTO_KEYS)),
    st.one_of(SCALARS, st.lists(SCALARS, max_size=3)),
    max_size=6,
)


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for part in parts for key, value in part.items()}


# Arbitrary dicts are mostly invalid (one bad entry spoils the event). This
# half builds valid metadata, hoisted strings included, plus at most one
# spoiling entry, so each kind of invalid value is also seen on its own.
MOSTLY_VALID_METADATA = st.builds(
    merged,
    st.dictionaries(st.text(max_size=8), FINITE, max_size=6),
    st.dictionaries(st.sampled_from(PROTO_KEYS), st.text(max_size=8), max_size=3),
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.text(max_size=8), NON_FINITE, st.lists(SCALARS, min_size=1, max_size=3)),
        max_size=1,
    ),
)
METADATA = st.one_of(ARBITRARY_METADATA, MOSTLY_VALID_METADATA)


def valid_key(key: str) -> bool:
    """The documented key rule: 1 to 128 printable characters, no '/' or '\\'."""
    return 0 < len(key) <= 128 and key.isprintable() and "/" not in key and "\\" not in key


def expected_wire(
    metadata: Mapping[str, object],
) -> tuple[dict[str, str], dict[str, object]] | None:
    """(hoisted fields, additional_metadata) as docs/events.md has them, or None if invalid."""
    hoisted: dict[str, str] = {}
    rest: dict[str, object] = {}
    for key, value in metadata.items():
        if not valid_key(key):
            return None
        if key.startswith("_PROTO_"):
            field = key.removeprefix("_PROTO_")
            if field in HOISTED:
                if not isinstance(value, str) or any("\ud800" <= c <= "\udfff" for c in value):
                    return None
                hoisted[field] = value
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if value is not None and not isinstance(value, int | float):
            return None
        rest[key] = value
    return hoisted, rest


async def log_all(
    batch: list[dict[str, Any]], storage_dir: str
) -> tuple[list[InternalEventData], eventlog.Stats]:
    transport = CapturingTransport()
    config = eventlog.Config(
        base_url="http://127.0.0.1:8787",
        storage_dir=storage_dir,
        service_name="testapp",
        service_version="1.2.3",
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i, metadata in enumerate(batch):
            log.log_event(f"e{i}", metadata)
        await log.flush()
    return delivered(transport), log.stats


@given(st.lists(METADATA, min_size=1, max_size=5))
def test_arbitrary_metadata_is_delivered_exactly_or_counted_invalid(
    batch: list[dict[str, Any]],
) -> None:
    """Any metadata: log_event never raises; each event arrives exactly or is counted invalid."""
    with tempfile.TemporaryDirectory() as storage_dir:
        data, stats = trio.run(
            log_all, batch, storage_dir, clock=trio.testing.MockClock(autojump_threshold=0)
        )
    expected = {f"e{i}": expected_wire(metadata) for i, metadata in enumerate(batch)}
    valid = {name: wire for name, wire in expected.items() if wire is not None}
    assert [d.event_name for d in data] == list(valid)
    for d in data:
        hoisted, rest = valid[d.event_name]
        assert (d.skill_name, d.plugin_name, d.marketplace_name) == tuple(
            hoisted.get(field) for field in HOISTED
        )
        if rest:
            assert typed(decode_metadata(d.additional_metadata)) == typed(rest)
        else:
            assert d.additional_metadata is None
    assert stats.emitted == len(batch)
    assert stats.exported == len(valid)
    assert stats.dropped_invalid == len(batch) - len(valid)


# -- valid metadata round trip (hypothesis) ---------------------------------------------

VALID_SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
VALID_METADATA = st.dictionaries(
    st.text(min_size=1, max_size=20).filter(
        lambda key: (
            key.isprintable() and not key.startswith("_PROTO_") and not {"/", "\\"} & set(key)
        )
    ),
    VALID_SCALARS,
    max_size=8,
)


async def log_one(metadata: dict[str, Any], storage_dir: str) -> tuple[str | None, eventlog.Stats]:
    transport = CapturingTransport()
    config = eventlog.Config(
        base_url="http://127.0.0.1:8787",
        storage_dir=storage_dir,
        strict=True,
        service_name="testapp",
        service_version="1.2.3",
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("e", metadata)
        await log.flush()
    [data] = map(internal, transport.events())
    return data.additional_metadata, log.stats


@given(VALID_METADATA)
def test_valid_metadata_arrives_exactly(metadata: dict[str, Any]) -> None:
    """Any valid metadata dict decodes from additional_metadata to exactly itself."""
    with tempfile.TemporaryDirectory() as storage_dir:
        encoded, stats = trio.run(
            log_one, metadata, storage_dir, clock=trio.testing.MockClock(autojump_threshold=0)
        )
    if metadata:
        assert typed(decode_metadata(encoded)) == typed(metadata)
    else:
        assert encoded is None
    assert stats.exported == 1
    assert stats.dropped_invalid == 0
