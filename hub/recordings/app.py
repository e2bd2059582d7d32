"""The recordings slice in the app: recorders, playback, their routes, and the audit of
every viewer session (live views and playbacks).

Viewer sessions close at shutdown before any cleanup context (`hub.cameras.app`), so their
audit rows and playbacks still have a home; then playbacks and recorders stop, then (in the
earlier contexts) the cameras, the audit log and the database.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from config.schema import HubConfig
from hub.cameras.service import CAMERAS, PLAYBACK, VIEWERS
from hub.core.audit import AUDIT
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family
from hub.recordings import api
from hub.recordings.playback import PLAYBACKS, PlaybackRegistry
from hub.recordings.service import RECORDINGS, RecordingService
from hub.recordings.store import RecordingIndex
from signaling.whep import WhepSession

log = logging.getLogger(__name__)


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(recordings_ctx)
    api.add_routes(app)
    app[PLAYBACK] = api.CameraPlayback(app)
    viewers = app[VIEWERS]
    viewers.opened.connect(lambda session: whep_opened(app, session))
    viewers.closed.connect(lambda session, reason: whep_closed(app, session, reason))
    app[METRICS].add("recordings", lambda family: _families(app, family))


async def recordings_ctx(app: web.Application) -> AsyncIterator[None]:
    index = RecordingIndex(app[DB])
    service = RecordingService(app[CONFIG], index, app[CAMERAS], app[EVENTS])
    playbacks = PlaybackRegistry(index, service.root)
    app[RECORDINGS] = service
    app[PLAYBACKS] = playbacks
    await service.start()
    yield
    await playbacks.close()
    await service.close()


def _centre(app: web.Application, camera_id: str) -> str:
    cam = app[CAMERAS].get(camera_id)
    return cam.centre if cam is not None else ""


def whep_opened(app: web.Application, session: WhepSession) -> None:
    """WhepSessions' on_open: a live view starts (playbacks are audited by their endpoint)."""
    try:
        cam = app[CAMERAS].get(session.camera)
        if cam is None or session.lease.stream is not cam.stream:
            return  # a playback stream
        app[AUDIT].record(
            session.user,
            "view.start",
            f"camera:{session.camera}",
            {"session": session.id},
            cam.centre,
        )
    except Exception:  # auditing must never break the viewer
        log.exception("audit of a WHEP start failed")


def whep_closed(app: web.Application, session: WhepSession, reason: str) -> None:
    """WhepSessions' on_close: a live view or a playback stops."""
    try:
        playback = app[PLAYBACKS].ended(session.id) if PLAYBACKS in app else None
        action = "playback.stop" if playback is not None else "view.stop"
        details: dict[str, object] = {
            "session": session.id,
            "reason": reason,
            "seconds": round(time.time() - session.created, 1),
        }
        if playback is not None:
            details["position_ms"] = playback.control.position_ms
        app[AUDIT].record(
            session.user, action, f"camera:{session.camera}", details, _centre(app, session.camera)
        )
    except Exception:
        log.exception("audit of a WHEP stop failed")


async def _families(app: web.Application, family: Family) -> None:
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
