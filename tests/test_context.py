"""Enrichment: what the context and the detected facts add to every event.

The context is an ``EventContext`` or a callable read once per batch; a
failing one costs the batch its enrichment, never its events. Read through a
``CapturingTransport`` for decoded events, an ``httpx.MockTransport`` handler
where the raw JSON matters (absent fields).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

import eventlog
from eventlog._environment import detect_environment
from eventlog.testing import Auth, CapturingTransport, FrozenWallClock
from tests.helpers import EPOCH, EVENT_ID_RE, FULL_CONTEXT, RawServer, decode_metadata, internal

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


# 2100-01-01T00:00:00Z: later than any real process start, so uptime is never clamped.
FUTURE_EPOCH = 4_102_444_800.0
PARTIAL_KEYS = ["additional_metadata", "client_timestamp", "event_id", "event_name", "session_id"]


async def test_every_event_carries_the_context_and_the_detected_facts(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """device_id, email, auth and app come from the context; env and process are detected."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server), context=FULL_CONTEXT
    ) as log:
        log.log_event("a", {"n": 1})
        log.log_event("b")
        await log.flush()
    assert len(server.requests) == 1
    events = server.event_data()
    assert [d["event_name"] for d in events] == ["a", "b"]
    for data in events:
        assert data["device_id"] == "dev-1"
        assert data["email"] == "user@example.com"
        assert data["auth"] == {"account_uuid": "acc-1", "organization_uuid": "org-1"}
        assert data["app"] == {"channel": "beta", "build": 42, "ratio": 0.5, "trial": True}
        env = data["env"]
        assert env == detect_environment()
        assert env["platform"] == sys.platform
        assert env["arch"] == (platform.machine() or "unknown")
        assert env["python_version"] == platform.python_version()
        assert env["python_implementation"] == platform.python_implementation()
        assert env["os_version"] == (platform.release() or "unknown")
        assert type(env["is_ci"]) is bool
        assert env.get("wsl_version") in (None, "1", "2")
        process = data["process"]
        assert process["pid"] == os.getpid()
        assert process["uptime_s"] >= 0
        if sys.platform == "linux":
            assert process["rss_bytes"] > 0
    assert log.stats.exported == 2


@pytest.mark.parametrize(
    ("account_uuid", "organization_uuid", "auth"),
    [
        (None, None, None),
        ("acc-1", None, {"account_uuid": "acc-1"}),
        (None, "org-1", {"organization_uuid": "org-1"}),
        ("acc-1", "org-1", {"account_uuid": "acc-1", "organization_uuid": "org-1"}),
    ],
    ids=["neither", "account-only", "org-only", "both"],
)
async def test_auth_is_present_only_with_an_account_or_org_uuid(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    account_uuid: str | None,
    organization_uuid: str | None,
    auth: dict[str, str] | None,
) -> None:
    """auth holds the uuids that exist; it is absent (not null) when neither does."""
    server = RawServer()
    context = eventlog.EventContext(
        device_id="dev-1", account_uuid=account_uuid, organization_uuid=organization_uuid
    )
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server), context=context
    ) as log:
        log.log_event("e")
        await log.flush()
    [data] = server.event_data()
    assert data.get("auth") == auth
    assert ("auth" in data) is (auth is not None)
    assert "email" not in data
    assert "app" not in data


async def test_without_a_context_no_identity_fields_are_sent(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """No context: device_id, email, auth and app are absent; env and process still there."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server)
    ) as log:
        log.log_event("e")
        await log.flush()
    [data] = server.event_data()
    assert sorted(data) == [
        "client_timestamp",
        "env",
        "event_id",
        "event_name",
        "process",
        "service",
        "session_id",
    ]


async def test_uptime_follows_the_wall_clock_across_batches(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Two events 100 s apart in two batches differ by exactly 100 s of uptime."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=FUTURE_EPOCH)
    ) as log:
        log.log_event("first")
        await log.flush()
        await trio.sleep(100)
        log.log_event("second")
        await log.flush()
    assert len(transport.requests) == 2
    first, second = (internal(e) for e in transport.events())
    assert first.process is not None
    assert second.process is not None
    assert first.process.uptime_s is not None
    assert second.process.uptime_s is not None
    assert first.process.uptime_s >= 0
    assert second.process.uptime_s - first.process.uptime_s == pytest.approx(100.0, abs=0.01)
    assert first.process.pid == second.process.pid == os.getpid()


async def test_uptime_is_the_process_age_even_under_a_test_clock(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A test clock set in 1970 still gives the process's real age, not 0 or a negative."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, clock=FrozenWallClock(epoch=0.0)
    ) as log:
        log.log_event("e")
        await log.flush()
    [data] = (internal(e) for e in transport.events())
    assert data.process is not None
    assert data.process.uptime_s is not None
    assert 0.0 < data.process.uptime_s < 3600.0  # this test process started within the hour


async def test_a_context_callable_is_read_once_per_batch(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The callable runs when each batch is built; its value at that time is used."""
    calls: list[str] = []
    current = {"device": "dev-1"}

    def context() -> eventlog.EventContext:
        calls.append(current["device"])
        return eventlog.EventContext(device_id=current["device"], account_uuid="acc-1")

    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, context=context
    ) as log:
        log.log_event("a")
        log.log_event("b")
        await log.flush()
        current["device"] = "dev-2"
        log.log_event("c")
        await log.flush()
    assert calls == ["dev-1", "dev-2"]
    assert [(d.event_name, d.device_id) for d in map(internal, transport.events())] == [
        ("a", "dev-1"),
        ("b", "dev-1"),
        ("c", "dev-2"),
    ]
    assert [internal(e).auth for e in transport.events()] == [Auth(account_uuid="acc-1")] * 3


