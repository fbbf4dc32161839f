"""The synchronous facade: the async logger on a thread of its own (docs/apps.md).

:func:`start_event_logger` runs the unchanged :func:`~eventlog.open_event_logger`
on a daemon thread with its own event loop, and hands back a
:class:`SyncEventLogger` for programs without one (Flask, Django, scripts,
CLIs).

Concurrency cases handled here, each with a test:

* starting: the call returns once the logger's block has started; an
  exception from opening it (a ``ConfigError``) is raised in the caller;
* ``log_event`` and ``log_experiment`` call the async logger's own methods
  from the caller's thread (they are thread-safe): no round trip to the loop;
* ``flush`` and ``apply_remote_config`` go through anyio's blocking portal
  and wait at most ``timeout``;
* ``close`` stops accepting events at once, in the caller's thread, wakes the
  loop without blocking (its thread-safe scheduler), and waits at most
  ``timeout`` for the thread to end (the drain is bounded by
  ``shutdown_timeout``); a flush still waiting then returns False;
* ``os.fork()``: in the child the parent's thread does not exist; the first
  ``log_event``, ``log_experiment``, ``flush``, ``stats`` or
  ``apply_remote_config`` starts a new logger (a new run, with a spool
  directory of its own) under a lock taken only on that path; the parent's
  queue stays the parent's;
* interpreter exit: the thread is a daemon, so an unclosed logger never
  holds the exit up; ``close_at_exit=True`` closes it from ``atexit``.
"""

from __future__ import annotations

import atexit
import contextvars
import importlib.util
import logging
import os
import threading
import weakref
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.from_thread

from eventlog import _registry, _seams
from eventlog._config import Config
from eventlog._exceptions import ConfigError, ExporterShutdownError
from eventlog._logger import EventLogger, open_event_logger
from eventlog._threads import LoopWaker

if TYPE_CHECKING:
    import random as _random
    from collections.abc import Mapping
    from types import TracebackType

    import httpx

    from eventlog._clock import Clock
    from eventlog._context import ContextSource
    from eventlog._exporter import AuthProvider, Killswitch
    from eventlog._remote_config import RemoteConfig
    from eventlog._stats import Stats
    from eventlog._transform import Metadata

__all__ = ["SyncEventLogger", "start_event_logger"]

logger = logging.getLogger("eventlog")

CLOSE_MARGIN: Final = 1.0
"""Seconds ``close()`` waits beyond ``shutdown_timeout`` by default: the spool's
last writes, the HTTP clients' close and the end of the thread."""

_BACKENDS: Final = ("trio", "asyncio")


def _default_backend() -> str:
    # Not imported here: an asyncio program must not pay for loading trio.
    return "trio" if importlib.util.find_spec("trio") is not None else "asyncio"


async def _import_first_use_modules(event_logger: EventLogger) -> None:
    """Import now what the logger thread would import on first use.

    A fork while a thread of the parent imports a module leaves that module's
    import lock held in the child, by a thread the child does not have: the
    child's own logger would wait for it forever. So everything the logger
    imports lazily (the HTTP client's stack as it is built, the idna codec of
    the first name resolution) is imported before ``start_event_logger``
    returns, and a fork after it is safe.
    """
    await event_logger._clients.warm(event_logger.config.endpoint)
    "localhost".encode("idna")


@final
class _Running:
    """One run of the logger thread: its logger, its portal, how to stop it."""

    __slots__ = ("logger", "portal", "stop", "thread", "waker")

    def __init__(
        self,
        logger: EventLogger,
        portal: anyio.from_thread.BlockingPortal,
        stop: anyio.Event,
        thread: threading.Thread,
    ) -> None:
        self.logger = logger
        self.portal = portal
        self.stop = stop
        self.thread = thread
        self.waker = LoopWaker()  # built on the loop's thread: it schedules onto that loop


@final
class _Restart:
    """Stands for the logger in a forked child: its first use starts a new one."""

    __slots__ = ("_owner",)

    def __init__(self, owner: SyncEventLogger) -> None:
        self._owner = owner

    def log_event(self, name: str, metadata: Metadata | None = None) -> None:
        self._owner._event_logger().log_event(name, metadata)

    def log_experiment(
        self,
        experiment_id: str,
        variation_id: int,
        *,
        user_attributes: Mapping[str, object] | None = None,
        experiment_metadata: Mapping[str, object] | None = None,
    ) -> None:
        self._owner._event_logger().log_experiment(
            experiment_id,
            variation_id,
            user_attributes=user_attributes,
            experiment_metadata=experiment_metadata,
        )


