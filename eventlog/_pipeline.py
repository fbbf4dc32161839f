"""The batch processor: queue, export, spool, backoff and drain (docs/delivery.md).

One task, the batch processor, makes every decision; the POSTs it starts run
in tasks of their own, at most ``max_concurrent_exports`` at a time, and each
settles its chunk when its answer comes. Everything runs on the event loop's
thread and no decision spans an ``await``, so there is no lock.

Each turn of the processor's loop does one step, never more than one chunk
of ``max_export_batch_size`` events of CPU work:

0. Apply a pending :meth:`Pipeline.reconfigure` once everything queued before
   it has been handed over under the old configuration.
1. **Probe.** When the backoff timer has expired, the next POST is the probe:
   the oldest spooled chunk (or, with an empty spool, the next live chunk).
   Nothing else is posted until its answer: a failing server gets one request
   per backoff period.
2. **Spool drain.** When the spool holds records to retry and no backoff is
   pending, one drain chunk at a time is posted, ``batch_delay`` after the
   previous drain chunk settled: a backlog is paced. With ``batch_delay=0``
   the drain is not paced and may hold every slot but one. A drain chunk
   takes a slot before a live chunk does, except right after it took one a
   due live chunk wanted: the lanes alternate, neither starves the other.
3. **Live export.** When ``max_export_batch_size`` events wait, or
   ``scheduled_delay`` has passed, or ``flush()`` or shutdown asked: take one
   chunk off the queue, encode it and post it as soon as a slot is free. Live
   chunks are never paced. While a backoff is pending they go to the spool
   without a POST.
4. Otherwise sleep until the next scheduled export, backoff expiry or drain
   step, or until ``log_event``/``flush``/a settled POST/shutdown wakes it.

Write-ahead mode adds one task, the committer (:meth:`Pipeline.run_committer`),
which encodes queued events and puts them on disk in groups; the live lane
then posts those committed ("fresh") records instead of the queue.

When a chunk's POST ends, ``_settle`` applies what the exporter learnt:
acknowledged records are counted (and leave the spool), failed ones have
their attempt count raised (dropped once it reaches ``max_attempts``), the
rest is spooled. A failure schedules the single backoff timer
(``min(base * failures**2, max)``, jittered, ``Retry-After`` as a floor); the
first failure thereby short-circuits every chunk not yet posted (chunks
already in flight settle normally; their failures are the same outage and
do not count again). A server answer to a chunk posted since
the last failure resets it, which makes the spool drain at once.

Shutdown sets ``closing``: the processor hands over what is queued (live
chunks, with the same concurrency), waits for the POSTs in flight and
returns. If the shutdown budget runs out first, its scope is cancelled; each
POST in flight settles what it holds into the spool, and
:meth:`Pipeline.spool_leftovers` spools what was still queued.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.lowlevel

from eventlog._backoff import backoff_delay
from eventlog._clock import Clock, sleep, wait_event_until
from eventlog._exceptions import InvalidEventError
from eventlog._exporter import Exporter, ExportReport
from eventlog._records import Record, RecordState

if TYPE_CHECKING:
    import random

    from anyio.abc import TaskGroup, TaskStatus

    from eventlog._config import Config
    from eventlog._spool import Spool
    from eventlog._stats import Counters
    from eventlog._transform import RawEvent, Transformer

__all__ = ["Pipeline"]

logger = logging.getLogger("eventlog")

# The kinds of chunk: taken off the queue (LIVE), committed by write-ahead
# mode and posted for the first time (FRESH), or retried from the spool (DRAIN).
_LIVE: Final = 0
_FRESH: Final = 1
_DRAIN: Final = 2
# Events encoded between two checkpoints: a fraction of a millisecond of CPU.
_ENCODE_STEP: Final = 50


@final
class _Chunk:
    """One POST's worth of events and what settling them needs to know."""

    __slots__ = ("epoch", "exporter", "first", "kind", "payloads", "probe", "records", "states")

    def __init__(
        self,
        kind: int,
        payloads: list[bytes],
        records: list[Record] | None,
        first: int,
        exporter: Exporter,
        epoch: int,
    ) -> None:
        self.kind = kind
        self.payloads = payloads
        # The spool's records of a FRESH or DRAIN chunk; a LIVE chunk has
        # none until some of its events need one (to be spooled).
        self.records = records
        self.states = [RecordState.PENDING] * len(payloads)
        # The queue position of its first event (LIVE, FRESH), for flush();
        # -1 for a drain chunk, which flush() does not wait for.
        self.first = first
        self.exporter = exporter
        # The failure epoch when it was posted: its success resets the backoff
        # only if no failure came meanwhile.
        self.epoch = epoch
        self.probe = False

    @classmethod
    def of_records(
        cls, kind: int, records: list[Record], first: int, exporter: Exporter, epoch: int
    ) -> _Chunk:
        return cls(kind, [r.payload for r in records], records, first, exporter, epoch)


