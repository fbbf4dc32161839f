"""What log_event and log_experiment accept, and when they read it.

The event is what the caller passed at the call; one validation decides what
is valid, for strict mode at the call and for the batch builder, so strict
mode accepts exactly what can be encoded; a bad context costs a batch its
enrichment, never its events.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import os
import random
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import eventlog
from eventlog._environment import ProcessFacts
from eventlog._transform import Transformer, check_metadata
from eventlog.testing import CapturingTransport
from tests.helpers import decode_metadata, internal

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


class Plan(enum.IntEnum):
    FREE = 0
    PRO = 2


class Count(int):
    """An int subclass that is not an enum, as a user's unit type might be."""


class Ratio(float):
    """A float subclass."""


class Label(str):
    """A str subclass."""


class BrokenItems(Mapping[str, int]):
    """A Mapping whose items() raises, as a buggy user type might."""

    def __getitem__(self, key: str) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


def metadata_of(transport: CapturingTransport) -> list[Any]:
    return [
        None if d.additional_metadata is None else decode_metadata(d.additional_metadata)
        for d in map(internal, transport.events())
    ]


# -- the event is what was passed at the call --------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
async def test_a_reused_dict_gives_each_event_its_own_values(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, strict: bool
) -> None:
    """d["i"] = i; log_event("loop", d) five times: i is 0, 1, 2, 3, 4 on the wire."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=strict), transport=transport) as log:
        d = {"i": 0}
        for i in range(5):
            d["i"] = i
            log.log_event("loop", d)
        await log.flush()
    assert metadata_of(transport) == [{"i": i} for i in range(5)]


@pytest.mark.parametrize("strict", [False, True])
async def test_mutating_the_dict_afterwards_cannot_spoil_a_valid_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, strict: bool
) -> None:
    """A string put into the dict after the call does not turn the queued event invalid."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=strict), transport=transport) as log:
        first: dict[str, Any] = {"n": 1}
        second: dict[str, Any] = {"n": 2}
        log.log_event("first", first)  # the slow path: the queue was empty
        log.log_event("second", second)  # the fast path
        first["path"] = "/home/alice/secret.txt"
        second["path"] = "/home/alice/secret.txt"
        first.clear()
        await log.flush()
        stats = log.stats
    assert metadata_of(transport) == [{"n": 1}, {"n": 2}]
    assert (stats.exported, stats.dropped_invalid) == (2, 0)


