"""The exceptions eventlog raises.

Our exception hierarchy::

    EventlogError
     ├── ConfigError            (also a ValueError): a bad Config field or
     │                          environment variable; names the field
     ├── InvalidEventError      (also a ValueError): an invalid event name,
     │                          metadata key or value, raised only in strict mode
     └── ExporterShutdownError  an export or flush attempted after the
                                logger shut down

Nothing on the emit path raises: :meth:`EventLogger.log_event` counts what it
cannot keep instead. These are raised only at the boundary that received the
bad input or the misuse.
"""

from __future__ import annotations

__all__ = ["ConfigError", "EventlogError", "ExporterShutdownError", "InvalidEventError"]


class EventlogError(Exception):
    """Base class for every exception eventlog raises."""


class ConfigError(EventlogError, ValueError):
    """A configuration value is invalid.

    Raised by :class:`eventlog.Config` at construction, so a bad value fails
    where it was written, not later in a background task.

    Attributes:
        field: the offending field name, e.g. ``"max_queue_size"``.

    Examples:
        >>> import eventlog
        >>> try:
        ...     eventlog.Config(base_url="http://127.0.0.1:8787", max_export_batch_size=0)
        ... except eventlog.ConfigError as exc:
        ...     print(exc.field)
        max_export_batch_size
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str]]:
        # Rebuild from our own arguments, so pickling (multiprocessing) and copy work.
        return (type(self), (self.field, self.message))


class InvalidEventError(EventlogError, ValueError):
    """An event breaks the rules of its name, metadata or experiment fields.

    Outside strict mode such an event is dropped and counted in
    ``stats.dropped_invalid``; with ``Config(strict=True)`` (or
    ``EVENTLOG_STRICT=1``) ``log_event`` and ``log_experiment`` raise this
    instead, so the mistake shows up during development.

    Attributes:
        key: the offending metadata key, or ``None`` when the problem is the
            event name, the metadata as a whole, or an experiment field.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidEventError], tuple[str, str | None]]:
        return (type(self), (self.message, self.key))


class ExporterShutdownError(EventlogError):
    """The logger has shut down and can no longer export.

    Raised by :meth:`eventlog.EventLogger.flush` once the
    ``open_event_logger`` block has been left (the original exporter's
    "Exporter has been shutdown" failure).
    """

    def __init__(self) -> None:
        super().__init__("exporter has been shutdown")

    def __reduce__(self) -> tuple[type[ExporterShutdownError], tuple[()]]:
        return (type(self), ())


def unwrap_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside nested single-member groups, or the first group that holds more.

    Our task groups' background tasks never raise (each catches failures at
    its unit of work), so a group around a block holds the block's own
    exception (or a cancellation): the caller gets it as itself.
    """
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
