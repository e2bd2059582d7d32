"""The roll-call ledger in SQLite (component "rollcall"): one row per roll call, one per centre.

Written whole at every change (upsert). At start-up, roll calls a previous run left running are
closed as `interrupted` (centres still `checking` become `no_answer`). Summaries count closed
roll calls only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from hub.core.centres import like
from hub.core.db import Database
from hub.rollcalls.model import EntryStatus, RollCall, RollCallEntry, RollCallState

MIGRATIONS = [
    """
    CREATE TABLE rollcalls (
        id TEXT PRIMARY KEY, room TEXT NOT NULL, started_by TEXT NOT NULL,
        started_by_centre TEXT NOT NULL, label TEXT NOT NULL, timeout REAL NOT NULL,
        started REAL NOT NULL, state TEXT NOT NULL, closed_at REAL, close_reason TEXT
    );
    CREATE INDEX rollcalls_by_started ON rollcalls (started DESC);
    CREATE TABLE rollcall_entries (
        rollcall TEXT NOT NULL REFERENCES rollcalls (id) ON DELETE CASCADE,
        centre TEXT NOT NULL, centre_name TEXT NOT NULL, township TEXT NOT NULL,
        status TEXT NOT NULL, answered INTEGER NOT NULL, asked TEXT NOT NULL,
        answered_by TEXT, answered_at REAL, response_time REAL, auto INTEGER, snapshot TEXT,
        PRIMARY KEY (rollcall, centre)
    );
    CREATE INDEX rollcall_entries_by_centre ON rollcall_entries (centre);
    CREATE INDEX rollcall_entries_by_township ON rollcall_entries (township);
    """,
]

_SCOPE = (
    "(r.started_by_centre LIKE ? OR r.id IN "
    "(SELECT rollcall FROM rollcall_entries WHERE centre LIKE ?))"
)
Rows = tuple[dict[str, Any], list[dict[str, Any]]]


class RollCallLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(self) -> int:
        await self._db.migrate("rollcall", MIGRATIONS)
        return await self._db.transaction(_close_interrupted)

    @staticmethod
    def snapshot(rc: RollCall) -> Rows:
        head = {
            "id": rc.id,
            "room": rc.room,
            "started_by": rc.started_by,
            "started_by_centre": rc.started_by_centre,
            "label": rc.label,
            "timeout": rc.timeout,
            "started": rc.started,
            "state": str(rc.state),
            "closed_at": rc.closed_at,
            "close_reason": rc.close_reason,
        }
        entries = [
            {
                "rollcall": rc.id,
                "centre": e.centre,
                "centre_name": e.centre_name,
                "township": e.township,
                "status": str(e.status),
                "answered": int(e.answered),
                "asked": json.dumps(e.asked, ensure_ascii=False),
                "answered_by": e.answered_by,
                "answered_at": e.answered_at,
                "response_time": e.response_time,
                "auto": None if e.auto is None else int(e.auto),
                "snapshot": e.snapshot,
            }
            for e in rc.entries.values()
        ]
        return head, entries

    async def save(self, rows: Rows) -> None:
        await self._db.transaction(lambda conn: _save(conn, *rows))

    async def set_snapshot(self, rollcall_id: str, centre: str, path: str) -> None:
        await self._db.execute(
            "UPDATE rollcall_entries SET snapshot = ? WHERE rollcall = ? AND centre = ?",
            (path, rollcall_id, centre),
        )

    async def ids(self) -> list[str]:
        """Every roll call id kept here (re-claimed in a hub cluster at start)."""
        return [r["id"] for r in await self._db.fetchall("SELECT id FROM rollcalls")]

    async def get(self, rollcall_id: str) -> RollCall | None:
        row = await self._db.fetchone("SELECT * FROM rollcalls WHERE id = ?", (rollcall_id,))
        if row is None:
            return None
        entries = await self._db.fetchall(
            "SELECT * FROM rollcall_entries WHERE rollcall = ? ORDER BY centre", (rollcall_id,)
        )
        return _rollcall(row, entries)

    async def page(self, scope: str, page: int, per_page: int) -> tuple[list[RollCall], int]:
        patterns = (like(scope), like(scope))
        total = await self._db.fetchone(
            f"SELECT COUNT(*) AS n FROM rollcalls r WHERE {_SCOPE}", patterns
        )
        rows = await self._db.fetchall(
            f"SELECT * FROM rollcalls r WHERE {_SCOPE} ORDER BY r.started DESC, r.id "
            "LIMIT ? OFFSET ?",
            (*patterns, per_page, (page - 1) * per_page),
        )
        by_id: dict[str, list[sqlite3.Row]] = {r["id"]: [] for r in rows}
        if by_id:
            marks = ",".join("?" * len(by_id))
            for e in await self._db.fetchall(
                f"SELECT * FROM rollcall_entries WHERE rollcall IN ({marks}) ORDER BY centre",
                list(by_id),
            ):
                by_id[e["rollcall"]].append(e)
        return [_rollcall(r, by_id[r["id"]]) for r in rows], int(total["n"]) if total else 0

    async def summary_rows(
        self, scope: str, start: float, end: float
    ) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
        """Per township: checks, roll calls, answered, mean response; and the centres that
        never answered in the window (closed roll calls started in [start, end))."""
        where = (
            "FROM rollcall_entries e JOIN rollcalls r ON r.id = e.rollcall "
            "WHERE r.state = 'closed' AND e.centre LIKE ? AND r.started >= ? AND r.started < ?"
        )
        params = (like(scope), start, end)
        totals = await self._db.fetchall(
            "SELECT e.township AS township, COUNT(*) AS checks, "
            "COUNT(DISTINCT e.rollcall) AS rollcalls, SUM(e.answered) AS answered, "
            "AVG(CASE WHEN e.answered THEN e.response_time END) AS mean_response "
            f"{where} GROUP BY e.township ORDER BY e.township",
            params,
        )
        never = await self._db.fetchall(
            "SELECT e.township AS township, e.centre AS centre, MAX(e.centre_name) AS name, "
            f"COUNT(*) AS checks {where} GROUP BY e.township, e.centre "
            "HAVING SUM(e.answered) = 0 ORDER BY e.centre",
            params,
        )
        return totals, never


def _save(conn: sqlite3.Connection, head: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    cols = list(head)
    conn.execute(
        f"INSERT INTO rollcalls ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
        "ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id"),
        head,
    )
    if entries:
        ecols = list(entries[0])
        keep = {"rollcall", "centre"}
        conn.executemany(
            f"INSERT INTO rollcall_entries ({', '.join(ecols)}) "
            f"VALUES ({', '.join(':' + c for c in ecols)}) "
            "ON CONFLICT (rollcall, centre) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in ecols if c not in keep),
            entries,
        )


def _close_interrupted(conn: sqlite3.Connection) -> int:
    now = time.time()
    ids = [r[0] for r in conn.execute("SELECT id FROM rollcalls WHERE state != 'closed'")]
    for rollcall_id in ids:
        conn.execute(
            "UPDATE rollcall_entries SET status = 'no_answer' "
            "WHERE rollcall = ? AND status = 'checking'",
            (rollcall_id,),
        )
        conn.execute(
            "UPDATE rollcalls SET state = 'closed', closed_at = ?, close_reason = 'interrupted' "
            "WHERE id = ?",
            (now, rollcall_id),
        )
    return len(ids)


def _rollcall(row: sqlite3.Row, entries: list[sqlite3.Row]) -> RollCall:
    return RollCall(
        id=row["id"],
        room=row["room"],
        started_by=row["started_by"],
        started_by_centre=row["started_by_centre"],
        label=row["label"],
        timeout=row["timeout"],
        started=row["started"],
        state=RollCallState(row["state"]),
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
        entries={
            e["centre"]: RollCallEntry(
                centre=e["centre"],
                centre_name=e["centre_name"],
                status=EntryStatus(e["status"]),
                asked=list(json.loads(e["asked"])),
                answered_by=e["answered_by"],
                answered_at=e["answered_at"],
                response_time=e["response_time"],
                auto=None if e["auto"] is None else bool(e["auto"]),
                snapshot=e["snapshot"],
            )
            for e in entries
        },
    )
