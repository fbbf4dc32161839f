"""The logger layer above delivery: enrichment, experiments, sampling, strict mode, opt-out.

Design sections 1-3 and section 9 items 12-14, through ``eventlog.open_event_logger``
and what reaches a fake server: ``CapturingTransport`` for decoded events, an
``httpx.MockTransport`` handler where the raw JSON matters (absent fields, proto
fields the wire Structs do not know).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import random
import re
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from eventlog._environment import CI_VARIABLES, detect_environment, detect_wsl_version
from eventlog.testing import (
    Auth,
    CapturingTransport,
    ExperimentEvent,
    ExperimentEventData,
    FrozenWallClock,
    InternalEvent,
)
from tests.helpers import RawServer, decode_metadata, internal, typed

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
# 2100-01-01T00:00:00Z: later than any real process start, so uptime is never clamped.
FUTURE_EPOCH = 4_102_444_800.0
EVENT_ID_RE = re.compile(r"[0-9a-f]{32}")
PARTIAL_KEYS = ["additional_metadata", "client_timestamp", "event_id", "event_name", "session_id"]
FULL_CONTEXT = eventlog.EventContext(
    device_id="dev-1",
    account_uuid="acc-1",
    organization_uuid="org-1",
    email="user@example.com",
    app={"channel": "beta", "build": 42, "ratio": 0.5, "trial": True},
)


def experiment(event: object) -> ExperimentEventData:
    assert isinstance(event, ExperimentEvent)
    return event.event_data


# -- enrichment ----------------------------------------------------------------------


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


# -- environment detection --------------------------------------------------------------


@pytest.mark.parametrize("variable", CI_VARIABLES)
@pytest.mark.parametrize("value", ["true", "1"])
def test_each_ci_variable_marks_a_ci_run(variable: str, value: str) -> None:
    """Any of the known CI variables set to a true value makes is_ci True."""
    assert detect_environment(environ={variable: value})["is_ci"] is True


@pytest.mark.parametrize(
    "environ",
    [{}, {"CI": "false"}, {"CI": "0"}, {"CI": ""}, {"HOME": "/root", "PATH": "/usr/bin"}],
    ids=["empty", "ci-false", "ci-0", "ci-empty", "unrelated"],
)
def test_no_true_ci_variable_is_not_ci(environ: dict[str, str]) -> None:
    """Without a true CI variable, is_ci is False."""
    assert detect_environment(environ=environ)["is_ci"] is False


def test_detected_environment_describes_this_interpreter() -> None:
    """platform, arch, versions and implementation are this machine's."""
    env = detect_environment(environ={})
    assert {k: v for k, v in env.items() if k != "wsl_version"} == {
        "platform": sys.platform,
        "arch": platform.machine() or "unknown",
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os_version": platform.release() or "unknown",
        "is_ci": False,
    }


@pytest.mark.parametrize(
    ("proc_version", "expected"),
    [
        ("Linux version 5.15.153.1-microsoft-standard-WSL2 (root@1234) (gcc 11.2.0)", "2"),
        ("Linux version 5.10.16.3-microsoft-standard-WSL2", "2"),
        ("Linux version 4.19.128-microsoft-standard (oe-user@oe-host)", "2"),
        ("Linux version 6.6.36.3-MICROSOFT-STANDARD-WSL2", "2"),
        ("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc 5.4.0)", "1"),
        ("Linux version 4.4.0-22000-Microsoft", "1"),
        ("Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org)", None),
        ("Linux version 6.8.0-45-generic (buildd@lcy02-amd64-075) (Ubuntu)", None),
        ("", None),
    ],
)
def test_wsl_version_from_proc_version(proc_version: str, expected: str | None) -> None:
    """WSL 2 kernels say microsoft-standard or WSL2, WSL 1 just Microsoft; others are None."""
    assert detect_wsl_version(proc_version) == expected


# -- experiments --------------------------------------------------------------------------


