"""Who the events are about: :class:`EventContext`."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

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

    Example:
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


ContextSource = EventContext | Callable[[], EventContext]
"""An :class:`EventContext`, or a callable returning the current one."""
