"""Line-rate delivery: live chunks are never paced, up to max_concurrent_exports in flight.

A spool drain is the only thing batch_delay paces; it shares the POST slots
with live exports so that neither starves; the first failure short-circuits
what has not been posted while the POSTs in flight settle normally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import trio
import trio.lowlevel
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport, InternalEvent
from tests.helpers import decode_metadata, unaccounted

if TYPE_CHECKING:
    from tests.conftest import MakeConfig


def name_of(event: object) -> str:
    assert isinstance(event, InternalEvent)
    return event.event_data.event_name


async def spool_an_earlier_run(make_config: MakeConfig, events: int) -> None:
    """An earlier run whose server refused everything leaves ``events`` "old" events spooled."""
    async with eventlog.open_event_logger(
        make_config(shutdown_timeout=0.0), transport=CapturingTransport(status_code=503)
    ) as earlier:
        for i in range(events):
            earlier.log_event("old", {"i": i})
            if i % 100 == 99:
                await trio.lowlevel.checkpoint()
    assert earlier.stats.spool_events == events


async def test_ten_batches_queued_go_out_with_no_pause_between_chunks(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """10 x max_export_batch_size queued: ten POSTs at the same virtual instant."""
    transport = CapturingTransport()
    config = make_config(max_export_batch_size=20, batch_delay=0.5, max_concurrent_exports=1)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        await trio.sleep(1)
        for i in range(200):
            log.log_event("e", {"i": i})
        await log.flush()
        assert trio.current_time() == 1.0
    assert [len(r.events) for r in transport.requests] == [20] * 10
    assert transport.attempt_times == [1.0] * 10
    assert [e.event_data.event_id for e in transport.events()] == sorted(transport.event_ids())


async def test_a_burst_is_exported_while_it_is_being_logged(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Full batches leave as soon as they are complete, not at the next scheduled export."""
    transport = CapturingTransport()
    config = make_config(max_export_batch_size=10, scheduled_delay=60.0)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(35):
            log.log_event("e", {"i": i})
            await trio.sleep(0.001)
        assert [len(r.events) for r in transport.requests] == [10, 10, 10]
        assert log.stats.queue_depth == 5  # waits for its batch or for the timer


