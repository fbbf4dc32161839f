"""Delivery state: :class:`Record` and :class:`RecordState` (docs/delivery.md).

A record is one encoded event on its way to the server, wherever it is:
posted, waiting in the spool's memory, or on disk in a segment. The exporter
sets the state of each record it posts; the pipeline settles them; the spool
keeps those that are not settled yet.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from eventlog._spool._segment import Segment

__all__ = ["Record", "RecordState"]


class RecordState(enum.Enum):
    """Where one record stands within one delivery attempt."""

    PENDING = enum.auto()
    """Not resolved yet: if nothing else happens, it stays in (or goes to) the spool."""
    ACKED = enum.auto()
    """Acknowledged by the server."""
    DROPPED = enum.auto()
    """Dropped for good (permanent rejection, max_attempts, a spool limit); counted."""
    FAILED = enum.auto()
    """Part of a POST that failed; its attempt count goes up."""
    SENDING = enum.auto()
    """Handed to the exporter; the spool limits must not evict it meanwhile."""


@final
class Record:
    """One event on its way: the envelope bytes and its delivery bookkeeping."""

    __slots__ = (
        "attempts",
        "fresh",
        "inherited",
        "ordinal",
        "payload",
        "segment",
        "sequence",
        "spooled_at",
        "state",
    )

    def __init__(
        self,
        payload: bytes,
        attempts: int = 0,
        spooled_at: float = 0.0,
        *,
        sequence: int = -1,
        inherited: bool = False,
    ) -> None:
        self.payload = payload
        """The envelope exactly as it is posted (and written to the spool)."""
        self.attempts = attempts
        """Failed POSTs so far, across runs."""
        self.state = RecordState.PENDING
        self.spooled_at = spooled_at
        """Wall time it first reached the spool (0: not yet, or unknown)."""
        self.sequence = sequence
        """This run's events: the position in the queue (-1 for others)."""
        self.inherited = inherited
        """An earlier run's event, taken over from its spool (``stats.replayed``
        once acknowledged, not ``stats.exported``)."""
        self.fresh = False
        """Write-ahead mode: on disk but not tried yet; waits for its first export."""
        self.segment: Segment | None = None
        """The segment it is (or is being) written to; None while only memory holds it."""
        self.ordinal = -1
        """Its line number in that segment: the key of its journal entries."""
