"""The audit log: append-only, hash-chained rows in SQLite (component "audit").

Each row stores `prev` (the previous row's hash) and `hash` = SHA-256(prev + canonical JSON of
the row's fields). Triggers refuse UPDATE and DELETE, and `zzhub verify --audit` walks the
chain offline, naming the first row that does not fit. Appends happen inside one IMMEDIATE
transaction on the database thread, so concurrent appends still form one chain.

`record()` is for synchronous callers (WHEP close callbacks): it queues the row (bounded) for
the log's own writer task; `append()` awaits the write.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.core.centres import like
from hub.core.db import Database

log = logging.getLogger(__name__)

COMPONENT = "audit"
GENESIS = "0" * 64
QUEUE = 10_000
MIGRATIONS = [
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        centre TEXT NOT NULL,
        details TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_log_centre ON audit_log (centre, id);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
]


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_hash(prev: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + canonical(fields)).hexdigest()


def row_fields(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """The hashed fields of a stored row (details parsed back to JSON)."""
    try:
        details = json.loads(row["details"])
    except ValueError:
        details = row["details"]
    return {
        "id": row["id"],
        "at_ms": row["at_ms"],
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "centre": row["centre"],
        "details": details,
    }


@dataclass(frozen=True, slots=True)
class ChainBreak:
    row_id: int
    reason: str


def check_chain(conn: sqlite3.Connection) -> tuple[int, ChainBreak | None]:
    """Walk the whole chain (blocking). Returns rows checked and the first break, if any."""
    prev, expected_id, checked = GENESIS, None, 0
    cursor = conn.execute("SELECT * FROM audit_log ORDER BY id")
    for row in cursor:
        checked += 1
        if expected_id is not None and row["id"] != expected_id:
            return checked, ChainBreak(expected_id, f"row {expected_id} is missing")
        if row["prev"] != prev:
            return checked, ChainBreak(row["id"], "its prev hash does not match the row before")
        if row_hash(prev, row_fields(row)) != row["hash"]:
            return checked, ChainBreak(row["id"], "its content does not match its hash")
        prev, expected_id = row["hash"], row["id"] + 1
    return checked, None


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[tuple[str, str, str, dict[str, Any], str] | None] = (
            asyncio.Queue(QUEUE)
        )
        self._task: asyncio.Task[None] | None = None
        self.appended = 0
        self.lost = 0

    async def start(self) -> None:
        await self.db.migrate(COMPONENT, MIGRATIONS)
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="audit")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await self._queue.put(None)  # write what is queued, then end
            await task

    async def append(
        self, actor: str, action: str, target: str, details: dict[str, Any], centre: str
    ) -> int:
        """Append one row; returns its id."""
        at_ms = int(time.time() * 1000)
        details_json = json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)

        def insert(conn: sqlite3.Connection) -> int:
            last = conn.execute(
                "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"
            ).fetchone()
            row_id, prev = (last["id"] + 1, last["hash"]) if last else (1, GENESIS)
            fields = {
                "id": row_id,
                "at_ms": at_ms,
                "actor": actor,
                "action": action,
                "target": target,
                "centre": centre,
                "details": json.loads(details_json),
            }
            conn.execute(
                "INSERT INTO audit_log (id, at_ms, actor, action, target, centre, details, prev,"
                " hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row_id,
                    at_ms,
                    actor,
                    action,
                    target,
                    centre,
                    details_json,
                    prev,
                    row_hash(prev, fields),
                ),
            )
            return row_id

        row_id = await self.db.transaction(insert)
        self.appended += 1
        return row_id

    def record(
        self, actor: str, action: str, target: str, details: dict[str, Any], centre: str
    ) -> None:
        """Queue a row from synchronous code (written in order by the log's task)."""
        if self._task is None:
            self.lost += 1
            log.error("audit log not running: %s %s %s lost", actor, action, target)
            return
        try:
            self._queue.put_nowait((actor, action, target, details, centre))
        except asyncio.QueueFull:
            self.lost += 1
            log.error("audit queue full: %s %s %s lost", actor, action, target)

    async def _writer(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                await self.append(*item)
            except Exception:
                self.lost += 1
                log.exception("audit append failed")

    async def rows(
        self,
        scope: str,
        *,
        limit: int = 100,
        before: int | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first: rows of centres within `scope` (code prefix)."""
        sql = "SELECT * FROM audit_log WHERE centre LIKE ?"
        params: list[Any] = [like(scope)]
        if before is not None:
            sql += " AND id < ?"
            params.append(before)
        if action:
            sql += " AND action = ?"
            params.append(action)
        if actor:
            sql += " AND actor = ?"
            params.append(actor)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        out = []
        for row in await self.db.fetchall(sql, params):
            out.append({**row_fields(row), "prev": row["prev"], "hash": row["hash"]})
        return out

    async def verify(self) -> tuple[int, ChainBreak | None]:
        return await self.db.transaction(check_chain)


AUDIT = web.AppKey("audit", AuditLog)
