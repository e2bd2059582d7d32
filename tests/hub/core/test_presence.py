"""Presence: connections, statuses, centres online, the remote directory of a cluster."""

from __future__ import annotations

import pytest

from config.schema import Role
from hub.core.events import EventBus, Subscription
from hub.core.presence import Member, Presence, Status
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE


def statuses(sub: Subscription) -> list[tuple[str, str, str]]:
    out = []
    while sub._queue:
        event = sub._queue.popleft()
        assert event.topic == "presence"
        out.append((event.centre, event.data["user"], event.data["status"]))
    return out


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def watch(bus: EventBus) -> Subscription:
    return bus.subscribe("watcher", COUNTY)


def test_first_connection_goes_online_and_is_published(bus: EventBus, watch: Subscription) -> None:
    presence = Presence(bus)
    member = presence.connect("li", Role.TERMINAL, VILLAGE)
    assert (member.user, member.role, member.centre) == ("li", Role.TERMINAL, VILLAGE)
    assert member.status is Status.ONLINE and member.connections == 1
    assert statuses(watch) == [(VILLAGE, "li", "online")]


def test_several_connections_count_and_only_the_last_goes_offline(
    bus: EventBus, watch: Subscription
) -> None:
    presence = Presence(bus)
    presence.connect("li", Role.TERMINAL, VILLAGE)
    presence.connect("li", Role.TERMINAL, VILLAGE)
    assert statuses(watch) == [(VILLAGE, "li", "online")]
    presence.disconnect("li")
    member = presence.local("li")
    assert member is not None and member.connections == 1 and member.status is Status.ONLINE
    assert statuses(watch) == []
    presence.disconnect("li")
    assert (member.connections, str(member.status)) == (0, "offline")
    assert statuses(watch) == [(VILLAGE, "li", "offline")]
    presence.disconnect("li")  # one too many: stays at zero, nothing published
    assert member.connections == 0
    assert statuses(watch) == []


def test_disconnect_of_an_unknown_user_is_ignored(bus: EventBus, watch: Subscription) -> None:
    presence = Presence(bus)
    presence.disconnect("nobody")
    assert presence.get("nobody") is None and statuses(watch) == []


def test_status_changes_publish_once_and_need_a_connection(
    bus: EventBus, watch: Subscription
) -> None:
    presence = Presence(bus)
    presence.connect("wang", Role.OPERATOR, TOWN)
    presence.set_status("wang", Status.BUSY)
    presence.set_status("wang", Status.BUSY)  # unchanged: no event
    presence.set_status("wang", Status.IN_CALL)
    presence.set_status("wang", Status.ONLINE)
    assert statuses(watch) == [
        (TOWN, "wang", "online"),
        (TOWN, "wang", "busy"),
        (TOWN, "wang", "in_call"),
        (TOWN, "wang", "online"),
    ]
    presence.disconnect("wang")
    presence.set_status("wang", Status.BUSY)  # offline: ignored
    member = presence.get("wang")
    assert member is not None and member.status is Status.OFFLINE
    presence.set_status("ghost", Status.BUSY)
    assert presence.get("ghost") is None
    assert statuses(watch) == [(TOWN, "wang", "offline")]


def test_a_busy_user_reconnecting_keeps_busy(bus: EventBus) -> None:
    presence = Presence(bus)
    presence.connect("wang", Role.OPERATOR, TOWN)
    presence.set_status("wang", Status.BUSY)
    member = presence.connect("wang", Role.OPERATOR, TOWN)
    assert member.status is Status.BUSY and member.connections == 2


def test_moving_to_another_centre_starts_a_new_record(bus: EventBus, watch: Subscription) -> None:
    presence = Presence(bus)
    old = presence.connect("zhao", Role.OPERATOR, TOWN)
    new = presence.connect("zhao", Role.OPERATOR, OTHER_TOWN)
    assert new is not old
    assert new.centre == OTHER_TOWN and new.connections == 1
    assert presence.local("zhao") is new
    assert statuses(watch) == [(TOWN, "zhao", "online"), (OTHER_TOWN, "zhao", "online")]


