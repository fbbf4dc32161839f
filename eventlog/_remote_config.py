"""Configuration changes at run time: :class:`RemoteConfig`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from eventlog._config import valid_rate
from eventlog._exceptions import ConfigError

if TYPE_CHECKING:
    from eventlog._config import Config

__all__ = ["BATCH_FIELDS", "RemoteConfig"]

logger = logging.getLogger("eventlog")

BATCH_FIELDS = (
    "scheduled_delay",
    "max_export_batch_size",
    "max_queue_size",
    "max_attempts",
    "skip_auth",
    "path",
    "base_url",
)
"""The fields whose change rebuilds the pipeline; ``sampling`` applies on its own."""


class RemoteConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A change of configuration, typically fetched from a feature-flag service.

    Every field is optional: a field left unset keeps the logger's current
    value. Pass it to :meth:`EventLogger.apply_remote_config`. Sampling rates
    apply at once; a change of any other field rebuilds the pipeline without
    losing or holding back an event. ``sampling`` replaces the whole table;
    an entry whose rate is not a number in [0, 1] is ignored (the event is
    kept), as the original SDK does.

    Build one from JSON with ``msgspec.json.decode(data, type=RemoteConfig)``.

    Examples:
        >>> import eventlog
        >>> change = eventlog.RemoteConfig(sampling={"page_view": 0.1}, max_export_batch_size=500)
        >>> change.max_queue_size
        UNSET
    """

    sampling: dict[str, float] | msgspec.UnsetType = msgspec.UNSET
    """Event name -> rate in [0, 1], replacing the current table."""
    scheduled_delay: float | msgspec.UnsetType = msgspec.UNSET
    """Seconds between scheduled exports."""
    max_export_batch_size: int | msgspec.UnsetType = msgspec.UNSET
    """Events per export trigger and per POST."""
    max_queue_size: int | msgspec.UnsetType = msgspec.UNSET
    """Events held in memory."""
    max_attempts: int | msgspec.UnsetType | None = msgspec.UNSET
    """Failed POSTs of one event before it is dropped; None: no limit."""
    skip_auth: bool | msgspec.UnsetType = msgspec.UNSET
    """Send without credentials."""
    path: str | msgspec.UnsetType = msgspec.UNSET
    """Path of the batch endpoint."""
    base_url: str | msgspec.UnsetType = msgspec.UNSET
    """Scheme, host and port of the collector."""

    def merged_into(self, config: Config) -> Config:
        """``config`` with this change applied, validated like any Config.

        Raises:
            ConfigError: a value is invalid; ``exc.field`` names it.
            TypeError: a field holds a value of a type no Config field takes.
        """
        changes: dict[str, object] = {
            name: getattr(self, name)
            for name in BATCH_FIELDS
            if getattr(self, name) is not msgspec.UNSET
        }
        if not isinstance(self.sampling, msgspec.UnsetType):
            # msgspec does not check types in __init__: a hand-built RemoteConfig
            # may hold anything here.
            if not isinstance(self.sampling, Mapping):
                raise ConfigError(
                    "sampling",
                    f"expected a mapping of event name to rate, got {type(self.sampling).__name__}",
                )
            rates: dict[str, float] = {}
            for name, rate in self.sampling.items():
                if isinstance(name, str) and name and valid_rate(rate):
                    rates[name] = rate
                else:
                    logger.debug("remote sampling entry %r: %r ignored (kept)", name, rate)
            changes["sampling"] = rates
        return msgspec.structs.replace(config, **changes)
