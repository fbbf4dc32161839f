"""The logger: :func:`open_event_logger`, :class:`EventLogger` and ambient access.

Concurrency cases ``open_event_logger`` handles, each with a test:

* the block ends normally: stop accepting, export the queue, wait for the
  export, all shielded and bounded by ``shutdown_timeout``;
* the block raises: the same drain, then the exception reaches the caller as
  itself, not wrapped in an ExceptionGroup;
* the block is cancelled from outside: the shielded drain still runs, within
  its budget, and the cancellation goes on afterwards;
* the budget runs out: the batch processor is cancelled mid-POST and what was
  not acknowledged (in flight or still queued) is written to the spool.
"""

from __future__ import annotations

import logging
import random as _random
import uuid
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, final

import anyio
import httpx

from eventlog._clock import Clock, SystemClock, deadline_scope, wall_time_function
from eventlog._config import Config
from eventlog._exceptions import ExporterShutdownError
from eventlog._exporter import AuthProvider, Exporter, Killswitch
from eventlog._pipeline import Pipeline
from eventlog._replay import replay_earlier_runs
from eventlog._spool import Spool
from eventlog._stats import Counters, Stats
from eventlog._transform import Metadata, RawEvent, Transformer

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import AsyncIterator, Callable

__all__ = ["EventLogger", "current_logger", "log_event", "open_event_logger"]

logger = logging.getLogger("eventlog")

_CURRENT: Final[ContextVar[EventLogger | None]] = ContextVar(
    "eventlog.current_logger", default=None
)
# Closing the HTTP client is quick; the bound only guards against a transport that hangs.
_CLIENT_CLOSE_TIMEOUT: Final = 5.0


@final
class EventLogger:
    """Logs events for the duration of an :func:`open_event_logger` block.

    Not constructed directly: ``open_event_logger`` builds it and owns its
    background tasks.
    """

    __slots__ = (
        "_accepting",
        "_batch_size",
        "_config",
        "_counters",
        "_exporter",
        "_fast_below",
        "_killswitch",
        "_max_queue",
        "_pipeline",
        "_queue",
        "_spool",
        "_wall_time",
    )

    _accepting: bool
    _batch_size: int
    _config: Config
    _counters: Counters
    _exporter: Exporter
    _fast_below: int
    _killswitch: Killswitch | None
    _max_queue: int
    _pipeline: Pipeline
    _queue: deque[RawEvent]
    _spool: Spool
    _wall_time: Callable[[], float]

    def __init__(self) -> None:
        raise TypeError("use eventlog.open_event_logger() to get an EventLogger")

    @classmethod
    def _create(
        cls,
        config: Config,
        *,
        pipeline: Pipeline,
        exporter: Exporter,
        spool: Spool,
        counters: Counters,
        clock: Clock,
        killswitch: Killswitch | None,
    ) -> EventLogger:
        self = object.__new__(cls)
        self._config = config
        self._pipeline = pipeline
        self._exporter = exporter
        self._spool = spool
        self._counters = counters
        self._killswitch = killswitch
        self._queue = pipeline.queue
        self._max_queue = config.max_queue_size
        self._batch_size = config.max_export_batch_size
        self._wall_time = wall_time_function(clock)
        self._accepting = True
        # log_event's fast path applies while the queue is shorter than this:
        # no killswitch to probe, and no batch to announce (the append that
        # fills a batch takes the slow path, which wakes the batch processor).
        self._fast_below = config.max_export_batch_size - 1 if killswitch is None else -1
        return self

    @property
    def config(self) -> Config:
        """The configuration in force."""
        return self._config

    @property
    def stats(self) -> Stats:
        """A frozen snapshot of this logger's counters (see :class:`Stats`)."""
        depth = len(self._queue)
        return self._counters.snapshot(
            emitted=self._pipeline.taken + depth, queue_depth=depth, spool_bytes=self._spool.size
        )

    def log_event(self, name: str, metadata: Metadata | None = None) -> None:
        """Queue one event for delivery. Never blocks; never raises.

        Metadata values are ``int``, ``float``, ``bool`` or ``None``. The event
        is validated, stamped with its ``event_id`` and encoded when its batch
        is built; an invalid one is counted in ``stats.dropped_invalid``. So is
        every other event that cannot be kept: a full queue
        (``dropped_queue_full``), an active killswitch (``dropped_killed``), a
        closed logger (``dropped_after_shutdown``).

        The mapping is read when the batch is built, not copied here: do not
        mutate it after the call.

        Example:
            >>> log.log_event("app_started", {"cold_start_ms": 41.5, "first_run": True})
            ... # doctest: +SKIP
        """
        # design §1: O(1), no validation, no I/O, no lock; the batch processor
        # does the rest. Everything unusual is in _log_event_slow.
        queue = self._queue
        if len(queue) < self._fast_below:
            queue.append((name, metadata, self._wall_time()))
            return
        self._log_event_slow(name, metadata)

    def _log_event_slow(self, name: str, metadata: Metadata | None) -> None:
        if not self._accepting:
            self._counters.dropped_after_shutdown += 1
            return
        if self._killswitch is not None and self._exporter.is_killed():
            self._counters.dropped_killed += 1
            return
        queue = self._queue
        depth = len(queue)
        if depth >= self._max_queue:
            self._counters.dropped_queue_full += 1
            return
        queue.append((name, metadata, self._wall_time()))
        if depth + 1 >= self._batch_size:
            self._pipeline.wake()

    def _stop_accepting(self) -> None:
        self._accepting = False
        self._fast_below = -1

    async def flush(self) -> None:
        """Export everything queued now; return once it is acknowledged or spooled.

        Never raises because the server failed: what could not be delivered is
        in the spool, and the backoff retry takes it from there.

        Raises:
            ExporterShutdownError: the logger's block has already been left.
        """
        if not self._accepting:
            raise ExporterShutdownError
        await self._pipeline.flush(self._pipeline.taken + len(self._queue))


