"""Rooms: creation, who may join, seats and the rejoin grace, locks, host controls, the
events each change publishes and the hooks on_seat_left / on_end."""

from __future__ import annotations

import time
from typing import Any

import pytest

from config.schema import Role
from hub.core.auth import Principal
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound
from hub.core.events import Event, EventBus, Subscription
from hub.rooms.model import REJOIN_GRACE, Room, RoomKind, Rooms, Seat
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE

HOST = Principal("host", Role.DISPATCHER, TOWN)
GUEST = Principal("guest", Role.MEDIATOR, OTHER_TOWN)
TERMINAL = Principal("terminal", Role.TERMINAL, VILLAGE)
STRANGER = Principal("stranger", Role.OPERATOR, OTHER_TOWN)
ADMIN = Principal("admin", Role.ADMIN, COUNTY)
OTHER_ADMIN = Principal("other-admin", Role.ADMIN, OTHER_TOWN)


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def rooms(bus: EventBus) -> Rooms:
    return Rooms(bus)


def events_of(sub: Subscription) -> list[Event]:
    out = list(sub._queue)
    sub._queue.clear()
    return out


def clock(monkeypatch: pytest.MonkeyPatch, start: float = 1_000_000.0) -> list[float]:
    now = [start]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def test_create_defaults_and_json(rooms: Rooms) -> None:
    before = time.time()
    room = rooms.create(HOST, users=["guest", "guest"], centres=[VILLAGE])
    assert rooms.get(room.id) is room
    assert (room.kind, room.title, room.host, room.centre) == (
        RoomKind.MEETING,
        "host meeting",
        "host",
        TOWN,
    )
    assert room.to_json() == {
        "id": room.id,
        "kind": "meeting",
        "title": "host meeting",
        "host": "host",
        "centre": TOWN,
        "invited_users": ["guest"],
        "invited_centres": [VILLAGE],
        "seats": [],
        "cameras": [],
        "locked": False,
        "ended": False,
        "active_speaker": None,
        "created": room.created,
        "version": 1,
    }
    assert before <= room.created <= time.time()
    hearing = rooms.create(HOST, kind=RoomKind.HEARING, title="调解听证")
    assert (hearing.kind, hearing.title) == (RoomKind.HEARING, "调解听证")
    assert hearing.id != room.id and len(hearing.id) == 12


def test_create_is_published_to_host_and_invited_users_only(rooms: Rooms, bus: EventBus) -> None:
    host_sub = bus.subscribe("host", "999")
    guest_sub = bus.subscribe("guest", "999")
    county_sub = bus.subscribe("boss", COUNTY)  # in scope, but not in the room's audience
    room = rooms.create(HOST, users=["guest"])
    [event] = events_of(host_sub)
    assert (event.topic, event.centre, event.data["id"]) == ("room.updated", TOWN, room.id)
    assert event.to_users == frozenset({"host", "guest"})
    assert [e.topic for e in events_of(guest_sub)] == ["room.updated"]
    assert events_of(county_sub) == []


def test_seat_json() -> None:
    seat = Seat("li", Role.TERMINAL, VILLAGE, seat_id="s1", joined_at=5.0)
    assert seat.to_json() == {
        "user": "li",
        "role": "terminal",
        "centre": VILLAGE,
        "seat": "s1",
        "publication": None,
        "present": True,
        "muted": False,
        "joined_at": 5.0,
    }


def test_who_may_join(rooms: Rooms) -> None:
    room = rooms.create(HOST, users=["guest"], centres=[VILLAGE])
    assert room.may_join(HOST) and room.may_join(GUEST) and room.may_join(TERMINAL)
    assert not room.may_join(STRANGER)
    assert not room.may_join(ADMIN)  # admins see rooms, they are not invited to them
    assert not room.may_join(Principal("other", Role.TERMINAL, "410922100202"))


def test_join_refusals(rooms: Rooms) -> None:
    room = rooms.create(HOST)
    with pytest.raises(Forbidden, match=r"^you are not invited to this room$") as err:
        rooms.join(room, STRANGER)
    assert err.value.code == "forbidden"
    rooms.end(room)
    with pytest.raises(Conflict, match=r"^the room has ended$"):
        rooms.join(room, HOST)


def test_join_twice_is_the_same_seat_and_publishes_once(rooms: Rooms, bus: EventBus) -> None:
    room = rooms.create(HOST, users=["guest"])
    sub = bus.subscribe("host", "999")
    events_of(sub)
    seat = rooms.join(room, GUEST)
    assert rooms.join(room, GUEST) is seat
    assert [e.data["seats"][0]["user"] for e in events_of(sub)] == ["guest"]
    assert room.version == 2