# Every facade not closed yet, for the fork handler (weak: dropping one unclosed
# is allowed; its thread then runs until the process ends).
_LIVE: Final[weakref.WeakSet[SyncEventLogger]] = weakref.WeakSet()


@final
class SyncEventLogger:
    """An event logger for synchronous programs, from :func:`start_event_logger`.

    It runs the same logger as :func:`open_event_logger` (an
    :class:`EventLogger`) on a background thread with its own event loop;
    every method may be called from any thread. ``log_event`` and
    ``log_experiment`` keep their guarantees: O(1), they never block and
    never raise (except :class:`InvalidEventError` in strict mode).

    Use it as a context manager, or call :meth:`close` yourself where the
    framework has no lifespan hook. Its thread is a daemon thread: a logger
    never closed does not hold the interpreter's exit up, and the events it
    still holds then are lost, unless :meth:`flush` was called, or it was
    started with ``close_at_exit=True``.

    Not constructed directly: :func:`start_event_logger` builds it.

    Examples:
        >>> import eventlog
        >>> config = eventlog.Config(enabled=False)  # a no-op logger, for the example
        >>> with eventlog.start_event_logger(config) as log:
        ...     log.log_event("job_done", {"items": 12})
        ...     log.flush(timeout=5.0)
        True
    """

    __slots__ = (
        "__weakref__",
        "_abandoned",
        "_at_exit",
        "_backend",
        "_closed",
        "_config",
        "_emitter",
        "_lock",
        "_options",
        "_run",
        "_seams_in_force",
    )

    _abandoned: list[EventLogger]
    _at_exit: bool
    _backend: str
    _closed: bool
    _config: Config
    _emitter: EventLogger | _Restart
    _lock: threading.Lock
    _options: _Options
    _run: _Running | None
    _seams_in_force: _seams.Seams

    def __init__(self) -> None:
        raise TypeError("use eventlog.start_event_logger() to get a SyncEventLogger")

    @classmethod
    def _start(
        cls, config: Config, options: _Options, backend: str, close_at_exit: bool
    ) -> SyncEventLogger:
        self = object.__new__(cls)
        self._config = config
        self._options = options
        self._backend = backend
        self._closed = False
        self._abandoned = []
        self._lock = threading.Lock()
        self._seams_in_force = _seams.current()
        run = self._launch()
        self._run = run
        self._emitter = run.logger
        _registry.adopt(run.logger, self)
        _LIVE.add(self)
        self._at_exit = close_at_exit
        if close_at_exit:
            atexit.register(self._close_at_exit)
        return self

    # -- the logger thread ---------------------------------------------------------------

    def _launch(self) -> _Running:
        """Start the logger thread; return once its logger is open (or raise why not)."""
        started: Future[_Running] = Future()
        # A new context, as anyio's portal threads get: the caller's may say
        # an event loop runs (anyio.run would refuse to start another).
        thread = threading.Thread(
            target=contextvars.Context().run,
            args=(self._thread_main, started),
            name="eventlog",
            daemon=True,
        )
        thread.start()
        try:
            return started.result()
        except BaseException:
            thread.join()
            raise

    def _thread_main(self, started: Future[_Running]) -> None:
        _seams.install(self._seams_in_force)  # the tests' seams, captured at the start
        try:
            anyio.run(self._main, started, backend=self._backend)
        except BaseException as exc:  # noqa: BLE001 -- the thread's end: handed to the caller
            if not started.done():
                started.set_exception(exc)
            else:  # pragma: no cover -- the logger's tasks catch their failures
                logger.debug("the eventlog thread ended with an error: %r", exc)

    async def _main(self, started: Future[_Running]) -> None:
        options = self._options
        async with (
            open_event_logger(
                self._config,
                transport=options.transport,
                auth=options.auth,
                killswitch=options.killswitch,
                context=options.context,
                clock=options.clock,
                random=options.random,
            ) as event_logger,
            anyio.from_thread.BlockingPortal() as portal,
        ):
            if event_logger.enabled:
                await _import_first_use_modules(event_logger)
            stop = anyio.Event()
            started.set_result(_Running(event_logger, portal, stop, threading.current_thread()))
            await stop.wait()
            # Flushes still waiting return False: the drain that follows
            # delivers (or spools) what they waited for.
            await portal.stop(cancel_remaining=True)

    def _event_logger(self) -> EventLogger:
        """The logger; in a forked child, the first call starts the child's own."""
        emitter = self._emitter
        if isinstance(emitter, _Restart):
            return self._restart()
        return emitter

    def _restart(self) -> EventLogger:
        with self._lock:
            emitter = self._emitter
            if not isinstance(emitter, _Restart):
                return emitter  # another thread started it meanwhile
            try:
                run = self._launch()
            except Exception as exc:  # noqa: BLE001 -- log_event never raises into the app
                logger.warning("eventlog: the logger could not start in this process: %s", exc)
                # Closed: what follows is counted in dropped_after_shutdown.
                closed = self._abandoned[-1]
                self._closed = True
                self._emitter = closed
                _registry.unregister(self)
                return closed
            self._run = run
            self._emitter = run.logger
            _registry.adopt(run.logger, self)
            return run.logger

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here, and another of its threads
        # may have held the lock at the fork.
        self._lock = threading.Lock()
        run = self._run
        if self._closed or run is None:
            return
        old = run.logger
        # Kept, never used again: nothing of the parent's is closed or
        # finalized here. Its queue is the parent's to deliver.
        self._abandoned.append(old)
        old._queue.clear()
        old._stop_accepting()
        self._run = None
        self._emitter = _Restart(self)

    # -- the API ---------------------------------------------------------------------------

    def log_event(self, name: str, metadata: Metadata | None = None) -> None:
        """Queue one event: :meth:`EventLogger.log_event`, from any thread.

        O(1), never blocks, never raises (except :class:`InvalidEventError`
        in strict mode); what is not kept is counted in :attr:`stats`. After
        :meth:`close`, a counted no-op (``dropped_after_shutdown``).

        In a process forked from the one that started the logger, the first
        call (of this or another method) starts the child's own logger
        thread first and so blocks while it opens (milliseconds; see
        docs/apps.md).

        Examples:
            >>> log.log_event("page_view", {"status": 200})  # doctest: +SKIP
        """
        self._emitter.log_event(name, metadata)

    def log_experiment(
        self,
        experiment_id: str,
        variation_id: int,
        *,
        user_attributes: Mapping[str, object] | None = None,
        experiment_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Queue an experiment assignment: :meth:`EventLogger.log_experiment`, from any thread.

        Examples:
            >>> log.log_experiment("new-onboarding", 1)  # doctest: +SKIP
        """
        self._emitter.log_experiment(
            experiment_id,
            variation_id,
            user_attributes=user_attributes,
            experiment_metadata=experiment_metadata,
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Export everything queued now; block until it is acknowledged or spooled.

        Returns:
            True once :meth:`EventLogger.flush` returned; False if ``timeout``
            seconds passed first (the export goes on), or :meth:`close` was
            called meanwhile (its drain takes over). Never raises because
            the server failed.

        Raises:
            ExporterShutdownError: :meth:`close` was called before.
            RuntimeError: called from a thread that runs a trio event loop
                (a blocking call there would stall it: in async code, use
                :func:`open_event_logger`).

        Examples:
            >>> log.flush(timeout=2.0)  # doctest: +SKIP
            True
        """
        event_logger = self._event_logger()
        run = self._run
        if self._closed or run is None:
            raise ExporterShutdownError
        try:
            future = run.portal.start_task_soon(event_logger.flush)
        except RuntimeError:
            if self._closed_meanwhile():  # the portal stopped
                return False
            raise  # called from a thread that runs a trio event loop
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()  # only the wait: the export goes on
            return False
        except (CancelledError, ExporterShutdownError):
            return False
        return True

    def apply_remote_config(self, remote: RemoteConfig, timeout: float | None = None) -> bool:
        """:meth:`EventLogger.apply_remote_config`, waiting at most ``timeout`` seconds.

        Returns:
            True once the new configuration is in force; False for an equal
            or refused configuration, a closed logger, or when ``timeout``
            passed first (the change is not interrupted: it goes on).

        Raises:
            RuntimeError: called from a thread that runs a trio event loop.

        Examples:
            >>> from eventlog import RemoteConfig
            >>> log.apply_remote_config(RemoteConfig(scheduled_delay=2.0))  # doctest: +SKIP
            True
        """
        event_logger = self._event_logger()
        run = self._run
        if self._closed or run is None:
            return False
        try:
            future = run.portal.start_task_soon(event_logger.apply_remote_config, remote)
        except RuntimeError:
            if self._closed_meanwhile():  # the portal stopped
                return False
            raise  # called from a thread that runs a trio event loop
        try:
            return future.result(timeout)
        except (TimeoutError, CancelledError):
            return False

    def _closed_meanwhile(self) -> bool:
        # A call, so that type checkers do not assume the attribute unchanged.
        return self._closed

    @property
    def stats(self) -> Stats:
        """A frozen snapshot of the logger's counters (:attr:`EventLogger.stats`)."""
        return self._event_logger().stats

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting events and drain, waiting at most ``timeout`` seconds.

        The drain is :func:`open_event_logger`'s: export what is queued,
        bounded by ``config.shutdown_timeout``; what is still unsent then
        goes to the spool for the next run. ``timeout=None`` waits
        ``shutdown_timeout`` plus a second (the thread's own end). If the
        drain is still running when ``timeout`` passes, this returns
        anyway and the thread finishes it in the background, within
        ``shutdown_timeout`` (unless the interpreter exits first).

        Idempotent. Events logged once it was called are counted in
        ``stats.dropped_after_shutdown``. In a forked child that never used
        the logger, nothing was started and there is nothing to drain.

        Examples:
            >>> log.close(timeout=10.0)  # doctest: +SKIP
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            run = self._run
        _LIVE.discard(self)
        if self._at_exit:
            self._at_exit = False
            atexit.unregister(self._close_at_exit)
        if run is None:
            # A forked child that never started its logger.
            _registry.unregister(self)
            self._emitter = self._abandoned[-1]
            return
        _registry.unregister(run.logger)
        run.logger._stop_accepting()
        run.waker.call(run.stop.set)
        if run.thread is threading.current_thread():  # pragma: no cover -- a callback of ours
            return
        budget = self._config.shutdown_timeout + CLOSE_MARGIN if timeout is None else timeout
        run.thread.join(budget)

    def _close_at_exit(self) -> None:
        self.close()

    def __enter__(self) -> SyncEventLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@final
class _Options:
    """The keyword arguments of ``open_event_logger``, kept for a start in a forked child."""

    __slots__ = ("auth", "clock", "context", "killswitch", "random", "transport")

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None,
        auth: AuthProvider | None,
        killswitch: Killswitch | None,
        context: ContextSource | None,
        clock: Clock | None,
        random: _random.Random | None,
    ) -> None:
        self.transport = transport
        self.auth = auth
        self.killswitch = killswitch
        self.context = context
        self.clock = clock
        self.random = random


def start_event_logger(
    config: Config | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: AuthProvider | None = None,
    killswitch: Killswitch | None = None,
    context: ContextSource | None = None,
    clock: Clock | None = None,
    random: _random.Random | None = None,
    backend: str | None = None,
    close_at_exit: bool = False,
) -> SyncEventLogger:
    """Start an event logger for a synchronous program; return once it is open.

    The logger is :func:`open_event_logger`'s, run on a background (daemon)
    thread with its own event loop; the keyword arguments are the same. The
    thread ends when the logger is closed: leave the ``with`` block, or call
    :meth:`SyncEventLogger.close`.

    While it is open, ``eventlog.log_event`` and ``eventlog.current_logger``
    reach it from any thread, like any open logger (the first one opened
    that is still open; ``current_logger()`` returns the underlying
    :class:`EventLogger`).

    Args:
        config: the configuration; ``None`` builds one from the environment
            (here, in the caller's thread).
        transport: as for :func:`open_event_logger`.
        auth: as for :func:`open_event_logger`; called in the logger thread.
        killswitch: as for :func:`open_event_logger`; probed in the thread
            that calls ``log_event``, and in the logger thread.
        context: as for :func:`open_event_logger`.
        clock: as for :func:`open_event_logger`.
        random: as for :func:`open_event_logger`.
        backend: the logger thread's event loop, ``"trio"`` or
            ``"asyncio"``; ``None`` means trio if it is installed, else
            asyncio.
        close_at_exit: close the logger at interpreter exit (``atexit``),
            within ``shutdown_timeout`` plus a second, if it was not closed
            before. Without it, what an unclosed logger still holds at exit
            is lost (its thread is a daemon thread, so it never holds the
            exit up).

    Safe after ``os.fork()`` (gunicorn or uWSGI preloading the app): the
    child's first use of the logger starts the child's own logger thread,
    as a new run with its own spool directory; it never touches the
    parent's live spool, and what the parent had queued stays the parent's.

    Raises:
        ConfigError: an invalid configuration or environment variable, or an
            unknown ``backend``; in strict mode, an unusable
            ``config.storage_dir``.

    Examples:
        >>> import eventlog
        >>> log = eventlog.start_event_logger(eventlog.Config(enabled=False))
        >>> log.log_event("cli_run", {"args": 3})
        >>> log.close()
    """
    config = Config() if config is None else config
    backend = _default_backend() if backend is None else backend
    if backend not in _BACKENDS:
        raise ConfigError("backend", f"must be 'trio' or 'asyncio', not {backend!r}")
    options = _Options(
        transport=transport,
        auth=auth,
        killswitch=killswitch,
        context=context,
        clock=clock,
        random=random,
    )
    return SyncEventLogger._start(config, options, backend, close_at_exit)


def _after_fork_in_child() -> None:
    for sync_logger in list(_LIVE):
        sync_logger._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
