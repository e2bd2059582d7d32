"""The embedded store and the event bus."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from hub.core.db import Database
from hub.core.events import EventBus


async def test_migrations_run_once_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "z.sqlite3"
    steps = [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        "ALTER TABLE notes ADD COLUMN author TEXT; CREATE INDEX notes_author ON notes(author);",
    ]
    db = Database(path)
    await db.open()
    await db.migrate("notes", steps)
    await db.migrate("notes", steps)  # idempotent
    row_id = await db.execute("INSERT INTO notes (text, author) VALUES (?, ?)", ("你好", "a"))
    assert row_id == 1
    await db.close()
    db = Database(path)
    await db.open()
    await db.migrate("notes", [*steps, "ALTER TABLE notes ADD COLUMN at REAL"])
    row = await db.fetchone("SELECT text, author, at FROM notes WHERE id = ?", (1,))
    assert row is not None and (row["text"], row["author"], row["at"]) == ("你好", "a", None)
    await db.close()


async def test_failed_migration_and_transaction_roll_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    with pytest.raises(sqlite3.OperationalError):
        await db.migrate("bad", ["CREATE TABLE t (x)", "CREATE TABLE t (y)"])
    rows = await db.fetchall("SELECT version FROM schema_versions WHERE component = 'bad'")
    assert [r["version"] for r in rows] == [1]

    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (x) VALUES (1)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.transaction(insert_then_fail)
    assert await db.fetchall("SELECT * FROM t") == []
    await db.close()


async def test_queries_run_on_the_database_thread_not_the_loop(tmp_path: Path) -> None:
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    names: list[str] = []
    await db.transaction(lambda conn: names.append(threading.current_thread().name))
    assert names[0].startswith("zzhub-db")
    await db.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("zzhub-db")]


async def test_event_scope_addressing_and_bounded_lag() -> None:
    bus = EventBus(maxsize=3)
    county = bus.subscribe("c", "410922")
    town = bus.subscribe("t", "410922100")
    other = bus.subscribe("o", "410922101")
    bus.publish("x", "410922100201", {"n": 1})
    bus.publish("y", "410922101", {"n": 2}, to_users={"t"})
    assert (await county.get()).topic == "x"
    assert (await town.get()).topic == "x"
    assert (await town.get()).topic == "y"
    assert other._queue == deque_of()
    bus.publish("hub", "", {"n": 3})  # no centre: everyone
    assert [(await s.get()).topic for s in (county, town, other)] == ["hub"] * 3
    for i in range(10):
        bus.publish("flood", "410922", {"i": i})
    assert county.lagged == 7
    assert [(await county.get()).data["i"] for _ in range(3)] == [7, 8, 9]
    waiter = asyncio.create_task(county.get())
    await asyncio.sleep(0)
    bus.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(bus) == 0


def deque_of() -> object:
    from collections import deque

    return deque()