def test_invite_later_lets_them_in(rooms: Rooms, bus: EventBus) -> None:
    room = rooms.create(HOST)
    with pytest.raises(Forbidden):
        rooms.join(room, STRANGER)
    sub = bus.subscribe("stranger", "999")
    rooms.invite(room, users=["stranger"])
    [event] = events_of(sub)
    assert event.data["invited_users"] == ["stranger"]
    assert rooms.join(room, STRANGER).user == "stranger"
    rooms.invite(room, centres=[VILLAGE])
    assert rooms.join(room, TERMINAL).centre == VILLAGE


def test_leave_emits_on_seat_left_with_the_publication_then_clears_it(rooms: Rooms) -> None:
    room = rooms.create(HOST, users=["guest"])
    rooms.join(room, GUEST)
    rooms.seat_publication(room, "guest", "pub-1")
    seen: list[tuple[str, str | None, bool]] = []
    rooms.on_seat_left.connect(lambda r, s: seen.append((r.id, s.publication, s.present)))
    rooms.leave(room, "guest")
    assert seen == [(room.id, "pub-1", False)]
    assert room.seats["guest"].publication is None
    rooms.leave(room, "guest")  # already gone: nothing emitted
    rooms.leave(room, "nobody")
    assert len(seen) == 1


def test_rejoin_grace_boundary(rooms: Rooms, monkeypatch: pytest.MonkeyPatch) -> None:
    now = clock(monkeypatch)
    room = rooms.create(HOST, users=["guest"])
    seat = rooms.join(room, GUEST)
    rooms.leave(room, "guest")
    now[0] += REJOIN_GRACE  # exactly at the limit: still the same seat
    assert rooms.join(room, GUEST) is seat and seat.present
    rooms.leave(room, "guest")
    now[0] += REJOIN_GRACE + 0.001
    fresh = rooms.join(room, GUEST)
    assert fresh is not seat and fresh.seat_id != seat.seat_id
    assert room.seats["guest"] is fresh