async def test_log_experiment_sends_one_experiment_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Every wire field (docs/events.md); timestamp at the emit; attributes as JSON strings."""
    transport = CapturingTransport()
    context = eventlog.EventContext(device_id="dev-1", account_uuid="acc-1", email="u@x.org")
    async with eventlog.open_event_logger(
        make_config(session_id="sess-1"),
        transport=transport,
        context=context,
        clock=FrozenWallClock(epoch=EPOCH),
    ) as log:
        await trio.sleep(1.5)
        log.log_experiment(
            "exp-1", 2, user_attributes={"plan": "pro"}, experiment_metadata={"source": "x"}
        )
        await trio.sleep(3)
        await log.flush()
    [request] = transport.requests
    [event] = request.events
    data = experiment(event)
    assert EVENT_ID_RE.fullmatch(data.event_id)
    assert data == ExperimentEventData(
        event_id=data.event_id,
        timestamp="2026-01-01T00:00:01.500Z",
        experiment_id="exp-1",
        variation_id=2,
        environment="production",
        user_attributes='{"plan":"pro"}',
        experiment_metadata='{"source":"x"}',
        device_id="dev-1",
        session_id="sess-1",
        auth=Auth(account_uuid="acc-1"),
    )
    assert data.user_attributes is not None
    assert data.experiment_metadata is not None
    assert json.loads(data.user_attributes) == {"plan": "pro"}
    assert json.loads(data.experiment_metadata) == {"source": "x"}
    assert log.stats.emitted == 1
    assert log.stats.exported == 1


async def test_experiment_without_uuids_or_attributes_omits_them(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """No account or org uuid: no auth; no attributes: those fields are absent, not null."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(session_id="sess-1"),
        transport=httpx.MockTransport(server),
        context=eventlog.EventContext(device_id="dev-1", email="u@x.org"),
        clock=FrozenWallClock(epoch=EPOCH),
    ) as log:
        log.log_experiment("exp-1", 0)
        await log.flush()
    [request] = server.requests
    [event] = json.loads(request.content)["events"]
    assert event["event_type"] == "ExperimentEvent"
    data = event["event_data"]
    # environment is checked on its own, in test_experiment_environment_is_on_the_wire.
    assert {key: value for key, value in data.items() if key != "environment"} == {
        "event_id": data["event_id"],
        "timestamp": "2026-01-01T00:00:00.000Z",
        "experiment_id": "exp-1",
        "variation_id": 0,
        "device_id": "dev-1",
        "session_id": "sess-1",
    }


