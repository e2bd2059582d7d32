"""Notices in SQLite (component "notices"): each notice, its target centres, its attachments,
and one receipt per user (delivered at, read at). A user with no receipt for a notice of its
centre has it queued: it is delivered on the user's next WebSocket connect."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from hub.core.centres import like
from hub.core.db import Database

MIGRATIONS = [
    """
    CREATE TABLE notices (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        sender TEXT NOT NULL,
        centre TEXT NOT NULL,
        targets TEXT NOT NULL,
        attachment TEXT,
        created REAL NOT NULL
    );
    CREATE TABLE notice_targets (
        notice TEXT NOT NULL REFERENCES notices(id),
        centre TEXT NOT NULL,
        PRIMARY KEY (notice, centre)
    );
    CREATE INDEX notice_targets_by_centre ON notice_targets(centre);
    CREATE TABLE notice_receipts (
        notice TEXT NOT NULL REFERENCES notices(id),
        user TEXT NOT NULL,
        centre TEXT NOT NULL,
        delivered REAL,
        read REAL,
        PRIMARY KEY (notice, user)
    );
    CREATE TABLE notice_attachments (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        uploader TEXT NOT NULL,
        centre TEXT NOT NULL,
        created REAL NOT NULL
    )
    """
]


@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    name: str
    content_type: str
    size: int
    uploader: str
    centre: str
    created: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "url": f"/api/notices/attachments/{self.id}",
        }


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    title: str
    text: str
    sender: str
    centre: str
    targets: list[str]
    attachment: Attachment | None
    created: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "sender": self.sender,
            "centre": self.centre,
            "targets": self.targets,
            "attachment": self.attachment.to_json() if self.attachment else None,
            "created": self.created,
        }


class NoticeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        await self.db.migrate("notices", MIGRATIONS)

    async def add_attachment(self, a: Attachment) -> None:
        await self.db.execute(
            "INSERT INTO notice_attachments VALUES (?, ?, ?, ?, ?, ?, ?)",
            (a.id, a.name, a.content_type, a.size, a.uploader, a.centre, a.created),
        )

    async def attachment(self, attachment_id: str) -> Attachment | None:
        row = await self.db.fetchone(
            "SELECT * FROM notice_attachments WHERE id = ?", (attachment_id,)
        )
        return _attachment(row) if row is not None else None

    async def attachment_targets(self, attachment_id: str) -> set[str]:
        rows = await self.db.fetchall(
            "SELECT t.centre FROM notices n JOIN notice_targets t ON t.notice = n.id "
            "WHERE n.attachment = ?",
            (attachment_id,),
        )
        return {r["centre"] for r in rows}

    async def ids(self) -> list[str]:
        return [r["id"] for r in await self.db.fetchall("SELECT id FROM notices")]

    async def attachment_ids(self) -> list[str]:
        return [r["id"] for r in await self.db.fetchall("SELECT id FROM notice_attachments")]

    async def add(self, n: Notice) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO notices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    n.id,
                    n.title,
                    n.text,
                    n.sender,
                    n.centre,
                    json.dumps(n.targets),
                    n.attachment.id if n.attachment else None,
                    n.created,
                ),
            )
            conn.executemany(
                "INSERT INTO notice_targets VALUES (?, ?)", [(n.id, c) for c in n.targets]
            )

        await self.db.transaction(insert)

    async def get(self, notice_id: str) -> Notice | None:
        row = await self.db.fetchone("SELECT * FROM notices WHERE id = ?", (notice_id,))
        return await self._notice(row) if row is not None else None

    async def sent(self, scope: str, limit: int) -> list[Notice]:
        rows = await self.db.fetchall(
            "SELECT * FROM notices WHERE centre LIKE ? ORDER BY created DESC LIMIT ?",
            (like(scope), limit),
        )
        return [await self._notice(r) for r in rows]

    async def for_centre(self, centre: str, since: float, limit: int) -> list[Notice]:
        rows = await self.db.fetchall(
            "SELECT n.* FROM notices n JOIN notice_targets t ON t.notice = n.id "
            "WHERE t.centre = ? AND n.created >= ? ORDER BY n.created DESC LIMIT ?",
            (centre, since, limit),
        )
        return [await self._notice(r) for r in rows]

    async def pending(self, user: str, centre: str, since: float, limit: int) -> list[Notice]:
        """Notices of `centre` never delivered to `user`, oldest first."""
        rows = await self.db.fetchall(
            "SELECT n.* FROM notices n JOIN notice_targets t ON t.notice = n.id "
            "WHERE t.centre = ? AND n.created >= ? AND NOT EXISTS (SELECT 1 FROM "
            "notice_receipts r WHERE r.notice = n.id AND r.user = ? AND r.delivered IS NOT NULL) "
            "ORDER BY n.created LIMIT ?",
            (centre, since, user, limit),
        )
        return [await self._notice(r) for r in rows]

    async def delivered(self, notice_id: str, users: list[tuple[str, str]], at: float) -> None:
        await self.db.transaction(
            lambda conn: conn.executemany(
                "INSERT INTO notice_receipts (notice, user, centre, delivered) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(notice, user) DO UPDATE SET "
                "delivered = COALESCE(delivered, excluded.delivered)",
                [(notice_id, user, centre, at) for user, centre in users],
            )
        )

    async def read(self, notice_id: str, user: str, centre: str, at: float) -> None:
        await self.db.execute(
            "INSERT INTO notice_receipts (notice, user, centre, delivered, read) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(notice, user) DO UPDATE SET "
            "delivered = COALESCE(delivered, excluded.delivered), "
            "read = COALESCE(read, excluded.read)",
            (notice_id, user, centre, at, at),
        )

    async def receipts(self, notice_id: str) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT user, centre, delivered, read FROM notice_receipts WHERE notice = ? "
            "ORDER BY centre, user",
            (notice_id,),
        )

    async def _notice(self, row: sqlite3.Row) -> Notice:
        attachment = await self.attachment(row["attachment"]) if row["attachment"] else None
        return Notice(
            row["id"],
            row["title"],
            row["text"],
            row["sender"],
            row["centre"],
            json.loads(row["targets"]),
            attachment,
            row["created"],
        )


def _attachment(row: sqlite3.Row) -> Attachment:
    return Attachment(
        row["id"],
        row["name"],
        row["content_type"],
        row["size"],
        row["uploader"],
        row["centre"],
        row["created"],
    )
