"""The spool: events not delivered yet, on disk, in a segmented log (docs/delivery.md).

Its boundary: the pipeline hands it records and gets them back for retries;
nothing else of the SDK touches a spool file, and no file is touched on the
event loop's thread. The rules it keeps:

* **Layout, version 2.** Each run writes its own log, a directory
  ``spool-v2.<session>.<run>/`` under the storage directory, holding a
  ``lock`` file (``flock``'ed while the run lives) and segment files
  ``<n>.seg`` of JSON lines (one event each, with its number, attempt count,
  spool time and a CRC-32), each with a journal ``<n>.jnl`` of the records
  settled or failed since. See :mod:`eventlog._spool._format`.
* **Nothing leaves the disk before the server acknowledged it** (or it was
  dropped for good, counted). Acknowledgements are journal lines written per
  chunk, as they happen: their cost does not grow with the spool. A segment
  whose records are all settled is deleted whole.
* **Off the loop.** Writes, ``fsync``\\ s, reads and deletes run through a
  :class:`Runner` (a worker thread; inline in tests), one writer at a time,
  in the order they were asked for. ``log_event`` never waits for the disk.
* **Crash-consistent.** Appends are ``fsync``'ed before they count as on
  disk; a torn or corrupt line is skipped and counted, never sent; a torn or
  lost journal line makes a record be sent again (a duplicate, removed by the
  server's dedupe) or miss one attempt, never lost.
* **Taking over earlier runs in place.** Every log no live run holds (any
  session, version 1 files included) is claimed by its ``flock``, by exactly
  one successor, oldest first, never copied; it is drained a segment at a
  time, memory holding about one segment of it.
* **Limits by whole segments.** ``max_spool_bytes`` and ``max_spool_age``
  evict the oldest whole segments (never one being posted), each event
  counted once in ``dropped_spool_limit``, at a cost in the evicted only.
* **Disk faults.** A failed write keeps its events in memory, within a bound
  (beyond it they are counted lost), and is retried on a backoff of its own;
  ``dropped_disk_error`` counts exactly the events on no disk at close.

Modules: :mod:`._format` (names and lines), :mod:`._files` (file operations,
locks, the storage directory check), :mod:`._runner` (where I/O runs),
:mod:`._segment` (what memory knows of each log and segment), :mod:`._log`
(the spool itself), :mod:`._takeover` (earlier runs), :mod:`._admin` (what
the command line uses).
"""

from __future__ import annotations

from eventlog._spool._files import FileOps, check_storage_dir
from eventlog._spool._log import DEFAULT_SEGMENT_BYTES, Spool
from eventlog._spool._runner import InlineRunner, Runner, ThreadRunner
from eventlog._spool._takeover import take_over

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "FileOps",
    "InlineRunner",
    "Runner",
    "Spool",
    "ThreadRunner",
    "check_storage_dir",
    "take_over",
]