async def test_experiment_environment_is_on_the_wire(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The raw ExperimentEvent body carries environment: "production" (docs/events.md)."""
    server = RawServer()
    async with eventlog.open_event_logger(
        make_config(), transport=httpx.MockTransport(server)
    ) as log:
        log.log_experiment("exp-1", 1, user_attributes={"plan": "pro"})
        await log.flush()
    [data] = server.event_data()
    assert data["experiment_id"] == "exp-1"
    assert data["environment"] == "production"


async def test_experiment_attributes_are_captured_at_the_call(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Mutating the mappings after log_experiment does not change what is sent."""
    transport = CapturingTransport()
    attributes: dict[str, object] = {"plan": "pro", "seats": 3}
    metadata: dict[str, object] = {"source": "x"}
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_experiment("exp-1", 2, user_attributes=attributes, experiment_metadata=metadata)
        attributes["plan"] = "free"
        attributes["extra"] = True
        metadata.clear()
        await log.flush()
    [data] = map(experiment, transport.events())
    assert data.user_attributes is not None
    assert data.experiment_metadata is not None
    assert json.loads(data.user_attributes) == {"plan": "pro", "seats": 3}
    assert json.loads(data.experiment_metadata) == {"source": "x"}


INVALID_EXPERIMENTS = [
    pytest.param("", 1, None, None, id="empty-id"),
    pytest.param(None, 1, None, None, id="none-id"),
    pytest.param(7, 1, None, None, id="int-id"),
    pytest.param("exp-1", True, None, None, id="bool-variation"),
    pytest.param("exp-1", "2", None, None, id="str-variation"),
    pytest.param("exp-1", 1.0, None, None, id="float-variation"),
    pytest.param("exp-1", 1, ["plan", "pro"], None, id="list-attributes"),
    pytest.param("exp-1", 1, None, "source=x", id="str-metadata"),
    pytest.param("exp-1", 1, {"o": object()}, None, id="unencodable-attributes"),
    pytest.param("exp-1", 1, None, {"o": object()}, id="unencodable-metadata"),
]


@pytest.mark.parametrize(
    ("experiment_id", "variation_id", "user_attributes", "experiment_metadata"),
    INVALID_EXPERIMENTS,
)
async def test_invalid_experiment_is_counted_not_raised(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    experiment_id: Any,
    variation_id: Any,
    user_attributes: Any,
    experiment_metadata: Any,
) -> None:
    """Outside strict mode an invalid experiment is counted like an invalid event; none sent."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_experiment(
            experiment_id,
            variation_id,
            user_attributes=user_attributes,
            experiment_metadata=experiment_metadata,
        )
        await log.flush()
    assert transport.requests == []
    assert log.stats.dropped_invalid == 1
    assert log.stats.emitted == 1  # queued, found invalid with its batch: the invariant holds


@pytest.mark.parametrize(
    ("experiment_id", "variation_id", "user_attributes", "experiment_metadata"),
    INVALID_EXPERIMENTS,
)
async def test_invalid_experiment_raises_in_strict_mode(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    experiment_id: Any,
    variation_id: Any,
    user_attributes: Any,
    experiment_metadata: Any,
) -> None:
    """Strict mode: an invalid experiment raises InvalidEventError; a valid one still goes."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=True), transport=transport) as log:
        with pytest.raises(eventlog.InvalidEventError) as info:
            log.log_experiment(
                experiment_id,
                variation_id,
                user_attributes=user_attributes,
                experiment_metadata=experiment_metadata,
            )
        assert info.value.key is None
        log.log_experiment("exp-ok", 1)
        await log.flush()
    assert [experiment(e).experiment_id for e in transport.events()] == ["exp-ok"]
    assert log.stats.dropped_invalid == 0


async def test_sampling_does_not_apply_to_experiments(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A zero rate for a name drops its events but not an experiment with that id."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(sampling={"exp-1": 0.0}), transport=transport, random=random.Random(1)
    ) as log:
        log.log_experiment("exp-1", 3)
        log.log_event("exp-1")
        await log.flush()
    [data] = map(experiment, transport.events())
    assert (data.experiment_id, data.variation_id) == ("exp-1", 3)
    assert log.stats.sampled_out == 1
    assert log.stats.exported == 1


async def test_experiments_and_events_share_one_batch_in_emit_order(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Experiments queue with internal events: one POST, emit order kept, distinct ids."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("before")
        log.log_experiment("exp-1", 1)
        log.log_event("between")
        log.log_experiment("exp-2", 2)
        log.log_event("after")
        await log.flush()
    [request] = transport.requests
    order = [
        e.event_data.event_name if isinstance(e, InternalEvent) else e.event_data.experiment_id
        for e in request.events
    ]
    assert order == ["before", "exp-1", "between", "exp-2", "after"]
    assert [type(e).__name__ for e in request.events] == [
        "InternalEvent",
        "ExperimentEvent",
        "InternalEvent",
        "ExperimentEvent",
        "InternalEvent",
    ]
    assert len(set(transport.event_ids())) == 5
    assert log.stats.exported == 5


async def test_killswitch_drops_experiments_too(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """While the killswitch is on, log_experiment drops and counts; afterwards it sends."""
    killed = True
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, killswitch=lambda: killed
    ) as log:
        log.log_experiment("exp-killed", 1)
        log.log_event("event-killed")
        assert log.stats.dropped_killed == 2
        killed = False
        log.log_experiment("exp-sent", 2)
        await log.flush()
    assert [experiment(e).experiment_id for e in transport.events()] == ["exp-sent"]
    assert log.stats.dropped_killed == 2
    assert log.stats.emitted == 1
    assert log.stats.exported == 1


async def test_a_raising_killswitch_drops_experiments(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A killswitch that raises counts as killed for log_experiment."""

    def killswitch() -> bool:
        raise OSError("flag file unreadable")

    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, killswitch=killswitch
    ) as log:
        log.log_experiment("exp-1", 1)
        await log.flush()
    assert transport.requests == []
    assert log.stats.dropped_killed == 1


# -- sampling -------------------------------------------------------------------------------


async def test_unsampled_and_rate_one_events_are_kept_without_a_sample_rate(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """No rate or rate 1: every event kept, no sample_rate, no random draw."""
    rng = random.Random(7)
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(sampling={"always": 1.0}), transport=transport, random=rng
    ) as log:
        for _ in range(20):
            log.log_event("always")
            log.log_event("free")
        await log.flush()
    delivered = [internal(e) for e in transport.events()]
    assert [d.event_name for d in delivered] == ["always", "free"] * 20
    assert {d.sample_rate for d in delivered} == {None}
    assert log.stats.sampled_out == 0
    assert rng.getstate() == random.Random(7).getstate()


async def test_rate_zero_drops_every_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Rate 0: every event of that name counted in sampled_out, none sent."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(sampling={"x": 0.0}), transport=transport, random=random.Random(3)
    ) as log:
        for _ in range(50):
            log.log_event("x")
        await log.flush()
    assert transport.requests == []
    assert log.stats.sampled_out == 50
    assert log.stats.emitted == 0


async def test_fractional_rate_keeps_exactly_the_seeded_draws(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Rate 0.25: one draw per sampled event, kept iff draw < rate; kept ones carry the rate."""
    seed = 20260101
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(sampling={"x": 0.25}), transport=transport, random=random.Random(seed)
    ) as log:
        for i in range(2000):
            log.log_event("x", {"i": i})
            if i % 10 == 0:
                log.log_event("unsampled")  # no rate: must not consume a draw
        await log.flush()
    replay = random.Random(seed)
    expected = [i for i in range(2000) if replay.random() < 0.25]
    delivered = [internal(e) for e in transport.events()]
    sampled = [d for d in delivered if d.event_name == "x"]
    assert [decode_metadata(d.additional_metadata)["i"] for d in sampled] == expected
    assert {d.sample_rate for d in sampled} == {0.25}
    assert [d.sample_rate for d in delivered if d.event_name == "unsampled"] == [None] * 200
    assert log.stats.sampled_out == 2000 - len(expected)
    assert log.stats.sampled_out + len(sampled) == 2000
    assert log.stats.exported == len(expected) + 200
    assert log.stats.export_failures == 0


@pytest.mark.parametrize(
    "sampling",
    [{"x": 1.5}, {"x": -0.1}, {"x": math.nan}, {"x": True}, {"x": "0.5"}, {1: 0.5}, {"": 0.5}],
    ids=["above-one", "negative", "nan", "bool", "str-rate", "int-name", "empty-name"],
)
def test_invalid_sampling_config_is_refused(make_config: MakeConfig, sampling: Any) -> None:
    """A rate outside [0, 1] or a name that is not a non-empty string names the field."""
    with pytest.raises(eventlog.ConfigError) as info:
        make_config(sampling=sampling)
    assert info.value.field == "sampling"


# -- metadata and _PROTO_ fields ----------------------------------------------------------


async def test_configured_proto_fields_are_hoisted_and_the_rest_stripped(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A configured name unknown to the Struct is spliced in; a no-longer-configured one goes."""
    server = RawServer()
    config = make_config(proto_fields=("skill_name", "team_name"))
    async with eventlog.open_event_logger(config, transport=httpx.MockTransport(server)) as log:
        log.log_event(
            "e",
            {
                "_PROTO_team_name": 'red "team" \u2603',
                "_PROTO_skill_name": "pdf",
                "_PROTO_plugin_name": "stripped-plugin",
                "_PROTO_other": "stripped-other",
                "n": 1,
            },
        )
        log.log_event("bare", {"_PROTO_plugin_name": "stripped", "m": 2})
        await log.flush()
    first, second = server.event_data()
    assert first["team_name"] == 'red "team" \u2603'
    assert first["skill_name"] == "pdf"
    assert "plugin_name" not in first
    assert decode_metadata(first["additional_metadata"]) == {"n": 1}
    assert b"stripped" not in server.requests[0].content
    assert "team_name" not in second
    assert "plugin_name" not in second
    assert decode_metadata(second["additional_metadata"]) == {"m": 2}
    assert log.stats.exported == 2


async def test_spliced_proto_fields_still_decode_as_wire_structs(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A body with a spliced field is still a valid batch for the decoding transport."""
    transport = CapturingTransport()
    config = make_config(proto_fields=("team_name",))
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("e", {"_PROTO_team_name": "red", "_PROTO_skill_name": "gone", "n": 1})
        await log.flush()
    [data] = map(internal, transport.events())
    assert data.event_name == "e"
    assert data.skill_name is None
    assert decode_metadata(data.additional_metadata) == {"n": 1}


@pytest.mark.parametrize(
    "field",
    ["event_id", "env", "app", "auth", "sample_rate", "additional_metadata"],
)
def test_proto_fields_may_not_shadow_core_fields(make_config: MakeConfig, field: str) -> None:
    """A reserved event_data name is refused with the proto_fields field."""
    with pytest.raises(eventlog.ConfigError) as info:
        make_config(proto_fields=("skill_name", field))
    assert info.value.field == "proto_fields"


@pytest.mark.parametrize(
    "proto_fields",
    [("Team",), ("1team",), ("team-name",), ("",), ("a" * 65,), (5,), "team_name", None],
    ids=["upper", "digit-first", "dash", "empty", "too-long", "int", "bare-str", "none"],
)
def test_proto_fields_must_be_identifiers(make_config: MakeConfig, proto_fields: Any) -> None:
    """Names must match [a-z][a-z0-9_]{0,63}, given as a tuple."""
    with pytest.raises(eventlog.ConfigError) as info:
        make_config(proto_fields=proto_fields)
    assert info.value.field == "proto_fields"


def test_duplicate_proto_fields_collapse(make_config: MakeConfig) -> None:
    """Repeated names are kept once, in first-seen order, as a tuple."""
    config = make_config(proto_fields=["team_name", "skill_name", "team_name", "a" * 64])
    assert config.proto_fields == ("team_name", "skill_name", "a" * 64)


# -- strict mode -------------------------------------------------------------------------------


INVALID_EVENTS = [
    pytest.param("e", {"k": "text"}, "k", id="string-value"),
    pytest.param("e", {"k": math.nan}, "k", id="nan"),
    pytest.param("e", {"k": -math.inf}, "k", id="inf"),
    pytest.param("e", {"k": [1]}, "k", id="list-value"),
    pytest.param("e", {1: 2}, None, id="non-string-key"),
    pytest.param("", None, None, id="empty-name"),
    pytest.param(7, None, None, id="non-string-name"),
    pytest.param("e", [("k", 1)], None, id="non-mapping"),
    pytest.param("e", {"_PROTO_skill_name": 3}, "_PROTO_skill_name", id="non-string-proto"),
]


@pytest.mark.parametrize("how", ["config", "env"])
@pytest.mark.parametrize(("name", "metadata", "key"), INVALID_EVENTS)
async def test_strict_mode_raises_on_invalid_events(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    name: Any,
    metadata: Any,
    key: str | None,
) -> None:
    """Config(strict=True) or EVENTLOG_STRICT=1: log_event raises, naming the key."""
    if how == "env":
        monkeypatch.setenv("EVENTLOG_STRICT", "1")
        config = make_config()
    else:
        monkeypatch.delenv("EVENTLOG_STRICT", raising=False)
        config = make_config(strict=True)
    assert config.strict is True
    transport = CapturingTransport()
    async with eventlog.open_event_logger(config, transport=transport) as log:
        with pytest.raises(eventlog.InvalidEventError) as info:
            log.log_event(name, metadata)
        assert info.value.key == key
        log.log_event("ok", {"n": 1, "_PROTO_unconfigured": 5})
        await log.flush()
    assert transport.event_names() == ["ok"]
    assert log.stats.emitted == 1
    assert log.stats.exported == 1
    assert log.stats.dropped_invalid == 0


@pytest.mark.parametrize(("name", "metadata", "key"), INVALID_EVENTS)
async def test_outside_strict_mode_invalid_events_are_counted(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    name: Any,
    metadata: Any,
    key: str | None,
) -> None:
    """Without strict mode the same inputs never raise: dropped_invalid, the rest delivered."""
    monkeypatch.delenv("EVENTLOG_STRICT", raising=False)
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event(name, metadata)
        log.log_event("ok", {"n": 1})
        await log.flush()
    assert transport.event_names() == ["ok"]
    assert log.stats.emitted == 2
    assert log.stats.dropped_invalid == 1
    assert log.stats.exported == 1


async def test_strict_mode_checks_configured_proto_fields(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Strict mode: a configured proto field must be a string; unconfigured ones are stripped."""
    server = RawServer()
    config = make_config(strict=True, proto_fields=("team_name",))
    async with eventlog.open_event_logger(config, transport=httpx.MockTransport(server)) as log:
        with pytest.raises(eventlog.InvalidEventError) as info:
            log.log_event("e", {"_PROTO_team_name": 5})
        assert info.value.key == "_PROTO_team_name"
        log.log_event("ok", {"_PROTO_team_name": "red", "_PROTO_skill_name": 5})
        await log.flush()
    [data] = server.event_data()
    assert data["team_name"] == "red"
    assert "skill_name" not in data
    assert "additional_metadata" not in data


@pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
def test_unreadable_eventlog_strict_is_a_config_error(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """EVENTLOG_STRICT must be a boolean word; anything else names the strict field."""
    monkeypatch.setenv("EVENTLOG_STRICT", value)
    with pytest.raises(eventlog.ConfigError) as info:
        make_config()
    assert info.value.field == "strict"


@pytest.mark.parametrize(("value", "strict"), [("0", False), ("", False), ("true", True)])
def test_eventlog_strict_values(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch, value: str, strict: bool
) -> None:
    """EVENTLOG_STRICT sets the default of Config.strict; an explicit argument wins."""
    monkeypatch.setenv("EVENTLOG_STRICT", value)
    assert make_config().strict is strict
    assert make_config(strict=not strict).strict is (not strict)


# -- opt-out -----------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No eventlog or opt-out variables from the surrounding environment."""
    for variable in (
        "EVENTLOG_BASE_URL",
        "EVENTLOG_DISABLED",
        "EVENTLOG_STRICT",
        "EVENTLOG_HOME",
        "DO_NOT_TRACK",
    ):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize("how", ["config", "DO_NOT_TRACK", "EVENTLOG_DISABLED"])
async def test_a_disabled_logger_does_nothing(
    autojump_clock: trio.testing.MockClock,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    how: str,
) -> None:
    """No task, request, file or time: every method is a no-op and stats stay zero."""
    storage = tmp_path / "telemetry"
    if how == "config":
        config = eventlog.Config(enabled=False, storage_dir=str(storage))
    else:
        clean_env.setenv(how, "1")
        config = eventlog.Config(storage_dir=str(storage))
    assert config.enabled is False
    transport = CapturingTransport()
    task = trio.lowlevel.current_task()
    nurseries = task.child_nurseries
    start = trio.current_time()
    async with eventlog.open_event_logger(
        config, transport=transport, context=FULL_CONTEXT, random=random.Random(0)
    ) as log:
        assert log.enabled is False
        assert eventlog.current_logger() is log
        assert task.child_nurseries == nurseries
        log.log_event("e", {"n": 1})
        log.log_event("invalid", {"s": "text"})
        eventlog.log_event("ambient")
        log.log_experiment("exp-1", 1, user_attributes={"plan": "pro"})
        await log.flush()
        assert await log.apply_remote_config(eventlog.RemoteConfig(sampling={"e": 0.5})) is False
        assert log.stats == eventlog.Stats()
        assert trio.current_time() == start
    assert trio.current_time() == start
    assert eventlog.current_logger() is None
    assert log.stats == eventlog.Stats()
    assert transport.requests == []
    assert not storage.exists()
    assert list(tmp_path.iterdir()) == []


async def test_a_disabled_logger_never_raises_even_in_strict_mode(
    autojump_clock: trio.testing.MockClock, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Strict mode does not make a disabled logger validate anything."""
    config = eventlog.Config(enabled=False, strict=True, storage_dir=str(tmp_path / "t"))
    async with eventlog.open_event_logger(config) as log:
        bad: Any = {"s": "text", 1: math.nan}
        log.log_event("", bad)
        log.log_experiment("", True)
    assert log.stats == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []


async def test_config_from_the_environment_can_be_disabled(
    autojump_clock: trio.testing.MockClock, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """open_event_logger() with DO_NOT_TRACK=1 and no base URL gives a disabled logger."""
    clean_env.setenv("DO_NOT_TRACK", "1")
    clean_env.setenv("EVENTLOG_HOME", str(tmp_path / "home"))
    async with eventlog.open_event_logger() as log:
        assert log.enabled is False
        # Disabled, nothing but the opt-out variables is read: not even EVENTLOG_HOME.
        assert log.config.storage_dir == ""
        log.log_event("e")
        await log.flush()
    assert log.stats == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []


def test_a_disabled_logger_needs_no_clock(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under a plain trio.run (real clock, no autojump) the block enters and exits at once."""
    config = eventlog.Config(enabled=False, storage_dir=str(tmp_path / "telemetry"))

    async def main() -> eventlog.Stats:
        with trio.fail_after(5):
            async with eventlog.open_event_logger(config) as log:
                log.log_event("e")
                log.log_experiment("exp-1", 1)
                await log.flush()
        return log.stats

    assert trio.run(main) == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["garbage", "2", "disabled"])
def test_unreadable_eventlog_disabled_is_a_config_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    """EVENTLOG_DISABLED must be a boolean word; anything else names the enabled field."""
    clean_env.setenv("EVENTLOG_DISABLED", value)
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir=str(tmp_path))
    assert info.value.field == "enabled"


@pytest.mark.parametrize(
    ("variable", "value", "enabled"),
    [
        ("DO_NOT_TRACK", "1", False),
        ("DO_NOT_TRACK", "true", False),
        ("DO_NOT_TRACK", "0", True),
        ("DO_NOT_TRACK", "", True),
        ("DO_NOT_TRACK", "false", True),
        ("EVENTLOG_DISABLED", "yes", False),
        ("EVENTLOG_DISABLED", "0", True),
        ("EVENTLOG_DISABLED", "false", True),
    ],
)
def test_opt_out_variables(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, enabled: bool
) -> None:
    """Truthy DO_NOT_TRACK or EVENTLOG_DISABLED disables; falsy values keep it enabled."""
    clean_env.setenv(variable, value)
    config = eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir=str(tmp_path))
    assert config.enabled is enabled


async def test_do_not_track_zero_still_delivers(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, clean_env: pytest.MonkeyPatch
) -> None:
    """DO_NOT_TRACK=0 is not an opt-out: the logger runs and delivers."""
    clean_env.setenv("DO_NOT_TRACK", "0")
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        assert log.enabled is True
        log.log_event("e")
        await log.flush()
    assert transport.event_names() == ["e"]


def test_an_enabled_config_still_requires_a_base_url(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only a disabled config may omit base_url."""
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(storage_dir=str(tmp_path))
    assert info.value.field == "base_url"


# -- property: metadata round trip ----------------------------------------------------------

SCALARS = st.one_of(
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
    SCALARS,
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


# derandomize: the same examples on every run (Rule 13, deterministic tests).
@settings(max_examples=30, deadline=None, derandomize=True)
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


def test_ci_off_is_not_a_ci_run() -> None:
    """CI=off reads as false, like the other falsy spellings."""
    assert detect_environment(environ={"CI": "off"})["is_ci"] is False
