"""The rooms service in the app: the SFU, its glue to rooms, and the roll-call snapshot hook."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from hub.core.state import CONFIG
from hub.rollcalls.service import ROLLCALLS
from hub.rooms.model import ROOMS, Room, RoomKind, Seat
from hub.rooms.service import ROOM_MEDIA, RoomMedia
from signaling.publish import Publication, Publications
from streams.snapshot import SnapshotUnavailable, snapshot_jpeg

log = logging.getLogger(__name__)

SNAPSHOT_WAIT = 10.0  # seconds for a roll-call terminal's first keyframe


async def rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    media: RoomMedia | None = None

    def closed(publication: Publication, reason: str) -> None:
        if media is not None:
            media.publication_closed(publication, reason)

    publications = Publications(
        cfg.webrtc.ice_servers,
        connect_timeout=cfg.webrtc.session_timeout,
        on_close=closed,
        fast_rtp=cfg.webrtc.fast_rtp,
    )
    media = RoomMedia(app[ROOMS], publications)
    media.on_published.append(lambda room, seat, pub: _rollcall_snapshot(app, room, seat, pub))
    app[ROOM_MEDIA] = media
    media.start()
    yield
    await media.close()


def _rollcall_snapshot(
    app: web.Application, room: Room, seat: Seat, publication: Publication
) -> Coroutine[Any, Any, None] | None:
    """A duty terminal answering a roll call publishes its video: keep one picture of it in
    the roll-call ledger."""
    if room.kind is not RoomKind.ROLLCALL or seat.user == room.host:
        return None
    rollcall_id = app[ROLLCALLS].for_room(room.id)
    if rollcall_id is None:
        return None
    return _take_snapshot(app, rollcall_id, seat.centre, publication)


async def _take_snapshot(
    app: web.Application, rollcall_id: str, centre: str, publication: Publication
) -> None:
    relay = publication.video
    if not await relay.wait_keyframe(SNAPSHOT_WAIT) or relay.info is None:
        log.info("roll call %s: no picture from %s", rollcall_id, centre)
        return
    try:
        jpeg = await snapshot_jpeg(relay.info, relay.gop()[:8])
    except SnapshotUnavailable as err:
        log.info("roll call %s: no snapshot from %s: %s", rollcall_id, centre, err)
        return
    await app[ROLLCALLS].attach_snapshot(rollcall_id, centre, jpeg)
