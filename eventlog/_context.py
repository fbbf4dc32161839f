"""Who the events are about: :class:`EventContext`."""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from eventlog._exceptions import ConfigError

__all__ = ["AppValue", "ContextSource", "EventContext"]

AppValue = str | int | float | bool
"""A value of :attr:`EventContext.app`."""


class EventContext(msgspec.Struct, frozen=True, kw_only=True):
    """Identity and application facts attached to every event.

    Pass one to ``open_event_logger(context=...)``, or a callable returning
    one, called when each batch is built (for identities that change while
    the program runs, such as a user logging in). If that callable raises,
    the events are still sent, as partial events whose
    ``additional_metadata`` carries ``{"transform_error": ...}``.

    Environment facts (platform, architecture, Python and OS versions, CI,
    WSL) and process facts (pid, uptime, RSS) are detected automatically.

    Raises:
        ConfigError: a field has the wrong type, or an ``app`` value is not a
            string, an integer, a finite float or a bool.

    Examples:
        >>> import eventlog
        >>> context = eventlog.EventContext(
        ...     device_id="d-123", account_uuid="a-1", app={"channel": "beta"}
        ... )
        >>> context.organization_uuid is None
        True
    """

    device_id: str | None = None
    """A stable, anonymous id of the device or installation."""
    account_uuid: str | None = None
    """The signed-in account, if any (``auth.account_uuid`` on the wire)."""
    organization_uuid: str | None = None
    """The account's organization, if any (``auth.organization_uuid`` on the wire)."""
    email: str | None = None
    """The user's email, if the product may collect it."""
    app: dict[str, AppValue] = msgspec.field(default_factory=dict)
    """Free application facts (``{"channel": "beta", "plan": "pro"}``), sent as
    the event's ``app`` object."""

    def __post_init__(self) -> None:
        # msgspec does not check types in __init__: a bad value here would
        # otherwise fail every batch later, far from its cause. Subclasses of
        # str, int and float (an IntEnum, say) become the plain values msgspec
        # encodes. Text that cannot be encoded (a lone surrogate from
        # os.fsdecode) is not refused here: its batches go out as partial
        # events with a transform_error (see docs/events.md).
        for name in ("device_id", "account_uuid", "organization_uuid", "email"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"context.{name}", f"expected a string or None, got {value!r}")
            if value is not None and value.__class__ is not str:
                msgspec.structs.force_setattr(self, name, str.__str__(value))
        if not isinstance(self.app, dict):
            raise ConfigError("context.app", f"expected a dict, got {type(self.app).__name__}")
        app: dict[str, AppValue] = {}
        for key, value in self.app.items():
            if not isinstance(key, str):
                raise ConfigError("context.app", f"key {key!r} is not a string")
            app[str.__str__(key)] = _plain_app_value(key, value)
        msgspec.structs.force_setattr(self, "app", app)


def _plain_app_value(key: str, value: object) -> AppValue:
    if value.__class__ in (str, int, float, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError("context.app", f"{key!r}: {value!r} is not a finite number")
        return value
    if isinstance(value, bool):  # pragma: no cover -- bool cannot be subclassed
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _plain_app_value(key, float(value))
    if isinstance(value, str):
        return str.__str__(value)
    raise ConfigError(
        "context.app", f"{key!r}: {type(value).__name__} is not str, int, float or bool"
    )


ContextSource = EventContext | Callable[[], EventContext]
"""An :class:`EventContext`, or a callable returning the current one."""
