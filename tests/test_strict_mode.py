"""Strict mode (``Config.strict`` or ``EVENTLOG_STRICT``): an invalid event raises at the call."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import eventlog
from eventlog.testing import CapturingTransport
from tests.helpers import RawServer

if TYPE_CHECKING:
    import trio.testing

    from tests.conftest import MakeConfig


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
