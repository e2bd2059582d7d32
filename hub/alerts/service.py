"""Alerts: persisted, pushed to operators of the centre and the centres above, acknowledged.

Every alert — motion in a zone, a camera going offline or coming back, a full disk, the
EXPERIMENTAL fire-like heuristic — goes through `Alerts.raise_alert()`: one SQLite row (with
its snapshot JPEG), then `alert.raised` on the event bus for the camera's centre (the bus hands
it to that centre and every centre above). Other components call `raise_alert()` directly (the
recorder does for `disk_full`) or, from synchronous code, `submit()`, which runs it in a task
the service owns. An `alert.raised` event published on the bus by someone else (no `id` in its
data) is stored too, without publishing it again.

An alert about a camera carries `play_from`: the time `pre_event` seconds before it, so the
console can play the recording from just before what happened
(`/api/cameras/{id}/whep?start=ISO`, served by the recordings component).

In a hub cluster an alert lives on the node that raised it (`claim("alert", id)`; every
alert kept here is re-claimed at start) and its id comes from the cluster's counter
(`SharedCounter` `alertseq`), so an id names one alert in the whole hub; while Redis is away
the local sequence numbers it (docs/deploy.md: what can collide). `hub.alerts.api` merges
the lists; the routes of one alert are forwarded to its owner.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from hub.core.centres import like
from hub.core.db import Database
from hub.core.events import Event, EventBus
from streams.hooks import Connection
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

MIGRATIONS = [
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        camera TEXT,
        centre TEXT NOT NULL,
        at REAL NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'open',
        acked_by TEXT,
        acked_at REAL,
        snapshot BLOB
    )""",
    "CREATE INDEX alerts_centre_at ON alerts (centre, at)",
]
MAX_PENDING = 256  # alerts being stored at once; past it new ones are dropped (counted)


class Ownership(Protocol):
    """What the alerts need of a hub cluster (`hub.core.cluster.ClusterLink`)."""

    def claim(self, kind: str, item: str, meta: dict[str, object] | None = None) -> None: ...

    def claim_many(self, kind: str, items: Iterable[str]) -> None: ...


class AlertKind(enum.StrEnum):
    MOTION = "motion"
    CAMERA_OFFLINE = "camera_offline"
    CAMERA_ONLINE = "camera_online"
    DISK_FULL = "disk_full"
    FIRE_EXPERIMENTAL = "fire_experimental"


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    ACKED = "acked"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    camera: str | None
    centre: str
    at: float
    details: dict[str, Any]
    status: AlertStatus
    acked_by: str | None
    acked_at: float | None
    has_snapshot: bool
    pre_event: float

    @classmethod
    def from_row(cls, row: sqlite3.Row, pre_event: float) -> Alert:
        return cls(
            row["id"],
            row["kind"],
            row["camera"],
            row["centre"],
            row["at"],
            json.loads(row["details"]),
            AlertStatus(row["status"]),
            row["acked_by"],
            row["acked_at"],
            bool(row["has_snapshot"]),
            pre_event,
        )

    def to_json(self) -> dict[str, Any]:
        cam = self.camera
        return {
            "id": self.id,
            "kind": self.kind,
            "camera": cam,
            "centre": self.centre,
            "at": iso(self.at),
            "ts": self.at,
            "details": self.details,
            "experimental": self.kind == AlertKind.FIRE_EXPERIMENTAL,
            "status": str(self.status),
            "acked_by": self.acked_by,
            "acked_at": iso(self.acked_at) if self.acked_at else None,
            "snapshot": f"/api/alerts/{self.id}/snapshot.jpg" if self.has_snapshot else None,
            "play_from": iso(self.at - self.pre_event) if cam else None,
            "play_url": f"/api/cameras/{cam}/whep?start={iso(self.at - self.pre_event)}"
            if cam
            else None,
        }


COLUMNS = (
    "id, kind, camera, centre, at, details, status, acked_by, acked_at, "
    "snapshot IS NOT NULL AS has_snapshot"
)


