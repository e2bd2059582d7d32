"""`HearingRecorder` without media: which rooms and seats are recorded, under which tag and
track, and when recordings stop (republish, room end, stop_room, close)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from config.schema import Role
from hub.core.events import EventBus
from hub.petitions.hearing import HearingRecorder, track_name
from hub.petitions.model import Category, Outcome
from hub.rooms.model import Room, RoomKind, Rooms, Seat
from signaling.publish import Publication
from streams.relay import Relay
from tests.hub.petitions.conftest import DESK, KIOSK, TOWN, VILLAGE, Maker, eventually


class FakeRecording:
    def __init__(self, tag: str, track: str, delay: float = 0.0) -> None:
        self.tag, self.track, self.delay = tag, track, delay
        self.stops = 0

    async def stop(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.stops += 1


class Recorder:
    """A fake recorder: what `record_room` would have been asked. Callable as the `record`
    function `HearingRecorder` takes, and with the recordings service's `record_room` shape
    too (the seat recorder of `hub.rooms.service` on the main branch calls that)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[object, str, str, str]] = []
        self.made: list[FakeRecording] = []
        self.delay = delay

    async def __call__(self, relay: Relay, tag: str, track: str, centre: str) -> FakeRecording:
        self.calls.append((relay, tag, track, centre))
        recording = FakeRecording(tag, track, self.delay)
        self.made.append(recording)
        return recording

    async def record_room(
        self, relay: Relay, *, tag: str, track: str, centre: str
    ) -> FakeRecording:
        return await self(relay, tag, track, centre)


class FakePublication:
    def __init__(self, name: str) -> None:
        self.video = f"relay-of-{name}"


def publication(name: str) -> Publication:
    return cast(Publication, FakePublication(name))


def seat(user: str, role: Role = Role.TERMINAL, centre: str = VILLAGE) -> Seat:
    return Seat(user, role, centre)


class Setup:
    def __init__(self, delay: float = 0.0) -> None:
        self.rooms = Rooms(EventBus())
        self.codes: dict[str, str] = {}
        self.record = Recorder(delay)
        self.recorder = HearingRecorder(self.rooms, self.record, lambda r: self.codes.get(r.id))

    def hearing(self, code: str) -> Room:
        room = self.rooms.create(DESK, kind=RoomKind.HEARING)
        self.codes[room.id] = code
        return room

    async def publish(self, room: Room, who: Seat, name: str = "") -> bool:
        work = self.recorder.published(room, who, publication(name or who.user))
        if work is None:
            return False
        await work
        return True


async def test_only_rooms_of_a_case_are_recorded() -> None:
    s = Setup()
    meeting = s.rooms.create(DESK, kind=RoomKind.MEETING)
    assert await s.publish(meeting, seat("town-r")) is False
    assert s.record.calls == [] and s.recorder.started == 0
    room = s.hearing("CASE-1")
    assert await s.publish(room, seat("town-r", Role.RECEPTIONIST, TOWN)) is True
    assert s.record.calls == [("relay-of-town-r", "CASE-1", "town-r", TOWN)]
    assert s.recorder.started == 1
    await s.recorder.close()


async def test_each_seat_has_its_own_track_named_safely() -> None:
    s = Setup()
    room = s.hearing("CASE-2")
    await s.publish(room, seat("town-r"))
    await s.publish(room, seat("petitioner:410922100201-20261123-0001"))
    tracks = [call[2] for call in s.record.calls]
    assert tracks == ["town-r", "petitioner-410922100201-20261123-0001"]
    assert {call[1] for call in s.record.calls} == {"CASE-2"}
    assert s.recorder.started == 2
    await s.recorder.close()


async def test_a_republished_seat_stops_its_previous_recording() -> None:
    s = Setup()
    room = s.hearing("CASE-3")
    kiosk = seat("village-t")
    await s.publish(room, kiosk, "first")
    await s.publish(room, kiosk, "second")
    first, second = s.record.made
    assert (first.stops, second.stops) == (1, 0)
    assert [call[0] for call in s.record.calls] == ["relay-of-first", "relay-of-second"]
    assert s.recorder.started == 2
    await s.recorder.close()
    assert (first.stops, second.stops) == (1, 1)  # close stops the live one, once


async def test_ending_a_room_stops_its_recordings_only() -> None:
    s = Setup()
    room, other = s.hearing("CASE-4"), s.hearing("CASE-5")
    await s.publish(room, seat("a"))
    await s.publish(room, seat("b"))
    await s.publish(other, seat("c"))
    a, b, c = s.record.made
    s.rooms.end(room)

    async def stopped() -> bool:
        return a.stops == 1 and b.stops == 1

    await eventually(stopped)
    assert c.stops == 0
    await s.recorder.close()
    assert (a.stops, b.stops, c.stops) == (1, 1, 1)


async def test_a_publish_finishing_after_the_room_ended_records_nothing() -> None:
    s = Setup()
    room = s.hearing("CASE-6")
    kiosk = seat("village-t")
    await s.publish(room, kiosk, "first")
    late = s.recorder.published(room, kiosk, publication("late"))
    assert late is not None
    room.ended_at = 1.0  # ended between the publish and the start of its recording
    await late
    assert len(s.record.made) == 1 and s.record.made[0].stops == 1
    assert s.recorder.started == 1
    await s.recorder.close()


async def test_stop_room_waits_for_the_files_to_close() -> None:
    s = Setup(delay=0.02)
    room = s.hearing("CASE-7")
    await s.publish(room, seat("a"))
    await s.publish(room, seat("b"))
    await s.recorder.stop_room(room.id)
    assert [r.stops for r in s.record.made] == [1, 1]
    await s.recorder.stop_room(room.id)  # nothing left: nothing stopped twice
    await s.recorder.close()
    assert [r.stops for r in s.record.made] == [1, 1]


async def test_close_leaves_the_rooms_hook() -> None:
    s = Setup()
    hooked = len(s.rooms.on_end)
    room = s.hearing("CASE-8")
    await s.publish(room, seat("a"))
    await s.recorder.close()
    assert len(s.rooms.on_end) == hooked - 1
    s.rooms.end(room)  # no task, nothing stopped twice
    await asyncio.sleep(0)
    assert s.record.made[0].stops == 1


async def test_a_petition_hearing_is_recorded_under_its_case_code(make: Maker) -> None:
    rooms = Rooms(EventBus())
    petitions = await make(rooms=rooms)
    record = Recorder()
    recorder = HearingRecorder(rooms, record, petitions.case_of)
    case = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    heard = await petitions.accept(case.code, DESK)
    room = rooms.get(heard.room or "")
    assert room is not None
    work = recorder.published(room, seat("village-t"), publication("kiosk"))
    assert work is not None
    await work
    assert record.calls == [("relay-of-kiosk", case.code, "village-t", TOWN)]
    await petitions.resolve(case.code, DESK, Outcome.MEDIATED, "")  # ends the room
    assert room.ended

    async def stopped() -> bool:
        return record.made[0].stops == 1

    await eventually(stopped)
    assert recorder.published(room, seat("village-t"), publication("again")) is None
    await recorder.close()


@pytest.mark.parametrize(
    ("user", "track"),
    [
        ("town-r", "town-r"),
        ("petitioner:CASE-1", "petitioner-CASE-1"),
        ("张三", "张三"),
        ("a b/c", "a-b-c"),
        ("../etc", "etc"),
        ("", "user"),
        ("///", "user"),
        ("x" * 80, "x" * 64),
    ],
)
def test_track_name(user: str, track: str) -> None:
    assert track_name(user) == track
