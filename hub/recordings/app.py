"""Wiring of recordings, playback and the audit log into the app (cleanup contexts, hooks).

`hub/app.py` appends `audit_ctx` and `recordings_ctx` after the cameras and before WHEP, so
on shutdown WHEP sessions close first (their audit rows and playbacks still have a home), then
playbacks and recorders, then the audit log, then the cameras and the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from hub.cameras.service import CAMERAS
from hub.core.audit import AUDIT, AuditLog
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.recordings.playback import PLAYBACKS, PlaybackRegistry
from hub.recordings.service import RECORDINGS, RecordingService
from hub.recordings.store import RecordingIndex
from signaling.whep import WhepSession

log = logging.getLogger(__name__)


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    audit = AuditLog(app[DB])
    await audit.start()
    app[AUDIT] = audit
    yield
    await audit.close()


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
