"""Prometheus text exposition of the counters that live on streams, relays and sessions.

`render_metrics` is the synchronous part (cameras, WHEP); `render_all_metrics` adds families
read from other services: rooms, WebSocket clients, calls and roll calls, alert and other SLA
status counts, recorder disk use and the cluster. A service that is not running in this app (a
missing AppKey) is skipped, never an error, so /metrics works on any subset of the hub.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from hub.alerts.service import ALERTS
from hub.calls.service import CALLS
from hub.cameras.service import CAMERAS, WHEP
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.http.ws import WS
from hub.petitions.service import PETITIONS
from hub.recordings.service import RECORDINGS
from hub.rollcalls.service import ROLLCALLS
from hub.rooms.model import ROOMS
from hub.rooms.service import ROOM_MEDIA

Sample = tuple[str, float]
Family = Callable[[str, str, str, list[Sample]], None]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(app: web.Application) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")

    cameras = app[CAMERAS].all()

    def per_camera(attr: str) -> list[tuple[str, float]]:
        out = []
        for cam in cameras:
            stats = cam.stream.stats()
            value = stats[attr]
            assert isinstance(value, int | float)
            out.append((f'camera="{_escape(cam.id)}",centre="{cam.centre}"', float(value)))
        return out

    family(
        "zzhub_camera_packets_total",
        "counter",
        "Packets received from the camera.",
        per_camera("packets"),
    )
    family(
        "zzhub_camera_bytes_total",
        "counter",
        "Bytes received from the camera.",
        per_camera("bytes"),
    )
    family(
        "zzhub_camera_drops_total",
        "counter",
        "Packets dropped for slow consumers.",
        per_camera("drops"),
    )
    family(
        "zzhub_camera_reconnects_total", "counter", "Reconnect attempts.", per_camera("reconnects")
    )
    family("zzhub_camera_viewers", "gauge", "Leases held on the camera.", per_camera("viewers"))
    family("zzhub_camera_consumers", "gauge", "Relay consumers.", per_camera("consumers"))
    family("zzhub_camera_fps", "gauge", "Measured frame rate.", per_camera("fps"))
    family(
        "zzhub_camera_up",
        "gauge",
        "1 when the camera is online.",
        [
            (
                f'camera="{_escape(c.id)}",centre="{c.centre}"',
                1.0 if c.status() == "online" else 0.0,
            )
            for c in cameras
        ],
    )
    whep = app[WHEP]
    family("zzhub_whep_sessions", "gauge", "Open WHEP viewer sessions.", [("", float(len(whep)))])
    family(
        "zzhub_whep_sessions_created_total",
        "counter",
        "WHEP sessions created.",
        [("", float(whep.created))],
    )
    family(
        "zzhub_whep_sessions_failed_total",
        "counter",
        "WHEP offers refused or failed.",
        [("", float(whep.failed))],
    )
    return "\n".join(lines) + "\n"


class SlaCounting(Protocol):
    """What a service (petitions, notices…) offers to be counted by SLA status."""

    def sla_counts(self) -> dict[str, int]: ...


def _label(value: str) -> str:
    return f'"{_escape(value)}"'


async def render_all_metrics(app: web.Application) -> str:
    """Every family: the camera/WHEP families, then the service families."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[Sample]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")

    _service_families(app, family)
    await _alert_families(app, family)
    await _recorder_families(app, family)
    from hub.cluster.metrics import cluster_families  # the cluster knows its own counters

    cluster_families(app, family)
    return render_metrics(app) + "\n".join(lines) + "\n"


