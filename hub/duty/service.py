"""Operator duty checks (值班查岗): random prompts, answers, escalation, daily report.

For every on-duty user (the configured users with one of `duty.roles`, or those listed in
`duty.users`) a task waits a random time between `min_interval` and `max_interval`, then, if
inside `duty.hours`, asks: a `duty.check` event addressed to that user alone. The user answers
with `POST /api/duty/{id}/answer` within `answer_within`; otherwise the check is marked
missed, logged, and a `duty.missed` event goes to the centre above the user's (a county user's
own centre when there is none above). Checks are rows in SQLite, so the daily report and
pending deadlines survive a restart. Dispatchers may also ask at once (`ask()`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from config.schema import DutyConfig, UserConfig, parent_of
from hub.alerts.service import iso
from hub.core.centres import like
from hub.core.db import Database
from hub.core.errors import Conflict, NotFound
from hub.core.events import EventBus
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

MIGRATIONS = [
    """CREATE TABLE duty_checks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        centre TEXT NOT NULL,
        asked_at REAL NOT NULL,
        deadline REAL NOT NULL,
        asked_by TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        answered_at REAL,
        escalated_to TEXT
    )""",
    "CREATE INDEX duty_checks_asked ON duty_checks (asked_at)",
]


@dataclass(frozen=True, slots=True)
class Check:
    id: int
    user: str
    centre: str
    asked_at: float
    deadline: float
    asked_by: str
    status: str  # pending | answered | missed
    answered_at: float | None
    escalated_to: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "centre": self.centre,
            "asked_at": iso(self.asked_at),
            "deadline": iso(self.deadline),
            "asked_by": self.asked_by,
            "status": self.status,
            "answered_at": iso(self.answered_at) if self.answered_at else None,
            "response_seconds": round(self.answered_at - self.asked_at, 1)
            if self.answered_at
            else None,
            "escalated_to": self.escalated_to,
            "answer": f"/api/duty/{self.id}/answer",
        }


def _check(row: sqlite3.Row) -> Check:
    return Check(
        row["id"],
        row["user"],
        row["centre"],
        row["asked_at"],
        row["deadline"],
        row["asked_by"],
        row["status"],
        row["answered_at"],
        row["escalated_to"],
    )


class DutyChecks:
    def __init__(
        self,
        db: Database,
        events: EventBus,
        config: DutyConfig,
        users: list[UserConfig],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.events = events
        self.config = config
        self.users = {u.name: u for u in users}
        self.rng = rng or random.Random()
        self._tasks = TaskSet("duty checks", log)  # prompt loops and deadlines: cancelled at close
        self.asked = 0
        self.missed = 0

    def on_duty(self) -> list[UserConfig]:
        c = self.config
        if c.users:
            return [self.users[n] for n in c.users if n in self.users]
        return [u for u in self.users.values() if u.role in c.roles]

    def _spawn(self, work: Any) -> None:
        self._tasks.spawn(work)

    async def start(self) -> None:
        await self.db.migrate("duty", MIGRATIONS)
        for row in await self.db.fetchall("SELECT * FROM duty_checks WHERE status = 'pending'"):
            self._spawn(self._expire(_check(row)))  # deadlines survive a restart
        if self.config.enabled:
            for user in self.on_duty():
                self._spawn(self._prompt_loop(user))

    async def close(self) -> None:
        await self._tasks.close()

    def _in_hours(self, now: float) -> bool:
        if not self.config.hours:
            return True
        from streams.motion import Schedule, Window

        windows = tuple(
            Window(frozenset(h.days), dt.time.fromisoformat(h.start), dt.time.fromisoformat(h.end))
            for h in self.config.hours
        )
        return Schedule(windows, self.config.timezone).active(now)

    async def _prompt_loop(self, user: UserConfig) -> None:
        c = self.config
        while True:
            await asyncio.sleep(self.rng.uniform(c.min_interval, c.max_interval))
            if self._in_hours(time.time()):
                try:
                    await self.ask(user.name, asked_by="schedule")
                except (sqlite3.Error, RuntimeError) as err:
                    log.error("duty check for %s failed: %s", user.name, err)

    async def ask(self, user_name: str, *, asked_by: str) -> Check:
        user = self.users.get(user_name)
        if user is None:
            raise NotFound(f"no configured user {user_name!r}")
        now = time.time()
        deadline = now + self.config.answer_within
        check_id = await self.db.execute(
            "INSERT INTO duty_checks (user, centre, asked_at, deadline, asked_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (user.name, user.centre, now, deadline, asked_by),
        )
        check = Check(
            check_id, user.name, user.centre, now, deadline, asked_by, "pending", None, None
        )
        self.asked += 1
        within = self.config.answer_within
        if within >= 60:  # whole minutes, rounded down: never more time than it gives
            zh, en = f"{int(within // 60)} 分钟", f"{int(within // 60)} min"
        else:
            zh, en = f"{int(within)} 秒", f"{int(within)} s"
        self.events.publish(
            "duty.check",
            user.centre,
            {
                **check.to_json(),
                "message": f"值班查岗：请在 {zh}内确认在岗 Duty check: confirm within {en}",
            },
            to_users={user.name},
        )
        self._spawn(self._expire(check))
        return check

    async def get(self, check_id: int) -> Check | None:
        row = await self.db.fetchone("SELECT * FROM duty_checks WHERE id = ?", (check_id,))
        return _check(row) if row else None

    async def answer(self, check_id: int, user: str) -> Check:
        now = time.time()

        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE duty_checks SET status = 'answered', answered_at = ? "
                "WHERE id = ? AND user = ? AND status = 'pending' AND deadline >= ?",
                (now, check_id, user, now),
            ).rowcount

        changed = await self.db.transaction(update)
        check = await self.get(check_id)
        if check is None or check.user != user:
            raise NotFound(f"no duty check {check_id} for you")
        if not changed and check.status != "answered":
            raise Conflict("too late: this check was already escalated")
        if changed:
            self.events.publish("duty.answered", check.centre, check.to_json())
        return check

    async def _expire(self, check: Check) -> None:
        await asyncio.sleep(max(0.0, check.deadline - time.time()))
        target = parent_of(check.centre) or check.centre

        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE duty_checks SET status = 'missed', escalated_to = ? "
                "WHERE id = ? AND status = 'pending'",
                (target, check.id),
            ).rowcount

        if not await self.db.transaction(update):
            return
        self.missed += 1
        log.warning(
            "duty check %d: %s (%s) did not answer in time; escalated to %s",
            check.id,
            check.user,
            check.centre,
            target,
        )
        missed = await self.get(check.id)
        if missed is not None:
            self.events.publish("duty.missed", target, missed.to_json())

    async def pending(self, user: str) -> list[Check]:
        rows = await self.db.fetchall(
            "SELECT * FROM duty_checks WHERE user = ? AND status = 'pending' ORDER BY id", (user,)
        )
        return [_check(r) for r in rows]

    async def report(self, scope: str, day: dt.date) -> dict[str, Any]:
        tz = ZoneInfo(self.config.timezone)
        start = dt.datetime.combine(day, dt.time(0), tz).timestamp()
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz).timestamp()
        rows = await self.db.fetchall(
            "SELECT * FROM duty_checks WHERE asked_at >= ? AND asked_at < ? "
            "AND centre LIKE ? ORDER BY asked_at",
            (start, end, like(scope)),
        )
        checks = [_check(r) for r in rows]
        users: dict[str, dict[str, Any]] = {}
        for c in checks:
            u = users.setdefault(
                c.user,
                {
                    "user": c.user,
                    "centre": c.centre,
                    "asked": 0,
                    "answered": 0,
                    "missed": 0,
                    "pending": 0,
                    "_times": [],
                },
            )
            u["asked"] += 1
            u[c.status] += 1
            if c.answered_at:
                u["_times"].append(c.answered_at - c.asked_at)
        for u in users.values():
            times = u.pop("_times")
            u["mean_response_seconds"] = round(sum(times) / len(times), 1) if times else None
        return {
            "date": day.isoformat(),
            "timezone": self.config.timezone,
            "scope": scope,
            "users": sorted(users.values(), key=lambda u: u["user"]),
            "checks": [c.to_json() for c in checks],
        }


DUTY = web.AppKey("duty", DutyChecks)