def test_presence_events_stay_in_scope(bus: EventBus) -> None:
    other = bus.subscribe("other", OTHER_TOWN)
    town = bus.subscribe("town", TOWN)
    Presence(bus).connect("li", Role.TERMINAL, VILLAGE)
    assert statuses(other) == []
    assert statuses(town) == [(VILLAGE, "li", "online")]


def test_online_scopes_and_centres(bus: EventBus) -> None:
    presence = Presence(bus)
    presence.connect("boss", Role.ADMIN, COUNTY)
    presence.connect("wang", Role.OPERATOR, TOWN)
    presence.connect("li", Role.TERMINAL, VILLAGE)
    presence.connect("ma", Role.OPERATOR, OTHER_TOWN)
    presence.connect("gone", Role.OPERATOR, TOWN)
    presence.disconnect("gone")
    assert sorted(m.user for m in presence.online()) == ["boss", "li", "ma", "wang"]
    assert sorted(m.user for m in presence.online(TOWN)) == ["li", "wang"]
    assert [m.user for m in presence.online_in(TOWN)] == ["wang"]
    assert sorted(m.user for m in presence.local_online()) == ["boss", "li", "ma", "wang"]
    gone = presence.get("gone")
    assert gone is not None and gone.status is Status.OFFLINE  # as last seen


def test_duty_users_are_marked(bus: EventBus) -> None:
    presence = Presence(bus, duty_users={"duty-room"})
    assert presence.connect("duty-room", Role.TERMINAL, VILLAGE).duty is True
    assert presence.connect("li", Role.TERMINAL, VILLAGE).duty is False


def test_member_json() -> None:
    member = Member("li", Role.TERMINAL, VILLAGE, 1, Status.IN_CALL, since=12.5, duty=True)
    assert member.to_json() == {
        "user": "li",
        "role": "terminal",
        "centre": VILLAGE,
        "status": "in_call",
        "since": 12.5,
        "duty": True,
    }
    member.node = "node-b"
    assert member.to_json()["node"] == "node-b"


class Remote:
    def __init__(self, *members: Member) -> None:
        self._members = {m.user: m for m in members}

    def get(self, user: str) -> Member | None:
        return self._members.get(user)

    def members(self) -> list[Member]:
        return list(self._members.values())


def test_remote_directory_answers_for_the_whole_hub(bus: EventBus) -> None:
    presence = Presence(bus)
    presence.connect("wang", Role.OPERATOR, TOWN)
    presence.connect("li", Role.TERMINAL, VILLAGE)
    presence.disconnect("li")
    remote_li = Member("li", Role.TERMINAL, VILLAGE, 1, Status.ONLINE, node="node-b")
    remote_wang = Member("wang", Role.OPERATOR, TOWN, 1, Status.BUSY, node="node-b")
    remote_ma = Member("ma", Role.OPERATOR, OTHER_TOWN, 1, Status.ONLINE, node="node-c")
    presence.remote = Remote(remote_li, remote_wang, remote_ma)
    assert presence.get("li") is remote_li  # offline here, online there
    here = presence.get("wang")
    assert here is not None and here.node == ""  # connected here: this node's record wins
    assert presence.get("ma") is remote_ma
    assert presence.local("ma") is None
    everyone = presence.online()
    assert [m.user for m in everyone] == ["wang", "li", "ma"]
    assert everyone[0] is here  # the local record, not the remote duplicate
    assert [m.user for m in presence.online_in(VILLAGE)] == ["li"]
    assert [m.user for m in presence.local_online()] == ["wang"]


def test_status_changes_apply_to_local_members_only(bus: EventBus) -> None:
    presence = Presence(bus)
    remote_ma = Member("ma", Role.OPERATOR, OTHER_TOWN, 1, Status.ONLINE, node="node-c")
    presence.remote = Remote(remote_ma)
    presence.set_status("ma", Status.BUSY)
    assert remote_ma.status is Status.ONLINE


def test_remote_unknown_user_falls_back_to_last_seen(bus: EventBus) -> None:
    presence = Presence(bus)
    presence.connect("li", Role.TERMINAL, VILLAGE)
    presence.disconnect("li")
    presence.remote = Remote()
    member = presence.get("li")
    assert member is not None and member.status is Status.OFFLINE
    assert presence.get("nobody") is None