@final
class Pipeline:
    """The queue and the tasks that deliver it, for one logger."""

    def __init__(
        self,
        config: Config,
        *,
        exporter: Exporter,
        spool: Spool,
        transformer: Transformer,
        counters: Counters,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.queue: deque[RawEvent] = deque()
        self.idle = False
        """True while the processor sleeps with fewer than a batch queued:
        ``log_event`` then wakes it when its append completes a batch."""
        self._exporter = exporter
        self._spool = spool
        self._transformer = transformer
        self._counters = counters
        self._clock = clock
        self._rng = rng
        self._wake = anyio.Event()
        self._progress = anyio.Event()
        self._stopped = anyio.Event()
        self._flush_requested = False
        self._closing = False
        # Raw events taken off the queue so far: the next one's position.
        self.taken = 0
        # Chunks posted and not settled yet, LIVE and FRESH ones by their
        # first event's position (flush() waits for those below its target).
        self._in_flight = 0
        self._unsettled: dict[int, int] = {}
        # The first positions of events taken off the queue and not handed on
        # yet (being encoded, or committed in write-ahead mode): neither queued
        # nor unsettled, flush() must wait for them all the same.
        self._taking: list[int] = []
        self._drains_in_flight = 0
        self._next_drain = 0.0
        # Set when a drain chunk took a slot that a due live chunk wanted: the
        # next slot is the live lane's, so an unpaced drain cannot starve it.
        self._live_turn = False
        self._probing = False
        self._failures = 0
        # Bumped by every failure, so that a chunk posted before it cannot
        # undo the backoff it scheduled.
        self._failure_epoch = 0
        self._retry_at: float | None = None
        self._next_export = 0.0
        # The processor runs shielded: a cancellation of the block must not stop
        # the final export that the shielded drain waits for. Shutdown cancels it here.
        self._scope = anyio.CancelScope(shield=True)
        self._posts: TaskGroup | None = None
        self._pending: tuple[Config, Exporter, anyio.Event, int] | None = None
        # Write-ahead mode (docs/delivery.md): events are committed to the
        # spool in groups, at most write_ahead_interval apart, before export.
        self._write_ahead = config.write_ahead
        self._commit_wake = anyio.Event()
        self._fresh: deque[Record] = deque()

    # -- called from the logger ------------------------------------------------

    def wake(self) -> None:
        """Have the processor look at its queue now (and the committer, in write-ahead mode)."""
        self._wake.set()
        self._commit_wake.set()

    async def run_committer(self) -> None:
        """Write-ahead mode's group commit, a task of its own.

        Separate from the batch processor so that a commit is never held up
        by a POST or a drain step: an event is on disk at most
        ``write_ahead_interval`` after the first event of its group was
        queued (plus the encoding and the write).
        """
        clock = self._clock
        while True:
            if not self.queue:
                self._commit_wake = anyio.Event()
                # Re-check after replacing the event: a wake-up may have come meanwhile.
                if not self.queue:
                    await self._commit_wake.wait()
                continue
            await sleep(clock, self.config.write_ahead_interval)
            await self._commit()
            if len(self._fresh) >= self.config.max_export_batch_size:
                self._wake.set()

    async def flush(self, target: int) -> None:
        """Return once the first ``target`` queued events are exported or on disk."""
        while self._settled_below() < target and not self._stopped.is_set():
            self._flush_requested = True
            progress = self._progress
            self._wake.set()
            await progress.wait()
        # Spooled means written: the spool writes off the loop, after the hand-over.
        await self._spool.written()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The batch processor task; returns after the final export on shutdown."""
        self._next_export = self._clock.monotonic() + self.config.scheduled_delay
        task_status.started()
        try:
            with self._scope:
                async with anyio.create_task_group() as posts:
                    self._posts = posts
                    await self._loop()
                    # The final POSTs settle before the task group closes.
        finally:
            self._posts = None
            self.idle = False
            self._stopped.set()
            self._notify_progress()
            if self._pending is not None:
                self._pending[2].set()
                self._pending = None

    async def reconfigure(self, config: Config, exporter: Exporter) -> bool:
        """Switch to ``config`` and ``exporter`` once what is queued now is handed over.

        The queue stays where it is, so no event is lost or waits longer: the
        processor first posts what is queued under the old configuration (as
        the original flushes its old pipeline), then switches; POSTs in
        flight finish under the old one. Returns False if the processor has
        stopped.
        """
        if self._closing or self._stopped.is_set():
            return False
        applied = anyio.Event()
        self._pending = (config, exporter, applied, self.taken + len(self.queue))
        self._wake.set()
        await applied.wait()
        return self.config is config

    def begin_close(self) -> None:
        """Stop the loop after handing over what is queued."""
        self._closing = True
        self._wake.set()

    async def wait_stopped(self) -> None:
        """Wait for the processor to finish its final export."""
        await self._stopped.wait()

    def cancel(self) -> None:
        """Stop now; each POST in flight settles what it holds into the spool."""
        self._scope.cancel()

    async def spool_leftovers(self) -> None:
        """Write what is still queued to the spool, a chunk at a time, for shutdown."""
        while self.queue:
            first = self.taken
            payloads = await self._take_chunk()
            if payloads:
                self._counters.spooled += len(payloads)
                self._spool.add([Record(p, sequence=first) for p in payloads])
                logger.debug("shutdown: %d queued events spooled for the next run", len(payloads))
            await anyio.lowlevel.checkpoint()

    # -- the processor -----------------------------------------------------------

    async def _loop(self) -> None:
        clock = self._clock
        while True:
            pending = self._pending
            if pending is not None and self.taken >= pending[3] and not self._fresh:
                self._apply_pending(pending)
                continue
            now = clock.monotonic()
            if self._closing and not self._live_waiting():
                return
            posting = not self._probing and self._in_flight < self.config.max_concurrent_exports
            retry_at = self._retry_at
            if retry_at is not None:
                if now >= retry_at and posting:
                    # The backoff timer's retry is the one probe of a failing
                    # server: the oldest spooled chunk, else the next live one.
                    if not self._closing and self._retries_waiting():
                        await self._post_drain(probe=True)
                        continue
                    if self._live_waiting():
                        await self._post_live(probe=True)
                        continue
                elif self._live_due(now):
                    # A backoff is pending: new events go to the spool unsent.
                    await self._spool_live()
                    continue
            elif posting:
                if not self._closing and self._drain_due(now):
                    # Before further live chunks, so a backlog is never starved.
                    await self._post_drain()
                    continue
                if self._live_due(now):
                    await self._post_live()
                    continue
            if now >= self._next_export and not self._live_waiting():
                self._next_export = now + self.config.scheduled_delay
            if self._flush_requested and not self._live_waiting():
                self._flush_requested = False
            await self._sleep(now)

    async def _sleep(self, now: float) -> None:
        """Wait for a wake-up or the next deadline still ahead.

        A deadline already passed means its work is blocked (every slot taken,
        or a probe in flight): a settled POST wakes the processor then.
        """
        deadlines = [self._next_export]
        if self._retry_at is not None:
            deadlines.append(self._retry_at)
        elif self._drain_waiting():
            deadlines.append(self._next_drain)
        future = [d for d in deadlines if d > now]
        deadline = min(future) if future else now + self.config.scheduled_delay
        self._wake = anyio.Event()
        # log_event appends, then reads `idle`; here `idle` is written, then
        # the queue read: whichever comes second sees the other, so a batch
        # completed by a worker thread cannot go unnoticed.
        self.idle = True
        if not self._live_actionable(now):
            await wait_event_until(self._clock, self._wake, deadline)
        self.idle = False

    def _live_actionable(self, now: float) -> bool:
        """True if the loop would act on the live lane at ``now``."""
        if not self._live_due(now):
            return False
        if self._retry_at is not None and now < self._retry_at:
            return True  # to the spool, no slot needed
        return self._can_post()

    def _can_post(self) -> bool:
        return not self._probing and self._in_flight < self.config.max_concurrent_exports

    def _drain_slots(self) -> int:
        """Drain chunks allowed in flight at once.

        A paced drain (``batch_delay > 0``) posts one chunk at a time, the
        original's pacing. An unpaced one may hold every slot but one, which
        stays the live lane's: a backlog is replayed at line rate.
        """
        if self.config.batch_delay > 0:
            return 1
        return max(1, self.config.max_concurrent_exports - 1)

    def _drain_waiting(self) -> bool:
        """True if a drain chunk would be posted once its pacing allows."""
        return (
            self._retry_at is None
            and self._drains_in_flight < self._drain_slots()
            and self._retries_waiting()
        )

    def _drain_due(self, now: float) -> bool:
        """True if a drain chunk may be posted at ``now``."""
        if self._live_turn and self._live_due(now):
            return False
        return now >= self._next_drain and self._drain_waiting()

    def _live_waiting(self) -> int:
        """Events for the live lane: queued, or committed and not tried yet."""
        return len(self.queue) + len(self._fresh)

    def _live_due(self, now: float) -> bool:
        waiting = self._live_waiting()
        return waiting > 0 and (
            waiting >= self.config.max_export_batch_size
            or now >= self._next_export
            or self._flush_requested
            or self._closing
            or self._pending is not None
        )

    def _retries_waiting(self) -> bool:
        """True if the spool holds records to retry that no POST holds."""
        return self._spool.has_retries()

    async def _post_live(self, *, probe: bool = False) -> None:
        self._live_turn = False
        chunk = await self._take_live()
        if chunk is None:
            self._notify_progress()  # every event was invalid: settled already
        else:
            self._post(chunk, probe=probe)
        self._next_export = self._clock.monotonic() + self.config.scheduled_delay
        # One chunk of CPU work per step: the application (and the POSTs) run
        # before the next chunk is encoded. After _post: the chunk is the POST
        # task's to settle now, even if this checkpoint is cancelled.
        await anyio.lowlevel.checkpoint()

    async def _spool_live(self) -> None:
        """A backoff is pending: the next live chunk goes to the spool unsent."""
        chunk = await self._take_live()
        if chunk is not None:
            self._unsettled.pop(chunk.first, None)
            self._counters.spooled += len(chunk.payloads)
            if chunk.records is not None:
                # Write-ahead: already on disk; now they wait there for the retry.
                self._spool.settle(released=chunk.records)
            else:
                self._spool.add([Record(p, sequence=chunk.first) for p in chunk.payloads])
        self._next_export = self._clock.monotonic() + self.config.scheduled_delay
        self._notify_progress()
        await anyio.lowlevel.checkpoint()

    async def _take_live(self) -> _Chunk | None:
        """The next live chunk: encoded off the queue, or committed records."""
        epoch = self._failure_epoch
        if not self._write_ahead:
            first = self.taken
            payloads = await self._take_chunk()
            if not payloads:
                return None
            self._unsettled[first] = first
            return _Chunk(_LIVE, payloads, None, first, self._exporter, epoch)
        if self.queue:
            # An export due now does not wait for the committer's window:
            # what is queued is committed first (on disk before any POST).
            await self._commit()
        fresh = self._fresh
        if not fresh:
            return None
        taken = [fresh.popleft() for _ in range(min(self.config.max_export_batch_size, len(fresh)))]
        # Evicted by the spool limits while they waited: counted there already.
        records = [r for r in taken if r.state is not RecordState.DROPPED]
        for record in records:
            record.state = RecordState.SENDING  # the spool limits must not evict these now
        if not records:
            return None
        first = records[0].sequence
        self._unsettled[first] = first
        return _Chunk.of_records(_FRESH, records, first, self._exporter, epoch)

    async def _take_chunk(self) -> list[bytes]:
        """Encode up to one chunk off the queue; invalid events are counted here.

        Encoded a slice at a time, with a checkpoint between slices, so the
        application's tasks never wait for a whole chunk's worth of CPU. The
        events are safe if a checkpoint is cancelled (the shutdown budget ran
        out): those encoded go to the spool, the others back to the queue.
        """
        queue = self.queue
        popleft = queue.popleft
        # popleft, not slicing: worker threads may append meanwhile.
        raws = [popleft() for _ in range(min(self.config.max_export_batch_size, len(queue)))]
        if not raws:
            return []
        transformer = self._transformer
        transformer.begin_batch()
        first = self.taken
        self.taken += len(raws)
        payloads: list[bytes] = []
        self._taking.append(first)
        try:
            for offset in range(0, len(raws), _ENCODE_STEP):
                if offset:
                    try:
                        await anyio.lowlevel.checkpoint()
                    except BaseException:
                        self._rescue(payloads, raws[offset:], first)
                        raise
                payloads += transformer.encode_chunk(
                    raws[offset : offset + _ENCODE_STEP], first + offset, self._count_invalid
                )
        finally:
            self._taking.remove(first)
        return payloads

    def _rescue(self, payloads: list[bytes], rest: list[RawEvent], first: int) -> None:
        """A chunk interrupted while encoding: nothing of it may be lost."""
        self.queue.extendleft(reversed(rest))
        self.taken -= len(rest)
        if payloads:
            self._counters.spooled += len(payloads)
            self._spool.add([Record(p, sequence=first) for p in payloads])

    def _count_invalid(self, raw: RawEvent, exc: Exception) -> None:
        self._counters.count_invalid()
        if isinstance(exc, InvalidEventError):
            logger.debug("event %s dropped: %s", _shown_name(raw[0]), exc)
        else:
            # A bug must cost one event, not the batch.
            logger.debug(
                "event %s dropped: %s while encoding it", _shown_name(raw[0]), type(exc).__name__
            )

    async def _post_drain(self, *, probe: bool = False) -> None:
        """Post the oldest spooled records waiting for a retry (read off the loop if needed)."""
        self._drains_in_flight += 1
        try:
            records = await self._spool.take_retries(self.config.max_export_batch_size)
        except BaseException:
            self._drains_in_flight -= 1
            raise
        if not records:
            self._drains_in_flight -= 1
            return
        # Contended: a due live chunk gets the next slot.
        self._live_turn = self._live_due(self._clock.monotonic())
        logger.debug("draining %d spooled events", len(records))
        self._post(
            _Chunk.of_records(_DRAIN, records, -1, self._exporter, self._failure_epoch),
            probe=probe,
        )

    def _post(self, chunk: _Chunk, *, probe: bool = False) -> None:
        assert self._posts is not None
        chunk.probe = probe
        self._probing = self._probing or probe
        self._in_flight += 1
        self._posts.start_soon(self._run_post, chunk)

    async def _run_post(self, chunk: _Chunk) -> None:
        report = ExportReport()
        try:
            await chunk.exporter.send_chunk(chunk.payloads, chunk.states, report)
        finally:
            # On cancellation too (shutdown budget spent): nothing in flight is
            # lost, it is settled into the spool.
            self._in_flight -= 1
            if chunk.probe:
                self._probing = False
            if chunk.kind == _DRAIN:
                self._drains_in_flight -= 1
                self._next_drain = self._clock.monotonic() + self.config.batch_delay
            self._settle(chunk, report)
            self._wake.set()

    def _apply_pending(self, pending: tuple[Config, Exporter, anyio.Event, int]) -> None:
        self._pending = None
        config, exporter, applied, _ = pending
        previous = self.config.scheduled_delay
        self.config = config
        self._exporter = exporter
        # A shorter interval applies from now; a longer one from the last export.
        self._next_export += config.scheduled_delay - previous
        logger.debug("batch configuration changed; pipeline rebuilt without a pause")
        applied.set()

    async def _commit(self) -> None:
        """Write-ahead: encode the queue and put it on disk (one write, one fsync)."""
        records: list[Record] = []
        start = self.taken
        self._taking.append(start)
        try:
            while self.queue:
                first = self.taken
                # The position of a sub-chunk's first event stands for each of its
                # records: flush() waits for the lowest, which is never too early.
                records += [Record(p, sequence=first) for p in await self._take_chunk()]
                if self.queue:
                    await anyio.lowlevel.checkpoint()  # a long queue: a chunk of CPU at a time
            if not records:
                return
            # On disk (fsync'd) before any of them is posted; should the disk
            # refuse them, they are posted all the same, from memory.
            await self._spool.commit(records)
            self._fresh.extend(records)
        finally:
            self._taking.remove(start)
        logger.debug("committed %d events to the spool", len(records))

    def _notify_progress(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    def _settled_below(self) -> int:
        """Every event at a queue position below this one is exported or spooled."""
        below = self._fresh[0].sequence if self._fresh else self.taken
        if self._unsettled:
            below = min(below, min(self._unsettled))
        if self._taking:
            below = min(below, min(self._taking))
        return below

    def _settle(self, chunk: _Chunk, report: ExportReport) -> None:
        counters = self._counters
        max_attempts = self.config.max_attempts
        acked = inherited = dropped = gave_up = 0
        keep: list[Record] = []
        records = chunk.records
        if records is None:
            # A live chunk: records only for the events that stay.
            states = chunk.states
            acked = states.count(RecordState.ACKED)
            dropped = states.count(RecordState.DROPPED)
            if acked + dropped < len(states):
                for payload, state in zip(chunk.payloads, states, strict=True):
                    if state is RecordState.FAILED:
                        if max_attempts is not None and max_attempts <= 1:
                            gave_up += 1
                            continue
                        keep.append(Record(payload, 1, sequence=chunk.first))
                    elif state is RecordState.PENDING:
                        keep.append(Record(payload, sequence=chunk.first))
        else:
            done: list[Record] = []
            failed: list[Record] = []
            for record, state in zip(records, chunk.states, strict=True):
                if state is RecordState.ACKED:
                    acked += 1
                    inherited += record.inherited
                    record.state = state
                    done.append(record)
                elif state is RecordState.DROPPED:
                    dropped += 1
                    record.state = state
                    done.append(record)
                elif state is RecordState.FAILED:
                    record.attempts += 1
                    if max_attempts is not None and record.attempts >= max_attempts:
                        record.state = RecordState.DROPPED
                        gave_up += 1
                        done.append(record)
                    else:
                        failed.append(record)
                else:
                    keep.append(record)
            self._spool.settle(done=done, failed=failed, released=keep)
            keep += failed
        # OTLP partial success: acknowledged, yet refused (counted as dropped),
        # taken from this run's events first: the split is only known in total.
        own = acked - inherited
        rejected = min(report.rejected, acked)
        counters.exported += own - min(rejected, own)
        counters.replayed += inherited - (rejected - min(rejected, own))
        counters.dropped_max_attempts += gave_up
        if gave_up:
            logger.debug("%d events dropped after %s failed POSTs", gave_up, max_attempts)
        if chunk.kind == _LIVE:
            if keep:
                counters.spooled += len(keep)
                self._spool.add(keep)
        elif chunk.kind == _FRESH:
            # Write-ahead records on their first try: acknowledged ones are
            # journalled away; the rest now wait on disk for a retry.
            counters.spooled += len(keep)
        if chunk.first >= 0:
            self._unsettled.pop(chunk.first, None)
            self._notify_progress()

        if (report.failed_posts or report.killed) and chunk.epoch != self._failure_epoch:
            # Posted before the last failure: the same outage, seen by a POST
            # that was already in flight (or older news than a later answer).
            # It neither counts as one more failure nor brings the retry
            # forward; a longer Retry-After still pushes a pending one back.
            if self._retry_at is not None and report.retry_after is not None:
                wait = min(report.retry_after, self.config.max_retry_after)
                self._retry_at = max(self._retry_at, self._clock.monotonic() + wait)
        elif report.failed_posts or report.killed:
            self._failures += 1
            self._failure_epoch += 1
            delay = backoff_delay(
                self._failures,
                base=self.config.base_backoff,
                maximum=self.config.max_backoff,
                jitter=self.config.backoff_jitter,
                rng=self._rng,
                retry_after=report.retry_after,
                max_retry_after=self.config.max_retry_after,
            )
            self._retry_at = self._clock.monotonic() + delay
            logger.debug(
                "delivery failed %d time(s) in a row (%s); retrying in %.3gs",
                self._failures,
                report.context,
                delay,
            )
        elif report.server_answered and chunk.epoch == self._failure_epoch:
            if self._failures:
                logger.debug("server answered again after %d failures", self._failures)
                if chunk.kind != _DRAIN:
                    # Recovered: the spool drains at once (then paced).
                    self._next_drain = self._clock.monotonic()
            self._failures = 0
            self._retry_at = None


def _shown_name(name: object) -> str:
    """An event name for a log line: its repr, at most 100 characters of it."""
    text = repr(name[:100] if isinstance(name, str) else name)
    return text if len(text) <= 110 else text[:107] + "..."
