"""The cameras slice in the app: the registry of camera streams, their decoded pictures, the
WHEP viewer sessions, the hub-to-hub relay leg, their routes, health counts and metric
families.

Viewer sessions are closed at shutdown, before any cleanup context is torn down (viewers go
first); `VIEWERS` tells the other slices when a session opens or closes (the recordings slice
audits live views and ends playbacks there).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.cameras import api, relay
from hub.cameras.service import (
    CAMERAS,
    PICTURES,
    VIEWERS,
    WHEP,
    Camera,
    CameraRegistry,
    PictureSources,
    Viewers,
)
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family, escape
from hub.http.system import HEALTH
from signaling.whep import WhepSession, WhepSessions

log = logging.getLogger(__name__)


def setup(app: web.Application, config: HubConfig) -> None:
    app[VIEWERS] = Viewers()
    app.cleanup_ctx.append(_cameras_ctx)
    app.on_shutdown.append(_close_viewers)
    api.add_routes(app)
    relay.add_routes(app)  # another hub node pulls a camera from here (admin token)
    app[HEALTH].append(lambda: _health(app))
    app[METRICS].add("cameras", lambda family: _families(app, family))


async def _cameras_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    registry = CameraRegistry(cfg)
    app[CAMERAS] = registry
    events = app[EVENTS]

    def status_changed(camera: Camera, old: str, new: str) -> None:
        events.publish(
            "camera.status", camera.centre, {"camera": camera.id, "status": new, "was": old}
        )

    registry.on_status.connect(status_changed)
    pictures = PictureSources(cfg)
    app[PICTURES] = pictures
    viewers = app[VIEWERS]

    def opened(session: WhepSession) -> None:
        viewers.opened.emit(session)

    def closed(session: WhepSession, reason: str) -> None:
        log.info("viewer %s stopped watching %s (%s)", session.user, session.camera, reason)
        viewers.closed.emit(session, reason)

    sessions = WhepSessions(
        cfg.webrtc.ice_servers,
        connect_timeout=cfg.webrtc.session_timeout,
        queue_packets=min(cfg.streams.queue_packets, 120),
        fast_rtp=cfg.webrtc.fast_rtp,
        on_close=closed,
        on_open=opened,
    )
    app[WHEP] = sessions
    registry.start()
    try:
        yield
    finally:
        await sessions.close_all()
        await pictures.close()
        await registry.close()


async def _close_viewers(app: web.Application) -> None:
    if WHEP in app:
        await app[WHEP].close_all()


def _health(app: web.Application) -> dict[str, object]:
    cameras = app[CAMERAS].all() if CAMERAS in app else []
    return {
        "cameras": len(cameras),
        "online": sum(1 for c in cameras if c.status() == "online"),
        "viewers": len(app[WHEP]) if WHEP in app else 0,
    }


def _families(app: web.Application, family: Family) -> None:
    cameras = app[CAMERAS].all()

    def per_camera(attr: str) -> list[tuple[str, float]]:
        out = []
        for cam in cameras:
            stats = cam.stream.stats()
            value = stats[attr]
            assert isinstance(value, int | float)
            out.append((f'camera="{escape(cam.id)}",centre="{cam.centre}"', float(value)))
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
                f'camera="{escape(c.id)}",centre="{c.centre}"',
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
