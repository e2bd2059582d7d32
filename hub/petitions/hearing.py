"""Recording of hearings: every published seat of a hearing room, per track, under the case code.

`RoomMedia.on_published` calls `published(room, seat, publication)`; for a petition hearing it
returns the coroutine that starts `record_room(publication.video, tag=<case code>,
track=<user>)`. The recording is per participant track (video as received, no composite, no
re-encode). A seat that republishes has its previous recording stopped; a room that ends stops
all of its recordings. Stops run as tasks owned here; `close()` stops the rest and awaits all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from aiohttp import web

from hub.rooms.model import Room, Rooms, Seat
from signaling.publish import Publication
from streams.relay import Relay

log = logging.getLogger(__name__)


class Recording(Protocol):
    async def stop(self) -> None: ...


Record = Callable[[Relay, str, str, str], Awaitable[Recording]]  # relay, tag, track, centre


def track_name(user: str) -> str:
    """A user name as a recording track name (letters, digits, `_ . -`)."""
    return re.sub(r"[^\w.-]", "-", user).strip("-_.")[:64] or "user"


class HearingRecorder:
    def __init__(self, rooms: Rooms, record: Record, case_of: Callable[[Room], str | None]) -> None:
        self._record = record
        self._case_of = case_of
        self._rooms = rooms
        self._live: dict[tuple[str, str], Recording] = {}  # (room id, user) → recording
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = 0
        self._hooked = rooms.on_end.connect(self._room_ended)

    def published(
        self, room: Room, seat: Seat, publication: Publication
    ) -> Coroutine[Any, Any, None] | None:
        code = self._case_of(room)
        if code is None:
            return None
        return self._start(room, seat, publication, code)

    async def _start(self, room: Room, seat: Seat, publication: Publication, code: str) -> None:
        old = self._live.pop((room.id, seat.user), None)
        if old is not None:
            await old.stop()
        if room.ended:
            return
        recording = await self._record(publication.video, code, track_name(seat.user), room.centre)
        self._live[(room.id, seat.user)] = recording
        self.started += 1
        log.info("case %s: recording %s", code, seat.user)

    def _room_ended(self, room: Room) -> None:
        for key in [k for k in self._live if k[0] == room.id]:
            self._spawn(self._live.pop(key).stop())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop_room(self, room_id: str) -> None:
        """Stop the recordings of `room_id` now and wait until their files are closed."""
        keys = [k for k in self._live if k[0] == room_id]
        await asyncio.gather(*(self._live.pop(k).stop() for k in keys))
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        self._hooked.disconnect()
        live, self._live = list(self._live.values()), {}
        await asyncio.gather(*(r.stop() for r in live), return_exceptions=True)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


HEARINGS = web.AppKey("hearings", HearingRecorder)