async def test_at_most_max_concurrent_exports_posts_are_in_flight(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """With 4 slots and a slow server, 4 POSTs overlap, never 5; all 12 chunks arrive once."""
    transport = CapturingTransport(latency=1.0)
    config = make_config(max_export_batch_size=5, max_concurrent_exports=4)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(60):
            log.log_event("e", {"i": i})
        await log.flush()
        assert trio.current_time() == 3.0  # three waves of four
        stats = log.stats
    assert transport.max_in_flight == 4
    assert transport.attempt_times == [0.0] * 4 + [1.0] * 4 + [2.0] * 4
    assert sorted(transport.event_ids()) == sorted(set(transport.event_ids()))
    assert (stats.exported, stats.spooled) == (60, 0)


async def test_one_slot_means_strictly_one_post_at_a_time(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """max_concurrent_exports=1: each POST starts when the previous one has been answered."""
    transport = CapturingTransport(latency=1.0)
    config = make_config(max_export_batch_size=5, max_concurrent_exports=1)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(15):
            log.log_event("e", {"i": i})
        await log.flush()
    assert transport.max_in_flight == 1
    assert transport.attempt_times == [0.0, 1.0, 2.0]


async def test_a_failure_among_posts_in_flight_settles_every_event_exactly_once(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """One of four POSTs in flight fails: the other three are acknowledged, the rest spooled.

    The chunks not posted yet are short-circuited into the spool; every event
    ends exactly once: delivered, or spooled and delivered by the retry.
    """
    transport = CapturingTransport(latency=1.0)
    transport.fail_next(1, status=503)
    config = make_config(
        max_export_batch_size=5, max_concurrent_exports=4, base_backoff=10.0, max_backoff=10.0
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(40):
            log.log_event("e", {"i": i})
        await log.flush()  # 4 POSTs at t=0; the first fails at t=1; 4 chunks never posted
        stats = log.stats
        assert transport.attempt_times == [0.0] * 4
        assert [r.status for r in transport.requests] == [503, 200, 200, 200]
        assert (stats.exported, stats.spooled, stats.export_failures) == (15, 25, 1)
        assert unaccounted(stats) == 0
        await trio.sleep(30)  # the retry at 11 delivers the spool, a chunk at a time
        stats = log.stats
    delivered = transport.event_ids()
    assert len(delivered) == len(set(delivered)) == 40
    assert (stats.exported, stats.spool_events) == (40, 0)
    assert unaccounted(stats) == 0


async def test_posts_in_flight_that_fail_together_are_one_failure_for_the_backoff(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Four POSTs of one outage, already in flight, back off once (base), not four times."""
    transport = CapturingTransport(latency=0.1)
    transport.fail_next(4, status=503)
    config = make_config(
        max_export_batch_size=10, base_backoff=1.0, max_backoff=60.0, max_concurrent_exports=4
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(40):
            log.log_event("e", {"i": i})
        await trio.sleep(5)
    times = [round(t, 6) for t in transport.attempt_times]
    # The probe comes one base backoff after the first failure (0.1 + 1.0), not 16 s later.
    assert times[:4] == [0.0] * 4
    assert times[4] == 1.1
    assert log.stats.exported == 40
    assert log.stats.export_failures == 4


async def test_a_success_posted_before_a_failure_does_not_cancel_its_backoff(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Two POSTs in flight: the first fails at t=1, the second answers 200 at t=2.

    The 200 belongs to a POST sent before the failure, so the backoff holds:
    the next batch is spooled unsent and the retry comes base_backoff after the failure.
    """
    answers = iter([(1.0, 503), (2.0, 200)])
    times: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        times.append(trio.current_time())
        delay, status = next(answers, (0.0, 200))
        await trio.sleep(delay)
        return httpx.Response(status, json={})

    config = make_config(
        max_export_batch_size=5, max_concurrent_exports=2, base_backoff=10.0, max_backoff=10.0
    )
    async with eventlog.open_event_logger(config, transport=httpx.MockTransport(handler)) as log:
        for i in range(10):
            log.log_event("e", {"i": i})  # two chunks, both posted at t=0
        await trio.sleep(3)
        for i in range(5):
            log.log_event("later", {"i": i})  # a full batch at t=3: spooled, no POST
        await trio.sleep(1)
        assert times == [0.0, 0.0]
        assert (log.stats.exported, log.stats.spooled) == (5, 10)
        await trio.sleep(10)
        stats = log.stats
    assert times[2] == 11.0  # the probe, base_backoff after the failure at t=1
    assert (stats.exported, stats.spool_events) == (15, 0)


async def test_a_spool_drain_is_paced_by_batch_delay(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Spooled chunks are retried one at a time, batch_delay after the previous one settled."""
    transport = CapturingTransport()
    transport.fail_next(1, status=503)
    config = make_config(
        max_export_batch_size=5, batch_delay=0.25, base_backoff=1.0, max_concurrent_exports=4
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(5):
            log.log_event("e", {"i": i})
        await log.flush()  # fails: the retry is due at 1.0
        for i in range(15):
            log.log_event("e", {"i": 5 + i})
        await log.flush()  # spooled unsent: the backoff is pending
        await trio.sleep(5)
    assert transport.attempt_times == [0.0, 1.0, 1.25, 1.5, 1.75]
    assert transport.max_in_flight == 1
    assert log.stats.exported == 20


async def test_an_unpaced_drain_holds_every_slot_but_one(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """With batch_delay=0 a backlog is replayed max_concurrent_exports - 1 chunks at a time."""
    await spool_an_earlier_run(make_config, 100)

    transport = CapturingTransport(latency=0.1)
    config = make_config(max_export_batch_size=10, batch_delay=0.0, max_concurrent_exports=4)
    async with eventlog.open_event_logger(config, transport=transport) as log:
        await trio.sleep(2)
    # Ten chunks, three at a time: four rounds of a POST's latency.
    assert transport.max_in_flight == 3
    assert [round(t, 6) for t in transport.attempt_times] == [0.0] * 3 + [0.1] * 3 + [0.2] * 3 + [
        0.3
    ]
    assert (log.stats.replayed, log.stats.exported) == (100, 0)
    assert unaccounted(log.stats) == 0


async def test_one_slot_alternates_between_an_unpaced_drain_and_due_live_chunks(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A backlog replayed at batch_delay=0 through one slot does not hold live events back."""
    await spool_an_earlier_run(make_config, 100)

    transport = CapturingTransport(latency=0.1)
    config = make_config(
        max_export_batch_size=10, batch_delay=0.0, scheduled_delay=60.0, max_concurrent_exports=1
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(30):
            log.log_event("live", {"i": i})
        await trio.sleep(5)
    names = [name_of(r.events[0]) for r in transport.requests]
    # The first live batch goes before the earlier run's log is taken over;
    # each next one takes the slot after a drain chunk, not after the backlog.
    assert names[:6] == ["live", "old", "live", "old", "live", "old"]
    assert names[6:] == ["old"] * 7
    assert transport.max_in_flight == 1
    assert (log.stats.replayed, log.stats.exported) == (100, 30)


async def test_a_drain_and_a_steady_live_load_both_progress(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """An earlier run's 50 chunks drain, paced, while 100 events/s flow without delay."""
    await spool_an_earlier_run(make_config, 1000)

    transport = CapturingTransport(latency=0.01)
    config = make_config(
        max_export_batch_size=20, batch_delay=0.1, scheduled_delay=0.05, max_concurrent_exports=1
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for tick in range(1000):  # 10 s of 1 event every 10 ms
            log.log_event("live", {"t": tick})
            await trio.sleep(0.01)
    stats = log.stats
    live = [r for r in transport.requests if name_of(r.events[0]) == "live"]
    old = [r for r in transport.requests if name_of(r.events[0]) == "old"]
    # The backlog drained in about 50 x (0.01 + 0.1) s; live events kept flowing meanwhile.
    assert sum(len(r.events) for r in old) == 1000
    assert old[-1].time < 7.0
    first_live = [r.time for r in live if r.time < old[-1].time]
    assert len(first_live) > 50  # live chunks went out all through the drain
    # Each live event waited at most a scheduled_delay plus a POST or two, drain or not.
    lags = [
        r.time - 0.01 * decode_metadata(e.event_data.additional_metadata)["t"]
        for r in live
        for e in r.events
        if isinstance(e, InternalEvent)
    ]
    assert len(lags) == 1000
    assert max(lags) <= 0.05 + 0.02 + 1e-9
    assert (stats.exported, stats.replayed, stats.dropped_queue_full) == (1000, 1000, 0)
    assert unaccounted(stats) == 0


async def test_the_shutdown_deadline_in_the_middle_of_a_chunk_loses_nothing(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """The budget runs out while the last chunk is being encoded: nothing is lost.

    The context callable runs when the chunk's encoding starts and moves the
    clock past the shutdown deadline, so the cancellation lands between two
    slices of the chunk: the encoded events are spooled, the others too.
    """
    calls: list[float] = []

    def context() -> eventlog.EventContext:
        calls.append(trio.current_time())
        autojump_clock.jump(100.0)
        return eventlog.EventContext(device_id="d")

    transport = CapturingTransport()
    config = make_config(max_export_batch_size=200, scheduled_delay=60.0, shutdown_timeout=0.5)
    async with eventlog.open_event_logger(config, transport=transport, context=context) as log:
        for i in range(199):
            log.log_event("e", {"i": i})
    stats = log.stats
    assert calls == [0.0, 100.0]  # interrupted; the rest encoded when it is spooled
    assert transport.requests == []
    assert (stats.emitted, stats.spooled, stats.spool_events, stats.queue_depth) == (
        199,
        199,
        199,
        0,
    )
    assert unaccounted(stats) == 0


async def test_write_ahead_events_committed_during_a_backoff_are_retried_with_the_rest(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Write-ahead: a chunk due while the backoff is pending stays on disk, then is retried."""
    transport = CapturingTransport()
    transport.fail_next(1, status=503)
    config = make_config(
        write_ahead=True, max_export_batch_size=3, base_backoff=10.0, max_backoff=10.0
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(3):
            log.log_event("first", {"i": i})
        await trio.sleep(1)  # posted at once (a full batch) and refused: retry at 10
        for i in range(3):
            log.log_event("second", {"i": i})
        await trio.sleep(1)  # a full batch again: committed, no POST
        assert len(transport.requests) == 1
        assert (log.stats.spooled, log.stats.spool_events) == (6, 6)
        await trio.sleep(20)
        stats = log.stats
    assert sorted(transport.event_names()) == ["first"] * 3 + ["second"] * 3
    assert (stats.exported, stats.spool_events) == (6, 0)
    assert unaccounted(stats) == 0


async def test_a_longer_retry_after_from_a_post_already_in_flight_pushes_the_retry_back(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Two POSTs of one outage: the second's Retry-After is no new failure, yet it is honoured."""
    transport = CapturingTransport(latency=1.0)
    transport.fail_next(1, status=503)
    transport.fail_next(1, status=503, retry_after="30")
    config = make_config(
        max_export_batch_size=5, max_concurrent_exports=2, base_backoff=1.0, max_backoff=60.0
    )
    async with eventlog.open_event_logger(config, transport=transport) as log:
        for i in range(10):
            log.log_event("e", {"i": i})
        await log.flush()  # both POSTs at t=0 fail at t=1: one failure for the backoff
        assert log.stats.export_failures == 2
        await trio.sleep(60)
        stats = log.stats
    assert transport.attempt_times[:2] == [0.0, 0.0]
    assert transport.attempt_times[2] == 31.0  # not t=2, the backoff of one failure
    assert (stats.exported, stats.spool_events) == (10, 0)
