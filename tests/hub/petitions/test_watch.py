"""`PetitionWatch` with a fake clock and a fake call-back: overdue cases flagged once (entry and
event, to the centre above the queue), scheduled call-backs placed once, the periodic task."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hub.core.errors import Conflict
from hub.core.events import EventBus
from hub.petitions.model import Case, Category, Outcome, Status
from hub.petitions.service import Petitions
from hub.petitions.watch import PetitionWatch
from tests.hub.petitions.conftest import (
    COUNTY,
    COUNTY_DESK,
    DESK,
    KIOSK,
    MONDAY_9,
    OTHER_VILLAGE,
    TOWN,
    VILLAGE,
    Clock,
    Maker,
    drain,
    eventually,
)

TWO_HOURS = 2 * 3600


class Ringer:
    """A fake `call_back`: records the cases rung, answers call ids, may refuse some."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.rung: list[str] = []
        self.refuse = refuse or set()

    async def __call__(self, case: Case) -> str:
        if case.code in self.refuse:
            raise Conflict(f"the origin centre {case.origin} is no longer configured")
        self.rung.append(case.code)
        return f"call-{len(self.rung)}"


async def urgent(petitions: Petitions, origin: str = VILLAGE) -> Case:
    return await petitions.create(KIOSK, origin, Category.WAGE_ARREARS, True, "")