async def test_a_failing_context_callable_gives_partial_events(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every event still goes out, partial, with transform_error; one WARNING, no message leak."""
    caplog.set_level(logging.DEBUG, logger="eventlog")
    secret = "secret-token-4711@example.com"
    calls = 0

    def context() -> eventlog.EventContext:
        nonlocal calls
        calls += 1
        raise RuntimeError(secret)

    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(session_id="sess-1"),
        transport=httpx.MockTransport(server),
        context=context,
        clock=FrozenWallClock(epoch=EPOCH),
    ) as log:
        for batch in range(3):
            log.log_event(f"a{batch}", {"n": batch})
            log.log_event(f"b{batch}")
            await log.flush()
            await trio.sleep(1)
    assert calls == 3
    assert len(server.requests) == 3
    events = server.event_data()
    assert [d["event_name"] for d in events] == ["a0", "b0", "a1", "b1", "a2", "b2"]
    for index, data in enumerate(events):
        assert sorted(data) == PARTIAL_KEYS
        assert EVENT_ID_RE.fullmatch(data["event_id"])
        assert data["session_id"] == "sess-1"
        assert data["client_timestamp"] == f"2026-01-01T00:00:0{index // 2}.000Z"
        assert decode_metadata(data["additional_metadata"]) == {
            "transform_error": "context unavailable: RuntimeError"
        }
    assert all(secret.encode() not in request.content for request in server.requests)
    assert secret not in caplog.text
    assert all(secret not in record.getMessage() for record in caplog.records)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "RuntimeError" in warnings[0].getMessage()
    assert log.stats.exported == 6
    assert log.stats.dropped_invalid == 0


@pytest.mark.parametrize(
    "returned",
    [None, {"device_id": "dev-1"}, "dev-1"],
    ids=["none", "dict", "str"],
)
async def test_a_context_callable_returning_something_else_gives_partial_events(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, returned: Any
) -> None:
    """A callable that returns no EventContext counts as failed: partial events, TypeError."""

    def context() -> Any:
        return returned

    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server), context=context
    ) as log:
        log.log_event("a", {"n": 1})
        log.log_event("b")
        await log.flush()
    events = server.event_data()
    assert [d["event_name"] for d in events] == ["a", "b"]
    for data in events:
        assert sorted(data) == PARTIAL_KEYS
        assert decode_metadata(data["additional_metadata"]) == {
            "transform_error": "context unavailable: TypeError"
        }
    assert log.stats.exported == 2


@pytest.mark.parametrize("bad", [object(), math.nan], ids=["object", "nan"])
async def test_a_context_with_a_bad_app_value_still_delivers_every_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, bad: Any
) -> None:
    """An app value outside str/int/float/bool loses no event and puts no null on the wire."""

    def context() -> eventlog.EventContext:
        return eventlog.EventContext(device_id="dev-1", app={"channel": "beta", "x": bad})

    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server), context=context
    ) as log:
        log.log_event("a", {"n": 1})
        log.log_event("b")
        await log.flush()
    assert [d["event_name"] for d in server.event_data()] == ["a", "b"]
    assert all(b"null" not in request.content for request in server.requests)
    assert log.stats.dropped_invalid == 0
    assert log.stats.exported == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"app": {"x": object()}}, "context.app"),
        ({"app": {"x": math.nan}}, "context.app"),
        ({"app": {1: "x"}}, "context.app"),
        ({"app": ["x"]}, "context.app"),
        ({"device_id": 5}, "context.device_id"),
        ({"email": b"a@b"}, "context.email"),
    ],
)
def test_event_context_is_validated_at_construction(kwargs: dict[str, Any], field: str) -> None:
    """A bad EventContext fails where it is written, with a ConfigError naming the field."""
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.EventContext(**kwargs)
    assert info.value.field == field


class Ratio(float):
    """A float subclass, as numpy's float64 is."""


def test_a_float_subclass_in_app_becomes_a_plain_float() -> None:
    """EventContext stores a float subclass as a float, and refuses a non-finite one."""
    context = eventlog.EventContext(app={"ratio": Ratio(0.5)})
    assert context.app == {"ratio": 0.5}
    assert type(context.app["ratio"]) is float
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.EventContext(app={"ratio": Ratio("inf")})
    assert info.value.field == "context.app"