async def test_other_mappings_are_copied_at_the_call(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A read-only view of a dict that changes later still sends the values of the call."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        backing = {"n": 1}
        log.log_event("a", types.MappingProxyType(backing))
        log.log_event("b", types.MappingProxyType(backing))
        backing["n"] = 2
        await log.flush()
    assert metadata_of(transport) == [{"n": 1}, {"n": 1}]


async def test_a_mapping_whose_items_raise_is_invalid_at_the_call(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Strict: InvalidEventError (not RuntimeError); otherwise counted, neighbours sent."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=True), transport=transport) as log:
        with pytest.raises(eventlog.InvalidEventError, match="could not be read: RuntimeError"):
            log.log_event("e", BrokenItems())
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("before")
        log.log_event("e", BrokenItems())
        log.log_event("after")
        await log.flush()
        stats = log.stats
    assert transport.event_names() == ["before", "after"]
    assert (stats.emitted, stats.dropped_invalid, stats.exported) == (3, 1, 2)


# -- one validation: strict accepts exactly what the batch builder encodes -----------------


@pytest.mark.parametrize(
    ("value", "sent"),
    [(Plan.PRO, 2), (Count(7), 7), (Ratio(0.5), 0.5), (True, True)],
    ids=["int-enum", "int-subclass", "float-subclass", "bool"],
)
@pytest.mark.parametrize("strict", [False, True])
async def test_number_subclasses_are_sent_as_their_numbers(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    strict: bool,
    value: object,
    sent: object,
) -> None:
    """IntEnum, int and float subclasses: accepted in both modes and delivered as numbers."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=strict), transport=transport) as log:
        log.log_event("e", {"v": value})  # type: ignore[dict-item]
        log.log_event("e", {"v": value})  # type: ignore[dict-item]  # the fast path too
        await log.flush()
        stats = log.stats
    assert metadata_of(transport) == [{"v": sent}, {"v": sent}]
    assert type(metadata_of(transport)[0]["v"]) is type(sent)
    assert stats.dropped_invalid == 0


BAD_KEYS = [
    pytest.param("\udcff", id="lone-surrogate"),
    pytest.param("a\nb", id="newline"),
    pytest.param("", id="empty"),
    pytest.param("k" * 129, id="129-chars"),
    pytest.param("/home/alice/notes.txt", id="slash-path"),
    pytest.param("C:\\Users\\alice", id="backslash-path"),
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_metadata_keys_are_refused_alike_in_both_modes(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, key: str
) -> None:
    """Strict raises naming the problem; otherwise the event is counted invalid, never sent."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=True), transport=transport) as log:
        with pytest.raises(eventlog.InvalidEventError, match="metadata key"):
            log.log_event("e", {key: 1})
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("e", {key: 1})
        log.log_event("ok", {"k" * 128: 1})
        await log.flush()
        stats = log.stats
    assert transport.event_names() == ["ok"]
    assert (stats.dropped_invalid, stats.exported) == (1, 1)


async def test_a_proto_value_that_cannot_be_encoded_is_refused_alike_in_both_modes(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A lone surrogate in a hoisted _PROTO_ value: strict raises; otherwise counted."""
    bad = {"_PROTO_skill_name": os.fsdecode(b"skill-\xff")}
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=True), transport=transport) as log:
        with pytest.raises(eventlog.InvalidEventError, match="not valid Unicode") as info:
            log.log_event("e", bad)
        assert info.value.key == "_PROTO_skill_name"
        log.log_event("e", {"_PROTO_skill_name": Label("commit")})  # a str subclass is fine
        await log.flush()
    assert [internal(e).skill_name for e in transport.events()] == ["commit"]
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("e", bad)
        await log.flush()
        assert log.stats.dropped_invalid == 1


SCALAR_OR_WORSE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=4),
    st.builds(Count, st.integers(min_value=-5, max_value=5)),
    st.sampled_from([Plan.FREE, Plan.PRO]),
)
KEY_OR_WORSE = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["_PROTO_skill_name", "_PROTO_other", "\udcff", "a/b", "k" * 129]),
)


@given(st.dictionaries(KEY_OR_WORSE, SCALAR_OR_WORSE, max_size=4))
def test_strict_mode_accepts_exactly_what_the_batch_builder_delivers(
    metadata: dict[str, Any],
) -> None:
    """For any metadata: strict raises InvalidEventError, or the event is delivered."""

    async def run() -> tuple[bool, eventlog.Stats, int]:
        transport = CapturingTransport()
        config = eventlog.Config(
            base_url="http://127.0.0.1:8787",
            storage_dir="/nonexistent/eventlog-test",
            strict=True,
        )
        async with eventlog.open_event_logger(config, transport=transport) as log:
            try:
                log.log_event("e", metadata)
            except eventlog.InvalidEventError:
                refused = True
            else:
                refused = False
            await log.flush()
        return refused, log.stats, len(transport.events())

    refused, stats, delivered = trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
    assert stats.dropped_invalid == 0
    assert delivered == (0 if refused else 1)


# -- experiments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    [
        {"a": math.nan},
        {"a": [1.0, math.inf]},
        {"a": {"b": -math.inf}},
        {"a": "\udcff"},
        {"a": {1: "one"}},
        {"a": json.loads("[" * 40 + "]" * 40)},
    ],
    ids=["nan", "inf-in-list", "nested-minus-inf", "lone-surrogate", "int-key", "too-deep"],
)
async def test_experiment_attributes_json_cannot_carry_are_invalid(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, attributes: dict[str, Any]
) -> None:
    """Never sent as null: strict raises, otherwise counted in dropped_invalid."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(strict=True), transport=transport) as log:
        with pytest.raises(eventlog.InvalidEventError, match="user_attributes"):
            log.log_experiment("exp", 1, user_attributes=attributes)
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_experiment("exp", 1, user_attributes=attributes)
        log.log_experiment("exp", 2, user_attributes={"ok": 1.5})
        await log.flush()
        stats = log.stats
    assert len(transport.events()) == 1
    assert (stats.emitted, stats.dropped_invalid, stats.exported) == (2, 1, 1)


# -- a bad context costs enrichment, never events -------------------------------------------


BAD_DEVICE_ID = os.fsdecode(b"host-\xff")  # a lone surrogate, as from a non-UTF-8 hostname


@pytest.mark.parametrize("as_callable", [False, True], ids=["static", "callable"])
async def test_a_context_that_cannot_be_encoded_sends_partial_events(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    as_callable: bool,
) -> None:
    """10 of 10 delivered, each with transform_error naming the field; one WARNING."""
    context = eventlog.EventContext(device_id=BAD_DEVICE_ID, app={"plan": "pro"})
    transport = CapturingTransport()
    with caplog.at_level(logging.WARNING, logger="eventlog"):
        async with eventlog.open_event_logger(
            make_config(),
            transport=transport,
            context=(lambda: context) if as_callable else context,
        ) as log:
            for i in range(10):
                log.log_event("e", {"n": i})
                if i == 4:
                    await log.flush()  # two batches: still one WARNING
            await log.flush()
            stats = log.stats
    data = [internal(e) for e in transport.events()]
    assert len(data) == 10
    assert (stats.exported, stats.dropped_invalid) == (10, 0)
    for d in data:
        assert d.device_id is None
        assert d.app is None
        assert decode_metadata(d.additional_metadata) == {
            "transform_error": "context not encodable: device_id: UnicodeEncodeError"
        }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "device_id" in warnings[0]
    assert "host-" not in warnings[0]


async def test_an_int_subclass_in_the_context_app_is_sent_as_its_number(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """EventContext normalises number and str subclasses: the events go out whole."""
    context = eventlog.EventContext(
        device_id=Label("d-1"), app={"plan": Plan.PRO, "seats": Count(3), "tier": Label("x")}
    )
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, context=context
    ) as log:
        log.log_event("e")
        await log.flush()
    [data] = [internal(e) for e in transport.events()]
    assert data.app == {"plan": 2, "seats": 3, "tier": "x"}
    assert data.device_id == "d-1"
    assert data.additional_metadata is None


def test_a_slow_context_callable_gets_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Over 5 ms of the loop's time: one WARNING saying it must be cheap; read once per batch."""
    ticks = iter([0.0, 0.020, 1.0, 1.030, 2.0, 2.001])
    calls = []

    def context() -> eventlog.EventContext:
        calls.append(1)
        return eventlog.EventContext(device_id="d")

    transformer = Transformer(
        eventlog.Config(base_url="http://127.0.0.1:8787"),
        id_prefix="0" * 20,
        context=context,
        env={},
        process=ProcessFacts(opened_at=0.0),
        timer=lambda: next(ticks),
    )
    with caplog.at_level(logging.WARNING, logger="eventlog"):
        for _ in range(3):
            transformer.begin_batch()
            transformer.encode(("e", None, 0.0, None), 1)
            transformer.encode(("e", None, 0.0, None), 2)
    assert len(calls) == 3  # once per batch, not per event
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "took 20 ms" in warnings[0]
    assert "keep it cheap" in warnings[0]


# -- remote configuration -----------------------------------------------------------------


async def test_a_remote_config_with_a_non_mapping_sampling_is_refused(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """apply_remote_config never raises for bad remote values: False, WARNING, old config kept."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        with caplog.at_level(logging.WARNING, logger="eventlog"):
            changed = await log.apply_remote_config(
                eventlog.RemoteConfig(sampling="notadict")  # type: ignore[arg-type]
            )
            also = await log.apply_remote_config(
                eventlog.RemoteConfig(max_queue_size="big")  # type: ignore[arg-type]
            )
        log.log_event("still-works")
    assert (changed, also) == (False, False)
    assert log.config.sampling == {}
    assert transport.event_names() == ["still-works"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("sampling" in m for m in messages)
    assert any("max_queue_size" in m for m in messages)


async def test_the_debug_line_of_a_dropped_event_shows_at_most_100_characters_of_its_name(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 10,000-character invalid name: the DEBUG line quotes its first 100 characters only."""
    name = "n" * 5_000 + "\n" + "m" * 5_000
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()) as log:
        with caplog.at_level(logging.DEBUG, logger="eventlog"):
            log.log_event(name)
            await log.flush()
        assert log.stats.dropped_invalid == 1
    [line] = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert "n" * 100 in line
    assert "n" * 101 not in line
    assert "mm" not in line
    assert len(line) < 400


async def test_experiment_attributes_with_lists_and_nested_objects_are_sent_as_json(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Lists, tuples and nested mappings of finite values pass the JSON check unchanged."""
    transport = CapturingTransport()
    attributes = {"tags": ["a", "b"], "pair": (1, 2.5), "nested": {"ok": [True, None]}}
    async with eventlog.open_event_logger(make_config(strict=True), transport=transport) as log:
        log.log_experiment("exp", 1, user_attributes=attributes)
        await log.flush()
    [event] = transport.events()
    assert isinstance(event, eventlog.testing.ExperimentEvent)
    assert event.event_data.user_attributes is not None
    assert json.loads(event.event_data.user_attributes) == {
        "tags": ["a", "b"],
        "pair": [1, 2.5],
        "nested": {"ok": [True, None]},
    }


def test_check_metadata_reads_any_mapping() -> None:
    """Not only a dict: any mapping is read (copied) and split like one."""
    view = types.MappingProxyType({"n": 1, "_PROTO_repo_name": "x"})
    assert check_metadata(view, frozenset({"repo_name"})) == ({"repo_name": "x"}, {"n": 1})


async def test_ever_new_names_and_keys_are_all_encoded_past_the_caches_bound(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The caches of known names and keys are bounded; past the bound, nothing is mis-sent."""
    transport = CapturingTransport()
    count = 4200
    async with eventlog.open_event_logger(
        make_config(max_queue_size=count, max_export_batch_size=1000), transport=transport
    ) as log:
        for i in range(count):
            log.log_event(f"name{i}", {f"key{i}": i})
        await log.flush()
        stats = log.stats
    data = [internal(e) for e in transport.events()]
    assert [d.event_name for d in data] == [f"name{i}" for i in range(count)]
    assert decode_metadata(data[-1].additional_metadata) == {f"key{count - 1}": count - 1}
    assert (stats.exported, stats.dropped_invalid) == (count, 0)


async def test_a_context_whose_app_cannot_be_encoded_names_the_app_field(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A bad ``app`` (after the other fields encoded fine) is the field the partial event names."""
    context = eventlog.EventContext(device_id="dev", app={"plan": "\udcff"})
    transport = CapturingTransport()
    async with eventlog.open_event_logger(
        make_config(), transport=transport, context=context
    ) as log:
        log.log_event("e")
        await log.flush()
    [data] = [internal(e) for e in transport.events()]
    assert decode_metadata(data.additional_metadata) == {
        "transform_error": "context not encodable: app: UnicodeEncodeError"
    }


async def test_a_sampled_event_of_a_partial_batch_keeps_its_sample_rate(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """An event kept by sampling, in a batch whose context failed, still says its rate."""

    def broken() -> eventlog.EventContext:
        raise RuntimeError("no context")

    transport = CapturingTransport()
    rng = random.Random(1)  # its first draw, 0.13, keeps the event
    async with eventlog.open_event_logger(
        make_config(sampling={"e": 0.5}), transport=transport, context=broken, random=rng
    ) as log:
        log.log_event("e")
        await log.flush()
    [data] = [internal(e) for e in transport.events()]
    assert data.sample_rate == 0.5
    assert decode_metadata(data.additional_metadata) == {
        "transform_error": "context unavailable: RuntimeError"
    }
