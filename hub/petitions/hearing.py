"""Recording of hearings: every published seat of a hearing room, per track, under the case code.

`Rooms.on_published` calls `published(room, seat, publication)`; for a petition hearing it
returns the coroutine that starts recording `publication.video` under the case code, a track
per participant (video as received, no composite, no re-encode), through the rooms'
`SeatRecorder`: a seat that republishes has its previous recording stopped; a room that ends
stops all of its recordings; `close()` stops the rest and awaits all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from hub.rooms.model import Room, Rooms, Seat
from hub.rooms.service import Recorder, SeatRecorder
from signaling.publish import Publication

log = logging.getLogger(__name__)


def track_name(user: str) -> str:
    """A user name as a recording track name (letters, digits, `_ . -`)."""
    return re.sub(r"[^\w.-]", "-", user).strip("-_.")[:64] or "user"


class HearingRecorder:
    def __init__(
        self, rooms: Rooms, recorder: Recorder, case_of: Callable[[Room], str | None]
    ) -> None:
        self._seats = SeatRecorder(recorder)
        self._case_of = case_of
        self._rooms = rooms
        self._hooked = rooms.on_end.connect(self._room_ended)

    @property
    def started(self) -> int:
        return self._seats.started

    def published(
        self, room: Room, seat: Seat, publication: Publication
    ) -> Coroutine[Any, Any, None] | None:
        code = self._case_of(room)
        if code is None:
            return None
        return self._start(room, seat, publication, code)

    async def _start(self, room: Room, seat: Seat, publication: Publication, code: str) -> None:
        track = track_name(seat.user)
        await self._seats.start(room, seat.user, publication.video, tag=code, track=track)
        if self._seats.recording(room.id, seat.user):
            log.info("case %s: recording %s", code, seat.user)

    def _room_ended(self, room: Room) -> None:
        self._seats.stop_room_soon(room.id)

    async def stop_room(self, room_id: str) -> None:
        """Stop the recordings of `room_id` now and wait until their files are closed."""
        await self._seats.stop_room(room_id)

    async def close(self) -> None:
        self._hooked.disconnect()
        await self._seats.close()


HEARINGS = web.AppKey("hearings", HearingRecorder)
