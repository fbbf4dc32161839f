"""Per-name sampling: rates 0 and 1, seeded fractional draws, the config's validation."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

import pytest

import eventlog
from eventlog.testing import CapturingTransport
from tests.helpers import decode_metadata, internal

if TYPE_CHECKING:
    import trio.testing

    from tests.conftest import MakeConfig


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
