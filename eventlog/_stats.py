"""Counters: the frozen :class:`Stats` snapshot and the logger's private tallies.

Every count is in events. Every ``except`` on a fire-and-forget path bumps
one of these, so nothing is lost silently.
"""

from __future__ import annotations

import threading
from typing import Literal, final

import msgspec

__all__ = ["Counters", "Refusal", "Stats"]

Refusal = Literal["sampled_out", "dropped_queue_full", "dropped_killed", "dropped_after_shutdown"]
"""The tallies of events refused at the door, before queueing."""


class _Tallies(msgspec.Struct, kw_only=True):
    """The counts a logger keeps as it goes: declared once, here.

    :class:`Counters` (mutable, private to a logger) and :class:`Stats` (its
    frozen snapshot) both derive from it, so a new count is one field.
    """

    sampled_out: int = 0
    """Events not kept by sampling."""
    dropped_invalid: int = 0
    """Events whose name or metadata was invalid."""
    dropped_queue_full: int = 0
    """Events refused because ``max_queue_size`` events were already queued."""
    dropped_killed: int = 0
    """Events refused because the killswitch reported true."""
    dropped_after_shutdown: int = 0
    """Events logged after the ``open_event_logger`` block was left."""
    exported: int = 0
    """This run's events the server acknowledged with a 2xx."""
    export_failures: int = 0
    """Failed POSTs (not events): each retryable failure of one request."""
    spooled: int = 0
    """Events written to the spool because they could not be delivered yet."""
    replayed: int = 0
    """Earlier runs' events (see ``taken_over``) the server acknowledged."""
    taken_over: int = 0
    """Events found in earlier runs' spools and taken over by this run."""
    dropped_max_attempts: int = 0
    """Events dropped because their own failed POSTs reached ``max_attempts``."""
    dropped_permanent: int = 0
    """Events the server refused for good (400, 422) or too large alone (413)."""
    dropped_spool_limit: int = 0
    """Events dropped to keep the spool within its size and age limits."""
    dropped_disk_error: int = 0
    """Events lost because the disk refused them and the logger then stopped."""
    spool_corrupt_lines: int = 0
    """Spool lines skipped because they were torn, corrupt or failed their checksum."""


# msgspec freezes every field of a frozen subclass, inherited ones included
# (tests/test_exports.py checks it); mypy's dataclass rule is stricter than msgspec's.
class Stats(_Tallies, frozen=True, kw_only=True):  # type: ignore[misc]
    """A snapshot of one logger's counters, taken by :attr:`EventLogger.stats`.

    Every count is in events. An event is either this run's (``emitted``) or
    an earlier run's, found in its spool (``taken_over``). Once the logger is
    idle (its block exited, say), every one is accounted for exactly once::

        emitted + taken_over == exported + replayed
                                + dropped_invalid + dropped_max_attempts + dropped_permanent
                                + dropped_spool_limit + dropped_disk_error + spool_events

    ``exported`` counts this run's events the server acknowledged (sent at
    once or after a stay in the spool), ``replayed`` earlier runs' events.
    ``sampled_out``, ``dropped_queue_full``, ``dropped_killed`` and
    ``dropped_after_shutdown`` count calls refused before queueing: they are
    not part of ``emitted``.

    Examples:
        >>> import eventlog
        >>> eventlog.Stats().exported
        0
    """

    emitted: int = 0
    """Events accepted by ``log_event`` and queued for delivery."""
    queue_depth: int = 0
    """Events in memory waiting for the next export, at the time of the snapshot."""
    spool_bytes: int = 0
    """Bytes of the spool's segment files (this run's, and earlier runs' taken
    over), at the time of the snapshot."""
    spool_events: int = 0
    """Events the spool holds, not settled yet (this run's and earlier runs'
    taken over; on disk, or in memory while the disk refuses them), at the
    time of the snapshot."""
    spool_disabled: str | None = None
    """Why the spool keeps events in memory instead of on disk, or None while
    it works: the storage directory is unusable or unsafe (for the whole run,
    see docs/delivery.md), or the disk refused the last write (until a write
    succeeds again)."""


# Only for the tallies that worker threads' log_event calls can touch (one
# per process: refusals are rare); the common path of log_event counts nothing.
_REFUSALS_LOCK = threading.Lock()


@final
class Counters(_Tallies, kw_only=True):
    """The mutable tallies behind :class:`Stats`; private to one logger."""

    def count_refused(self, name: Refusal) -> None:
        """Add one to the tally ``name``, safely from any thread."""
        with _REFUSALS_LOCK:
            setattr(self, name, getattr(self, name) + 1)

    def count_invalid(self) -> None:
        """Add one to ``dropped_invalid``, safely from any thread."""
        with _REFUSALS_LOCK:
            self.dropped_invalid += 1

    def snapshot(
        self,
        *,
        emitted: int,
        queue_depth: int,
        spool_bytes: int,
        spool_events: int,
        spool_disabled: str | None,
    ) -> Stats:
        """Freeze the tallies together with the gauges.

        ``emitted`` is not a tally: the emit path only appends to the queue,
        so the logger derives it (events taken off the queue plus those in it).
        """
        return Stats(
            **msgspec.structs.asdict(self),
            emitted=emitted,
            queue_depth=queue_depth,
            spool_bytes=spool_bytes,
            spool_events=spool_events,
            spool_disabled=spool_disabled,
        )
