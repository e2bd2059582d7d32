"""Training broadcasts (远程培训): one presenter to every centre of a subtree.

A broadcast is a `RoomKind.BROADCAST` room whose invited centres are the targets. The presenter
publishes camera + microphone once; the SFU (`signaling.publish`) forwards the same encoded
packets to every viewer, and a late viewer starts from the relay's GOP cache (or a PLI).
Viewers only receive, unless the presenter brings one on stage (after a raised hand): a stage
member may publish and everyone may subscribe to it; taken off stage, its publication ends.
Only the presenter and stage members may publish: any other publication in the room — also
one made through `/api/rooms/{id}/publish` — is ended as soon as it appears.

Attendance (every join and leave, drops included) goes to `BroadcastLedger`; the video of the
presenter and of each guest on stage is recorded under the broadcast id, a track per sender.
Events: `broadcast.started` and `broadcast.ended` to every target centre (terminals auto-join),
`broadcast.updated` (stage, hands, publications) to everyone seated and the presenter.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from config.schema import Role
from hub.broadcasts.store import BroadcastLedger, BroadcastRow
from hub.core.auth import Principal
from hub.core.errors import Conflict, Forbidden, NotFound
from hub.core.events import EventBus
from hub.rooms.model import Room, RoomKind, Seat
from hub.rooms.service import Recorder, Recording, RoomMedia, SeatRecorder
from signaling.publish import Publication
from streams.tasks import TaskSet

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Broadcast:
    id: str
    room: Room
    targets: list[str]
    stage: set[str] = field(default_factory=set)
    hands: dict[str, float] = field(default_factory=dict)
    guests: dict[str, int] = field(default_factory=dict)  # user → n of its `stage-<n>` tracks
    started: float = field(default_factory=time.time)

    @property
    def presenter(self) -> str:
        return self.room.host

    @property
    def ended(self) -> bool:
        return self.room.ended

    def may_publish(self, user: str) -> bool:
        return user == self.presenter or user in self.stage

    def visible_to(self, who: Principal) -> bool:
        return (
            who.user == self.presenter or who.can_see(self.room.centre) or self.room.may_join(who)
        )

    def to_json(self) -> dict[str, Any]:
        seats = self.room.seats
        publishing = {u: s.publication for u, s in seats.items() if s.present and s.publication}
        return {
            "id": self.id,
            "room": self.room.id,
            "title": self.room.title,
            "presenter": self.presenter,
            "centre": self.room.centre,
            "targets": self.targets,
            "started": self.started,
            "ended": self.ended,
            "stage": sorted(self.stage),
            "hands": sorted(self.hands, key=self.hands.__getitem__),
            "publications": {u: p for u, p in publishing.items() if self.may_publish(u)},
            "viewers": sum(1 for s in seats.values() if s.present and s.user != self.presenter),
        }


class Broadcasts:
    def __init__(
        self,
        media: RoomMedia,
        ledger: BroadcastLedger,
        events: EventBus,
        recorder: Recorder | None = None,
    ) -> None:
        self.media = media
        self.rooms = media.rooms
        self.ledger = ledger
        self.events = events
        self.recorder = recorder
        self.seats = SeatRecorder(recorder) if recorder is not None else None
        self._by_id: dict[str, Broadcast] = {}
        self._by_room: dict[str, Broadcast] = {}
        self._tasks = TaskSet("broadcasts", log)  # ledger writes, recording stops: awaited
        self._hooked = [
            self.rooms.on_seat_left.connect(self._seat_left),
            self.rooms.on_end.connect(self._room_ended),
            self.rooms.on_published.connect(self._published),
        ]

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, by: Principal, title: str, targets: list[str]) -> Broadcast:
        room = self.rooms.create(by, kind=RoomKind.BROADCAST, title=title, centres=targets)
        b = Broadcast("b" + secrets.token_hex(6), room, targets)
        self._by_id[b.id] = b
        self._by_room[room.id] = b
        row = BroadcastRow(b.id, room.title, by.user, by.centre, targets, b.started, None)
        await self.ledger.started(row)
        self._announce("broadcast.started", b)
        log.info("broadcast %s: %s to %d centres", b.id, by.user, len(targets))
        return b

    def get(self, broadcast_id: str, who: Principal) -> Broadcast:
        b = self._by_id.get(broadcast_id)
        if b is None or not b.visible_to(who):
            raise NotFound(f"no broadcast {broadcast_id!r} for you")
        return b

    def recordings_of(self, broadcast_id: str) -> dict[str, Recording]:
        """What is being recorded in a broadcast now, by sender."""
        b = self._by_id.get(broadcast_id)
        if b is None or self.seats is None:
            return {}
        return self.seats.of_room(b.room.id)

    def list_for(self, who: Principal) -> list[Broadcast]:
        return [b for b in self._by_id.values() if not b.ended and b.visible_to(who)]

    def end(self, b: Broadcast, by: Principal) -> None:
        self._require_presenter(b, by)
        self.rooms.end(b.room)

    async def close(self) -> None:
        for hook in self._hooked:
            hook.disconnect()
        await self._tasks.close()
        for b in self._by_id.values():
            await self._stop_recordings(b)
        if self.seats is not None:
            await self.seats.close()

    # -- seats -------------------------------------------------------------------------------
    async def join(self, b: Broadcast, who: Principal) -> Seat:
        held = b.room.seats.get(who.user)
        was_present = held is not None and held.present
        seat = self.rooms.join(b.room, who)
        if not was_present:  # a second tab or a retried POST is the same attendance
            await self.ledger.joined(b.id, who.user, str(who.role), who.centre, time.time())
        self._updated(b)
        return seat

    def leave(self, b: Broadcast, user: str) -> None:
        self.rooms.leave(b.room, user)

    def present_seat(self, b: Broadcast, who: Principal) -> Seat:
        seat = b.room.seats.get(who.user)
        if seat is None or not seat.present:
            raise Conflict(f"join the broadcast first (POST /api/broadcasts/{b.id}/join)")
        return seat

    def check_publisher(self, b: Broadcast, who: Principal) -> Seat:
        seat = self.present_seat(b, who)
        if not b.may_publish(who.user):
            raise Forbidden("viewers only receive: raise a hand to be brought on stage")
        return seat

    # -- hands and stage ---------------------------------------------------------------------
    def hand(self, b: Broadcast, who: Principal, up: bool) -> None:
        self.present_seat(b, who)
        if who.user == b.presenter:
            raise Conflict("the presenter has no hand to raise")
        if up and who.user not in b.stage:
            b.hands.setdefault(who.user, time.time())
        else:
            b.hands.pop(who.user, None)
        self._updated(b)

    async def set_stage(self, b: Broadcast, by: Principal, user: str, on: bool) -> None:
        self._require_presenter(b, by)
        if user == b.presenter:
            raise Conflict("the presenter is always on stage")
        seat = b.room.seats.get(user)
        if on:
            if seat is None or not seat.present:
                raise NotFound(f"{user!r} is not watching this broadcast")
            b.stage.add(user)
            b.hands.pop(user, None)
        else:
            if user not in b.stage:
                raise NotFound(f"{user!r} is not on stage")
            b.stage.discard(user)
            await self._stop_recording(b, user)
            if seat is not None and seat.publication is not None:
                # clear the seat first: a seat whose publication closes under it leaves
                publication_id = seat.publication
                self.rooms.seat_publication(b.room, user, None)
                await self.media.publications.unpublish(publication_id, "taken off stage")
        self._updated(b)

    # -- hooks -------------------------------------------------------------------------------
    def _published(
        self, room: Room, seat: Seat, publication: Publication
    ) -> Coroutine[Any, Any, None] | None:
        b = self._by_room.get(room.id)
        if b is None:
            return None
        if not b.may_publish(seat.user):
            return self._refuse(b, seat, publication)
        self._updated(b)
        if self.seats is not None:
            return self._record(b, seat.user, publication)
        return None

    async def _refuse(self, b: Broadcast, seat: Seat, publication: Publication) -> None:
        log.info("broadcast %s: %s may not publish (not on stage)", b.id, seat.user)
        if seat.publication == publication.id:
            self.rooms.seat_publication(b.room, seat.user, None)
        await self.media.publications.unpublish(publication.id, "not on stage")

    async def _record(self, b: Broadcast, user: str, publication: Publication) -> None:
        """Record what `user` sends (the presenter, or a guest on stage) as its own track:
        `presenter-<time>` or `stage-<n>-<time>`; a new publication by the same user (camera →
        screen share) ends the previous track and starts the next."""
        await self._stop_recording(b, user)
        if self.seats is None or b.ended or not b.may_publish(user):
            return
        if user == b.presenter:
            who = "presenter"
        else:
            b.guests.setdefault(user, len(b.guests) + 1)
            who = f"stage-{b.guests[user]}"
        track = f"{who}-{int(time.time())}"
        await self.seats.start(b.room, user, publication.video, tag=b.id, track=track)

    async def _stop_recording(self, b: Broadcast, user: str) -> None:
        if self.seats is not None:
            await self.seats.stop_seat(b.room.id, user)

    async def _stop_recordings(self, b: Broadcast) -> None:
        if self.seats is not None:
            await self.seats.stop_room(b.room.id)

    def _seat_left(self, room: Room, seat: Seat) -> None:
        b = self._by_room.get(room.id)
        if b is None:
            return
        b.stage.discard(seat.user)
        b.hands.pop(seat.user, None)
        self._spawn(self._stop_recording(b, seat.user))
        self._spawn(self.ledger.left(b.id, seat.user, seat.left_at or time.time()))
        if not room.ended:
            self._updated(b)

    def _room_ended(self, room: Room) -> None:
        b = self._by_room.get(room.id)
        if b is None:
            return
        self._spawn(self.ledger.ended(b.id, room.ended_at or time.time()))
        self._spawn(self._stop_recordings(b))
        self._announce("broadcast.ended", b)
        log.info("broadcast %s ended", b.id)

    # -- helpers -----------------------------------------------------------------------------
    def _require_presenter(self, b: Broadcast, by: Principal) -> None:
        if by.user != b.presenter and by.role is not Role.ADMIN:
            raise Forbidden("only the presenter may do that")
        if b.ended:
            raise Conflict("the broadcast has ended")

    def _announce(self, topic: str, b: Broadcast) -> None:
        data = b.to_json()
        for code in [b.room.centre, *b.targets]:
            self.events.publish(topic, code, data)

    def _updated(self, b: Broadcast) -> None:
        audience = {b.presenter, *(u for u, s in b.room.seats.items() if s.present)}
        self.events.publish("broadcast.updated", b.room.centre, b.to_json(), to_users=audience)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        self._tasks.spawn(coro, cancellable=False)


BROADCASTS = web.AppKey("broadcasts", Broadcasts)
