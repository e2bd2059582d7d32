"""Broadcasts without WebRTC: start/join/leave/end against a real ledger on SQLite, hands and
stage, who may publish (the on_published hook with stand-in publications), recordings per
sender, events, and the attendance report and CSV built from the ledger."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from config import parse_config
from config.schema import Role
from hub.broadcasts.report import attendance, attendance_csv
from hub.broadcasts.service import Broadcast, Broadcasts
from hub.broadcasts.store import BroadcastLedger, BroadcastRow, Interval
from hub.core.auth import Principal
from hub.core.centres import CentreTree
from hub.core.db import Database
from hub.core.errors import Conflict, Forbidden, NotFound
from hub.core.events import Event, EventBus, Subscription
from hub.rooms.model import Rooms
from hub.rooms.service import RoomMedia
from signaling.publish import Publication, Publications
from streams.relay import Relay
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

PRESENTER = Principal("trainer", Role.DISPATCHER, COUNTY)
TOWN_OP = Principal("town-op", Role.OPERATOR, TOWN)
VILLAGE_T = Principal("village-t", Role.TERMINAL, VILLAGE)
OTHER_OP = Principal("other-op", Role.OPERATOR, OTHER_TOWN)
OUTSIDER = Principal("outsider", Role.OPERATOR, "410923")
ADMIN = Principal("root", Role.ADMIN, COUNTY)


@dataclass
class FakeRecording:
    track: str
    stopped: int = 0

    async def stop(self) -> None:
        self.stopped += 1


@dataclass
class FakeRecorder:
    made: list[tuple[str, str, str]] = field(default_factory=list)
    recordings: list[FakeRecording] = field(default_factory=list)

    async def record_room(self, relay: Relay, *, tag: str, track: str, centre: str) -> Any:
        self.made.append((tag, track.rsplit("-", 1)[0], centre))
        recording = FakeRecording(track)
        self.recordings.append(recording)
        return recording


class StandIn:
    """Just what the broadcast reads of a publication: its id and video relay."""

    def __init__(self, publication_id: str) -> None:
        self.id = publication_id
        self.video = cast(Relay, object())


def publication(publication_id: str) -> Publication:
    return cast(Publication, StandIn(publication_id))


@dataclass
class World:
    bus: EventBus
    rooms: Rooms
    ledger: BroadcastLedger
    recorder: FakeRecorder
    broadcasts: Broadcasts
    watch: Subscription


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = Database(tmp_path / "zzhub.sqlite3")
    await db.open()
    ledger = BroadcastLedger(db)
    await ledger.open()
    bus = EventBus()
    rooms = Rooms(bus)
    media = RoomMedia(rooms, Publications([]))
    recorder = FakeRecorder()
    broadcasts = Broadcasts(media, ledger, bus, recorder)
    watch = bus.subscribe("watcher", COUNTY)
    try:
        yield World(bus, rooms, ledger, recorder, broadcasts, watch)
    finally:
        await broadcasts.close()
        await media.close()
        await db.close()


def topics(sub: Subscription) -> list[tuple[str, str]]:
    out = [(e.topic, e.centre) for e in sub._queue]
    sub._queue.clear()
    return out


def last(sub: Subscription, topic: str) -> Event:
    return [e for e in sub._queue if e.topic == topic][-1]


async def settle(broadcasts: Broadcasts) -> None:
    await broadcasts._tasks.close()  # its ledger writes and recording stops, all awaited


async def started(world: World) -> Broadcast:
    return await world.broadcasts.start(PRESENTER, "消防培训", [TOWN, VILLAGE])


async def test_start_writes_the_ledger_and_announces_to_every_target(world: World) -> None:
    b = await started(world)
    assert b.id.startswith("b") and len(b.id) == 13
    assert b.room.kind == "broadcast" and b.room.invited_centres == {TOWN, VILLAGE}
    row = await world.ledger.get(b.id)
    assert row == BroadcastRow(
        b.id, "消防培训", "trainer", COUNTY, [TOWN, VILLAGE], b.started, None
    )
    announced = [t for t in topics(world.watch) if t[0] == "broadcast.started"]
    assert announced == [
        ("broadcast.started", COUNTY),
        ("broadcast.started", TOWN),
        ("broadcast.started", VILLAGE),
    ]
    assert b.to_json() == {
        "id": b.id,
        "room": b.room.id,
        "title": "消防培训",
        "presenter": "trainer",
        "centre": COUNTY,
        "targets": [TOWN, VILLAGE],
        "started": b.started,
        "ended": False,
        "stage": [],
        "hands": [],
        "publications": {},
        "viewers": 0,
    }


async def test_visibility(world: World) -> None:
    b = await world.broadcasts.start(Principal("t", Role.DISPATCHER, TOWN), "x", [VILLAGE])
    assert world.broadcasts.get(b.id, VILLAGE_T) is b  # a target
    assert world.broadcasts.get(b.id, ADMIN) is b  # the county sees below it
    with pytest.raises(NotFound, match=r"^no broadcast .* for you$"):
        world.broadcasts.get(b.id, OTHER_OP)
    with pytest.raises(NotFound):
        world.broadcasts.get("b000000000000", ADMIN)
    assert world.broadcasts.list_for(OTHER_OP) == []
    assert world.broadcasts.list_for(VILLAGE_T) == [b]


async def test_join_and_leave_are_attendance_intervals(world: World) -> None:
    b = await started(world)
    seat = await world.broadcasts.join(b, VILLAGE_T)
    assert seat.user == "village-t" and b.to_json()["viewers"] == 1
    with pytest.raises(Forbidden):
        await world.broadcasts.join(b, OTHER_OP)
    world.broadcasts.leave(b, "village-t")
    await settle(world.broadcasts)
    [interval] = await world.ledger.attendance(b.id)
    assert (interval.user, interval.role, interval.centre) == ("village-t", "terminal", VILLAGE)
    assert interval.left is not None and interval.left >= interval.joined
    assert b.to_json()["viewers"] == 0


async def test_hands_in_order_and_refusals(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    b = await started(world)
    with pytest.raises(Conflict, match=r"^join the broadcast first"):
        world.broadcasts.hand(b, VILLAGE_T, True)
    await world.broadcasts.join(b, PRESENTER)
    await world.broadcasts.join(b, VILLAGE_T)
    await world.broadcasts.join(b, TOWN_OP)
    now = [100.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    world.broadcasts.hand(b, TOWN_OP, True)
    now[0] = 50.0  # an earlier clock: the hand raised first sorts first by time
    world.broadcasts.hand(b, VILLAGE_T, True)
    now[0] = 200.0
    world.broadcasts.hand(b, TOWN_OP, True)  # raised again: keeps its first time
    assert b.to_json()["hands"] == ["village-t", "town-op"]
    world.broadcasts.hand(b, VILLAGE_T, False)
    assert b.to_json()["hands"] == ["town-op"]
    with pytest.raises(Conflict, match=r"^the presenter has no hand to raise$"):
        world.broadcasts.hand(b, PRESENTER, True)


async def test_stage_rules(world: World) -> None:
    b = await started(world)
    await world.broadcasts.join(b, PRESENTER)
    await world.broadcasts.join(b, VILLAGE_T)
    world.broadcasts.hand(b, VILLAGE_T, True)
    with pytest.raises(Forbidden, match=r"^only the presenter may do that$"):
        await world.broadcasts.set_stage(b, TOWN_OP, "village-t", True)
    with pytest.raises(Conflict, match=r"^the presenter is always on stage$"):
        await world.broadcasts.set_stage(b, PRESENTER, "trainer", True)
    with pytest.raises(NotFound, match=r"^'town-op' is not watching this broadcast$"):
        await world.broadcasts.set_stage(b, PRESENTER, "town-op", True)
    with pytest.raises(NotFound, match=r"^'village-t' is not on stage$"):
        await world.broadcasts.set_stage(b, PRESENTER, "village-t", False)
    with pytest.raises(Forbidden, match=r"^viewers only receive"):
        world.broadcasts.check_publisher(b, VILLAGE_T)
    await world.broadcasts.set_stage(b, ADMIN, "village-t", True)  # an admin may too
    assert b.stage == {"village-t"} and b.hands == {}  # the hand goes down on stage
    assert world.broadcasts.check_publisher(b, VILLAGE_T).user == "village-t"
    world.broadcasts.hand(b, VILLAGE_T, True)  # on stage: raising does nothing
    assert b.hands == {}
    await world.broadcasts.set_stage(b, PRESENTER, "village-t", False)
    assert b.stage == set()


async def test_only_presenter_and_stage_publish_and_are_recorded(world: World) -> None:
    b = await started(world)
    presenter_seat = await world.broadcasts.join(b, PRESENTER)
    viewer_seat = await world.broadcasts.join(b, VILLAGE_T)
    # a viewer's publication is refused: its seat is cleared
    world.rooms.seat_publication(b.room, "village-t", "p-viewer")
    works = world.rooms.on_published.emit(b.room, viewer_seat, publication("p-viewer"))
    for work in works:
        await work
    assert viewer_seat.publication is None and world.recorder.made == []
    # the presenter's is kept and recorded as its own track
    world.rooms.seat_publication(b.room, "trainer", "p-presenter")
    for work in world.rooms.on_published.emit(b.room, presenter_seat, publication("p-presenter")):
        await work
    assert world.recorder.made == [(b.id, "presenter", COUNTY)]
    assert b.to_json()["publications"] == {"trainer": "p-presenter"}
    # on stage, the viewer publishes as guest 1; taken off stage, its recording stops
    await world.broadcasts.set_stage(b, PRESENTER, "village-t", True)
    world.rooms.seat_publication(b.room, "village-t", "p-guest")
    for work in world.rooms.on_published.emit(b.room, viewer_seat, publication("p-guest")):
        await work
    assert world.recorder.made[-1] == (b.id, "stage-1", COUNTY)
    assert b.to_json()["publications"] == {"trainer": "p-presenter", "village-t": "p-guest"}
    guest_recording = world.recorder.recordings[-1]
    await world.broadcasts.set_stage(b, PRESENTER, "village-t", False)
    assert guest_recording.stopped == 1 and viewer_seat.publication is None
    assert "village-t" not in world.broadcasts.recordings_of(b.id)
    # a second publication of the presenter ends its first track
    first = world.recorder.recordings[0]
    for work in world.rooms.on_published.emit(b.room, presenter_seat, publication("p-screen")):
        await work
    assert first.stopped == 1 and len(world.recorder.recordings) == 3


async def test_publications_of_other_rooms_are_not_ours(world: World) -> None:
    room = world.rooms.create(PRESENTER, users=["village-t"])
    seat = world.rooms.join(room, VILLAGE_T)
    assert world.rooms.on_published.emit(room, seat, publication("p")) == [None]


async def test_end_closes_the_ledger_stops_recordings_and_announces(world: World) -> None:
    b = await started(world)
    seat = await world.broadcasts.join(b, PRESENTER)
    await world.broadcasts.join(b, VILLAGE_T)
    for work in world.rooms.on_published.emit(b.room, seat, publication("p")):
        await work
    topics(world.watch)
    with pytest.raises(Forbidden):
        world.broadcasts.end(b, VILLAGE_T)
    world.broadcasts.end(b, PRESENTER)
    await settle(world.broadcasts)
    assert b.ended and world.recorder.recordings[0].stopped == 1
    row = await world.ledger.get(b.id)
    assert row is not None and row.ended == b.room.ended_at
    assert all(iv.left is not None for iv in await world.ledger.attendance(b.id))
    ended = [t for t in topics(world.watch) if t[0] == "broadcast.ended"]
    assert ended == [
        ("broadcast.ended", COUNTY),
        ("broadcast.ended", TOWN),
        ("broadcast.ended", VILLAGE),
    ]
    with pytest.raises(Conflict, match=r"^the broadcast has ended$"):
        world.broadcasts.end(b, PRESENTER)
    assert world.broadcasts.list_for(ADMIN) == []


async def test_updates_go_to_the_presenter_and_present_seats(world: World) -> None:
    b = await started(world)
    presenter = world.bus.subscribe("trainer", "999")
    viewer = world.bus.subscribe("village-t", "999")
    stranger = world.bus.subscribe("town-op", "999")
    await world.broadcasts.join(b, VILLAGE_T)
    event = last(presenter, "broadcast.updated")
    assert event.to_users == frozenset({"trainer", "village-t"})
    assert event.data["viewers"] == 1
    assert [e.topic for e in viewer._queue if e.topic == "broadcast.updated"] == [
        "broadcast.updated"
    ]
    assert [e for e in stranger._queue if e.topic == "broadcast.updated"] == []


async def test_a_second_join_while_present_is_not_a_second_session(world: World) -> None:
    b = await started(world)
    first = await world.broadcasts.join(b, VILLAGE_T)
    again = await world.broadcasts.join(b, VILLAGE_T)
    assert again is first
    world.broadcasts.leave(b, "village-t")
    await settle(world.broadcasts)
    assert len(await world.ledger.attendance(b.id)) == 1


async def test_restart_closes_interrupted_intervals_with_the_end(tmp_path: Path) -> None:
    db = Database(tmp_path / "z.sqlite3")
    await db.open()
    ledger = BroadcastLedger(db)
    await ledger.open()
    await ledger.started(BroadcastRow("b1", "t", "p", COUNTY, [TOWN], 100.0, None))
    await ledger.started(BroadcastRow("b2", "t", "p", COUNTY, [TOWN], 100.0, None))
    await ledger.joined("b1", "u", "operator", TOWN, 110.0)
    await ledger.joined("b2", "u", "operator", TOWN, 120.0)
    await db.execute("UPDATE broadcasts SET ended = 150.0 WHERE id = 'b1'")
    before = time.time()
    await BroadcastLedger(db).open()  # the hub starts again
    [iv1] = await ledger.attendance("b1")
    [iv2] = await ledger.attendance("b2")
    assert iv1.left == 150.0  # closed at the broadcast's end
    assert iv2.left is not None and iv2.left >= before  # no end: closed at start-up
    row2 = await ledger.get("b2")
    assert row2 is not None and row2.ended is not None and row2.ended >= before
    assert await ledger.get("nope") is None
    await db.close()


# -- the attendance report ------------------------------------------------------------------
def test_interval_seconds() -> None:
    assert Interval("u", "r", TOWN, 10.0, 25.5).seconds(99.0) == 15.5
    assert Interval("u", "r", TOWN, 10.0, None).seconds(40.0) == 30.0
    assert Interval("u", "r", TOWN, 10.0, 5.0).seconds(40.0) == 0.0


def report_of(intervals: list[Interval], ended: float | None = 1000.0) -> dict[str, Any]:
    tree = CentreTree.from_config(parse_config(topology()))
    row = BroadcastRow("b1", "培训", "trainer", COUNTY, [TOWN, VILLAGE, OTHER_TOWN], 0.0, ended)
    return attendance(row, intervals, tree)


def test_report_sums_sessions_per_person_and_names_centres_never_joined() -> None:
    report = report_of(
        [
            Interval("trainer", "dispatcher", VILLAGE, 0.0, 1000.0),  # the presenter: not counted
            Interval("village-t", "terminal", VILLAGE, 10.0, 110.0),
            Interval("village-t", "terminal", VILLAGE, 200.0, 250.0),
            Interval("village-2", "operator", VILLAGE, 300.0, None),  # still in at the end
            Interval("town-op", "operator", TOWN, 5.0, 65.0),
            Interval("stray", "operator", "410922100202", 0.0, 10.0),  # not a target
        ]
    )
    town, village, other = report["centres"]
    assert (town["centre"], town["name"], town["township"]) == (TOWN, "城关镇", TOWN)
    assert (town["joined"], town["first_joined"], town["seconds"]) == (True, 5.0, 60.0)
    assert village["township"] == TOWN
    assert village["users"] == [
        {
            "user": "village-t",
            "role": "terminal",
            "first_joined": 10.0,
            "last_left": 250.0,
            "seconds": 150.0,
            "sessions": 2,
        },
        {
            "user": "village-2",
            "role": "operator",
            "first_joined": 300.0,
            "last_left": None,
            "seconds": 700.0,
            "sessions": 1,
        },
    ]
    assert village["seconds"] == 700.0  # the centre's longest attendee
    assert (other["joined"], other["users"], other["first_joined"]) == (False, [], None)
    assert report["never_joined"] == [OTHER_TOWN]
    assert report["townships"] == [
        {
            "township": TOWN,
            "name": "城关镇",
            "centres": 2,
            "joined": 2,
            "never_joined": [],
            "seconds": 760.0,
            "rate": 1.0,
        },
        {
            "township": OTHER_TOWN,
            "name": "马庄桥镇",
            "centres": 1,
            "joined": 0,
            "never_joined": [OTHER_TOWN],
            "seconds": 0.0,
            "rate": 0.0,
        },
    ]


def test_report_csv_has_a_bom_and_a_row_per_person_or_absent_centre() -> None:
    report = report_of(
        [
            Interval("village-t", "terminal", VILLAGE, 10.0, 110.0),
            Interval("town-op", "operator", TOWN, 5.0, None),
        ]
    )
    data = attendance_csv(report)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == [
        "centre",
        "name",
        "township",
        "user",
        "role",
        "first_joined",
        "last_left",
        "seconds",
        "sessions",
    ]
    assert [r[:5] + r[7:] for r in rows[1:]] == [
        [TOWN, "城关镇", TOWN, "town-op", "operator", "995.0", "1"],
        [VILLAGE, "东关村", TOWN, "village-t", "terminal", "100.0", "1"],
        [OTHER_TOWN, "马庄桥镇", OTHER_TOWN, "", "", "0", "0"],
    ]
    assert rows[1][6] == ""  # still in: no last_left
    assert rows[2][5] != "" and rows[2][6] != ""
    assert rows[3][5:7] == ["", ""]
