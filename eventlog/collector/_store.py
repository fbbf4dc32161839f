"""The collector's SQLite store: events deduplicated by ``event_id``.

Every method is synchronous and meant to run in a worker thread, one call at
a time (the collector serialises them with a ``CapacityLimiter(1)``), so the
event loop never waits on SQLite.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Final, final

__all__ = ["Row", "Store"]

Row = tuple[str, str, str | None, str | None, str | None, float, bytes]
"""``(event_id, event_type, event_name, session_id, timestamp, received_at, body)``."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL,
    event_name  TEXT,
    session_id  TEXT,
    timestamp   TEXT,
    received_at REAL NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (event_name);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id);
"""
_INSERT: Final = (
    "INSERT OR IGNORE INTO events "
    "(event_id, event_type, event_name, session_id, timestamp, received_at, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@final
class Store:
    """Events in SQLite (WAL mode for a file), unique by ``event_id``.

    Rows are appended in arrival order (an integer primary key) with a unique
    index on ``event_id``; ``body`` is stored as the received bytes (a BLOB),
    never decoded. With random ids as the primary key itself, every
    insert would land at a random place in a B-tree of whole rows, five
    times slower.

    ``event_name`` holds the ``event_name`` of an ``InternalEvent`` and the
    ``experiment_id`` of an ``ExperimentEvent``; ``body`` the envelope JSON as
    received.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a crash of the collector process; an OS
        # crash or power loss may lose the last transactions although they were
        # answered 200. A development server accepts that for the speed.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def insert(self, rows: list[Row]) -> int:
        """Store ``rows`` in one transaction; returns how many were new."""
        with self._lock:
            db = self._db
            before = db.total_changes
            db.execute("BEGIN")
            try:
                db.executemany(_INSERT, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return db.total_changes - before

    def events(
        self, *, name: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[tuple[bytes, float]]:
        """``(body, received_at)`` of stored events in arrival order, filtered."""
        clauses: list[str] = []
        params: list[object] = []
        if name is not None:
            clauses.append("event_name = ?")
            params.append(name)
        if session_id is not None:
            clauses.append("session_id = ?")
            params.append(session_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit)
        query = (
            f"SELECT body, received_at FROM events {where} ORDER BY received_at, event_id LIMIT ?"
        )
        with self._lock:
            return [(bytes(body), float(at)) for body, at in self._db.execute(query, params)]

    def count(self) -> int:
        """Events stored in the database (all runs)."""
        with self._lock:
            (total,) = self._db.execute("SELECT count(*) FROM events").fetchone()
            return int(total)

    def event_ids(self) -> set[str]:
        """Every stored ``event_id``."""
        with self._lock:
            return {str(row[0]) for row in self._db.execute("SELECT event_id FROM events")}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
