"""The exceptions eventlog raises.

Our exception hierarchy::

    EventlogError
     ├── ConfigError            (also a ValueError): a bad Config field or
     │                          environment variable; names the field
     └── ExporterShutdownError  an export or flush attempted after the
                                logger shut down

Nothing on the emit path raises: :meth:`EventLogger.log_event` counts what it
cannot keep instead. These are raised only at the boundary that received the
bad input or the misuse.
"""

from __future__ import annotations

__all__ = ["ConfigError", "EventlogError", "ExporterShutdownError"]


class EventlogError(Exception):
    """Base class for every exception eventlog raises."""


class ConfigError(EventlogError, ValueError):
    """A configuration value is invalid.

    Raised by :class:`eventlog.Config` at construction, so a bad value fails
    where it was written, not later in a background task.

    Attributes:
        field: the offending field name, e.g. ``"max_queue_size"``.

    Example:
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
