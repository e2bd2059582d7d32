"""The event bus: who wants what, sequence numbers, direct delivery, lag, taps, closing."""

from __future__ import annotations

import asyncio

import pytest

from hub.core.events import Event, EventBus
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE


@pytest.mark.parametrize(
    ("scope", "centre", "wanted"),
    [
        (COUNTY, VILLAGE, True),
        (COUNTY, COUNTY, True),
        (TOWN, VILLAGE, True),
        (TOWN, TOWN, True),
        (TOWN, COUNTY, False),  # an event of the county is not a township's business
        (TOWN, OTHER_TOWN, False),
        (VILLAGE, TOWN, False),
        (VILLAGE, "", True),  # no centre: everyone
    ],
)
def test_wants_by_scope(scope: str, centre: str, wanted: bool) -> None:
    sub = EventBus().subscribe("u", scope)
    assert sub.wants(Event("t", centre, {})) is wanted


def test_addressed_events_go_to_the_named_users_only_whatever_the_scope() -> None:
    bus = EventBus()
    county = bus.subscribe("boss", COUNTY)
    village = bus.subscribe("li", VILLAGE)
    event = Event("call.ringing", TOWN, {}, to_users=frozenset({"li"}))
    assert village.wants(event)  # outside its scope, but addressed to it
    assert not county.wants(event)  # in scope, but not addressed to it
    assert not village.wants(Event("x", "", {}, to_users=frozenset({"boss"})))


def test_publish_numbers_events_and_keeps_fields() -> None:
    bus = EventBus()
    first = bus.publish("a", TOWN, {"k": 1})
    second = bus.publish("b", VILLAGE, {"k": 2}, to_users={"li"}, origin="node-2", at=1700000000.5)
    assert (first.seq, second.seq) == (1, 2)
    assert bus.published == 2
    assert second == Event("b", VILLAGE, {"k": 2}, frozenset({"li"}), 2, 1700000000.5, "node-2")
    assert isinstance(second.to_users, frozenset)
    assert second.to_json() == {
        "type": "event",
        "topic": "b",
        "centre": VILLAGE,
        "seq": 2,
        "at": 1700000000.5,
        "data": {"k": 2},
    }
    assert first.origin == "" and first.at > 0


async def test_subscribers_get_their_events_in_order() -> None:
    bus = EventBus()
    town = bus.subscribe("t", TOWN)
    for i in range(5):
        bus.publish("n", VILLAGE if i % 2 else TOWN, {"i": i})
    bus.publish("not-mine", OTHER_TOWN, {})
    assert [(await town.get()).data["i"] for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(town._queue) == 0


async def test_get_waits_for_the_next_event() -> None:
    bus = EventBus()
    sub = bus.subscribe("u", COUNTY)
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.publish("later", TOWN, {"x": 1})
    event = await waiter
    assert (event.topic, event.data) == ("later", {"x": 1})


def test_per_subscription_maxsize_and_lag_count() -> None:
    bus = EventBus(maxsize=100)
    small = bus.subscribe("s", COUNTY, maxsize=2)
    big = bus.subscribe("b", COUNTY)
    assert (small.maxsize, big.maxsize) == (2, 100)
    for i in range(5):
        bus.publish("n", TOWN, {"i": i})
    assert small.lagged == 3 and big.lagged == 0
    assert [e.data["i"] for e in small._queue] == [3, 4]
    assert len(big._queue) == 5


def test_events_outside_the_scope_never_count_as_lag() -> None:
    bus = EventBus(maxsize=1)
    sub = bus.subscribe("v", VILLAGE)
    for _ in range(10):
        bus.publish("n", OTHER_TOWN, {})
    assert sub.lagged == 0 and len(sub._queue) == 0


def test_direct_delivery_skips_the_queue_while_it_is_empty() -> None:
    bus = EventBus()
    sub = bus.subscribe("u", COUNTY)
    delivered: list[int] = []
    accept = {"yes": True}

    def direct(event: Event) -> bool:
        if accept["yes"]:
            delivered.append(event.data["i"])
        return accept["yes"]

    sub.direct = direct
    bus.publish("n", TOWN, {"i": 1})
    assert delivered == [1] and len(sub._queue) == 0
    accept["yes"] = False  # the socket is full: queue it
    bus.publish("n", TOWN, {"i": 2})
    accept["yes"] = True
    bus.publish("n", TOWN, {"i": 3})  # something queued already: keep order, queue this too
    assert delivered == [1]
    assert [e.data["i"] for e in sub._queue] == [2, 3]


def test_taps_see_every_published_event_even_unsubscribed() -> None:
    bus = EventBus()
    tapped: list[tuple[str, str]] = []
    handle = bus.taps.connect(lambda e: tapped.append((e.topic, e.centre)))
    bus.publish("a", TOWN, {})
    bus.publish("b", "", {}, to_users={"x"})
    handle.disconnect()
    bus.publish("c", TOWN, {})
    assert tapped == [("a", TOWN), ("b", "")]


def test_a_failing_tap_does_not_break_publish() -> None:
    bus = EventBus()
    sub = bus.subscribe("u", COUNTY)

    def broken(_: Event) -> None:
        raise RuntimeError("cluster forwarder bug")

    bus.taps.connect(broken)
    event = bus.publish("a", TOWN, {})
    assert event.seq == 1
    assert list(sub._queue) == [event]


async def test_closed_subscription_drains_then_refuses() -> None:
    bus = EventBus()
    sub = bus.subscribe("u", COUNTY)
    other = bus.subscribe("o", COUNTY)
    bus.publish("kept", TOWN, {})
    sub.close()
    assert len(bus) == 1
    bus.publish("after-close", TOWN, {})  # not delivered to a closed subscription
    assert (await sub.get()).topic == "kept"
    with pytest.raises(asyncio.CancelledError, match="subscription closed"):
        await sub.get()
    sub.close()  # twice: harmless
    assert [e.topic for e in other._queue] == ["kept", "after-close"]


async def test_close_wakes_a_waiting_get() -> None:
    bus = EventBus()
    sub = bus.subscribe("u", COUNTY)
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(bus) == 0
