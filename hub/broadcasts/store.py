"""The broadcast ledger in SQLite (component "broadcasts"): each broadcast and every
attendance interval (who joined, from which centre, when, until when).

A viewer who drops and comes back has two intervals; the report sums them. Intervals still
open when the hub stops are closed at start-up with the broadcast's end (or the start time).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from hub.core.db import Database

MIGRATIONS = [
    """
    CREATE TABLE broadcasts (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        presenter TEXT NOT NULL,
        centre TEXT NOT NULL,
        targets TEXT NOT NULL,
        started REAL NOT NULL,
        ended REAL
    );
    CREATE TABLE broadcast_attendance (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        broadcast TEXT NOT NULL REFERENCES broadcasts(id),
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        centre TEXT NOT NULL,
        joined REAL NOT NULL,
        left REAL
    );
    CREATE INDEX broadcast_attendance_by_broadcast ON broadcast_attendance(broadcast)
    """
]


@dataclass(frozen=True, slots=True)
class Interval:
    user: str
    role: str
    centre: str
    joined: float
    left: float | None

    def seconds(self, now: float) -> float:
        return max(0.0, (self.left if self.left is not None else now) - self.joined)


@dataclass(frozen=True, slots=True)
class BroadcastRow:
    id: str
    title: str
    presenter: str
    centre: str
    targets: list[str]
    started: float
    ended: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "presenter": self.presenter,
            "centre": self.centre,
            "targets": self.targets,
            "started": self.started,
            "ended": self.ended,
        }


class BroadcastLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.migrate("broadcasts", MIGRATIONS)
        await self.db.transaction(_close_interrupted)

    async def started(self, row: BroadcastRow) -> None:
        await self.db.execute(
            "INSERT INTO broadcasts (id, title, presenter, centre, targets, started) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, row.title, row.presenter, row.centre, json.dumps(row.targets), row.started),
        )

    async def ended(self, broadcast: str, at: float) -> None:
        await self.db.execute("UPDATE broadcasts SET ended = ? WHERE id = ?", (at, broadcast))
        await self.db.execute(
            "UPDATE broadcast_attendance SET left = ? WHERE broadcast = ? AND left IS NULL",
            (at, broadcast),
        )

    async def joined(self, broadcast: str, user: str, role: str, centre: str, at: float) -> None:
        await self.db.execute(
            "INSERT INTO broadcast_attendance (broadcast, user, role, centre, joined) "
            "VALUES (?, ?, ?, ?, ?)",
            (broadcast, user, role, centre, at),
        )

    async def left(self, broadcast: str, user: str, at: float) -> None:
        await self.db.execute(
            "UPDATE broadcast_attendance SET left = ? "
            "WHERE broadcast = ? AND user = ? AND left IS NULL",
            (at, broadcast, user),
        )

    async def get(self, broadcast: str) -> BroadcastRow | None:
        row = await self.db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast,))
        if row is None:
            return None
        return BroadcastRow(
            row["id"],
            row["title"],
            row["presenter"],
            row["centre"],
            json.loads(row["targets"]),
            row["started"],
            row["ended"],
        )

    async def attendance(self, broadcast: str) -> list[Interval]:
        rows = await self.db.fetchall(
            "SELECT user, role, centre, joined, left FROM broadcast_attendance "
            "WHERE broadcast = ? ORDER BY joined, id",
            (broadcast,),
        )
        return [Interval(r["user"], r["role"], r["centre"], r["joined"], r["left"]) for r in rows]


def _close_interrupted(conn: sqlite3.Connection) -> int:
    now = time.time()
    conn.execute(
        "UPDATE broadcast_attendance SET left = COALESCE("
        "(SELECT ended FROM broadcasts b WHERE b.id = broadcast), ?) WHERE left IS NULL",
        (now,),
    )
    cur = conn.execute("UPDATE broadcasts SET ended = ? WHERE ended IS NULL", (now,))
    return cur.rowcount