class Alerts:
    def __init__(
        self,
        db: Database,
        events: EventBus,
        *,
        pre_event: float = 10.0,
        owner: Ownership | None = None,
        ids: Callable[[int], Awaitable[int | None]] | None = None,
    ) -> None:
        self.db = db
        self.events = events
        self.pre_event = pre_event
        self._owner = owner  # a hub cluster: alerts raised here are held here
        self._ids = ids  # a hub cluster: (highest local id) → the next id, None when away
        self._numbering = asyncio.Lock()  # a cluster id and its insert, one alert at a time
        self._tasks = TaskSet("alerts", log)  # alerts being stored: awaited at close
        self._tapped: Connection | None = None
        self.raised = 0
        self.dropped = 0

    async def status_counts(self) -> dict[str, int]:
        """Alerts in the store by status (open, acknowledged…)."""
        rows = await self.db.fetchall("SELECT status, COUNT(*) AS n FROM alerts GROUP BY status")
        return {str(r["status"]): int(r["n"]) for r in rows}

    async def start(self) -> None:
        await self.db.migrate("alerts", MIGRATIONS)
        if self._owner is not None:
            rows = await self.db.fetchall("SELECT id FROM alerts")
            self._owner.claim_many("alert", (str(r["id"]) for r in rows))
        # alerts raised by other components (an `alert.raised` event without an id): seen as
        # they are published, none lost to a lagging queue; past MAX_PENDING they are counted
        self._tapped = self.events.taps.connect(self._store_foreign)

    async def close(self) -> None:
        if self._tapped is not None:
            self._tapped.disconnect()
        await self._tasks.close()  # alerts being stored finish (each is one quick insert)

    async def raise_alert(
        self,
        kind: str,
        camera: str | None,
        centre: str,
        details: dict[str, Any] | None = None,
        snapshot_jpeg: bytes | None = None,
        *,
        at: float | None = None,
        publish: bool = True,
    ) -> Alert:
        """Store an alert and push `alert.raised` to the centre's operators and those above."""
        at = time.time() if at is None else at
        body = json.dumps(details or {}, ensure_ascii=False, default=str)
        row = (str(kind), camera, centre, at, body, snapshot_jpeg or None)
        if self._ids is None:
            alert_id = await self._insert(None, row)
        else:
            async with self._numbering:
                top = await self.db.fetchone("SELECT COALESCE(MAX(id), 0) AS n FROM alerts")
                alert_id = await self._insert(await self._ids(top["n"] if top else 0), row)
        if self._owner is not None:
            self._owner.claim("alert", str(alert_id))
        alert = Alert(
            alert_id,
            str(kind),
            camera,
            centre,
            at,
            json.loads(body),
            AlertStatus.OPEN,
            None,
            None,
            bool(snapshot_jpeg),
            self.pre_event,
        )
        self.raised += 1
        log.info("alert %d %s camera=%s centre=%s", alert_id, kind, camera, centre)
        if publish:
            self.events.publish("alert.raised", centre, alert.to_json())
        return alert

    async def _insert(self, alert_id: int | None, row: tuple[Any, ...]) -> int:
        columns = "kind, camera, centre, at, details, snapshot"
        if alert_id is None:
            sql = f"INSERT INTO alerts ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
            return await self.db.execute(sql, row)
        sql = f"INSERT INTO alerts (id, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        return await self.db.execute(sql, (alert_id, *row))

    def submit(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` (e.g. a `raise_alert(...)`) in a task owned by the service."""
        if len(self._tasks) >= MAX_PENDING:
            self.dropped += 1
            work.close()
            log.warning("alert dropped: %d alerts already being stored", MAX_PENDING)
            return
        self._tasks.spawn(work, cancellable=False)

    def _store_foreign(self, event: Event) -> None:
        if event.topic != "alert.raised" or "id" in event.data or event.to_users:
            return
        data = dict(event.data)
        kind = str(data.pop("kind", "other"))
        camera = data.pop("camera", None)
        self.submit(self.raise_alert(kind, camera, event.centre, data, at=event.at, publish=False))

    async def get(self, alert_id: int) -> Alert | None:
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM alerts WHERE id = ?", (alert_id,))
        return Alert.from_row(row, self.pre_event) if row else None

    async def snapshot(self, alert_id: int) -> bytes | None:
        row = await self.db.fetchone("SELECT snapshot FROM alerts WHERE id = ?", (alert_id,))
        return bytes(row["snapshot"]) if row and row["snapshot"] else None

    async def list(
        self,
        scope: str,
        *,
        status: str | None = None,
        camera: str | None = None,
        centre: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts of `scope` and below, newest first; `centre` narrows to a subtree."""
        where, params = ["centre LIKE ?"], [like(scope)]
        if centre:
            where.append("centre LIKE ?")
            params.append(like(centre))
        if status:
            where.append("status = ?")
            params.append(status)
        if camera:
            where.append("camera = ?")
            params.append(camera)
        sql = (
            f"SELECT {COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
            "ORDER BY at DESC, id DESC LIMIT ?"
        )
        rows = await self.db.fetchall(sql, (*params, limit))
        return [Alert.from_row(r, self.pre_event) for r in rows]

    async def ack(self, alert_id: int, user: str) -> tuple[Alert, bool]:
        """Acknowledge; returns the alert and whether this call acknowledged it (an alert
        already acknowledged keeps its first who and when)."""
        now = time.time()

        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE alerts SET status = 'acked', acked_by = ?, acked_at = ? "
                "WHERE id = ? AND status = 'open'",
                (user, now, alert_id),
            ).rowcount

        changed = await self.db.transaction(update)
        alert = await self.get(alert_id)
        if alert is None:
            raise KeyError(alert_id)
        if changed:
            self.events.publish("alert.acked", alert.centre, alert.to_json())
        return alert, bool(changed)


ALERTS = web.AppKey("alerts", Alerts)
