"""`Petitions` without sockets: every legal and illegal move of a case, the timeline and events
each move leaves, queue routing, hearing rooms, restarts, SLA counts and who may act."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import pytest
from aiohttp import web

from config.schema import Role
from hub.core.auth import PRINCIPAL, Principal
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound
from hub.core.events import EventBus
from hub.petitions import api
from hub.petitions.model import (
    LABELS,
    MOVES,
    Case,
    Category,
    IllegalMove,
    Outcome,
    Status,
    check_move,
)
from hub.petitions.service import PETITIONS, Petitions
from hub.rooms.model import RoomKind, Rooms
from tests.hub.petitions.conftest import (
    COUNTY,
    COUNTY_DESK,
    DESK,
    KIOSK,
    MONDAY_9,
    OTHER_TOWN,
    OTHER_VILLAGE,
    TOWN,
    VILLAGE,
    Clock,
    Maker,
    drain,
    eventually,
)

# -- the move table, independent of MOVES -------------------------------------------------
S = Status
LEGAL: dict[str, tuple[set[Status], Status]] = {
    "triage": ({S.RECEIVED}, S.TRIAGED),
    "accept": ({S.TRIAGED, S.TRANSFERRED}, S.IN_HEARING),
    "transfer": ({S.TRIAGED, S.TRANSFERRED, S.IN_HEARING, S.JOINT_HEARING}, S.TRANSFERRED),
    "invite": ({S.IN_HEARING, S.JOINT_HEARING}, S.JOINT_HEARING),
    "resolve": ({S.TRIAGED, S.TRANSFERRED, S.IN_HEARING, S.JOINT_HEARING}, S.RESOLVED),
    "followup": ({S.RESOLVED}, S.FOLLOWED_UP),
    "archive": ({S.FOLLOWED_UP}, S.ARCHIVED),
    "interrupted": ({S.IN_HEARING, S.JOINT_HEARING}, S.TRIAGED),
    "hearing_ended": ({S.IN_HEARING, S.JOINT_HEARING}, S.TRIAGED),
}


def test_move_table_has_exactly_the_documented_actions() -> None:
    assert set(MOVES) == set(LEGAL)
    assert set(LABELS) == set(Status)


@pytest.mark.parametrize(("status", "action"), list(itertools.product(list(Status), sorted(LEGAL))))
def test_check_move_every_state_and_action(status: Status, action: str) -> None:
    sources, target = LEGAL[action]
    if status in sources:
        assert check_move("X-1", status, action) is target
    else:
        with pytest.raises(IllegalMove) as err:
            check_move("X-1", status, action)
        message = str(err.value)
        assert message.startswith(f"case X-1 is {status} ({LABELS[status]}): {action} is only")
        for source in sources:
            assert f"{source} ({LABELS[source]})" in message


# -- the same table through the service ---------------------------------------------------
PATHS: dict[Status, list[str]] = {
    S.TRIAGED: [],
    S.IN_HEARING: ["accept"],
    S.TRANSFERRED: ["transfer"],
    S.JOINT_HEARING: ["accept", "invite"],
    S.RESOLVED: ["resolve"],
    S.FOLLOWED_UP: ["resolve", "followup"],
    S.ARCHIVED: ["resolve", "followup", "archive"],
}
SERVICE_ACTIONS = ["accept", "transfer", "invite", "resolve", "followup", "archive"]


async def act(petitions: Petitions, code: str, action: str, who: Principal = DESK) -> Case:
    if action == "accept":
        return await petitions.accept(code, who)
    if action == "transfer":
        return await petitions.transfer(code, who, COUNTY, "to the county")
    if action == "invite":
        return await petitions.invite(code, who, ["county-m"], "please join")
    if action == "resolve":
        return await petitions.resolve(code, who, Outcome.MEDIATED, "agreed")
    if action == "followup":
        return await petitions.followup(code, who, 5, "satisfied")
    if action == "archive":
        return await petitions.archive(code, who, "done")
    raise AssertionError(action)


async def case_in(petitions: Petitions, status: Status) -> Case:
    case = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "宅基地")
    for action in PATHS[status]:
        case = await act(petitions, case.code, action)
    assert case.status is status
    return case


@pytest.mark.parametrize(
    ("status", "action"), list(itertools.product(list(PATHS), SERVICE_ACTIONS))
)
async def test_service_moves_every_reachable_state(
    petitions: Petitions, status: Status, action: str
) -> None:
    case = await case_in(petitions, status)
    before = await petitions.store.timeline(case.code)
    sources, target = LEGAL[action]
    if status in sources:
        moved = await act(petitions, case.code, action)
        assert moved.status is target
        stored = await petitions.store.get(case.code)
        assert stored == moved
        timeline = await petitions.store.timeline(case.code)
        assert len(timeline) == len(before) + 1
        last = timeline[-1]
        assert (last.action, last.status_from, last.status_to) == (action, status, target)
        assert last.actor == DESK.user
    else:
        with pytest.raises(Conflict) as err:
            await act(petitions, case.code, action)
        assert err.value.code == "illegal_transition"
        assert f"{action} is only allowed from" in err.value.message
        assert await petitions.store.get(case.code) == case  # unchanged
        assert await petitions.store.timeline(case.code) == before  # no entry


async def test_create_files_a_triaged_case_with_two_entries(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    town = bus.subscribe("town-screen", TOWN)
    kiosk = bus.subscribe(KIOSK.user, VILLAGE)
    case = await petitions.create(KIOSK, VILLAGE, Category.WAGE_ARREARS, True, "三个月工资")
    assert case.code == f"{VILLAGE}-20261123-0001"
    assert (case.status, case.queue, case.origin, case.origin_user) == (
        Status.TRIAGED,
        TOWN,
        VILLAGE,
        KIOSK.user,
    )
    assert case.created == case.queued_at == MONDAY_9
    assert case.due_at == MONDAY_9 + 2 * 3600  # urgent: 2 h
    timeline = await petitions.store.timeline(case.code)
    assert [(e.action, e.actor, e.status_from, e.status_to) for e in timeline] == [
        ("receive", KIOSK.user, None, "received"),
        ("triage", "system", "received", "triaged"),
    ]
    assert timeline[0].note == "三个月工资"
    assert timeline[1].note == f"routed to the queue of {TOWN}"
    seen = drain(town)
    assert [(e.topic, e.centre, e.to_users) for e in seen] == [
        ("petition.queued", TOWN, frozenset())
    ]
    assert seen[0].data["code"] == case.code and seen[0].data["colour"] == "blue"
    mine = [e for e in drain(kiosk) if e.topic == "petition.queued"]
    assert [e.to_users for e in mine] == [case.people()]  # its own copy, not the queue's


async def test_moves_publish_to_the_queue_and_the_people(
    petitions: Petitions, bus: EventBus
) -> None:
    case = await petitions.create(KIOSK, VILLAGE, Category.FAMILY, False, "")
    town = bus.subscribe("town-screen", TOWN)
    petitioner = bus.subscribe(case.petitioner, "999")
    stranger = bus.subscribe("nobody", OTHER_TOWN)
    await petitions.accept(case.code, DESK)
    updates = [e for e in drain(town) if e.topic == "petition.updated"]
    assert [e.data["status"] for e in updates] == ["in_hearing"]
    mine = [e for e in drain(petitioner) if e.topic == "petition.updated"]
    assert [e.data["host"] for e in mine] == [DESK.user]
    assert [e for e in drain(stranger) if e.topic.startswith("petition.")] == []


async def test_require_unknown_case_is_not_found(petitions: Petitions) -> None:
    with pytest.raises(NotFound, match="no case 'nope'"):
        await petitions.require("nope")
    with pytest.raises(NotFound):
        await petitions.accept("nope", DESK)


# -- routing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("routes", "origin", "queue"),
    [
        ({}, VILLAGE, TOWN),  # default: the village's township
        ({}, OTHER_VILLAGE, OTHER_TOWN),
        ({}, TOWN, TOWN),  # a township files into its own queue
        ({}, COUNTY, COUNTY),
        ({}, "410922999001", COUNTY),  # township not configured: the county
        ({OTHER_TOWN: COUNTY}, OTHER_VILLAGE, COUNTY),  # a township prefix
        ({OTHER_TOWN: COUNTY}, VILLAGE, TOWN),  # other origins unaffected
        ({TOWN: COUNTY, VILLAGE: OTHER_TOWN}, VILLAGE, OTHER_TOWN),  # the longest prefix wins
        ({TOWN: COUNTY, VILLAGE: OTHER_TOWN}, "410922100202", COUNTY),
    ],
)
async def test_route(make: Maker, routes: dict[str, str], origin: str, queue: str) -> None:
    petitions = await make(routes=routes)
    assert petitions.route(origin) == queue


async def test_routed_case_waits_in_the_configured_queue(make: Maker) -> None:
    petitions = await make(routes={OTHER_TOWN: COUNTY})
    case = await petitions.create(KIOSK, OTHER_VILLAGE, Category.LAND, False, "")
    assert case.queue == COUNTY
    assert [c.code for c in await petitions.waiting(COUNTY)] == [case.code]
    assert await petitions.waiting(OTHER_TOWN) == []


# -- hearings and rooms -------------------------------------------------------------------
async def test_accept_opens_a_hearing_room_for_the_requester(make: Maker, bus: EventBus) -> None:
    rooms = Rooms(bus)
    petitions = await make(rooms=rooms)
    case = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    heard = await petitions.accept(case.code, DESK)
    assert heard.room is not None and heard.host == DESK.user
    room = rooms.get(heard.room)
    assert room is not None
    assert room.kind is RoomKind.HEARING and room.host == DESK.user and room.centre == TOWN
    assert room.invited_users == {KIOSK.user, case.petitioner}
    assert room.title == f"视频接访 {case.code}"
    assert petitions.case_of(room) == case.code
    meeting = rooms.create(DESK, kind=RoomKind.MEETING)
    assert petitions.case_of(meeting) is None


async def test_invite_widens_the_room_and_tells_each_invitee(make: Maker, bus: EventBus) -> None:
    rooms = Rooms(bus)
    petitions = await make(rooms=rooms)
    case = await case_in(petitions, Status.IN_HEARING)
    med = bus.subscribe("county-m", COUNTY)
    first = await petitions.invite(case.code, DESK, ["county-m", "lawyer"], "")
    second = await petitions.invite(case.code, DESK, ["lawyer", "other-m"], "more")
    assert first.status is second.status is Status.JOINT_HEARING
    assert second.invited == ["county-m", "lawyer", "other-m"]  # kept once, in order
    room = rooms.get(case.room or "")
    assert room is not None
    assert {"county-m", "lawyer", "other-m"} <= room.invited_users
    invited = [e for e in drain(med) if e.topic == "petition.invited"]
    assert len(invited) == 1
    assert invited[0].to_users == {"county-m"}
    assert invited[0].data == {"case": case.code, "room": room.id, "by": DESK.user}
    timeline = await petitions.store.timeline(case.code)
    assert timeline[-1].data == {"users": ["lawyer", "other-m"]} and timeline[-1].note == "more"
    assert "other-m" in second.people()


async def test_invite_into_an_ended_room_is_a_conflict(make: Maker, bus: EventBus) -> None:
    rooms = Rooms(bus)
    petitions = await make(rooms=rooms)
    case = await case_in(petitions, Status.IN_HEARING)
    room = rooms.get(case.room or "")
    assert room is not None
    rooms.end(room)  # the host ends it; the case goes back to the queue in a task
    with pytest.raises(Conflict, match="no live hearing room"):
        await petitions.invite(case.code, DESK, ["county-m"], "")


async def test_host_ending_the_room_sends_the_case_back_to_its_queue(
    make: Maker, bus: EventBus
) -> None:
    rooms = Rooms(bus)
    petitions = await make(rooms=rooms)
    case = await case_in(petitions, Status.IN_HEARING)
    room = rooms.get(case.room or "")
    assert room is not None
    rooms.end(room)

    async def back() -> bool:
        stored = await petitions.store.get(case.code)
        return stored is not None and stored.status is Status.TRIAGED

    await eventually(back)
    stored = await petitions.require(case.code)
    assert stored.room is None and stored.host is None
    assert stored.queued_at == case.queued_at  # keeps its place in the queue
    last = (await petitions.store.timeline(case.code))[-1]
    assert (last.action, last.actor, last.status_from) == ("hearing_ended", "system", "in_hearing")
    assert petitions.case_of(room) is None


@pytest.mark.parametrize("action", ["resolve", "transfer"])
async def test_resolving_or_transferring_ends_the_room_without_hearing_ended(
    make: Maker, bus: EventBus, action: str
) -> None:
    rooms = Rooms(bus)
    petitions = await make(rooms=rooms)
    case = await case_in(petitions, Status.JOINT_HEARING)
    room = rooms.get(case.room or "")
    assert room is not None and not room.ended
    moved = await act(petitions, case.code, action)
    assert room.ended
    await petitions.close()  # awaits any hearing_ended task
    timeline = await petitions.store.timeline(case.code)
    assert timeline[-1].action == action
    assert "hearing_ended" not in [e.action for e in timeline]
    assert (await petitions.require(case.code)).status is moved.status


async def test_transfer_moves_the_queue_and_requeues_now(
    petitions: Petitions, clock: Clock
) -> None:
    case = await case_in(petitions, Status.IN_HEARING)
    clock.advance(600)
    moved = await petitions.transfer(case.code, DESK, COUNTY, "beyond the township")
    assert (moved.queue, moved.queued_at, moved.room, moved.host) == (
        COUNTY,
        MONDAY_9 + 600,
        None,
        None,
    )
    last = (await petitions.store.timeline(case.code))[-1]
    assert last.data == {"from": TOWN, "to": COUNTY} and last.note == "beyond the township"
    assert [c.code for c in await petitions.waiting(COUNTY)] == [case.code]
    assert await petitions.waiting(TOWN) == []


async def test_resolve_followup_archive_record_their_data(
    petitions: Petitions, clock: Clock
) -> None:
    case = await case_in(petitions, Status.TRIAGED)
    clock.advance(3600)
    resolved = await petitions.resolve(case.code, DESK, Outcome.ARBITRATION, "to arbitration")
    assert resolved.outcome is Outcome.ARBITRATION and resolved.resolved_at == MONDAY_9 + 3600
    followed = await petitions.followup(case.code, DESK, 4, "ok")
    assert followed.satisfaction == 4
    archived = await petitions.archive(case.code, DESK, "closed")
    assert archived.status is Status.ARCHIVED
    assert archived.outcome is Outcome.ARBITRATION and archived.satisfaction == 4
    actions = [(e.action, e.data) for e in await petitions.store.timeline(case.code)]
    assert actions[2:] == [
        ("resolve", {"outcome": "arbitration"}),
        ("followup", {"satisfaction": 4}),
        ("archive", {}),
    ]


async def test_record_notes_and_links(petitions: Petitions, clock: Clock) -> None:
    case = await case_in(petitions, Status.RESOLVED)
    clock.advance(5)
    noted = await petitions.record(case.code, "town-r", "note", "called the employer")
    assert noted.status is Status.RESOLVED
    linked = await petitions.record(case.code, "town-r", "link", "issued", link_iat=1234)
    assert linked.link_iat == 1234
    last = (await petitions.store.timeline(case.code))[-2:]
    assert [(e.action, e.status_from, e.status_to, e.note) for e in last] == [
        ("note", None, None, "called the employer"),
        ("link", None, None, "issued"),
    ]
    assert last[1].data == {}  # link_iat is not written into the timeline
    assert last[0].at == MONDAY_9 + 5
    archived = await case_in(petitions, Status.ARCHIVED)
    with pytest.raises(Conflict, match="archived"):
        await petitions.record(archived.code, "town-r", "note", "too late")
    # other entries still go on an archived case (e.g. an export link)
    assert (await petitions.record(archived.code, "town-r", "link", "")).status is Status.ARCHIVED


# -- restarts and the cluster hooks -------------------------------------------------------
async def test_restart_marks_open_hearings_interrupted(make: Maker, bus: EventBus) -> None:
    first = await make()
    heard = await case_in(first, Status.IN_HEARING)
    joint = await case_in(first, Status.JOINT_HEARING)
    waiting = await case_in(first, Status.TRANSFERRED)
    await first.close()
    second = await make()
    for case in (heard, joint):
        again = await second.require(case.code)
        assert (again.status, again.room, again.host) == (Status.TRIAGED, None, None)
        last = (await second.store.timeline(case.code))[-1]
        assert (last.action, last.actor, last.status_from, last.status_to) == (
            "interrupted",
            "system",
            str(case.status),
            "triaged",
        )
    assert (await second.require(waiting.code)).status is Status.TRANSFERRED
    assert [c.code for c in await second.waiting(TOWN)] == [heard.code, joint.code]
    assert (await second.accept(heard.code, DESK)).status is Status.IN_HEARING


async def test_claims_every_kept_and_new_case(make: Maker) -> None:
    first = await make()
    kept = await first.create(KIOSK, VILLAGE, Category.OTHER, False, "")
    claims: list[tuple[str, str]] = []
    second = await make(claim=lambda kind, code: claims.append((kind, code)))
    assert claims == [("petition", kept.code)]
    new = await second.create(KIOSK, VILLAGE, Category.OTHER, False, "")
    assert claims == [("petition", kept.code), ("petition", new.code)]


# -- views, queue positions and SLA counts ------------------------------------------------
async def test_view_positions_and_estimates(petitions: Petitions, clock: Clock) -> None:
    a = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    clock.advance(60)
    b = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    clock.advance(60)
    urgent = await petitions.create(KIOSK, VILLAGE, Category.LAND, True, "")
    waiting = await petitions.waiting(TOWN)
    assert [c.code for c in waiting] == [urgent.code, a.code, b.code]
    views = {c.code: petitions.view(c, waiting) for c in waiting}
    assert [views[c]["position"] for c in (urgent.code, a.code, b.code)] == [1, 2, 3]
    assert views[b.code]["estimate"] == 3 * 15 * 60
    assert views[a.code]["waited"] == 120.0 and views[urgent.code]["waited"] == 0.0
    heard = await petitions.accept(a.code, DESK)
    view = petitions.view(heard, await petitions.waiting(TOWN))
    assert "position" not in view and view["waited"] == 0
    plain = petitions.view(b)
    assert "position" not in plain and plain["status_label"] == "分诊"


async def test_sla_counts_open_cases_by_colour(petitions: Petitions, clock: Clock) -> None:
    assert await petitions.sla_counts() == {"blue": 0, "yellow": 0, "red": 0}
    late = await petitions.create(KIOSK, VILLAGE, Category.LAND, True, "")  # 2 h
    clock.advance(3600)
    yellow = await petitions.create(KIOSK, VILLAGE, Category.LAND, True, "")
    await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")  # 7 wd
    heard = await petitions.create(KIOSK, VILLAGE, Category.PROPERTY, False, "")  # 2 wd
    await petitions.accept(heard.code, DESK)  # a hearing still counts
    done = await petitions.create(KIOSK, VILLAGE, Category.LAND, True, "")
    await petitions.resolve(done.code, DESK, Outcome.MEDIATED, "")  # not open
    clock.advance(2 * 3600 - 1)  # late: 3 h in (red); yellow: 1.99 h of 2 (yellow)
    assert await petitions.sla_counts() == {"blue": 2, "yellow": 1, "red": 1}
    await petitions.resolve(late.code, DESK, Outcome.COURT, "")
    await petitions.resolve(yellow.code, DESK, Outcome.COURT, "")
    assert await petitions.sla_counts() == {"blue": 2, "yellow": 0, "red": 0}


# -- who may read and act (the API's rules, as functions) --------------------------------
def sample_case(**changes: Any) -> Case:
    base = Case(
        code=f"{VILLAGE}-20261123-0001",
        origin=VILLAGE,
        queue=TOWN,
        category=Category.LAND,
        urgent=False,
        text="",
        origin_user=KIOSK.user,
        created=MONDAY_9,
        due_at=MONDAY_9 + 3600,
        invited=["other-m"],
        host=None,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("who", "readable"),
    [
        (Principal(f"petitioner:{VILLAGE}-20261123-0001", Role.PETITIONER, VILLAGE), True),
        (Principal(f"petitioner:{VILLAGE}-20261123-0002", Role.PETITIONER, VILLAGE), False),
        (KIOSK, True),
        (Principal("village-t2", Role.TERMINAL, VILLAGE), False),  # another kiosk of the village
        (Principal("town-op", Role.OPERATOR, TOWN), False),  # not staff
        (Principal("admin", Role.ADMIN, COUNTY), True),
        (DESK, True),
        (COUNTY_DESK, True),
        (Principal("v-r", Role.RECEPTIONIST, VILLAGE), True),  # the origin is in scope
        (Principal("other-r", Role.RECEPTIONIST, OTHER_TOWN), False),
        (Principal("other-m", Role.MEDIATOR, OTHER_TOWN), True),  # invited
        (Principal("other-d", Role.DISPATCHER, OTHER_TOWN), False),
    ],
)
def test_may_read(who: Principal, readable: bool) -> None:
    assert api.may_read(who, sample_case()) is readable


class FakeRequest:
    """What `_acting` reads of a request: the principal, the app's service, the path."""

    def __init__(self, petitions: Petitions, who: Principal, code: str) -> None:
        self.app = {PETITIONS: petitions}
        self.match_info = {"code": code}
        self._who = who

    def get(self, key: object, default: object = None) -> object:
        return self._who if key is PRINCIPAL else default