def test_lock_keeps_newcomers_out_but_not_the_host_or_a_returning_seat(
    rooms: Rooms, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = clock(monkeypatch)
    room = rooms.create(HOST, users=["guest", "stranger"])
    seat = rooms.join(room, GUEST)
    rooms.control(room, HOST, "lock")
    assert room.locked
    with pytest.raises(Forbidden, match=r"^the room is locked$"):
        rooms.join(room, STRANGER)
    assert rooms.join(room, HOST).user == "host"
    rooms.leave(room, "guest")
    assert rooms.join(room, GUEST) is seat  # within the grace: its seat is kept
    rooms.leave(room, "guest")
    now[0] += REJOIN_GRACE + 1
    with pytest.raises(Forbidden, match="locked"):
        rooms.join(room, GUEST)
    rooms.control(room, HOST, "unlock")
    assert rooms.join(room, GUEST).user == "guest"


def test_only_host_or_admin_controls(rooms: Rooms) -> None:
    room = rooms.create(HOST, users=["guest"])
    rooms.join(room, GUEST)
    with pytest.raises(Forbidden, match=r"^only the host may do that$"):
        rooms.control(room, GUEST, "mute", "guest")
    rooms.control(room, ADMIN, "mute", "guest")
    assert room.seats["guest"].muted
    rooms.control(room, HOST, "unmute", "guest")
    assert not room.seats["guest"].muted


def test_control_refusals(rooms: Rooms) -> None:
    room = rooms.create(HOST)
    with pytest.raises(NotFound, match=r"^'ghost' has no seat in this room$"):
        rooms.control(room, HOST, "mute", "ghost")
    with pytest.raises(NotFound, match=r"^None has no seat in this room$"):
        rooms.control(room, HOST, "remove")
    with pytest.raises(Invalid, match=r"^unknown action 'fly'$"):
        rooms.control(room, HOST, "fly")
    assert room.version == 1  # refusals change nothing


def test_remove_tells_the_removed_user_and_keeps_them_out(rooms: Rooms, bus: EventBus) -> None:
    room = rooms.create(HOST, centres=[OTHER_TOWN])
    rooms.join(room, GUEST)
    sub = bus.subscribe("guest", "999")
    left: list[str] = []
    rooms.on_seat_left.connect(lambda r, s: left.append(s.user))
    rooms.control(room, HOST, "remove", "guest")
    assert left == ["guest"]
    assert "guest" not in room.seats and room.removed == {"guest"}
    last = events_of(sub)[-1]
    assert "guest" in last.to_users and last.data["seats"] == []
    with pytest.raises(Forbidden, match=r"^you are not invited to this room$"):
        rooms.join(room, GUEST)  # although its centre is invited
    with pytest.raises(Forbidden, match=r"^the host removed you from this room$"):
        rooms.require(room.id, GUEST)


def test_end_leaves_every_seat_then_emits_on_end_once(rooms: Rooms) -> None:
    room = rooms.create(HOST, users=["guest"], centres=[VILLAGE])
    for who in (HOST, GUEST, TERMINAL):
        rooms.join(room, who)
    rooms.leave(room, "terminal")
    order: list[str] = []
    rooms.on_seat_left.connect(lambda r, s: order.append(f"left:{s.user}"))
    rooms.on_end.connect(lambda r: order.append(f"end:{r.ended}"))
    rooms.control(room, HOST, "end")
    assert order == ["left:host", "left:guest", "end:True"]  # ended before on_end
    assert room.ended and all(not s.present for s in room.seats.values())
    version = room.version
    rooms.end(room)  # again: nothing happens
    assert order == ["left:host", "left:guest", "end:True"] and room.version == version
    assert room not in rooms.active()


def test_require_and_list_for_scope(rooms: Rooms) -> None:
    room = rooms.create(HOST, users=["guest"])
    other = rooms.create(GUEST)
    assert rooms.require(room.id, HOST) is room
    assert rooms.require(room.id, GUEST) is room  # invited
    assert rooms.require(room.id, ADMIN) is room  # the county sees the township's rooms
    with pytest.raises(NotFound, match=r"^no room 'nope' for you$"):
        rooms.require("nope", HOST)
    with pytest.raises(NotFound):
        rooms.require(room.id, STRANGER)
    assert {r.id for r in rooms.list_for(ADMIN)} == {room.id, other.id}
    assert [r.id for r in rooms.list_for(GUEST)] == [room.id, other.id]
    assert rooms.list_for(TERMINAL) == []
    rooms.end(other)
    assert [r.id for r in rooms.list_for(ADMIN)] == [room.id]
    assert rooms.active() == [room]


def test_cameras_are_added_once(rooms: Rooms) -> None:
    room = rooms.create(HOST)
    rooms.add_camera(room, "town-cam")
    rooms.add_camera(room, "village-cam")
    rooms.add_camera(room, "town-cam")
    assert room.cameras == ["town-cam", "village-cam"] and room.version == 3


def test_active_speaker_publishes_only_changes(rooms: Rooms, bus: EventBus) -> None:
    room = rooms.create(HOST, users=["guest"])
    rooms.join(room, GUEST)
    sub = bus.subscribe("guest", "999")
    rooms.set_active_speaker(room, "guest")
    rooms.set_active_speaker(room, "guest")
    rooms.set_active_speaker(room, None)
    speaker = [(e.topic, e.data) for e in events_of(sub)]
    assert speaker == [
        ("room.speaker", {"room": room.id, "user": "guest"}),
        ("room.speaker", {"room": room.id, "user": None}),
    ]
    assert room.active_speaker is None


def test_seat_publication_of_an_unknown_user_changes_nothing(rooms: Rooms) -> None:
    room = rooms.create(HOST)
    rooms.seat_publication(room, "ghost", "pub")
    assert room.version == 1 and room.seats == {}


def test_version_grows_with_every_change(rooms: Rooms) -> None:
    room = rooms.create(HOST, users=["guest"])
    versions = [room.version]
    steps: list[Any] = [
        lambda: rooms.join(room, GUEST),
        lambda: rooms.seat_publication(room, "guest", "p"),
        lambda: rooms.control(room, HOST, "mute", "guest"),
        lambda: rooms.control(room, HOST, "lock"),
        lambda: rooms.leave(room, "guest"),
    ]
    for step in steps:
        step()
        versions.append(room.version)
    assert versions == [1, 2, 3, 4, 5, 6]


def test_kinds_are_text() -> None:
    assert [str(k) for k in RoomKind] == ["meeting", "call", "rollcall", "hearing", "broadcast"]
    assert Room("r", RoomKind.CALL, "t", "h", TOWN).to_json()["kind"] == "call"
