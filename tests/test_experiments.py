"""log_experiment: the ExperimentEvent on the wire, validation, sampling and the killswitch."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

import eventlog
from eventlog.testing import (
    Auth,
    CapturingTransport,
    ExperimentEvent,
    ExperimentEventData,
    FrozenWallClock,
    InternalEvent,
)
from tests.helpers import EPOCH, EVENT_ID_RE, RawServer

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


def experiment(event: object) -> ExperimentEventData:
    assert isinstance(event, ExperimentEvent)
    return event.event_data


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
