"""Signed-out tokens: every token of a user issued before a moment is refused from then on.

`POST /api/logout` signs the caller's tokens out; an admin signs out another user's
(`POST /api/users/{user}/revoke`, for a lost phone or a user who left). Tokens carry their
issue time in milliseconds (`ims`; older tokens their `iat` second). The moments are rows in
SQLite (a restart keeps them) and are also published as `auth.revoked` events, which a hub
cluster carries to every node, so a token signed out on one node is refused on all.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from hub.core.db import Database
from hub.core.events import Event, EventBus
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

MIGRATIONS = [
    """CREATE TABLE token_revocations (
        user TEXT PRIMARY KEY, not_before_ms INTEGER NOT NULL
    )"""
]
TOPIC = "auth.revoked"


class Revocations:
    def __init__(self, db: Database, events: EventBus) -> None:
        self.db = db
        self.events = events
        self._not_before: dict[str, int] = {}
        self._writes = TaskSet("token revocations", log)  # other nodes' sign-outs, stored
        self._tapped = events.taps.connect(self._heard)

    async def start(self) -> None:
        await self.db.migrate("token_revocations", MIGRATIONS)
        for row in await self.db.fetchall("SELECT user, not_before_ms FROM token_revocations"):
            self._not_before[str(row["user"])] = int(row["not_before_ms"])

    async def close(self) -> None:
        self._tapped.disconnect()
        await self._writes.close()

    def revoked(self, user: str, issued_ms: int) -> bool:
        """Was this token of `user` (issued at `issued_ms`) signed out?"""
        return issued_ms < self._not_before.get(user, 0)

    async def revoke(self, user: str) -> int:
        """Sign out every token of `user` issued up to now; returns that moment (ms)."""
        now = int(time.time() * 1000) + 1
        if self._apply(user, now):
            await self._write(user, now)
        self.events.publish(TOPIC, "", {"user": user, "not_before_ms": now}, to_users={user})
        return now

    def _apply(self, user: str, not_before_ms: int) -> bool:
        """Refuse `user`'s older tokens from now on; False if an equal or later moment holds."""
        if not_before_ms <= self._not_before.get(user, 0):
            return False
        self._not_before[user] = not_before_ms
        return True

    async def _write(self, user: str, not_before_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO token_revocations (user, not_before_ms) VALUES (?, ?) "
            "ON CONFLICT (user) DO UPDATE SET not_before_ms = excluded.not_before_ms",
            (user, not_before_ms),
        )

    def _heard(self, event: Event) -> None:
        """Another node's sign-out (its event reached this node's bus)."""
        if event.topic != TOPIC or not event.origin:
            return
        user, when = event.data.get("user"), event.data.get("not_before_ms")
        if isinstance(user, str) and isinstance(when, int) and self._apply(user, when):
            self._writes.spawn(self._write(user, when), cancellable=False)  # the row follows


REVOCATIONS = web.AppKey("revocations", Revocations)
