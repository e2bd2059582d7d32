"""Room rules: invitations, seats and the 20 s rejoin grace, host controls."""

from __future__ import annotations

import time

import pytest

from config.schema import Role
from hub.core.auth import Principal
from hub.core.errors import Conflict, Forbidden, HubError, Invalid, NotFound
from hub.core.events import EventBus
from hub.rooms.model import RoomKind, Rooms

HOST = Principal("county-d", Role.DISPATCHER, "410922")
VILLAGE_T = Principal("village-t", Role.TERMINAL, "410922100201")
MEDIATOR = Principal("mediator", Role.MEDIATOR, "410922101")
STRANGER = Principal("stranger", Role.OPERATOR, "410922101")


def make() -> tuple[Rooms, EventBus]:
    bus = EventBus()
    return Rooms(bus), bus


def test_invited_users_and_centres_may_join_others_not() -> None:
    rooms, _ = make()
    room = rooms.create(HOST, kind=RoomKind.MEETING, users=["mediator"], centres=["410922100201"])
    assert rooms.join(room, HOST).user == "county-d"
    assert rooms.join(room, VILLAGE_T).centre == "410922100201"
    assert rooms.join(room, MEDIATOR).role is Role.MEDIATOR
    with pytest.raises(Forbidden):
        rooms.join(room, STRANGER)


def test_rejoin_within_grace_gets_the_same_seat(monkeypatch: pytest.MonkeyPatch) -> None:
    rooms, _ = make()
    room = rooms.create(HOST, users=["mediator"])
    seat = rooms.join(room, MEDIATOR)
    left: list[str] = []
    rooms.on_seat_left.connect(lambda r, s: left.append(s.user))
    rooms.leave(room, "mediator")
    assert left == ["mediator"] and not seat.present
    again = rooms.join(room, MEDIATOR)
    assert again.seat_id == seat.seat_id and again.present
    # after the grace period: a new seat
    rooms.leave(room, "mediator")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 25)
    later = rooms.join(room, MEDIATOR)
    assert later.seat_id != seat.seat_id


def test_host_controls() -> None:
    rooms, bus = make()
    sub = bus.subscribe("village-t", "410922100201")
    room = rooms.create(HOST, centres=["410922100201"], users=["mediator"])
    rooms.join(room, HOST)
    rooms.join(room, VILLAGE_T)
    with pytest.raises(Forbidden):
        rooms.control(room, VILLAGE_T, "lock")
    rooms.control(room, HOST, "mute", "village-t")
    assert room.seats["village-t"].muted
    rooms.control(room, HOST, "lock")
    with pytest.raises(HubError, match="locked"):
        rooms.join(room, MEDIATOR)
    rooms.control(room, HOST, "remove", "village-t")
    assert "village-t" not in room.seats
    with pytest.raises(HubError):
        rooms.join(room, VILLAGE_T)  # removed people stay out
    with pytest.raises(Invalid):
        rooms.control(room, HOST, "fly")
    ended: list[str] = []
    rooms.on_end.connect(lambda r: ended.append(r.id))
    rooms.control(room, HOST, "end")
    assert room.ended and ended == [room.id]
    assert all(not s.present for s in room.seats.values())
    with pytest.raises(Conflict):
        rooms.join(room, HOST)
    # the village terminal was told about the room while it was in its audience
    assert sub.lagged == 0
    assert sub._queue, "room.updated events reached the invited terminal"


def test_require_hides_rooms_outside_scope() -> None:
    rooms, _ = make()
    room = rooms.create(HOST)
    assert rooms.require(room.id, Principal("county-admin", Role.ADMIN, "410922")) is room
    with pytest.raises(NotFound):
        rooms.require(room.id, STRANGER)
    with pytest.raises(HubError):
        rooms.require("nope", HOST)


def test_a_township_admin_invited_into_a_county_room_cannot_remove_the_host() -> None:
    """Found by the outside check: any admin controlled any room, the host's seat included."""
    rooms = Rooms(EventBus())
    county_host = Principal("county-d", Role.DISPATCHER, "410922")
    town_admin = Principal("town-admin", Role.ADMIN, "410922100")
    room = rooms.create(county_host, users=["town-admin"])
    rooms.join(room, county_host)
    rooms.join(room, town_admin)
    for action in ("remove", "mute", "lock", "end"):
        with pytest.raises(Forbidden):
            rooms.control(room, town_admin, action, "county-d")
    assert not room.ended and room.seats["county-d"].present
    county_admin = Principal("admin", Role.ADMIN, "410922")
    with pytest.raises(Forbidden):  # nobody removes the host
        rooms.control(room, county_admin, "remove", "county-d")
    rooms.control(room, county_admin, "remove", "town-admin")  # the county's admin may
    assert "town-admin" not in room.seats
