"""Glue between rooms (who sits where) and the SFU (`signaling.publish`: published tracks).

Owns: the room media lifetimes — a seat that leaves or is removed has its publication ended;
a publisher whose connection drops leaves its seat (so a return within the grace period gets
the same seat back); a room that ends ends all its media — and the active-speaker tracker,
a task that picks the loudest seat of each room from the publishers' audio levels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from aiohttp import web

from config.schema import Role
from hub.core.auth import Principal
from hub.core.errors import NotFound
from hub.rooms.model import Room, Rooms, Seat
from signaling.publish import Publication, Publications
from streams.relay import Relay
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

SPEAKER_INTERVAL = 0.5
SPEAKER_THRESHOLD = 0.05  # audio level (0..1) under which nobody is speaking


class RoomMedia:
    def __init__(self, rooms: Rooms, publications: Publications) -> None:
        self.rooms = rooms
        self.publications = publications
        self._room_of: dict[str, tuple[str, str]] = {}  # publication id → (room id, user)
        # room id → {subscription session id: subscribing user}
        self._subscriptions: dict[str, dict[str, str]] = {}
        self._tasks = TaskSet("room media", log)  # unpublishing, snapshots: awaited at close
        self._speaker_task: asyncio.Task[None] | None = None
        self._closing = False
        self._hooked = [
            rooms.on_seat_left.connect(self._seat_left),
            rooms.on_end.connect(self._room_ended),
        ]

    def start(self) -> None:
        self._speaker_task = asyncio.get_running_loop().create_task(self._track_speakers())

    # -- publications -------------------------------------------------------------------
    async def publish(self, room: Room, seat: Seat, offer: str) -> tuple[Publication, str]:
        # the new offer first: a refused one leaves the live publication and the seat as
        # they were; the old publication ends only once the new one stands
        old = seat.publication
        publication, answer = await self.publications.publish(offer, owner=seat.user)
        self._room_of[publication.id] = (room.id, seat.user)
        self.rooms.seat_publication(room, seat.user, publication.id)
        if old is not None:
            self._room_of.pop(old, None)  # its close is not the seat leaving
            await self.publications.unpublish(old, "republished")
        if seat.muted:
            publication.audio_muted = True
        for work in self.rooms.on_published.emit(room, seat, publication):
            if work is not None:
                self._spawn(work)
        return publication, answer

    def publication_closed(self, publication: Publication, reason: str) -> None:
        """The SFU's on_close: a publisher's connection ended."""
        where = self._room_of.pop(publication.id, None)
        if where is None or self._closing:
            return
        room = self.rooms.get(where[0])
        if room is None or room.ended:
            return
        seat = room.seats.get(where[1])
        if seat is not None and seat.publication == publication.id:
            log.info("room %s: %s's media ended (%s)", room.id, seat.user, reason)
            self.rooms.leave(room, seat.user)

    async def subscribe(
        self, room: Room, publication_id: str, offer: str, user: str
    ) -> tuple[str, str]:
        session_id, answer = await self.publications.subscribe(publication_id, offer, user=user)
        self._subscriptions.setdefault(room.id, {})[session_id] = user
        return session_id, answer

    async def unsubscribe(self, room: Room, session_id: str, who: Principal) -> None:
        """End a subscription of this room: its subscriber's own (or an admin's doing).
        Anyone else, or a session of another room, is told it does not exist."""
        sessions = self._subscriptions.get(room.id, {})
        owner = sessions.get(session_id)
        if owner is None or (owner != who.user and who.role is not Role.ADMIN):
            raise NotFound("no such subscription in this room")
        del sessions[session_id]
        await self.publications.unsubscribe(session_id)

    def mute(self, room: Room, seat: Seat) -> None:
        publication = self.publications.get(seat.publication or "")
        if publication is not None:
            publication.audio_muted = seat.muted

    # -- lifetimes ----------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        self._tasks.spawn(coro, cancellable=False)

    def _seat_left(self, room: Room, seat: Seat) -> None:
        if self._closing:
            return
        if seat.publication is not None:
            self._room_of.pop(seat.publication, None)
            self._spawn(self.publications.unpublish(seat.publication, "left the room"))
        # what the departed seat was receiving ends too: a removed user must not keep watching
        sessions = self._subscriptions.get(room.id, {})
        for session_id, user in list(sessions.items()):
            if user == seat.user:
                del sessions[session_id]
                self._spawn(self.publications.unsubscribe(session_id))

    def _room_ended(self, room: Room) -> None:
        if self._closing:
            return
        for session_id in self._subscriptions.pop(room.id, {}):
            self._spawn(self.publications.unsubscribe(session_id))

    async def _track_speakers(self) -> None:
        while True:
            await asyncio.sleep(SPEAKER_INTERVAL)
            for room in self.rooms.active():
                loudest, level = None, SPEAKER_THRESHOLD
                for seat in room.seats.values():
                    publication = self.publications.get(seat.publication or "")
                    if publication is None or seat.muted:
                        continue
                    if publication.audio_level > level:
                        loudest, level = seat.user, publication.audio_level
                if loudest is not None or room.active_speaker is not None:
                    self.rooms.set_active_speaker(room, loudest)

    async def close(self) -> None:
        """Hub shutdown: every peer closes; rooms stay as they are (calls and roll calls record
        the shutdown themselves)."""
        self._closing = True
        for hook in self._hooked:
            hook.disconnect()
        if self._speaker_task is not None:
            self._speaker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._speaker_task
        await self._tasks.close()
        await self.publications.close_all()


class Recording(Protocol):
    async def stop(self) -> None: ...


class Recorder(Protocol):
    """What records a relay (the recordings service's `record_room`)."""

    async def record_room(self, relay: Relay, *, tag: str, track: str, centre: str) -> Any: ...


class SeatRecorder:
    """The recordings of room seats, one track per (room, seat): petition hearings and
    training broadcasts record what each participant sends through it.

    `start` stops the seat's previous recording first (a republish, camera → screen share);
    `stop_seat` / `stop_room` end them; `close` stops every one still running. Stops asked from
    a synchronous hook run as tasks owned here (`stop_room_soon`)."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._live: dict[tuple[str, str], Recording] = {}  # (room id, user) → recording
        self._tasks = TaskSet("seat recordings", log)
        self.started = 0

    def recording(self, room_id: str, user: str) -> bool:
        return (room_id, user) in self._live

    def of_room(self, room_id: str) -> dict[str, Recording]:
        """The recordings running in `room_id`, by seat (user)."""
        return {user: r for (room, user), r in self._live.items() if room == room_id}

    async def start(self, room: Room, user: str, relay: Relay, *, tag: str, track: str) -> None:
        await self.stop_seat(room.id, user)
        if room.ended:
            return
        recording = await self._recorder.record_room(
            relay, tag=tag, track=track, centre=room.centre
        )
        self._live[(room.id, user)] = recording
        self.started += 1

    async def stop_seat(self, room_id: str, user: str) -> None:
        recording = self._live.pop((room_id, user), None)
        if recording is not None:
            await recording.stop()

    async def stop_room(self, room_id: str) -> None:
        """Stop the recordings of `room_id` now and wait until their files are closed (and
        those stopping already)."""
        keys = [k for k in self._live if k[0] == room_id]
        await asyncio.gather(*(self._live.pop(k).stop() for k in keys))
        await self._tasks.close()  # stops are never cancelled: this waits for them

    def stop_room_soon(self, room_id: str) -> None:
        for key in [k for k in self._live if k[0] == room_id]:
            self._tasks.spawn(self._live.pop(key).stop(), cancellable=False)

    async def close(self) -> None:
        live, self._live = list(self._live.values()), {}
        await asyncio.gather(*(r.stop() for r in live), return_exceptions=True)
        await self._tasks.close()  # stops are never cancelled: this waits for them


ROOM_MEDIA = web.AppKey("room_media", RoomMedia)