async def acting(petitions: Petitions, who: Principal, code: str, invited_ok: bool) -> Case:
    request = cast(web.Request, FakeRequest(petitions, who, code))
    _, case, p = await api._acting(request, invited_ok=invited_ok)
    assert p is who
    return case


@pytest.mark.parametrize(
    ("who", "invited_ok", "outcome"),
    [
        (DESK, False, "ok"),
        (COUNTY_DESK, False, "ok"),
        (Principal("admin", Role.ADMIN, COUNTY), False, "ok"),
        (KIOSK, False, "forbidden"),  # reads its case, never acts on it
        (Principal("v-r", Role.RECEPTIONIST, VILLAGE), False, "forbidden"),  # origin only
        (Principal("other-r", Role.RECEPTIONIST, OTHER_TOWN), False, "not_found"),
        (Principal("county-m", Role.MEDIATOR, OTHER_TOWN), False, "forbidden"),  # invited
        (Principal("county-m", Role.MEDIATOR, OTHER_TOWN), True, "ok"),  # notes: invited ok
        (Principal("host-r", Role.RECEPTIONIST, OTHER_TOWN), False, "ok"),  # the host
    ],
)
async def test_who_may_act_on_a_case(
    make: Maker, who: Principal, invited_ok: bool, outcome: str
) -> None:
    petitions = await make()
    case = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    await petitions.accept(case.code, Principal("host-r", Role.RECEPTIONIST, OTHER_TOWN))
    await petitions.invite(case.code, DESK, ["county-m"], "")
    if outcome == "ok":
        assert (await acting(petitions, who, case.code, invited_ok)).code == case.code
    elif outcome == "forbidden":
        with pytest.raises(Forbidden):
            await acting(petitions, who, case.code, invited_ok)
    else:
        with pytest.raises(NotFound, match="in your scope"):
            await acting(petitions, who, case.code, invited_ok)


