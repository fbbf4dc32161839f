"""The logger: :func:`open_event_logger`, :class:`EventLogger` and ambient access.

Concurrency cases ``open_event_logger`` handles, each with a test:

* the block ends normally: stop accepting, export the queue, wait for the
  export, all shielded and bounded by ``shutdown_timeout``;
* the block raises: the same drain, then the exception reaches the caller as
  itself, not wrapped in an ExceptionGroup;
* the block is cancelled from outside: the shielded drain still runs, within
  its budget, and the cancellation goes on afterwards;
* the budget runs out: the batch processor is cancelled mid-POST and what was
  not acknowledged (in flight or still queued) is written to the spool;
* something escapes the drain (trio delivers a Ctrl-C's KeyboardInterrupt
  through the shield): the batch processor and the task group are cancelled
  at once, the unsent events spooled, and the KeyboardInterrupt reaches the
  caller as itself;
* ``log_event`` from worker threads: the append is atomic under the GIL and
  the wake-up goes through the loop's own thread-safe scheduler;
* ``apply_remote_config`` while events flow: the queue is never swapped, so
  nothing is lost or held back; the batch processor switches between two
  units of work.
"""

from __future__ import annotations

import collections
import logging
import random as _random
import secrets
import uuid
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Final, final

import anyio

from eventlog import _registry, _seams
from eventlog._clock import Clock, SystemClock, deadline_scope, wall_time_function
from eventlog._config import Config
from eventlog._environment import ProcessFacts, detect_environment
from eventlog._exceptions import (
    ConfigError,
    ExporterShutdownError,
    InvalidEventError,
    unwrap_group,
)
from eventlog._exporter import AuthProbe, AuthProvider, Exporter, Killswitch, KillswitchProbe
from eventlog._http import HttpClients
from eventlog._pipeline import Pipeline
from eventlog._remote_config import BATCH_FIELDS, RemoteConfig
from eventlog._sampling import KEEP, Sampler
from eventlog._spool import (
    DEFAULT_SEGMENT_BYTES,
    FileOps,
    InlineRunner,
    Spool,
    ThreadRunner,
    check_storage_dir,
    take_over,
)
from eventlog._stats import Counters, Stats
from eventlog._threads import LoopWaker
from eventlog._transform import (
    Metadata,
    RawEvent,
    Transformer,
    check_metadata,
    check_name,
    copy_metadata,
)

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import AsyncIterator, Callable, Mapping

    import httpx

    from eventlog._context import ContextSource

__all__ = ["EventLogger", "current_logger", "log_event", "open_event_logger"]

logger = logging.getLogger("eventlog")

_CURRENT: Final[ContextVar[EventLogger | None]] = ContextVar(
    "eventlog.current_logger", default=None
)


