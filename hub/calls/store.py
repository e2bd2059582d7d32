"""Call history in SQLite (component "calls"): one row per call, one per target.

A call is written whole (upsert) at every change, so the row is always the latest state. At
start-up, calls a previous run left ringing or active are closed as `interrupted` (ringing
targets become `missed`; the duration of an interrupted conversation is unknown, so `null`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from hub.calls.model import Call, CallState, CallTarget, TargetState
from hub.core.centres import like
from hub.core.db import Database

MIGRATIONS = [
    """
    CREATE TABLE calls (
        id TEXT PRIMARY KEY, room TEXT NOT NULL, caller TEXT NOT NULL,
        caller_role TEXT NOT NULL, caller_centre TEXT NOT NULL, title TEXT NOT NULL,
        timeout REAL NOT NULL, created REAL NOT NULL, state TEXT NOT NULL,
        answered INTEGER NOT NULL DEFAULT 0, ended_at REAL, end_reason TEXT
    );
    CREATE INDEX calls_by_created ON calls (created DESC);
    CREATE INDEX calls_by_centre ON calls (caller_centre);
    CREATE TABLE call_targets (
        call TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, centre TEXT NOT NULL, centre_name TEXT NOT NULL, user TEXT,
        state TEXT NOT NULL, rung TEXT NOT NULL, answered_by TEXT, settled_at REAL,
        accepted_at REAL, ended_at REAL,
        PRIMARY KEY (call, seq)
    );
    CREATE INDEX call_targets_by_centre ON call_targets (centre);
    """,
]

_SCOPE = "(c.caller_centre LIKE ? OR c.id IN (SELECT call FROM call_targets WHERE centre LIKE ?))"


class CallHistory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(self) -> int:
        """Migrate, then close the calls an earlier run left open; returns how many."""
        await self._db.migrate("calls", MIGRATIONS)
        return await self._db.transaction(_close_interrupted)

    async def ids(self) -> list[str]:
        """Every call id kept here (re-claimed in a hub cluster at start)."""
        return [r["id"] for r in await self._db.fetchall("SELECT id FROM calls")]

    async def save(self, row: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        await self._db.transaction(lambda conn: _save(conn, *row))

    @staticmethod
    def snapshot(call: Call) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The call's rows as they are now (taken on the event loop, written later)."""
        head = {
            "id": call.id,
            "room": call.room,
            "caller": call.caller,
            "caller_role": call.caller_role,
            "caller_centre": call.caller_centre,
            "title": call.title,
            "timeout": call.timeout,
            "created": call.created,
            "state": str(call.state),
            "answered": int(any(t.accepted_at is not None for t in call.targets)),
            "ended_at": call.ended_at,
            "end_reason": call.end_reason,
        }
        targets = [
            {
                "call": call.id,
                "seq": seq,
                "centre": t.centre,
                "centre_name": t.centre_name,
                "user": t.user,
                "state": str(t.state),
                "rung": json.dumps(t.rung, ensure_ascii=False),
                "answered_by": t.answered_by,
                "settled_at": t.settled_at,
                "accepted_at": t.accepted_at,
                "ended_at": t.ended_at,
            }
            for seq, t in enumerate(call.targets)
        ]
        return head, targets

    async def get(self, call_id: str) -> Call | None:
        row = await self._db.fetchone("SELECT * FROM calls WHERE id = ?", (call_id,))
        if row is None:
            return None
        targets = await self._db.fetchall(
            "SELECT * FROM call_targets WHERE call = ? ORDER BY seq", (call_id,)
        )
        return _call(row, targets)

    async def page(self, scope: str, page: int, per_page: int) -> tuple[list[Call], int]:
        """Calls made from or to `scope` and below, newest first."""
        patterns = (like(scope), like(scope))
        total_row = await self._db.fetchone(
            f"SELECT COUNT(*) AS n FROM calls c WHERE {_SCOPE}", patterns
        )
        rows = await self._db.fetchall(
            f"SELECT * FROM calls c WHERE {_SCOPE} ORDER BY c.created DESC, c.id LIMIT ? OFFSET ?",
            (*patterns, per_page, (page - 1) * per_page),
        )
        if not rows:
            return [], int(total_row["n"]) if total_row else 0
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        targets = await self._db.fetchall(
            f"SELECT * FROM call_targets WHERE call IN ({marks}) ORDER BY call, seq", ids
        )
        by_call: dict[str, list[sqlite3.Row]] = {}
        for t in targets:
            by_call.setdefault(t["call"], []).append(t)
        calls = [_call(r, by_call.get(r["id"], [])) for r in rows]
        return calls, int(total_row["n"]) if total_row else len(calls)


def _save(conn: sqlite3.Connection, head: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    cols = list(head)
    conn.execute(
        f"INSERT INTO calls ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
        "ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
        head,
    )
    conn.execute("DELETE FROM call_targets WHERE call = ?", (head["id"],))
    if targets:
        tcols = list(targets[0])
        conn.executemany(
            f"INSERT INTO call_targets ({', '.join(tcols)}) "
            f"VALUES ({', '.join(':' + c for c in tcols)})",
            targets,
        )


def _close_interrupted(conn: sqlite3.Connection) -> int:
    now = time.time()
    open_ids = [r[0] for r in conn.execute("SELECT id FROM calls WHERE state != 'ended'")]
    for call_id in open_ids:
        conn.execute(
            "UPDATE call_targets SET state = 'missed', settled_at = ? "
            "WHERE call = ? AND state = 'ringing'",
            (now, call_id),
        )
        conn.execute(
            "UPDATE calls SET state = 'ended', ended_at = ?, end_reason = 'interrupted' "
            "WHERE id = ?",
            (now, call_id),
        )
    return len(open_ids)


def _call(row: sqlite3.Row, targets: list[sqlite3.Row]) -> Call:
    return Call(
        id=row["id"],
        room=row["room"],
        caller=row["caller"],
        caller_role=row["caller_role"],
        caller_centre=row["caller_centre"],
        title=row["title"],
        timeout=row["timeout"],
        created=row["created"],
        state=CallState(row["state"]),
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        targets=[
            CallTarget(
                centre=t["centre"],
                centre_name=t["centre_name"],
                user=t["user"],
                state=TargetState(t["state"]),
                rung=list(json.loads(t["rung"])),
                answered_by=t["answered_by"],
                settled_at=t["settled_at"],
                accepted_at=t["accepted_at"],
                ended_at=t["ended_at"],
            )
            for t in targets
        ],
    )