def current_logger() -> EventLogger | None:
    """The logger of the enclosing :func:`open_event_logger` block, or None.

    The logger travels in a :class:`contextvars.ContextVar`: tasks started
    inside the block see it; tasks of nurseries opened outside it do not.
    """
    return _CURRENT.get()


def log_event(name: str, metadata: Metadata | None = None) -> None:
    """:meth:`EventLogger.log_event` on :func:`current_logger`; a no-op outside a block.

    Example:
        >>> import eventlog
        >>> eventlog.log_event("clicked", {"x": 1})  # no logger open here: nothing happens
    """
    current = _CURRENT.get()
    if current is not None:
        current.log_event(name, metadata)


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    # Our background tasks never raise (each catches failures at its unit of
    # work), so a group here holds the block's own exception or a Cancelled.
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def open_event_logger(
    config: Config | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: AuthProvider | None = None,
    killswitch: Killswitch | None = None,
    clock: Clock | None = None,
    random: _random.Random | None = None,
) -> AsyncIterator[EventLogger]:
    """Open an event logger for the duration of the block.

    The block owns a task group holding every background task: the batch
    processor (export, backoff retry, spool drain) and the replay of earlier
    runs' spool files. Leaving the block, normally, by an exception or by
    cancellation, drains pending exports under a shielded scope bounded by
    ``config.shutdown_timeout``; what is still unsent then goes to the spool
    for the next run. An exception raised in the block reaches the caller
    unwrapped.

    Args:
        config: the configuration; ``None`` builds one from the environment.
        transport: the HTTP seam, an ``httpx.AsyncBaseTransport``; tests pass
            ``eventlog.testing.CapturingTransport`` or ``httpx.MockTransport``.
        auth: returns the auth headers, or ``None`` when none are available.
            An exception counts as ``None``.
        killswitch: returns True while nothing may be sent; probed by every
            ``log_event`` and before every POST, so it must be cheap. An
            exception counts as True.
        clock: wall time for timestamps and the sleep used by every wait.
            Default: :class:`~eventlog.SystemClock`, which follows the event
            loop, so trio's ``MockClock`` drives it.
        random: the source of backoff jitter.

    Example:
        >>> import trio, eventlog
        >>> from eventlog.testing import CapturingTransport
        >>> async def main(tmp):
        ...     transport = CapturingTransport()
        ...     config = eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir=tmp)
        ...     async with eventlog.open_event_logger(config, transport=transport) as log:
        ...         log.log_event("app_started", {"cold_start_ms": 41.5})
        ...     return transport.event_names()
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     trio.run(main, tmp)
        ['app_started']
    """
    config = Config() if config is None else config
    clock = SystemClock() if clock is None else clock
    rng = _random.Random() if random is None else random
    counters = Counters()
    spool = Spool(config.storage_dir, config.session_id, uuid.uuid4().hex, counters)
    # verify stays at its default (True): design §4, TLS verification is always on.
    client = httpx.AsyncClient(transport=transport, timeout=config.export_timeout)
    exporter = Exporter(
        config, client, clock=clock, counters=counters, auth=auth, killswitch=killswitch
    )
    pipeline = Pipeline(
        config,
        exporter=exporter,
        spool=spool,
        transformer=Transformer(config),
        counters=counters,
        clock=clock,
        rng=rng,
    )
    event_logger = EventLogger._create(
        config,
        pipeline=pipeline,
        exporter=exporter,
        spool=spool,
        counters=counters,
        clock=clock,
        killswitch=killswitch,
    )
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(pipeline.run)
            tg.start_soon(replay_earlier_runs, spool, counters, pipeline.wake)
            token = _CURRENT.set(event_logger)
            try:
                yield event_logger
            finally:
                _CURRENT.reset(token)
                event_logger._stop_accepting()
                pipeline.begin_close()
                # ASYNC102: an await in finally needs a shielded, bounded scope.
                async with deadline_scope(clock, config.shutdown_timeout, shield=True) as scope:
                    await pipeline.wait_stopped()
                if scope.cancelled_caught:
                    logger.debug(
                        "shutdown budget (%gs) spent; the rest goes to the spool",
                        config.shutdown_timeout,
                    )
                pipeline.cancel()
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _unwrap(group) from None
    finally:
        pipeline.spool_leftovers()
        spool.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLIENT_CLOSE_TIMEOUT):
            await client.aclose()
