"""``_PROTO_`` metadata keys: configured proto fields are hoisted into event_data, others stripped.

An ``httpx.MockTransport`` handler reads the raw JSON: the wire Structs do
not know the configured fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

import eventlog
from eventlog.testing import CapturingTransport
from tests.helpers import RawServer, decode_metadata, internal

if TYPE_CHECKING:
    import trio.testing

    from tests.conftest import MakeConfig


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