def _service_families(app: web.Application, family: Family) -> None:
    rooms = app[ROOMS].active() if ROOMS in app else []
    by_kind = Counter(str(r.kind) for r in rooms)
    family(
        "zzhub_rooms",
        "gauge",
        "Rooms not ended, by kind.",
        [(f"kind={_label(k)}", float(n)) for k, n in sorted(by_kind.items())],
    )
    seats = sum(1 for r in rooms for s in r.seats.values() if s.present)
    family("zzhub_room_seats", "gauge", "Seats present in rooms.", [("", float(seats))])
    media = app.get(ROOM_MEDIA)
    if media is not None:
        pubs = media.publications
        family(
            "zzhub_room_publications",
            "gauge",
            "Browser tracks published into rooms.",
            [("", float(len(pubs.publications())))],
        )
        family(
            "zzhub_room_subscribers",
            "gauge",
            "Subscriptions to room publications.",
            [("", float(len(pubs.subscriptions())))],
        )
        family(
            "zzhub_room_publish_failed_total",
            "counter",
            "Room publish/subscribe offers refused or failed.",
            [("", float(pubs.failed))],
        )
    if WS in app:
        clients = app[WS].clients
        by_role = Counter(str(c.principal.role) for c in clients)
        family(
            "zzhub_ws_clients",
            "gauge",
            "Open WebSocket clients, by role.",
            [(f"role={_label(r)}", float(n)) for r, n in sorted(by_role.items())],
        )
        family(
            "zzhub_ws_rate_limited_total",
            "counter",
            "Messages refused by the rate limit on open WebSockets.",
            [("", float(sum(c.limited for c in clients)))],
        )
    if EVENTS in app:
        bus = app[EVENTS]
        family(
            "zzhub_events_published_total", "counter", "Events published.", [("", bus.published)]
        )
        family("zzhub_event_subscribers", "gauge", "Event subscriptions.", [("", len(bus))])
    if CALLS in app:
        family("zzhub_calls_live", "gauge", "Live calls.", [("", len(app[CALLS].live()))])
    if ROLLCALLS in app:
        live = len(getattr(app[ROLLCALLS], "_live", {}))
        family("zzhub_rollcalls_live", "gauge", "Running roll calls.", [("", float(live))])
    sla: list[Sample] = []
    for name, key in (("petitions", PETITIONS),):
        service: Any = app.get(key)
        if service is not None and callable(getattr(service, "sla_counts", None)):
            counting: SlaCounting = service
            for status, n in sorted(counting.sla_counts().items()):
                sla.append((f"service={_label(name)},status={_label(status)}", float(n)))
    family("zzhub_sla_items", "gauge", "Items by SLA status (services that count).", sla)


async def _alert_families(app: web.Application, family: Family) -> None:
    if DB not in app or ALERTS not in app:
        return
    rows = await app[DB].fetchall("SELECT status, COUNT(*) AS n FROM alerts GROUP BY status")
    family(
        "zzhub_alerts",
        "gauge",
        "Alerts in the store, by status.",
        [(f"status={_label(str(r['status']))}", float(r["n"])) for r in rows],
    )
    alerts = app[ALERTS]
    family("zzhub_alerts_raised_total", "counter", "Alerts raised.", [("", alerts.raised)])
    family(
        "zzhub_alerts_dropped_total", "counter", "Alerts dropped (queue).", [("", alerts.dropped)]
    )


async def _recorder_families(app: web.Application, family: Family) -> None:
    if RECORDINGS not in app:
        return
    service = app[RECORDINGS]
    used = await service.index.total_bytes()
    family("zzhub_recordings_bytes", "gauge", "Bytes of recorded segments.", [("", used)])

    def usage(root: Path) -> tuple[int, int]:
        if not root.exists():
            return 0, 0
        du = shutil.disk_usage(root)
        return du.total, du.free

    total, free = await asyncio.to_thread(usage, service.root)
    family("zzhub_recordings_disk_total_bytes", "gauge", "Recording disk size.", [("", total)])
    family("zzhub_recordings_disk_free_bytes", "gauge", "Recording disk free.", [("", free)])
    retention = service.retention.stats()
    family(
        "zzhub_recordings_deleted_total",
        "counter",
        "Segments deleted by retention.",
        [("", retention["deleted"])],
    )
    family(
        "zzhub_recordings_segments_closed_total",
        "counter",
        "Segments closed.",
        [("", service.segments_closed)],
    )
