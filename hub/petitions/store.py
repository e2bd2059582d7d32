"""Petition cases in SQLite (component "petitions"): one row per case, one per timeline entry.

Every change is one transaction: the case row (whole, upserted) and its new timeline entries
commit together, so after a `kill -9` the case and its history agree. Case codes are
`<origin centre>-<YYYYMMDD>-<NNNN>`, numbered per origin centre per day inside the insert's
transaction (unique by a constraint too), or with the number a hub cluster handed out
(`hub.petitions.app.case_numbers`, above the local maximum).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from hub.core.centres import like
from hub.core.db import Database
from hub.petitions.model import Case, Category, Entry, Outcome, Status

COMPONENT = "petitions"
MIGRATIONS = [
    """
    CREATE TABLE petitions (
        code TEXT PRIMARY KEY, origin TEXT NOT NULL, day TEXT NOT NULL, seq INTEGER NOT NULL,
        queue TEXT NOT NULL, category TEXT NOT NULL, urgent INTEGER NOT NULL, text TEXT NOT NULL,
        origin_user TEXT NOT NULL, created REAL NOT NULL, due_at REAL NOT NULL,
        status TEXT NOT NULL, queued_at REAL NOT NULL, outcome TEXT, room TEXT, host TEXT,
        invited TEXT NOT NULL DEFAULT '[]', satisfaction INTEGER, resolved_at REAL,
        overdue_at REAL, link_iat INTEGER NOT NULL DEFAULT 0, followup_call TEXT,
        UNIQUE (origin, day, seq)
    );
    CREATE INDEX petitions_by_queue ON petitions (queue, status);
    CREATE INDEX petitions_by_origin ON petitions (origin);
    CREATE TABLE petition_timeline (
        id INTEGER PRIMARY KEY, code TEXT NOT NULL REFERENCES petitions (code),
        at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, status_from TEXT,
        status_to TEXT, note TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX petition_timeline_by_code ON petition_timeline (code, id);
    """,
    "ALTER TABLE petitions ADD COLUMN followup_at REAL",
]
_COLUMNS = (
    "code origin queue category urgent text origin_user created due_at status queued_at outcome "
    "room host invited satisfaction resolved_at overdue_at link_iat followup_call followup_at"
).split()


class CaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def migrate(self) -> None:
        await self._db.migrate(COMPONENT, MIGRATIONS)

    async def create(
        self,
        day: str,
        make: Callable[[str], Case],
        entries: Callable[[Case], list[Entry]],
        *,
        seq: int | None = None,
    ) -> Case:
        """Number the case (`make(code)` builds it; `seq`: the number to use when above the
        local maximum), insert it and its first entries."""

        def run(conn: sqlite3.Connection) -> Case:
            probe = make("")
            local = _max_seq(conn, probe.origin, day) + 1
            number = seq if seq is not None and seq >= local else local
            case = make(f"{probe.origin}-{day}-{number:04d}")
            values = _values(case)
            conn.execute(
                f"INSERT INTO petitions ({', '.join(_COLUMNS)}, day, seq) "
                f"VALUES ({', '.join('?' * len(_COLUMNS))}, ?, ?)",
                (*values, day, number),
            )
            _append(conn, entries(case))
            return case

        return await self._db.transaction(run)

    async def max_seq(self, origin: str, day: str) -> int:
        """The highest case number of `origin` on `day` here (0: none)."""
        return await self._db.transaction(lambda conn: _max_seq(conn, origin, day))

    async def codes(self) -> list[str]:
        """Every case code kept here (re-claimed in a hub cluster at start)."""
        return [r["code"] for r in await self._db.fetchall("SELECT code FROM petitions")]

    async def save(self, case: Case, entries: Sequence[Entry]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            sets = ", ".join(f"{c} = ?" for c in _COLUMNS[1:])
            conn.execute(
                f"UPDATE petitions SET {sets} WHERE code = ?", (*_values(case)[1:], case.code)
            )
            _append(conn, entries)

        await self._db.transaction(run)

    async def get(self, code: str) -> Case | None:
        row = await self._db.fetchone("SELECT * FROM petitions WHERE code = ?", (code,))
        return _case(row) if row is not None else None

    async def overdue(self, statuses: Sequence[str], now: float) -> list[str]:
        """Codes of the cases in `statuses` past their deadline and not flagged yet (no
        limit: the check must see every one)."""
        marks = ", ".join("?" * len(statuses))
        rows = await self._db.fetchall(
            f"SELECT code FROM petitions WHERE status IN ({marks}) AND overdue_at IS NULL "
            "AND due_at < ? ORDER BY due_at",
            [*statuses, now],
        )
        return [str(r["code"]) for r in rows]

    async def deadlines(self, statuses: Sequence[str]) -> list[tuple[float, float]]:
        """(created, due_at) of every case in one of `statuses` (no limit: two numbers each)."""
        marks = ", ".join("?" * len(statuses))
        rows = await self._db.fetchall(
            f"SELECT created, due_at FROM petitions WHERE status IN ({marks})", list(statuses)
        )
        return [(float(r["created"]), float(r["due_at"])) for r in rows]

    async def find(
        self,
        *,
        scope: str | None = None,
        statuses: Sequence[str] = (),
        queue: str | None = None,
        origin_user: str | None = None,
        limit: int = 500,
    ) -> list[Case]:
        """Cases whose queue or origin is at or below `scope`, oldest waiting first."""
        where, params = ["1 = 1"], []  # type: list[str], list[Any]
        if scope is not None:
            where.append("(queue LIKE ? OR origin LIKE ?)")
            params += [like(scope), like(scope)]
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += list(statuses)
        if queue is not None:
            where.append("queue = ?")
            params.append(queue)
        if origin_user is not None:
            where.append("origin_user = ?")
            params.append(origin_user)
        rows = await self._db.fetchall(
            f"SELECT * FROM petitions WHERE {' AND '.join(where)} "
            "ORDER BY urgent DESC, queued_at, code LIMIT ?",
            (*params, limit),
        )
        return [_case(r) for r in rows]

    async def timeline(self, code: str) -> list[Entry]:
        rows = await self._db.fetchall(
            "SELECT * FROM petition_timeline WHERE code = ? ORDER BY id", (code,)
        )
        return [
            Entry(
                code=r["code"],
                at=r["at"],
                actor=r["actor"],
                action=r["action"],
                status_from=r["status_from"],
                status_to=r["status_to"],
                note=r["note"],
                data=json.loads(r["data"]),
            )
            for r in rows
        ]


def _max_seq(conn: sqlite3.Connection, origin: str, day: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM petitions WHERE origin = ? AND day = ?", (origin, day)
    ).fetchone()
    return int(row[0])


def _append(conn: sqlite3.Connection, entries: Sequence[Entry]) -> None:
    conn.executemany(
        "INSERT INTO petition_timeline (code, at, actor, action, status_from, status_to, note,"
        " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.code,
                e.at,
                e.actor,
                e.action,
                e.status_from,
                e.status_to,
                e.note,
                json.dumps(e.data, ensure_ascii=False),
            )
            for e in entries
        ],
    )


def _values(case: Case) -> tuple[Any, ...]:
    out: list[Any] = []
    for name in _COLUMNS:
        value = getattr(case, name)
        if name == "invited":
            value = json.dumps(value, ensure_ascii=False)
        elif name == "urgent":
            value = int(value)
        elif isinstance(value, (Status, Category, Outcome)):
            value = str(value)
        out.append(value)
    return tuple(out)


def _case(row: sqlite3.Row) -> Case:
    return Case(
        code=row["code"],
        origin=row["origin"],
        queue=row["queue"],
        category=Category(row["category"]),
        urgent=bool(row["urgent"]),
        text=row["text"],
        origin_user=row["origin_user"],
        created=row["created"],
        due_at=row["due_at"],
        status=Status(row["status"]),
        queued_at=row["queued_at"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        room=row["room"],
        host=row["host"],
        invited=list(json.loads(row["invited"])),
        satisfaction=row["satisfaction"],
        resolved_at=row["resolved_at"],
        overdue_at=row["overdue_at"],
        link_iat=row["link_iat"],
        followup_call=row["followup_call"],
        followup_at=row["followup_at"],
    )
