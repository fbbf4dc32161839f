"""apply_remote_config (docs/configuration.md): live changes, nothing lost or held back."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
import trio
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport

if TYPE_CHECKING:
    import pytest

    from tests.conftest import MakeConfig


async def test_five_batch_configs_while_emitting_lose_nothing(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """One task emits continuously while another applies five configs: every event once."""
    transport = CapturingTransport()
    changes = [
        eventlog.RemoteConfig(max_export_batch_size=7, scheduled_delay=0.5),
        eventlog.RemoteConfig(max_queue_size=300, max_attempts=3),
        eventlog.RemoteConfig(path="/v2/batch", max_export_batch_size=50),
        eventlog.RemoteConfig(base_url="http://127.0.0.2:9999", skip_auth=True),
        eventlog.RemoteConfig(scheduled_delay=30.0, max_export_batch_size=3, max_attempts=None),
    ]
    applied: list[bool] = []
    async with eventlog.open_event_logger(
        # batch_delay=0: tiny batches with a pause between chunks could not keep up
        # with 200 events/s, and the queue bound (not the swap) would drop events.
        make_config(max_export_batch_size=20, scheduled_delay=2.0, batch_delay=0.0),
        transport=transport,
    ) as log:

        async def emit() -> None:
            for i in range(2000):
                log.log_event("tick", {"i": i})
                if i % 10 == 0:
                    await trio.sleep(0.05)

        async def reconfigure() -> None:
            for change in changes:
                await trio.sleep(1.7)
                applied.append(await log.apply_remote_config(change))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(emit)
            nursery.start_soon(reconfigure)
    stats = log.stats
    assert applied == [True] * 5
    ids = transport.event_ids()
    assert stats.emitted == 2000, stats
    assert len(ids) == len(set(ids)) == 2000, stats
    assert stats.emitted == stats.exported == 2000
    assert stats.dropped_queue_full == 0
    # Each change took effect: the last requests went to the new URL with tiny batches.
    urls = {r.url for r in transport.requests}
    assert "http://127.0.0.2:9999/v2/batch" in urls
    assert "http://127.0.0.1:8787/api/event_logging/batch" in urls


async def test_sampling_applies_at_once(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A new sampling table decides the very next log_event, without touching the pipeline."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("noisy")
        assert await log.apply_remote_config(eventlog.RemoteConfig(sampling={"noisy": 0.0}))
        log.log_event("noisy")
        log.log_event("other")
        assert log.stats.sampled_out == 1
        assert log.config.sampling == {"noisy": 0.0}
        assert transport.requests == []  # a sampling change alone exports nothing
    assert transport.event_names() == ["noisy", "other"]


async def test_invalid_remote_rates_are_ignored_and_kept(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A rate outside [0, 1] or not a number means 'keep', as in the original."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        remote = eventlog.RemoteConfig(sampling={"a": 1.5, "b": "half", "c": 0.0})  # type: ignore[dict-item]
        assert await log.apply_remote_config(remote)
        assert log.config.sampling == {"c": 0.0}
        for name in "abc":
            log.log_event(name)
    assert transport.event_names() == ["a", "b"]


async def test_equal_config_does_nothing(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Applying values equal to the current ones changes nothing and exports nothing."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("a")
        same = eventlog.RemoteConfig(max_export_batch_size=200, scheduled_delay=10.0)
        assert not await log.apply_remote_config(same)
        assert not await log.apply_remote_config(eventlog.RemoteConfig())
        assert transport.requests == []
        assert log.stats.queue_depth == 1


async def test_refused_change_keeps_the_old_pipeline(
    make_config: MakeConfig,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An invalid value is refused with a WARNING naming the field; nothing changes."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        before = log.config
        bad = eventlog.RemoteConfig(base_url="http://events.example.com", sampling={"a": 0.0})
        assert not await log.apply_remote_config(bad)
        assert not await log.apply_remote_config(eventlog.RemoteConfig(max_export_batch_size=0))
        assert log.config is before
        log.log_event("a")  # the refused sampling table did not apply either
    assert transport.event_names() == ["a"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "base_url" in warnings[0]
    assert "max_export_batch_size" in warnings[1]


async def test_rebuild_exports_the_queue_under_the_old_config_first(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Queued events go to the old endpoint at the swap; later ones to the new one, at once."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        log.log_event("before")
        await trio.sleep(1)
        assert await log.apply_remote_config(
            eventlog.RemoteConfig(path="/new", scheduled_delay=2.0)
        )
        # Handed over under the old configuration; its POST runs in a task of its own.
        await trio.testing.wait_all_tasks_blocked()
        assert [r.url for r in transport.requests] == [
            "http://127.0.0.1:8787/api/event_logging/batch"
        ]
        assert transport.attempt_times == [1.0]
        log.log_event("after")
        await trio.sleep(2.5)
    assert [r.url for r in transport.requests][1] == "http://127.0.0.1:8787/new"
    assert transport.attempt_times == [1.0, 3.0]
    assert transport.event_names() == ["before", "after"]


async def test_batch_size_and_queue_size_changes_reach_log_event(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A smaller batch exports at the new size; a smaller queue refuses at the new bound."""
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        assert await log.apply_remote_config(
            eventlog.RemoteConfig(max_export_batch_size=2, max_queue_size=3)
        )
        log.log_event("a")
        log.log_event("b")  # a full batch of the new size
        await trio.sleep(0.01)
        assert transport.event_names() == ["a", "b"]
        for name in "cdef":
            log.log_event(name)
        assert log.stats.dropped_queue_full == 1


