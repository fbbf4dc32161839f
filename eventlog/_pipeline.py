"""The batch processor: queue, export, spool, backoff and drain in one task (design §4).

One task owns every decision, so there is no lock and no race between an
export, a retry and a shutdown. Each turn of its loop does one unit of work:

0. Apply a pending :meth:`Pipeline.reconfigure` (after exporting what is
   queued under the old configuration).
1. When the backoff timer has expired and the spool holds events, probe: drain
   the spool, oldest first. The timer's retry is the one probe of a failing
   server, even when an export comes due at the same moment.
2. Export the queue when ``max_export_batch_size`` events wait, when
   ``scheduled_delay`` has passed, or when ``flush()`` asked. While a backoff
   timer is pending the export does not POST: its events go straight to the
   spool.
3. Otherwise, when the spool holds events and no backoff timer is pending,
   drain it: send its records in chunks. Between chunks the queue is exported
   if due, so a long drain never starves new events.
4. Otherwise sleep until the next scheduled export or the backoff deadline,
   or until ``log_event``/``flush``/shutdown wakes it.

Write-ahead mode adds one task, the committer (:meth:`Pipeline.run_committer`),
which puts queued events on disk in groups; an export then sends the committed
("fresh") records. Spool calls are synchronous, so the two tasks' spool work
never interleaves.

After every export or drain, ``_settle`` applies what the exporter learnt:
acknowledged records are counted (and leave the spool), failed ones have
their attempt count raised (dropped once it reaches ``max_attempts``), the rest
is spooled; a failure schedules the single backoff timer
(``min(base * failures**2, max)``, jittered, ``Retry-After`` as a floor) and a
server answer resets it, which makes the spool drain at once.

Shutdown sets ``closing``: the loop exports the queue one last time and
returns. If the shutdown budget runs out first, the task is cancelled; the
``finally`` of the export in flight spools whatever was not acknowledged, and
:meth:`Pipeline.spool_leftovers` spools what was still queued.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, final

import anyio

from eventlog._backoff import backoff_delay
from eventlog._clock import Clock, sleep, wait_event_until
from eventlog._exceptions import InvalidEventError
from eventlog._exporter import Exporter, ExportReport
from eventlog._spool import Record, RecordState, Spool

if TYPE_CHECKING:
    import random

    from anyio.abc import TaskStatus

    from eventlog._config import Config
    from eventlog._stats import Counters
    from eventlog._transform import RawEvent, Transformer

__all__ = ["Pipeline"]

logger = logging.getLogger("eventlog")


@final
class Pipeline:
    """The queue and the task that delivers it, for one logger."""

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
        # Raw events taken off the queue so far; the next one's sequence number.
        self.taken = 0
        # Raw events taken off the queue whose fate is settled; flush() waits on it.
        self._resolved = 0
        self._failures = 0
        # Bumped by every failure, so a drain does not undo a backoff that an
        # export nested inside it has just scheduled.
        self._failure_epoch = 0
        self._retry_at: float | None = None
        self._next_export = 0.0
        # The task runs shielded: a cancellation of the block must not stop the
        # final export that the shielded drain waits for. Shutdown cancels it here.
        self._scope = anyio.CancelScope(shield=True)
        self._pending: tuple[Config, Exporter, anyio.Event] | None = None
        # Write-ahead mode (design §5): events are committed to the spool in
        # groups, at most write_ahead_interval apart, before they are exported.
        self._write_ahead = config.write_ahead
        self._commit_wake = anyio.Event()
        # Raw events committed but whose first export has not settled yet.
        self._fresh_taken = 0

    # -- called from the logger ------------------------------------------------

    def wake(self) -> None:
        """Have the task look at its queue now (and the committer, in write-ahead mode)."""
        self._wake.set()
        self._commit_wake.set()

    async def run_committer(self) -> None:
        """Write-ahead mode's group commit, a task of its own.

        Separate from the batch processor so that a commit is never held up
        by a POST or a spool drain in progress: an event is on disk at most
        ``write_ahead_interval`` after the first event of its group was
        queued (plus the write itself). Spool calls are synchronous, so they
        never interleave with the batch processor's own.
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
            self._commit()
            if self._fresh_taken >= self.config.max_export_batch_size:
                self._wake.set()

    async def flush(self, target: int) -> None:
        """Return once the first ``target`` queued events are exported or spooled."""
        while self._resolved < target and not self._stopped.is_set():
            self._flush_requested = True
            progress = self._progress
            self._wake.set()
            await progress.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The batch processor task; returns after the final export on shutdown."""
        self._next_export = self._clock.monotonic() + self.config.scheduled_delay
        task_status.started()
        try:
            with self._scope:
                await self._loop()
        finally:
            self._stopped.set()
            self._notify_progress()
            if self._pending is not None:
                self._pending[2].set()
                self._pending = None

    async def reconfigure(self, config: Config, exporter: Exporter) -> bool:
        """Switch to ``config`` and ``exporter`` between two units of work.

        The queue stays where it is, so no event is lost or waits longer: the
        task first exports what is queued under the old configuration (as the
        original flushes its old pipeline), then switches. Returns False if
        the task has stopped.
        """
        if self._closing or self._stopped.is_set():
            return False
        applied = anyio.Event()
        self._pending = (config, exporter, applied)
        self._wake.set()
        await applied.wait()
        return self.config is config

    def begin_close(self) -> None:
        """Stop the loop after one last export of the queue."""
        self._closing = True
        self._wake.set()

    async def wait_stopped(self) -> None:
        """Wait for the task to finish its final export."""
        await self._stopped.wait()

    def cancel(self) -> None:
        """Stop the task now; the export in flight settles what it holds into the spool."""
        self._scope.cancel()

    def spool_leftovers(self) -> None:
        """Write what is still queued to the spool; synchronous, for shutdown."""
        records, taken = self._take_queue()
        self._resolved += taken
        if records:
            self._counters.spooled += len(records)
            self._spool.append(records)
            logger.debug("shutdown: %d queued events spooled for the next run", len(records))

    # -- the task ---------------------------------------------------------------

    async def _loop(self) -> None:
        clock = self._clock
        while not self._closing:
            if self._pending is not None:
                await self._apply_pending()
                continue
            now = clock.monotonic()
            if self._retry_at is not None and now >= self._retry_at and self._retries_waiting():
                # The backoff timer's retry is the probe (design §4), even when
                # an export comes due at the same moment: the export follows,
                # POSTed if the probe succeeded, spooled if it failed.
                await self._drain()
                continue
            if self._export_due(now):
                await self._export_queue()
                continue
            if now >= self._next_export:
                self._next_export = now + self.config.scheduled_delay
            if self._flush_requested:
                self._flush_requested = False
                self._notify_progress()
            if self._retries_waiting() and not self._backoff_pending(now):
                await self._drain()
                continue
            deadline = self._next_export
            if self._retry_at is not None and self._retries_waiting():
                deadline = min(deadline, self._retry_at)
            # No await since the checks above, so no wake-up can slip in between.
            self._wake = anyio.Event()
            await wait_event_until(clock, self._wake, deadline)
        await self._export_queue()

    async def _apply_pending(self) -> None:
        pending = self._pending
        if pending is None:
            return
        if self.queue or self._fresh_taken:
            await self._export_queue()
        self._pending = None
        config, exporter, applied = pending
        previous = self.config.scheduled_delay
        self.config = config
        self._exporter = exporter
        # A shorter interval applies from now; a longer one from the last export.
        self._next_export += config.scheduled_delay - previous
        logger.debug("batch configuration changed; pipeline rebuilt without a pause")
        applied.set()

    def _export_due(self, now: float) -> bool:
        waiting = len(self.queue) + self._fresh_taken
        return waiting > 0 and (
            self._flush_requested
            or self._closing
            or waiting >= self.config.max_export_batch_size
            or now >= self._next_export
        )

    def _retries_waiting(self) -> bool:
        """True if the spool holds records to retry (write-ahead's fresh ones wait)."""
        if not self._write_ahead:
            return bool(self._spool.records)
        return any(not r.fresh for r in self._spool.records)

    def _commit(self) -> None:
        """Write-ahead: put the queue on disk (one write, one fsync) before export."""
        records, taken = self._take_queue()
        for record in records:
            record.fresh = True
        self._spool.append(records)
        self._fresh_taken += taken
        if records:
            logger.debug("committed %d events to the spool", len(records))

    def _backoff_pending(self, now: float) -> bool:
        return self._retry_at is not None and now < self._retry_at

    def _notify_progress(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    def _take_queue(self) -> tuple[list[Record], int]:
        """Encode and empty the queue: ``(records, raw events taken)``."""
        queue = self.queue
        # popleft, not list() + clear(): a worker thread may append meanwhile.
        popleft = queue.popleft
        raws = [popleft() for _ in range(len(queue))]
        if not raws:
            return [], 0
        self._transformer.begin_batch()
        records: list[Record] = []
        encode = self._transformer.encode
        sequence = self.taken
        self.taken += len(raws)
        for raw in raws:
            sequence += 1
            try:
                records.append(Record(encode(raw, sequence)))
            except InvalidEventError as exc:
                self._counters.count_invalid()
                logger.debug("event %s dropped: %s", _shown_name(raw[0]), exc)
            except Exception as exc:  # noqa: BLE001 -- a bug must cost one event, not the batch
                self._counters.count_invalid()
                logger.debug(
                    "event %s dropped: %s while encoding it",
                    _shown_name(raw[0]),
                    type(exc).__name__,
                )
        return records, len(raws)

    async def _export_queue(self) -> None:
        self._flush_requested = False
        self._next_export = self._clock.monotonic() + self.config.scheduled_delay
        if self._write_ahead:
            await self._export_fresh()
            return
        records, taken = self._take_queue()
        report = ExportReport()
        try:
            if records and not self._backoff_pending(self._clock.monotonic()):
                await self._exporter.send(records, report)
        finally:
            # Runs on cancellation too (shutdown budget spent): nothing in
            # flight is lost, it is settled into the spool.
            self._settle(records, report, from_spool=False, epoch=self._failure_epoch)
            self._resolved += taken
            self._notify_progress()

    async def _export_fresh(self) -> None:
        """Write-ahead: commit what is queued, then export every committed record."""
        self._commit()
        records = [r for r in self._spool.records if r.fresh]
        taken, self._fresh_taken = self._fresh_taken, 0
        report = ExportReport()
        epoch = self._failure_epoch
        for record in records:
            record.fresh = False
            record.state = RecordState.SENDING
        try:
            if records and not self._backoff_pending(self._clock.monotonic()):
                await self._exporter.send(records, report)
        finally:
            self._settle(records, report, from_spool=True, epoch=epoch, fresh=True)
            self._resolved += taken
            self._notify_progress()

    async def _drain(self) -> None:
        records = [r for r in self._spool.records if not r.fresh]
        logger.debug("draining %d spooled events", len(records))
        report = ExportReport()
        epoch = self._failure_epoch
        for record in records:
            record.state = RecordState.SENDING  # the spool limits must not evict these now
        try:
            await self._exporter.send(records, report, between_chunks=self._between_chunks)
        finally:
            self._settle(records, report, from_spool=True, epoch=epoch)

    async def _between_chunks(self) -> bool:
        if self._closing:
            return False
        if self._pending is not None:
            await self._apply_pending()
        elif self._export_due(self._clock.monotonic()):
            await self._export_queue()
        return not self._backoff_pending(self._clock.monotonic())

    def _settle(
        self,
        records: list[Record],
        report: ExportReport,
        *,
        from_spool: bool,
        epoch: int,
        fresh: bool = False,
    ) -> None:
        counters = self._counters
        max_attempts = self.config.max_attempts
        acked = inherited = dropped = gave_up = 0
        keep: list[Record] = []
        for record in records:
            state = record.state
            if state is RecordState.ACKED:
                acked += 1
                inherited += record.inherited
                continue
            if state is RecordState.DROPPED:
                dropped += 1
                continue
            if state is RecordState.FAILED:
                record.attempts += 1
                if max_attempts is not None and record.attempts >= max_attempts:
                    record.state = RecordState.DROPPED
                    gave_up += 1
                    continue
            record.state = RecordState.PENDING
            keep.append(record)
        # OTLP partial success: acknowledged, yet refused (counted as dropped),
        # taken from this run's events first: the split is only known in total.
        own = acked - inherited
        rejected = min(report.rejected, acked)
        counters.exported += own - min(rejected, own)
        counters.replayed += inherited - (rejected - min(rejected, own))
        counters.dropped_max_attempts += gave_up
        if gave_up:
            logger.debug("%d events dropped after %s failed POSTs", gave_up, max_attempts)
        if from_spool:
            if fresh:
                # Write-ahead records on their first try: acknowledged ones are
                # checkpointed away; the rest now wait on disk for a retry.
                counters.spooled += len(keep)
            if acked or dropped or gave_up or report.failed_posts:
                self._spool.settle()
        elif keep:
            counters.spooled += len(keep)
            self._spool.append(keep)

        if report.failed_posts or report.killed:
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
        elif report.server_answered and epoch == self._failure_epoch:
            if self._failures:
                logger.debug("server answered again after %d failures", self._failures)
            self._failures = 0
            self._retry_at = None


def _shown_name(name: object) -> str:
    """An event name for a log line: its repr, at most 100 characters of it."""
    text = repr(name[:100] if isinstance(name, str) else name)
    return text if len(text) <= 110 else text[:107] + "..."
