"""Rooms: multi-party sessions (meetings, calls, roll-call grids, hearings, broadcasts).

The room is the domain object: who may join (invited users and centres), who sits in it
(seats), which cameras the host pushed in, host controls (mute, remove, lock, end). Media
lives in `signaling.publish` (each seat's published tracks); a room only names publications.
A participant who drops and comes back within `REJOIN_GRACE` seconds gets the same seat back.
Changes are published on the event bus as `room.updated` to everyone in or invited to the room.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from config.schema import Role
from hub.core.auth import Principal
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound
from hub.core.events import EventBus
from streams.hooks import Hook

REJOIN_GRACE = 20.0

if TYPE_CHECKING:
    from signaling.publish import Publication


class RoomKind(enum.StrEnum):
    MEETING = "meeting"
    CALL = "call"
    ROLLCALL = "rollcall"
    HEARING = "hearing"
    BROADCAST = "broadcast"


@dataclass
class Seat:
    user: str
    role: Role
    centre: str
    seat_id: str = field(default_factory=lambda: secrets.token_urlsafe(6))
    publication: str | None = None
    joined_at: float = field(default_factory=time.time)
    left_at: float | None = None
    muted: bool = False  # by the host: the seat's audio is not forwarded

    @property
    def present(self) -> bool:
        return self.left_at is None

    def to_json(self) -> dict[str, object]:
        return {
            "user": self.user,
            "role": str(self.role),
            "centre": self.centre,
            "seat": self.seat_id,
            "publication": self.publication,
            "present": self.present,
            "muted": self.muted,
            "joined_at": self.joined_at,
        }


@dataclass
class Room:
    id: str
    kind: RoomKind
    title: str
    host: str
    centre: str  # the host's centre
    invited_users: set[str] = field(default_factory=set)
    invited_centres: set[str] = field(default_factory=set)
    seats: dict[str, Seat] = field(default_factory=dict)
    cameras: list[str] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    locked: bool = False
    ended_at: float | None = None
    created: float = field(default_factory=time.time)
    active_speaker: str | None = None
    version: int = 0  # grows with every change: clients keep the newest copy they saw

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def may_join(self, who: Principal) -> bool:
        if who.user in self.removed:
            return False
        if who.user == self.host or who.user in self.invited_users or who.user in self.seats:
            return True
        return who.centre in self.invited_centres

    def audience(self) -> set[str]:
        return {self.host, *self.invited_users, *self.seats}

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": str(self.kind),
            "title": self.title,
            "host": self.host,
            "centre": self.centre,
            "invited_users": sorted(self.invited_users),
            "invited_centres": sorted(self.invited_centres),
            "seats": [s.to_json() for s in self.seats.values()],
            "cameras": list(self.cameras),
            "locked": self.locked,
            "ended": self.ended,
            "active_speaker": self.active_speaker,
            "created": self.created,
            "version": self.version,
        }


class Rooms:
    def __init__(self, events: EventBus) -> None:
        self._events = events
        self._rooms: dict[str, Room] = {}
        # called when a seat leaves or is removed (to unpublish its media), and on end
        self.on_seat_left: Hook[[Room, Seat]] = Hook("seat left")
        self.on_end: Hook[[Room]] = Hook("room ended")
        # after a seat publishes (RoomMedia): a listener may return a coroutine to run, owned by
        # RoomMedia, e.g. the roll-call snapshot of a duty terminal
        self.on_published: Hook[[Room, Seat, Publication]] = Hook("seat published")

    def create(
        self,
        host: Principal,
        *,
        kind: RoomKind = RoomKind.MEETING,
        title: str = "",
        users: Iterable[str] = (),
        centres: Iterable[str] = (),
    ) -> Room:
        room = Room(
            id=secrets.token_urlsafe(9),
            kind=kind,
            title=title or f"{host.user} {kind}",
            host=host.user,
            centre=host.centre,
            invited_users=set(users),
            invited_centres=set(centres),
        )
        self._rooms[room.id] = room
        self._changed(room)
        return room

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def require(self, room_id: str, who: Principal) -> Room:
        room = self._rooms.get(room_id)
        if room is not None and who.user in room.removed:
            raise Forbidden("the host removed you from this room")
        if room is None or not (room.may_join(who) or who.can_see(room.centre)):
            raise NotFound(f"no room {room_id!r} for you")
        return room

    def active(self) -> list[Room]:
        return [r for r in self._rooms.values() if not r.ended]

    def list_for(self, who: Principal) -> list[Room]:
        return [
            r
            for r in self._rooms.values()
            if not r.ended and (r.may_join(who) or who.can_see(r.centre))
        ]

    def invite(self, room: Room, users: Iterable[str] = (), centres: Iterable[str] = ()) -> None:
        room.invited_users.update(users)
        room.invited_centres.update(centres)
        self._changed(room)

    def join(self, room: Room, who: Principal) -> Seat:
        if room.ended:
            raise Conflict("the room has ended")
        if not room.may_join(who):
            raise Forbidden("you are not invited to this room")
        seat = room.seats.get(who.user)
        if seat is not None:
            if seat.present:
                return seat  # a second join from the same user: same seat
            if seat.left_at is not None and time.time() - seat.left_at <= REJOIN_GRACE:
                seat.left_at = None  # back within the grace period: same seat
                self._changed(room)
                return seat
        if room.locked and who.user != room.host:
            raise Forbidden("the room is locked")
        seat = Seat(who.user, who.role, who.centre)
        room.seats[who.user] = seat
        self._changed(room)
        return seat

    def leave(self, room: Room, user: str) -> None:
        seat = room.seats.get(user)
        if seat is None or not seat.present:
            return
        seat.left_at = time.time()
        self.on_seat_left.emit(room, seat)
        seat.publication = None
        self._changed(room)

    def seat_publication(self, room: Room, user: str, publication: str | None) -> None:
        seat = room.seats.get(user)
        if seat is not None:
            seat.publication = publication
            self._changed(room)

    # -- host controls ---------------------------------------------------------------------
    def control(self, room: Room, by: Principal, action: str, user: str | None = None) -> None:
        # the host, or an admin whose scope holds the room's centre (an admin of a township
        # invited into a county room is a guest there)
        if by.user != room.host and not (by.role is Role.ADMIN and by.can_see(room.centre)):
            raise Forbidden("only the host may do that")
        if action in ("mute", "unmute", "remove"):
            seat = room.seats.get(user or "")
            if seat is None:
                raise NotFound(f"{user!r} has no seat in this room")
            if action == "remove" and seat.user == room.host:
                raise Forbidden("the host cannot be removed (end the room instead)")
            if action == "remove":
                room.removed.add(seat.user)
                self.leave(room, seat.user)
                del room.seats[seat.user]
                self._changed(room, also={seat.user})  # the removed user learns it too
                return
            else:
                seat.muted = action == "mute"
        elif action in ("lock", "unlock"):
            room.locked = action == "lock"
        elif action == "end":
            self.end(room)
            return
        else:
            raise Invalid(f"unknown action {action!r}")
        self._changed(room)

    def add_camera(self, room: Room, camera: str) -> None:
        if camera not in room.cameras:
            room.cameras.append(camera)
            self._changed(room)

    def set_active_speaker(self, room: Room, user: str | None) -> None:
        if room.active_speaker != user:
            room.active_speaker = user
            self._events.publish(
                "room.speaker",
                room.centre,
                {"room": room.id, "user": user},
                to_users=room.audience(),
            )

    def end(self, room: Room) -> None:
        if room.ended:
            return
        for seat in list(room.seats.values()):
            self.leave(room, seat.user)
        room.ended_at = time.time()
        self.on_end.emit(room)
        self._changed(room)

    def _changed(self, room: Room, also: set[str] | None = None) -> None:
        room.version += 1
        audience = room.audience() | (also or set())
        self._events.publish("room.updated", room.centre, room.to_json(), to_users=audience)


ROOMS = web.AppKey("rooms", Rooms)
