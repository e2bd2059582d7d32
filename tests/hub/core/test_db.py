"""The embedded store: opening, migrations per component, statements and transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.core.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "nested" / "dir" / "z.sqlite3")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def versions(db: Database) -> dict[str, int]:
    rows = await db.fetchall("SELECT component, version FROM schema_versions ORDER BY component")
    return {r["component"]: r["version"] for r in rows}


def test_conn_before_open_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"^database is not open$"):
        _ = Database(tmp_path / "z.sqlite3").conn


async def test_open_makes_the_folder_and_sets_pragmas(db: Database) -> None:
    assert db.path.parent.is_dir()
    mode = await db.fetchone("PRAGMA journal_mode")
    keys = await db.fetchone("PRAGMA foreign_keys")
    assert mode is not None and mode[0] == "wal"
    assert keys is not None and keys[0] == 1
    assert await versions(db) == {}


async def test_components_keep_their_own_versions(db: Database) -> None:
    await db.migrate("notes", ["CREATE TABLE notes (id INTEGER PRIMARY KEY)"])
    await db.migrate(
        "cases_v2",
        ["CREATE TABLE cases (id TEXT)", "ALTER TABLE cases ADD COLUMN title TEXT;"],
    )
    assert await versions(db) == {"cases_v2": 2, "notes": 1}
    await db.migrate("notes", ["CREATE TABLE notes (id INTEGER PRIMARY KEY)", "SELECT 1"])
    assert await versions(db) == {"cases_v2": 2, "notes": 2}


@pytest.mark.parametrize("name", ["bad-name", "x; DROP TABLE t", "", "a b"])
async def test_component_names_are_checked(db: Database, name: str) -> None:
    with pytest.raises(ValueError, match="bad component name"):
        await db.migrate(name, ["CREATE TABLE t (x)"])
    assert await versions(db) == {}


async def test_a_failing_step_keeps_the_steps_before_it(db: Database) -> None:
    steps = ["CREATE TABLE a (x)", "CREATE TABLE b (x); CREATE TABLE a (y)", "CREATE TABLE c (x)"]
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        await db.migrate("m", steps)
    assert await versions(db) == {"m": 1}
    tables = {r["name"] for r in await db.fetchall("SELECT name FROM sqlite_master")}
    assert "b" not in tables and "c" not in tables  # step 2 rolled back whole
    assert not db.conn.in_transaction
    fixed = ["CREATE TABLE a (x)", "CREATE TABLE b (x)", "CREATE TABLE c (x)"]
    await db.migrate("m", fixed)
    assert await versions(db) == {"m": 3}


async def test_execute_returns_the_new_rowid_of_an_insert(db: Database) -> None:
    await db.migrate("t", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)"])
    assert await db.execute("INSERT INTO t (x) VALUES (?)", (10,)) == 1
    assert await db.execute("INSERT INTO t (id, x) VALUES (?, ?)", (41, 20)) == 41
    assert await db.execute("INSERT INTO t (x) VALUES (?)", (30,)) == 42


async def test_execute_returns_the_rowcount_of_an_update_on_a_fresh_connection(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    await db.migrate("t", ["CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)"])
    await db.close()
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    assert await db.execute("UPDATE t SET x = x + 1 WHERE x >= ?", (2,)) == 2
    assert await db.execute("DELETE FROM t") == 3
    await db.close()


async def test_execute_returns_the_rowcount_of_an_update_after_an_insert(db: Database) -> None:
    await db.migrate("t", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)"])
    for x in (1, 2, 3):
        await db.execute("INSERT INTO t (x) VALUES (?)", (x,))
    assert await db.execute("UPDATE t SET x = 0 WHERE x = ?", (1,)) == 1


async def test_fetchone_and_fetchall(db: Database) -> None:
    await db.migrate("t", ["CREATE TABLE t (k TEXT, v TEXT)"])
    await db.execute("INSERT INTO t VALUES (?, ?)", ("镇", "城关"))
    await db.execute("INSERT INTO t VALUES (?, ?)", ("村", "东关"))
    row = await db.fetchone("SELECT v FROM t WHERE k = ?", ("镇",))
    assert row is not None and row["v"] == "城关"
    assert await db.fetchone("SELECT v FROM t WHERE k = ?", ("县",)) is None
    assert [tuple(r) for r in await db.fetchall("SELECT k, v FROM t ORDER BY k")] == [
        ("村", "东关"),
        ("镇", "城关"),
    ]


async def test_transaction_commits_and_returns(db: Database) -> None:
    await db.migrate("t", ["CREATE TABLE t (x INTEGER)"])

    def move(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (2)")
        total: int = conn.execute("SELECT SUM(x) FROM t").fetchone()[0]
        return total

    assert await db.transaction(move) == 3
    assert not db.conn.in_transaction
    assert [r["x"] for r in await db.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2]


async def test_transaction_rolls_back_on_a_database_error(db: Database) -> None:
    await db.migrate("t", ["CREATE TABLE t (x INTEGER NOT NULL)"])

    def half(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (NULL)")

    with pytest.raises(sqlite3.IntegrityError):
        await db.transaction(half)
    assert await db.fetchall("SELECT * FROM t") == []
    assert not db.conn.in_transaction
    await db.transaction(lambda conn: conn.execute("INSERT INTO t VALUES (5)"))
    assert [r["x"] for r in await db.fetchall("SELECT x FROM t")] == [5]


async def test_foreign_keys_are_enforced(db: Database) -> None:
    await db.migrate(
        "fk",
        [
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
            "CREATE TABLE child (p INTEGER NOT NULL REFERENCES parent(id))"
        ],
    )
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.execute("INSERT INTO child VALUES (7)")


async def test_close_twice_is_harmless(tmp_path: Path) -> None:
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    await db.close()
    await db.close()
    with pytest.raises(RuntimeError):
        _ = db.conn