async def test_max_attempts_and_skip_auth_changes_apply(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """After the change, requests carry no auth and events give up at the new max_attempts."""
    transport = CapturingTransport(status_code=503)
    async with eventlog.open_event_logger(
        make_config(), transport=transport, auth=lambda: {"Authorization": "Bearer t"}
    ) as log:
        assert await log.apply_remote_config(eventlog.RemoteConfig(skip_auth=True, max_attempts=2))
        log.log_event("a")
        await log.flush()
        await trio.sleep(60)
        assert log.stats.dropped_max_attempts == 1
    assert len(transport.requests) == 2
    assert all("authorization" not in r.headers for r in transport.requests)


async def test_apply_after_the_block_is_refused(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A closed logger refuses configuration changes."""
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()) as log:
        pass
    assert not await log.apply_remote_config(eventlog.RemoteConfig(max_attempts=1))


async def test_remote_config_decodes_from_json() -> None:
    """A RemoteConfig can be decoded from a feature-flag payload; absent fields stay unset."""
    remote = msgspec.json.decode(
        b'{"sampling": {"x": 0.5}, "max_attempts": null, "future_field": 1}',
        type=eventlog.RemoteConfig,
    )
    assert remote.sampling == {"x": 0.5}
    assert remote.max_attempts is None
    assert remote.path is msgspec.UNSET


async def test_rebuild_interrupted_by_shutdown_keeps_the_old_config(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A change still waiting to hand over the queue when the block closes is not applied."""
    results: list[bool] = []
    config = make_config(max_export_batch_size=1, shutdown_timeout=1.0, export_timeout=50.0)
    async with (
        trio.open_nursery() as nursery,
        eventlog.open_event_logger(config, transport=CapturingTransport(latency=100.0)) as log,
    ):
        log.log_event("a")  # a full batch: its POST starts and hangs
        await trio.sleep(0.1)
        log.log_event("b")  # waits for the only slot, so the change waits for it

        async def apply() -> None:
            results.append(await log.apply_remote_config(eventlog.RemoteConfig(path="/x")))

        nursery.start_soon(apply)
        await trio.sleep(0.5)
    assert results == [False]
    assert log.config is config


async def test_a_hung_post_does_not_hold_up_a_change(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Nothing queued: the change applies at once; the POST in flight ends under the old one."""
    transport = CapturingTransport(latency=100.0)
    config = make_config(
        max_export_batch_size=1,
        max_concurrent_exports=2,
        shutdown_timeout=1.0,
        export_timeout=50.0,
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        log.log_event("a")  # a full batch: its POST starts and hangs
        await trio.sleep(0.1)
        with trio.fail_after(0.001):
            assert await log.apply_remote_config(eventlog.RemoteConfig(path="/x"))
        assert log.config.path == "/x"
        log.log_event("b")
        await trio.sleep(0.1)
    assert [r.url.rsplit("/", 1)[-1] for r in transport.requests] == ["batch", "x"]
    stats = log.stats
    # Both hung until the shutdown budget ran out: spooled, none lost.
    assert (stats.emitted, stats.spooled, stats.spool_events) == (2, 2, 2)


async def test_overlapping_changes_apply_one_after_the_other(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Two concurrent apply_remote_config calls both return, both in force, in call order."""
    results: list[bool] = []
    async with eventlog.open_event_logger(make_config(), transport=CapturingTransport()) as log:

        async def apply(change: eventlog.RemoteConfig) -> None:
            results.append(await log.apply_remote_config(change))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(apply, eventlog.RemoteConfig(path="/one", max_attempts=2))
                nursery.start_soon(apply, eventlog.RemoteConfig(max_export_batch_size=9))
        assert results == [True, True]
        assert (log.config.path, log.config.max_attempts) == ("/one", 2)
        assert log.config.max_export_batch_size == 9


async def test_sampling_applies_during_a_rebuild(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A change that samples and rebuilds samples the events logged while it waits."""
    transport = CapturingTransport(latency=5.0)
    async with eventlog.open_event_logger(
        make_config(max_export_batch_size=1, export_timeout=50.0), transport=transport
    ) as log:
        log.log_event("x")  # a POST that takes 5 s: the rebuild waits for it
        async with trio.open_nursery() as nursery:
            change = eventlog.RemoteConfig(sampling={"noisy": 0.0}, path="/new")
            nursery.start_soon(log.apply_remote_config, change)
            await trio.sleep(1)
            for _ in range(5):
                log.log_event("noisy")
            assert log.stats.sampled_out == 5
    assert transport.event_names() == ["x"]