async def test_scoped_list(make: Maker) -> None:
    petitions = await make()
    mine = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    west_kiosk = Principal("west-t", Role.TERMINAL, OTHER_VILLAGE)
    west = await petitions.create(west_kiosk, OTHER_VILLAGE, Category.LAND, False, "")
    await petitions.resolve(west.code, COUNTY_DESK, Outcome.MEDIATED, "")

    async def codes(who: Principal, status: str = "", centre: str | None = None) -> list[str]:
        return [c["code"] for c in await api.scoped_list(petitions, who, status, centre)]

    assert await codes(KIOSK) == [mine.code]
    assert await codes(west_kiosk) == [west.code]
    assert await codes(DESK) == [mine.code]
    assert await codes(COUNTY_DESK) == [mine.code, west.code]
    assert await codes(COUNTY_DESK, "waiting") == [mine.code]
    assert await codes(COUNTY_DESK, "resolved") == [west.code]
    assert await codes(COUNTY_DESK, "", OTHER_TOWN) == [west.code]
    listed = await api.scoped_list(petitions, DESK, "waiting", None)
    assert listed[0]["position"] == 1
    with pytest.raises(Forbidden, match="outside your scope"):
        await codes(DESK, "", OTHER_TOWN)
    with pytest.raises(Forbidden, match="may not list"):
        await codes(Principal("town-op", Role.OPERATOR, TOWN))
    with pytest.raises(Invalid, match="status must be one of"):
        await codes(DESK, "lost")


# -- concurrency: one lock serialises the moves -------------------------------------------
async def test_two_desks_accepting_at_once_one_wins(make: Maker, bus: EventBus) -> None:
    rooms = Rooms(bus)
    petitions = await make(rooms=rooms)
    case = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    results = await asyncio.gather(
        petitions.accept(case.code, DESK),
        petitions.accept(case.code, COUNTY_DESK),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, Case)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].code == "illegal_transition"
    assert [r.id for r in rooms.active()] == [won[0].room]  # the loser opened no room
    timeline = await petitions.store.timeline(case.code)
    assert [e.action for e in timeline].count("accept") == 1


async def test_concurrent_requests_get_consecutive_codes(petitions: Petitions) -> None:
    cases = await asyncio.gather(
        *(petitions.create(KIOSK, VILLAGE, Category.OTHER, False, str(i)) for i in range(12))
    )
    numbers = sorted(int(c.code.rsplit("-", 1)[1]) for c in cases)
    assert numbers == list(range(1, 13))
    assert len(set(await petitions.store.codes())) == 12
