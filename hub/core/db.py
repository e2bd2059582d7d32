"""The embedded store: one SQLite file in the data dir, used from one worker thread.

sqlite3 connections belong to the thread that made them, and every query blocks; so all work
goes through a single-thread executor owned by `Database`, never the event loop. Components own
their tables and bring them up to date with `migrate(component, statements)`: statement N is
run once, in order, and recorded in `schema_versions`. WAL mode: a `kill -9` loses nothing that
was committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zzhub-db")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            return conn

        self._conn = await self._run(connect)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def migrate(self, component: str, statements: Sequence[str]) -> None:
        """Apply the statements of `component` not applied yet, each in its own transaction."""

        def apply() -> None:
            conn = self.conn
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            done = row["version"] if row else 0
            if not component.replace("_", "").isalnum():
                raise ValueError(f"bad component name {component!r}")
            for version, sql in enumerate(statements, start=1):
                if version <= done:
                    continue
                # one script so that several statements and the version move together
                script = (
                    f"BEGIN;\n{sql.strip().rstrip(';')};\n"
                    "INSERT INTO schema_versions (component, version) "
                    f"VALUES ('{component}', {version}) "
                    "ON CONFLICT(component) DO UPDATE SET version = excluded.version;\nCOMMIT;"
                )
                try:
                    conn.executescript(script)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

        await self._run(apply)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns lastrowid (inserts) or rowcount."""

        def run() -> int:
            cur = self.conn.execute(sql, params)
            # sqlite3 keeps the connection's last INSERT rowid on later cursors: only an
            # INSERT answers with its rowid, every other statement with its row count
            if sql.lstrip()[:6].upper() == "INSERT" and cur.lastrowid:
                return cur.lastrowid
            return cur.rowcount

        return await self._run(run)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._run(lambda: self.conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self._run(lambda: self.conn.execute(sql, params).fetchone())
        return row

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside BEGIN IMMEDIATE … COMMIT on the database thread."""

        def run() -> T:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(run)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._run(conn.close)
        self._executor.shutdown(wait=True)


DB = web.AppKey("db", Database)
