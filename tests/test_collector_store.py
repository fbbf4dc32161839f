"""The collector's SQLite store: deduplication, filters, a database file, a failed insert."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from eventlog.collector import Store

if TYPE_CHECKING:
    from pathlib import Path

    from eventlog.collector._store import Row


def row(event_id: str, name: str = "clicked", session: str | None = "s1", at: float = 1.0) -> Row:
    """A row as the collector stores it, its body naming the event."""
    body = b'{"id":"%b"}' % event_id.encode()
    return (event_id, "InternalEvent", name, session, "2026-01-01T00:00:00.000Z", at, body)


def test_insert_counts_only_new_event_ids() -> None:
    """A second insert of the same ids stores nothing; a mixed batch stores only the new ones."""
    store = Store(":memory:")
    assert store.insert([row("a"), row("b")]) == 2
    assert store.insert([row("a"), row("b")]) == 0
    assert store.insert([row("b"), row("c"), row("c")]) == 1
    assert (store.count(), store.event_ids()) == (3, {"a", "b", "c"})
    store.close()


def test_events_filter_and_keep_arrival_order() -> None:
    """events(): bodies in arrival order, filtered by name and session, at most ``limit``."""
    store = Store(":memory:")
    store.insert([row("e1", "open", "s1", 1.0), row("e2", "close", "s2", 2.0)])
    store.insert([row("e3", "open", "s2", 3.0), row("e4", "open", None, 4.0)])

    def ids(found: list[tuple[bytes, float]]) -> list[str]:
        return [body.decode()[7:-2] for body, _ in found]

    assert ids(store.events()) == ["e1", "e2", "e3", "e4"]
    assert ids(store.events(name="open")) == ["e1", "e3", "e4"]
    assert ids(store.events(session_id="s2")) == ["e2", "e3"]
    assert ids(store.events(name="open", session_id="s2")) == ["e3"]
    assert ids(store.events(limit=2)) == ["e1", "e2"]
    assert [at for _, at in store.events(name="close")] == [2.0]
    store.close()


def test_a_failed_insert_stores_nothing_of_its_batch(tmp_path: Path) -> None:
    """A batch that SQLite refuses part-way is rolled back whole; the store stays usable."""
    store = Store(str(tmp_path / "c.sqlite"))
    store.insert([row("kept")])
    # A body SQLite cannot bind: the second row fails after the first was written.
    bad: Row = ("x", "InternalEvent", None, None, None, 1.0, {})  # type: ignore[assignment]
    with pytest.raises(sqlite3.ProgrammingError):
        store.insert([row("first"), bad])
    assert store.event_ids() == {"kept"}
    assert store.insert([row("first")]) == 1
    store.close()


def test_a_database_file_is_in_wal_mode_and_outlives_the_store(tmp_path: Path) -> None:
    """A file database uses WAL; a new Store on the same file sees what the first stored."""
    path = str(tmp_path / "c.sqlite")
    first = Store(path)
    first.insert([row("a")])
    first.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
    second = Store(path)
    assert second.insert([row("a"), row("b")]) == 1
    assert second.count() == 2
    second.close()