@final
class EventLogger:
    """Logs events for the duration of an :func:`open_event_logger` block.

    Not constructed directly: ``open_event_logger`` builds it and owns its
    background tasks. A disabled logger (``Config(enabled=False)``,
    ``DO_NOT_TRACK=1``) has the same methods, each a cheap no-op.
    """

    __slots__ = (
        "_accepting",
        "_batch_size",
        "_clients",
        "_clock",
        "_config",
        "_counters",
        "_disabled",
        "_fast_below",
        "_killed",
        "_make_exporter",
        "_max_queue",
        "_pipeline",
        "_queue",
        "_reconfiguring",
        "_sampler",
        "_spool",
        "_transformer",
        "_waker",
        "_wall_time",
    )

    _accepting: bool
    _batch_size: int
    _clients: HttpClients
    _clock: Clock
    _config: Config
    _counters: Counters
    _disabled: bool
    _fast_below: int
    _killed: KillswitchProbe
    _make_exporter: Callable[[Config], Exporter]
    _max_queue: int
    _pipeline: Pipeline
    _queue: deque[RawEvent]
    _reconfiguring: anyio.Lock
    _sampler: Sampler
    _spool: Spool
    _transformer: Transformer
    _wall_time: Callable[[], float]
    _waker: LoopWaker

    def __init__(self) -> None:
        raise TypeError("use eventlog.open_event_logger() to get an EventLogger")

    @classmethod
    def _create_disabled(cls, config: Config) -> EventLogger:
        self = object.__new__(cls)
        self._config = config
        self._disabled = True
        self._accepting = True
        self._fast_below = -1
        self._counters = Counters()
        self._queue = collections.deque()  # never appended to: keeps log_event's fast path simple
        return self

    @classmethod
    def _create(
        cls,
        config: Config,
        *,
        pipeline: Pipeline,
        spool: Spool,
        transformer: Transformer,
        counters: Counters,
        clock: Clock,
        clients: HttpClients,
        make_exporter: Callable[[Config], Exporter],
        killed: KillswitchProbe,
        sampler: Sampler,
    ) -> EventLogger:
        self = object.__new__(cls)
        self._config = config
        self._disabled = False
        self._pipeline = pipeline
        self._spool = spool
        self._transformer = transformer
        self._counters = counters
        self._clock = clock
        self._clients = clients
        self._make_exporter = make_exporter
        self._killed = killed
        self._sampler = sampler
        self._queue = pipeline.queue
        self._wall_time = wall_time_function(clock)
        self._waker = LoopWaker()
        self._reconfiguring = anyio.Lock()
        self._accepting = True
        self._fast_below = -1
        self._refresh_limits()
        return self

    def _refresh_limits(self) -> None:
        config = self._config
        self._max_queue = config.max_queue_size
        self._batch_size = config.max_export_batch_size
        # log_event's fast path applies while the queue is non-empty and not
        # full: nothing to probe, sample or check (the first event of a
        # write-ahead commit window takes the slow path, which wakes the committer).
        plain = not (self._killed.configured or config.sampling or config.strict)
        self._fast_below = config.max_queue_size if plain and self._accepting else -1

    @property
    def config(self) -> Config:
        """The configuration in force (after any :meth:`apply_remote_config`)."""
        return self._config

    @property
    def enabled(self) -> bool:
        """False for a disabled logger, whose methods do nothing."""
        return not self._disabled

    @property
    def stats(self) -> Stats:
        """A frozen snapshot of this logger's counters (see :class:`Stats`)."""
        if self._disabled:
            return Stats()
        depth = len(self._queue)
        spool = self._spool
        return self._counters.snapshot(
            emitted=self._pipeline.taken + depth,
            queue_depth=depth,
            spool_bytes=spool.size,
            spool_events=spool.events,
            spool_disabled=spool.problem,
        )

    def log_event(self, name: str, metadata: Metadata | None = None) -> None:
        """Queue one event for delivery. Never blocks; never raises (unless strict).

        Metadata values are ``int``, ``float``, ``bool`` or ``None``; strings
        only under ``_PROTO_`` keys (see :class:`Config.proto_fields
        <eventlog.Config>`). The event is validated, enriched and encoded when
        its batch is built; an invalid one is counted in
        ``stats.dropped_invalid``, or raises :class:`InvalidEventError` here
        in strict mode. Events not kept are counted too: sampling
        (``sampled_out``), a full queue (``dropped_queue_full``), an active
        killswitch (``dropped_killed``), a closed logger
        (``dropped_after_shutdown``).

        Safe to call from worker threads. The event is what was passed at the
        call: the mapping's items are copied (shallowly) here, so reusing or
        mutating it afterwards changes nothing that is sent.

        Examples:
            >>> log.log_event("app_started", {"cold_start_ms": 41.5, "first_run": True})
            ... # doctest: +SKIP
        """
        # O(1), no validation, no I/O, no lock: the batch processor does the
        # rest. A plain dict is copied here (dict.copy is atomic under the
        # GIL, so a thread mutating it cannot tear the copy); everything
        # unusual is in _log_event_slow.
        queue = self._queue
        if 0 < len(queue) < self._fast_below:
            if metadata.__class__ is dict:
                queue.append((name, metadata.copy(), self._wall_time(), None))
            elif metadata is None:
                queue.append((name, None, self._wall_time(), None))
            else:
                self._log_event_slow(name, metadata)
                return
            # The processor sleeps only with less than a batch queued: the
            # append that completes one wakes it (read after the append, see
            # Pipeline._sleep).
            pipeline = self._pipeline
            if pipeline.idle and len(queue) >= self._batch_size:
                pipeline.idle = False  # one wake-up is enough
                self._waker.call(pipeline.wake)
            return
        self._log_event_slow(name, metadata)

    def _admitted(self) -> bool:
        """False (after counting why) when no event may be queued now."""
        if self._disabled:
            return False
        if not self._accepting:
            self._counters.count_refused("dropped_after_shutdown")
            return False
        if self._killed():
            self._counters.count_refused("dropped_killed")
            return False
        return True

    def _log_event_slow(self, name: str, metadata: Metadata | None) -> None:
        if not self._admitted():
            return
        try:
            snapshot = copy_metadata(metadata)
            if self._config.strict:
                # The batch builder's own validation, so strict mode accepts
                # exactly what can be encoded.
                check_name(name)
                check_metadata(snapshot, self._transformer.proto_fields)
        except InvalidEventError as exc:
            if self._config.strict:
                raise
            # Queued as invalid, so it is counted with its batch (and emitted
            # stays the sum of the outcomes).
            self._enqueue((name, None, self._wall_time(), exc))
            return
        extra: float | None = None
        if self._sampler.rates:
            decision = self._sampler.decide(name)
            if decision == 0.0:
                self._counters.count_refused("sampled_out")
                return
            if decision != KEEP:
                extra = decision
        self._enqueue((name, snapshot, self._wall_time(), extra))

    def _enqueue(self, raw: RawEvent) -> None:
        queue = self._queue
        depth = len(queue)
        if depth >= self._max_queue:
            self._counters.count_refused("dropped_queue_full")
            return
        queue.append(raw)
        # A full batch exports now; in write-ahead mode the first event after
        # a commit also starts the group-commit window.
        pipeline = self._pipeline
        if (pipeline.idle and depth + 1 >= self._batch_size) or (
            depth == 0 and self._config.write_ahead
        ):
            pipeline.idle = False  # one wake-up is enough
            self._waker.call(pipeline.wake)

    def log_experiment(
        self,
        experiment_id: str,
        variation_id: int,
        *,
        user_attributes: Mapping[str, object] | None = None,
        experiment_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Queue an experiment assignment (an ``ExperimentEvent``). Never blocks.

        ``user_attributes`` and ``experiment_metadata`` are sent as JSON
        strings; they are encoded here, so later changes to the mappings do not
        show. Invalid input is counted in ``stats.dropped_invalid`` (raises
        :class:`InvalidEventError` in strict mode). Sampling does not apply.

        Examples:
            >>> log.log_experiment("new-onboarding", 1, user_attributes={"plan": "pro"})
            ... # doctest: +SKIP
        """
        if not self._admitted():
            return
        try:
            request = self._transformer.experiment(
                experiment_id, variation_id, user_attributes, experiment_metadata
            )
        except InvalidEventError as exc:
            if self._config.strict:
                raise
            # Queued as invalid, so it is counted with the other invalid events
            # when its batch is built (and emitted stays the sum of outcomes).
            self._enqueue((experiment_id, None, self._wall_time(), exc))
            return
        self._enqueue((request.experiment_id, None, self._wall_time(), request))

    async def flush(self) -> None:
        """Export everything queued now; return once it is acknowledged or spooled.

        Never raises because the server failed: what could not be delivered is
        in the spool, and the backoff retry takes it from there.

        Raises:
            ExporterShutdownError: the logger's block has already been left.
        """
        if self._disabled:
            return
        if not self._accepting:
            raise ExporterShutdownError
        await self._pipeline.flush(self._pipeline.taken + len(self._queue))

    async def apply_remote_config(self, remote: RemoteConfig) -> bool:
        """Apply a configuration change while the logger runs.

        New sampling rates apply at once. A change of the batch configuration
        (``scheduled_delay``, ``max_export_batch_size``, ``max_queue_size``,
        ``max_attempts``, ``skip_auth``, ``path``, ``base_url``) rebuilds the
        pipeline between two exports: what is queued is exported first, under
        the old configuration, and no event is lost or held back meanwhile.
        Returns once the new configuration is in force.

        Returns:
            True if something changed; False for an equal configuration, a
            disabled or closed logger, or a change that was refused (invalid
            values: the old configuration stays and the reason is logged at
            WARNING).
        """
        if self._disabled or not self._accepting:
            return False
        # One change at a time: each waits for the previous one to be in force.
        async with self._reconfiguring:
            return await self._apply(remote)

    async def _apply(self, remote: RemoteConfig) -> bool:
        old = self._config
        try:
            new = remote.merged_into(old)
        except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
            logger.warning("eventlog: remote configuration refused, keeping the current: %s", exc)
            return False
        if new == old or not self._accepting:
            return False
        # Sampling and the emit-side limits apply at once, before the rebuild.
        self._use(new)
        rebuild = any(getattr(new, f) != getattr(old, f) for f in BATCH_FIELDS)
        if rebuild and not await self._pipeline.reconfigure(new, self._make_exporter(new)):
            self._use(old)  # closed meanwhile: nothing switched
            return False
        return True

    def _use(self, config: Config) -> None:
        self._config = config
        self._sampler.rates = dict(config.sampling)
        self._refresh_limits()

    def _stop_accepting(self) -> None:
        self._accepting = False
        self._fast_below = -1


def current_logger() -> EventLogger | None:
    """The application's logger: the enclosing block's, else the process's open one.

    Inside an :func:`open_event_logger` block a :class:`contextvars.ContextVar`
    decides: tasks started inside the block see that block's logger, and so do
    ``trio.to_thread`` and ``anyio.to_thread`` workers started there (they
    copy the context), even when it is a disabled logger. Where the context
    variable is not set (an ASGI request handler whose task the server
    started, a plain :class:`threading.Thread`, an executor's worker) it is
    the process's open logger: the first one opened that is still open, or
    None when no logger is open. A logger a :class:`SyncEventLogger` runs
    counts like any other; this returns that underlying :class:`EventLogger`,
    whose ``log_event`` is safe to call from any thread.

    That fallback is the only process-wide state of the package (the same
    trade as the standard library's root logger): it is set when a logger is
    ready, cleared when it stops accepting events, and never consulted when
    the context variable is set. A disabled logger (``Config(enabled=False)``,
    ``DO_NOT_TRACK=1``) is registered too: while it is the first one open,
    the fallback is a no-op.

    Examples:
        >>> import eventlog
        >>> eventlog.current_logger() is None  # no logger open in this process
        True
    """
    current = _CURRENT.get()
    if current is not None:
        return current
    return _registry.current()


def log_event(name: str, metadata: Metadata | None = None) -> None:
    """:meth:`EventLogger.log_event` on :func:`current_logger`; a no-op when none is open.

    Never blocks, never raises (except :class:`InvalidEventError` in strict
    mode), from any task or thread: see :func:`current_logger` for which
    logger receives the event.

    Examples:
        >>> import eventlog
        >>> eventlog.log_event("clicked", {"x": 1})  # no logger open here: nothing happens
    """
    current: EventLogger | _registry.StandIn | None = _CURRENT.get()
    if current is None:
        # One module global, read without a lock.
        current = _registry.fallback
        if current is None:
            return
    current.log_event(name, metadata)


@asynccontextmanager
async def open_event_logger(
    config: Config | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: AuthProvider | None = None,
    killswitch: Killswitch | None = None,
    context: ContextSource | None = None,
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

    With ``config.enabled`` False the logger is a no-op: no task is started,
    no socket opened, no file or directory created.

    Args:
        config: the configuration; ``None`` builds one from the environment.
        transport: the HTTP seam, an ``httpx.AsyncBaseTransport``; tests pass
            ``eventlog.testing.CapturingTransport`` or ``httpx.MockTransport``.
        auth: a plain function returning the auth headers (header names to
            single-line ASCII strings), or ``None`` when none are available.
            Anything else (an exception, a coroutine, another type, a value
            with a line break) counts as ``None``, with one WARNING per kind
            of problem that never quotes the value.
        killswitch: returns True while nothing may be sent; probed by every
            ``log_event`` and before every POST, so it must be cheap. An
            exception counts as True.
        context: an :class:`~eventlog.EventContext` (device, account, email,
            app facts), or a callable returning the current one.
        clock: wall time for timestamps and the sleep used by every wait.
            Default: :class:`~eventlog.SystemClock`, which follows the event
            loop, so trio's ``MockClock`` drives it.
        random: the source of sampling decisions and backoff jitter.

    An unusable or unsafe ``config.storage_dir`` (below a regular file, a
    symlink, not a directory, another user's, writable by group or others)
    does not stop the logger: it runs without a spool, keeping undelivered
    events in memory, says so once at WARNING and in
    ``stats.spool_disabled``.

    Raises:
        ConfigError: only in strict mode, for such a ``config.storage_dir``.

    Examples:
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
    if not config.enabled:
        disabled = EventLogger._create_disabled(config)
        token = _CURRENT.set(disabled)
        # A no-op logger, registered like any other (docs/apps.md).
        _registry.register(disabled)
        try:
            yield disabled
        finally:
            _registry.unregister(disabled)
            _CURRENT.reset(token)
        return
    clock = SystemClock() if clock is None else clock
    rng = _random.Random() if random is None else random
    counters = Counters()
    run_id = uuid.uuid4().hex
    seams = _seams.current()
    file_ops = seams.file_ops if seams.file_ops is not None else FileOps()
    runner = seams.runner if seams.runner is not None else ThreadRunner()
    # Reads get a thread of their own: a long read never holds up a commit.
    reader = (
        seams.reader
        if seams.reader is not None
        else (runner if isinstance(runner, InlineRunner) else ThreadRunner())
    )
    # And journal lines theirs: an acknowledgement never waits behind a commit.
    journal = reader if isinstance(reader, InlineRunner) else ThreadRunner()
    spool_disabled: str | None = None
    try:
        await runner(partial(check_storage_dir, config.storage_dir))
    except ConfigError as exc:
        if config.strict:
            raise
        # Keep running without that spool (never write where others could
        # plant events for replay), and say so once (docs/delivery.md).
        spool_disabled = exc.message
        logger.warning("eventlog: spool disabled, events are kept in memory only: %s", exc)
    spool = Spool(
        config.storage_dir,
        config.session_id,
        run_id,
        counters,
        clock=clock,
        ops=file_ops,
        runner=runner,
        reader=reader,
        journal=journal,
        max_bytes=config.max_spool_bytes,
        max_age=config.max_spool_age,
        # What only memory can hold while the disk refuses it: a queue's worth,
        # plus the chunks that were being posted.
        memory_limit=config.max_queue_size
        + config.max_concurrent_exports * config.max_export_batch_size,
        segment_bytes=seams.segment_bytes or DEFAULT_SEGMENT_BYTES,
        keep_active=config.write_ahead,
        disabled=spool_disabled,
    )
    # TLS verification is always on (docs/configuration.md); the client is
    # built in a worker thread when a POST first needs it.
    clients = HttpClients(transport, config.export_timeout)
    killed = KillswitchProbe(killswitch)
    # The one place exporters are made: this one, and each remote configuration's.
    make_exporter = partial(
        Exporter,
        clients=clients,
        clock=clock,
        counters=counters,
        auth=AuthProbe(auth),
        killswitch=killed,
    )
    exporter = make_exporter(config)
    transformer = Transformer(
        config,
        id_prefix=secrets.token_hex(10),
        context=context,
        env=detect_environment(),
        process=ProcessFacts(opened_at=clock.wall_time()),
    )
    pipeline = Pipeline(
        config,
        exporter=exporter,
        spool=spool,
        transformer=transformer,
        counters=counters,
        clock=clock,
        rng=rng,
    )
    event_logger = EventLogger._create(
        config,
        pipeline=pipeline,
        spool=spool,
        transformer=transformer,
        counters=counters,
        clock=clock,
        clients=clients,
        make_exporter=make_exporter,
        killed=killed,
        sampler=Sampler(config.sampling, rng),
    )
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(spool.run)
            await tg.start(pipeline.run)
            tg.start_soon(clients.warm, config.endpoint)
            if config.write_ahead:
                tg.start_soon(pipeline.run_committer)
            if spool_disabled is None:
                tg.start_soon(
                    partial(take_over, spool, counters, pipeline.wake, ops=file_ops, runner=reader)
                )
            token = _CURRENT.set(event_logger)
            _registry.register(event_logger)
            try:
                yield event_logger
            finally:
                # No longer the fallback once it stops accepting events.
                _registry.unregister(event_logger)
                _CURRENT.reset(token)
                event_logger._stop_accepting()
                pipeline.begin_close()
                try:
                    # ASYNC102: an await in finally needs a shielded, bounded scope.
                    async with deadline_scope(clock, config.shutdown_timeout, shield=True) as scope:
                        await pipeline.wait_stopped()
                    if scope.cancelled_caught:
                        logger.debug(
                            "shutdown budget (%gs) spent; the rest goes to the spool",
                            config.shutdown_timeout,
                        )
                finally:
                    # Also when something escapes the drain: trio delivers a
                    # KeyboardInterrupt through the shield, and the pipeline's
                    # own shielded scope would otherwise keep the task group
                    # waiting for the POST in flight (up to export_timeout).
                    pipeline.cancel()
                    tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
    finally:
        with anyio.CancelScope(shield=True):
            await pipeline.spool_leftovers()
            await spool.close()
        await clients.aclose()
