"""Replay of earlier runs' spool files (design §5).

At start a background task looks for every spool file in the storage
directory, whatever its session, oldest first, and takes over each one that
no live run holds: its records are appended (fsync'd) to this run's spool and
only then is the old file deleted, so a crash in between leaves the events on
disk twice (the server deduplicates by ``event_id``) but never zero times.
A file locked by a live logger, in this process or another, is never touched.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import anyio.lowlevel

from eventlog._clock import SystemClock
from eventlog._spool import TEMP_SUFFIX, Spool, SpoolFile, parse_file_name
from eventlog._stats import Counters

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["find_spool_files", "replay_earlier_runs"]

logger = logging.getLogger("eventlog")


def find_spool_files(directory: str, *, exclude: str = "") -> tuple[list[str], list[str]]:
    """``(spool files oldest first, leftover temp files)`` in ``directory``.

    Temp files are what a run that died in the middle of a rewrite left
    behind; the file they were to replace is still there.
    """
    found: list[tuple[float, str, str]] = []
    temps: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if entry.path == exclude or not entry.is_file(follow_symlinks=False):
                continue
            if name.endswith(TEMP_SUFFIX):
                if parse_file_name(name[: -len(TEMP_SUFFIX)]) is not None:
                    temps.append(entry.path)
                continue
            if parse_file_name(name) is None:
                continue
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue  # its owner removed it since the listing: nothing to replay
            found.append((mtime, name, entry.path))
    found.sort()
    return [path for _, _, path in found], temps


async def replay_earlier_runs(spool: Spool, counters: Counters, wake: Callable[[], None]) -> None:
    """Take over every unlocked spool file of earlier runs into ``spool``."""
    try:
        paths, temps = find_spool_files(spool.directory, exclude=spool.path)
    except FileNotFoundError:
        return
    except OSError as exc:
        logger.debug("spool directory %s not listed: %s", spool.directory, exc)
        return
    for temp in temps:
        claimed = SpoolFile.claim(temp, counters=Counters())  # not read: never counted
        if claimed is not None:
            _remove(claimed)
    taken = 0
    # File ages are on the real clock: modification times are real.
    now = SystemClock().wall_time()
    for path in paths:
        await anyio.lowlevel.checkpoint()
        claimed = SpoolFile.claim(path, counters)
        if claimed is None:
            logger.debug("spool file %s is held by a live logger; left alone", path)
            continue
        counters.taken_over += len(claimed.records)
        for record in claimed.records:
            record.inherited = True
        if _age(path, now) > spool.max_age:
            # design §5: files older than max_spool_age are deleted unsent, counted.
            counters.dropped_spool_limit += len(claimed.records)
            logger.warning(
                "eventlog: spool file %s is older than max_spool_age; %d events dropped",
                path,
                len(claimed.records),
            )
            _remove(claimed)
            continue
        records = claimed.records
        if records:
            for record in records:
                record.persisted = False  # on disk in their file, not yet in ours
            spool.append(records)
            if not all(r.persisted for r in records):
                # Our copy did not reach the disk: leave theirs for a later run
                # rather than hold events that only memory would keep.
                spool.forget(records)
                claimed.release()
                continue
        _remove(claimed)
        taken += len(records)
        logger.debug("took over %d events from %s", len(records), path)
        wake()
    if taken:
        logger.debug("replaying %d events of earlier runs", taken)


def _age(path: str, now: float) -> float:
    try:
        return now - os.stat(path, follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _remove(claimed: SpoolFile) -> None:
    try:
        claimed.remove()
    except OSError as exc:
        logger.debug("spool file %s not removed: %s", claimed.path, exc)