# -- overdue ------------------------------------------------------------------------------
async def test_an_overdue_case_is_flagged_once_to_the_centre_above(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    watch = PetitionWatch(petitions, bus, Ringer())
    county = bus.subscribe("county-watch", COUNTY)
    town = bus.subscribe("town-watch", TOWN)
    case = await urgent(petitions)
    slow = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    clock.now = case.due_at  # on the deadline: not late yet
    assert await watch.check_overdue() == []
    clock.advance(1)
    flagged = await watch.check_overdue()
    assert [(c.code, c.overdue_at, c.status) for c in flagged] == [
        (case.code, MONDAY_9 + TWO_HOURS + 1, Status.TRIAGED)
    ]
    stored = await petitions.require(case.code)
    assert stored.overdue_at == MONDAY_9 + TWO_HOURS + 1
    assert (await petitions.require(slow.code)).overdue_at is None
    last = (await petitions.store.timeline(case.code))[-1]
    assert (last.action, last.actor, last.note) == ("overdue", "system", "past the deadline (2h)")
    assert (last.status_from, last.status_to) == (None, None)
    clock.advance(3600)
    assert await watch.check_overdue() == []  # once
    assert [e.action for e in await petitions.store.timeline(case.code)].count("overdue") == 1
    overdue = [e for e in drain(county) if e.topic == "petition.overdue"]
    assert len(overdue) == 1  # one event
    assert overdue[0].centre == COUNTY and overdue[0].to_users == frozenset()
    assert overdue[0].data["code"] == case.code and overdue[0].data["colour"] == "red"
    assert [e for e in drain(town) if e.topic == "petition.overdue"] == []


async def test_a_county_queue_flags_to_the_county_itself(
    make: Maker, clock: Clock, bus: EventBus
) -> None:
    petitions = await make(routes={"410922101": COUNTY})
    watch = PetitionWatch(petitions, bus, Ringer())
    county = bus.subscribe("county-watch", COUNTY)
    case = await urgent(petitions, OTHER_VILLAGE)
    assert case.queue == COUNTY
    clock.advance(TWO_HOURS + 1)
    assert [c.code for c in await watch.check_overdue()] == [case.code]
    assert [e.centre for e in drain(county) if e.topic == "petition.overdue"] == [COUNTY]


async def test_every_open_state_is_watched_and_closed_ones_are_not(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    watch = PetitionWatch(petitions, bus, Ringer())
    waiting = await urgent(petitions)
    heard = await urgent(petitions)
    await petitions.accept(heard.code, DESK)
    joint = await urgent(petitions)
    await petitions.accept(joint.code, DESK)
    await petitions.invite(joint.code, DESK, ["county-m"], "")
    moved = await urgent(petitions)
    await petitions.transfer(moved.code, DESK, COUNTY, "")
    done = await urgent(petitions)
    await petitions.resolve(done.code, DESK, Outcome.MEDIATED, "")
    followed = await urgent(petitions)
    await petitions.resolve(followed.code, DESK, Outcome.MEDIATED, "")
    await petitions.followup(followed.code, DESK, 2, "")
    clock.advance(TWO_HOURS + 60)
    flagged = await watch.check_overdue()
    assert sorted(c.code for c in flagged) == sorted(
        [waiting.code, heard.code, joint.code, moved.code]
    )
    by_code = {c.code: c for c in flagged}
    assert by_code[heard.code].status is Status.IN_HEARING  # flagging does not move a case
    assert by_code[moved.code].queue == COUNTY
    assert (await petitions.require(done.code)).overdue_at is None


async def test_a_flagged_case_transferred_on_is_not_flagged_again(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    watch = PetitionWatch(petitions, bus, Ringer())
    case = await urgent(petitions)
    clock.advance(TWO_HOURS + 1)
    assert len(await watch.check_overdue()) == 1
    await petitions.transfer(case.code, COUNTY_DESK, COUNTY, "escalated")
    clock.advance(600)
    assert await watch.check_overdue() == []
    assert (await petitions.require(case.code)).overdue_at == MONDAY_9 + TWO_HOURS + 1


async def test_overdue_cases_beyond_the_first_500_are_flagged_too(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    watch = PetitionWatch(petitions, bus, Ringer())
    for _ in range(501):
        await urgent(petitions)
    clock.advance(TWO_HOURS + 1)
    await watch.check_overdue()
    await watch.check_overdue()  # a second round: the rest
    unflagged = [
        c for c in await petitions.store.find(statuses=["triaged"], limit=1000) if not c.overdue_at
    ]
    assert unflagged == []


async def test_a_case_resolved_during_the_check_is_not_flagged(
    petitions: Petitions, clock: Clock, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = PetitionWatch(petitions, bus, Ringer())
    county = bus.subscribe("county-watch", COUNTY)
    first = await urgent(petitions)
    second = await urgent(petitions)
    clock.advance(TWO_HOURS + 1)
    read = petitions.store.overdue

    async def read_then_resolve(statuses: list[str], now: float) -> list[str]:
        found = await read(statuses, now)
        # a receptionist resolves the second case while the watch works through the list
        await petitions.resolve(second.code, DESK, Outcome.MEDIATED, "")
        return found

    monkeypatch.setattr(petitions.store, "overdue", read_then_resolve)
    flagged = await watch.check_overdue()
    assert [c.code for c in flagged] == [first.code]
    assert (await petitions.require(second.code)).overdue_at is None
    overdue = [e.data["code"] for e in drain(county) if e.topic == "petition.overdue"]
    assert overdue == [first.code]


# -- call-backs ---------------------------------------------------------------------------
async def resolved_with_callback(petitions: Petitions, when: float) -> Case:
    case = await petitions.create(KIOSK, VILLAGE, Category.FAMILY, False, "")
    await petitions.resolve(case.code, DESK, Outcome.MEDIATED, "")
    return await petitions.record(
        case.code, DESK.user, "followup_scheduled", "", followup_at=when, followup_call=None
    )


async def test_a_scheduled_call_back_rings_once_when_due(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    ringer = Ringer()
    watch = PetitionWatch(petitions, bus, ringer)
    case = await resolved_with_callback(petitions, MONDAY_9 + 3600)
    kiosk = bus.subscribe(KIOSK.user, VILLAGE)
    clock.now = MONDAY_9 + 3599
    assert await watch.check_followups() == [] and ringer.rung == []
    clock.now = MONDAY_9 + 3600  # the time has come
    rung = await watch.check_followups()
    assert ringer.rung == [case.code]
    assert [(c.code, c.followup_call, c.status) for c in rung] == [
        (case.code, "call-1", Status.RESOLVED)
    ]
    last = (await petitions.store.timeline(case.code))[-1]
    assert (last.action, last.actor, last.data) == (
        "followup_call",
        "system",
        {"followup_call": "call-1"},
    )
    updates = [e for e in drain(kiosk) if e.topic == "petition.updated"]
    assert updates[-1].data["followup_call"] == "call-1"
    clock.advance(86400)
    assert await watch.check_followups() == [] and ringer.rung == [case.code]


async def test_call_backs_only_for_resolved_cases_not_yet_rung(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    ringer = Ringer()
    watch = PetitionWatch(petitions, bus, ringer)
    due = await resolved_with_callback(petitions, MONDAY_9 + 10)
    manual = await resolved_with_callback(petitions, MONDAY_9 + 10)
    await petitions.record(manual.code, DESK.user, "followup_call", "", followup_call="by-hand")
    later = await resolved_with_callback(petitions, MONDAY_9 + 7200)
    followed = await resolved_with_callback(petitions, MONDAY_9 + 10)
    await petitions.followup(followed.code, DESK, 5, "already done")
    plain = await petitions.create(KIOSK, VILLAGE, Category.FAMILY, False, "")
    await petitions.resolve(plain.code, DESK, Outcome.MEDIATED, "")  # no call-back asked
    clock.advance(60)
    assert [c.code for c in await watch.check_followups()] == [due.code]
    assert ringer.rung == [due.code]
    clock.advance(7200)
    assert [c.code for c in await watch.check_followups()] == [later.code]
    assert (await petitions.require(manual.code)).followup_call == "by-hand"


async def test_one_failing_call_back_does_not_block_the_others(
    petitions: Petitions, clock: Clock, bus: EventBus
) -> None:
    bad = await resolved_with_callback(petitions, MONDAY_9 + 10)
    good = await resolved_with_callback(petitions, MONDAY_9 + 10)
    ringer = Ringer(refuse={bad.code})
    watch = PetitionWatch(petitions, bus, ringer)
    clock.advance(60)
    for _ in range(2):
        with contextlib.suppress(Conflict):
            await watch.check_followups()
    assert ringer.rung == [good.code]


# -- the periodic task --------------------------------------------------------------------
async def test_the_watch_task_runs_checks_until_closed(
    make: Maker, clock: Clock, bus: EventBus
) -> None:
    petitions = await make(check_interval=0.01)
    ringer = Ringer()
    watch = PetitionWatch(petitions, bus, ringer)
    late = await urgent(petitions)
    called = await resolved_with_callback(petitions, MONDAY_9 + 5)
    clock.advance(TWO_HOURS + 1)
    watch.start()

    async def done() -> bool:
        case = await petitions.require(late.code)
        return case.overdue_at is not None and ringer.rung == [called.code]

    await eventually(done)
    await watch.close()
    await watch.close()  # twice is fine
    again = await urgent(petitions)
    clock.advance(TWO_HOURS + 1)
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert (await petitions.require(again.code)).overdue_at is None  # no task any more


async def test_the_watch_task_survives_a_failing_round(
    make: Maker, clock: Clock, bus: EventBus
) -> None:
    petitions = await make(check_interval=0.01)
    bad = await resolved_with_callback(petitions, MONDAY_9 + 5)
    ringer = Ringer(refuse={bad.code})
    watch = PetitionWatch(petitions, bus, ringer)
    clock.advance(60)
    watch.start()
    case = await urgent(petitions)
    clock.advance(TWO_HOURS + 1)

    async def flagged() -> bool:
        return (await petitions.require(case.code)).overdue_at is not None

    await eventually(flagged)  # overdue checks go on although every round fails later
    await watch.close()
    assert ringer.rung == []
