"""RoomMedia without WebRTC: a stand-in SFU records what the room glue asks of it —
publish/republish, seats leaving when their media ends, subscriptions ended with the seat or
the room, mute, the active speaker, and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, cast

import pytest

from config.schema import Role
from hub.core.auth import Principal
from hub.core.errors import NotFound
from hub.core.events import EventBus
from hub.rooms import service
from hub.rooms.model import Room, Rooms, Seat
from hub.rooms.service import RoomMedia
from signaling.publish import Publication, Publications
from signaling.whep import OfferError
from tests.conftest import TOWN, VILLAGE

HOST = Principal("host", Role.DISPATCHER, TOWN)
GUEST = Principal("guest", Role.TERMINAL, VILLAGE)


class StandIn:
    def __init__(self, publication_id: str, owner: str) -> None:
        self.id, self.owner = publication_id, owner
        self.audio_muted = False
        self.audio_level = 0.0


class FakeSfu(Publications):
    def __init__(self) -> None:
        super().__init__([])
        self.live: dict[str, StandIn] = {}
        self.calls: list[tuple[str, ...]] = []
        self.count = 0
        self.closed_all = False

    async def publish(
        self, offer_sdp: str, *, owner: str, publication_id: str | None = None
    ) -> tuple[Publication, str]:
        if offer_sdp == "refused":
            raise OfferError("the offer has no usable media")
        self.count += 1
        pub = StandIn(f"p{self.count}", owner)
        self.live[pub.id] = pub
        self.calls.append(("publish", owner, offer_sdp))
        return cast(Publication, pub), f"answer-{pub.id}"

    async def unpublish(self, publication_id: str, reason: str = "closed") -> bool:
        self.calls.append(("unpublish", publication_id, reason))
        return self.live.pop(publication_id, None) is not None

    async def subscribe(self, publication_id: str, offer_sdp: str, *, user: str) -> tuple[str, str]:
        self.count += 1
        self.calls.append(("subscribe", publication_id, user))
        return f"s{self.count}", "answer"

    async def unsubscribe(self, session_id: str, reason: str = "closed") -> bool:
        self.calls.append(("unsubscribe", session_id))
        return True

    def get(self, publication_id: str) -> Publication | None:
        return cast(Publication | None, self.live.get(publication_id))

    async def close_all(self) -> None:
        self.closed_all = True


def stand_in(pub: Publication) -> StandIn:
    return cast(StandIn, pub)


class Setup:
    def __init__(self) -> None:
        self.rooms = Rooms(EventBus())
        self.sfu = FakeSfu()
        self.media = RoomMedia(self.rooms, self.sfu)
        self.room = self.rooms.create(HOST, users=["guest"])
        self.host_seat = self.rooms.join(self.room, HOST)
        self.guest_seat = self.rooms.join(self.room, GUEST)

    async def settle(self) -> None:
        while len(self.media._tasks):
            await asyncio.sleep(0.001)  # the media's own tasks (unpublish, snapshots) finish


@pytest.fixture
async def s() -> AsyncIterator[Setup]:
    setup = Setup()
    try:
        yield setup
    finally:
        await setup.media.close()


async def test_publish_names_the_publication_on_the_seat(s: Setup) -> None:
    pub, answer = await s.media.publish(s.room, s.guest_seat, "offer-sdp")
    assert (pub.id, answer) == ("p1", "answer-p1")
    assert s.sfu.calls == [("publish", "guest", "offer-sdp")]
    assert s.guest_seat.publication == "p1"
    assert s.guest_seat.to_json()["publication"] == "p1"
    assert stand_in(pub).audio_muted is False


async def test_a_muted_seat_publishes_muted_and_mute_follows_the_seat(s: Setup) -> None:
    s.rooms.control(s.room, HOST, "mute", "guest")
    pub, _ = await s.media.publish(s.room, s.guest_seat, "o")
    assert stand_in(pub).audio_muted is True
    s.rooms.control(s.room, HOST, "unmute", "guest")
    s.media.mute(s.room, s.guest_seat)
    assert stand_in(pub).audio_muted is False
    s.media.mute(s.room, s.host_seat)  # no publication: nothing to do


async def test_republishing_ends_the_previous_publication(s: Setup) -> None:
    await s.media.publish(s.room, s.guest_seat, "camera")
    await s.media.publish(s.room, s.guest_seat, "screen")
    assert ("unpublish", "p1", "republished") in s.sfu.calls
    assert s.guest_seat.publication == "p2" and list(s.sfu.live) == ["p2"]


async def test_on_published_listeners_and_their_coroutines(s: Setup) -> None:
    ran: list[str] = []

    async def later(user: str) -> None:
        ran.append(f"later:{user}")

    def listener(room: Room, seat: Seat, pub: Publication) -> Coroutine[Any, Any, None] | None:
        ran.append(f"now:{seat.user}:{pub.id}")
        return later(seat.user) if seat.user == "guest" else None

    s.rooms.on_published.connect(listener)
    await s.media.publish(s.room, s.host_seat, "o")
    await s.media.publish(s.room, s.guest_seat, "o")
    await s.settle()
    assert ran == ["now:host:p1", "now:guest:p2", "later:guest"]


async def test_media_ending_leaves_the_seat(s: Setup) -> None:
    pub, _ = await s.media.publish(s.room, s.guest_seat, "o")
    left: list[str] = []
    s.rooms.on_seat_left.connect(lambda room, seat: left.append(seat.user))
    s.media.publication_closed(pub, "ice failed")
    assert left == ["guest"] and not s.guest_seat.present
    s.media.publication_closed(pub, "again")  # forgotten already: nothing more
    assert left == ["guest"]


async def test_an_old_publication_closing_does_not_unseat_a_republished_seat(s: Setup) -> None:
    old, _ = await s.media.publish(s.room, s.guest_seat, "camera")
    await s.media.publish(s.room, s.guest_seat, "screen")
    s.media.publication_closed(old, "republished")
    assert s.guest_seat.present and s.guest_seat.publication == "p2"


async def test_leaving_ends_the_seats_media_and_what_it_watched(s: Setup) -> None:
    host_pub, _ = await s.media.publish(s.room, s.host_seat, "o")
    guest_pub, _ = await s.media.publish(s.room, s.guest_seat, "o")
    guest_watch, _ = await s.media.subscribe(s.room, host_pub.id, "o", "guest")
    host_watch, _ = await s.media.subscribe(s.room, guest_pub.id, "o", "host")
    s.rooms.leave(s.room, "guest")
    await s.settle()
    assert ("unpublish", "p2", "left the room") in s.sfu.calls
    assert ("unsubscribe", guest_watch) in s.sfu.calls
    assert ("unsubscribe", host_watch) not in s.sfu.calls  # the host keeps its session
    assert s.media._subscriptions[s.room.id] == {host_watch: "host"}


async def test_ending_the_room_ends_every_subscription(s: Setup) -> None:
    host_pub, _ = await s.media.publish(s.room, s.host_seat, "o")
    watch, _ = await s.media.subscribe(s.room, host_pub.id, "o", "guest")
    s.rooms.end(s.room)
    await s.settle()
    assert ("unsubscribe", watch) in s.sfu.calls
    assert ("unpublish", "p1", "left the room") in s.sfu.calls
    assert s.room.id not in s.media._subscriptions


async def test_active_speaker_is_the_loudest_unmuted_seat(
    s: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SPEAKER_INTERVAL", 0.01)
    host_pub, _ = await s.media.publish(s.room, s.host_seat, "o")
    guest_pub, _ = await s.media.publish(s.room, s.guest_seat, "o")
    stand_in(host_pub).audio_level = 0.3
    stand_in(guest_pub).audio_level = 0.6
    s.media.start()

    async def speaker_is(user: str | None) -> None:
        async with asyncio.timeout(2):
            while s.room.active_speaker != user:
                await asyncio.sleep(0.01)

    await speaker_is("guest")
    s.rooms.control(s.room, HOST, "mute", "guest")  # a muted seat never speaks
    await speaker_is("host")
    stand_in(host_pub).audio_level = service.SPEAKER_THRESHOLD  # not above: silence
    await speaker_is(None)


async def test_close_stops_listening_and_closes_the_sfu() -> None:
    setup = Setup()
    await setup.media.publish(setup.room, setup.guest_seat, "o")
    setup.media.start()
    await setup.media.close()
    assert setup.sfu.closed_all
    setup.rooms.leave(setup.room, "guest")  # after close: no media work is started
    assert len(setup.media._tasks) == 0
    assert [c for c in setup.sfu.calls if c[0] == "unpublish"] == []


async def test_only_the_subscriber_ends_its_subscription_and_only_in_its_room() -> None:
    """Found by the outside check: anyone could end anyone's subscription, even through
    another room."""
    setup = Setup()
    other_room = setup.rooms.create(HOST, users=["guest"])
    await setup.media.publish(setup.room, setup.host_seat, "o")
    publication = setup.host_seat.publication
    assert publication is not None
    session, _ = await setup.media.subscribe(setup.room, publication, "o", "guest")
    for who, room in ((HOST, setup.room), (GUEST, other_room)):
        with pytest.raises(NotFound):
            await setup.media.unsubscribe(room, session, who)
    assert ("unsubscribe", session) not in setup.sfu.calls
    await setup.media.unsubscribe(setup.room, session, GUEST)
    assert ("unsubscribe", session) in setup.sfu.calls
    with pytest.raises(NotFound):  # once
        await setup.media.unsubscribe(setup.room, session, GUEST)


async def test_a_refused_republish_keeps_the_live_publication_and_the_seat() -> None:
    """Found by the outside check: the old publication was ended before the new offer was
    tried, so a refused one left the seat with nothing (and freed it)."""
    setup = Setup()
    first, _ = await setup.media.publish(setup.room, setup.guest_seat, "o")
    with pytest.raises(OfferError):
        await setup.media.publish(setup.room, setup.guest_seat, "refused")
    assert setup.guest_seat.publication == first.id and setup.guest_seat.present
    assert ("unpublish", first.id, "republished") not in setup.sfu.calls
    second, _ = await setup.media.publish(setup.room, setup.guest_seat, "o2")
    assert setup.guest_seat.publication == second.id and setup.guest_seat.present
    assert ("unpublish", first.id, "republished") in setup.sfu.calls
