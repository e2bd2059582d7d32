"""`CaseStore` on a real SQLite file: case codes per village per day (also across a restart and
with a cluster's numbers), whole-row round trips, one transaction per change, queries."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

import pytest

from hub.core.db import Database
from hub.petitions.model import Case, Category, Entry, Outcome, Status
from hub.petitions.service import Petitions
from hub.petitions.store import CaseStore
from tests.hub.petitions.conftest import (
    COUNTY,
    DESK,
    KIOSK,
    MONDAY_9,
    OTHER_TOWN,
    OTHER_VILLAGE,
    TOWN,
    VILLAGE,
    Clock,
    Maker,
    at,
)


async def file(petitions: Petitions, origin: str = VILLAGE, urgent: bool = False) -> Case:
    return await petitions.create(KIOSK, origin, Category.OTHER, urgent, "")


# -- numbering ----------------------------------------------------------------------------
async def test_codes_count_per_village_per_beijing_day(petitions: Petitions, clock: Clock) -> None:
    clock.now = at(2026, 11, 22, 23, 58)
    a = await file(petitions)
    b = await file(petitions)
    west = await file(petitions, OTHER_VILLAGE)
    clock.now = at(2026, 11, 23, 0, 0, 1)  # 16:00:01 UTC of the 22nd: a new day in Beijing
    c = await file(petitions)
    d = await file(petitions, OTHER_VILLAGE)
    assert [a.code, b.code, c.code] == [
        f"{VILLAGE}-20261122-0001",
        f"{VILLAGE}-20261122-0002",
        f"{VILLAGE}-20261123-0001",
    ]
    assert west.code == f"{OTHER_VILLAGE}-20261122-0001"
    assert d.code == f"{OTHER_VILLAGE}-20261123-0001"
    assert await petitions.store.max_seq(VILLAGE, "20261122") == 2
    assert await petitions.store.max_seq(VILLAGE, "20261124") == 0


async def test_restart_keeps_numbering(make: Maker, clock: Clock) -> None:
    first = await make()
    codes = [(await file(first)).code for _ in range(3)]
    await first.close()
    second = await make()
    fourth = await file(second)
    assert codes[-1].endswith("-0003") and fourth.code == f"{VILLAGE}-20261123-0004"
    assert sorted(await second.store.codes()) == sorted([*codes, fourth.code])


async def test_four_digit_numbers_run_past_9999(db: Database) -> None:
    store = CaseStore(db)
    await store.migrate()
    case = await store.create("20261123", make_case, no_entries, seq=9999)
    after = await store.create("20261123", make_case, no_entries)
    assert case.code.endswith("-9999") and after.code.endswith("-10000")


async def test_cluster_numbers_are_used_above_the_local_maximum(make: Maker) -> None:
    asked: list[tuple[str, str, int]] = []
    answers: list[int | None] = [7, None, 2]

    async def numbers(origin: str, day: str, local_max: int) -> int | None:
        asked.append((origin, day, local_max))
        return answers.pop(0)

    petitions = await make(numbers=numbers)
    a = await file(petitions)  # the cluster says 7
    b = await file(petitions)  # Redis away: local maximum + 1
    c = await file(petitions)  # 2 is below the local maximum: ignored
    assert [x.code[-4:] for x in (a, b, c)] == ["0007", "0008", "0009"]
    assert asked == [(VILLAGE, "20261123", 0), (VILLAGE, "20261123", 7), (VILLAGE, "20261123", 8)]


# -- round trips and transactions ---------------------------------------------------------
def make_case(code: str) -> Case:
    return Case(
        code=code,
        origin=VILLAGE,
        queue=TOWN,
        category=Category.WAGE_ARREARS,
        urgent=True,
        text="工资 “三个月”",
        origin_user=KIOSK.user,
        created=MONDAY_9,
        due_at=MONDAY_9 + 7200,
        status=Status.TRIAGED,
        queued_at=MONDAY_9,
    )


def no_entries(case: Case) -> list[Entry]:
    return []


async def test_every_field_round_trips(db: Database) -> None:
    store = CaseStore(db)
    await store.migrate()
    case = await store.create("20261123", make_case, no_entries)
    assert await store.get(case.code) == case
    full = replace(
        case,
        status=Status.FOLLOWED_UP,
        queue=COUNTY,
        queued_at=MONDAY_9 + 1.5,
        outcome=Outcome.NOT_ACCEPTED,
        room="room-1",
        host="county-r",
        invited=["张律师", "county-m"],
        satisfaction=3,
        resolved_at=MONDAY_9 + 60.25,
        overdue_at=MONDAY_9 + 30,
        link_iat=1_790_000_000,
        followup_call="call-9",
        followup_at=MONDAY_9 + 86400,
    )
    await store.save(full, [])
    stored = await store.get(case.code)
    assert stored == full
    assert stored is not None and stored.urgent is True and stored.outcome is Outcome.NOT_ACCEPTED
    assert await store.get("missing") is None


async def test_a_failing_change_leaves_case_and_timeline_as_they_were(db: Database) -> None:
    store = CaseStore(db)
    await store.migrate()
    case = await store.create(
        "20261123", make_case, lambda c: [Entry(c.code, MONDAY_9, "k", "receive")]
    )
    moved = replace(case, status=Status.RESOLVED, outcome=Outcome.MEDIATED)
    good = Entry(case.code, MONDAY_9 + 1, "town-r", "resolve", "triaged", "resolved")
    orphan = Entry("no-such-case", MONDAY_9 + 1, "town-r", "note")  # breaks the foreign key
    with pytest.raises(sqlite3.IntegrityError):
        await store.save(moved, [good, orphan])
    assert await store.get(case.code) == case
    assert [e.action for e in await store.timeline(case.code)] == ["receive"]
    with pytest.raises(sqlite3.IntegrityError):  # nor is a new case half-filed
        await store.create(
            "20261123", make_case, lambda c: [Entry("no-such-case", MONDAY_9, "k", "receive")]
        )
    assert await store.codes() == [case.code]


async def test_timeline_keeps_order_and_data(db: Database) -> None:
    store = CaseStore(db)
    await store.migrate()
    case = await store.create("20261123", make_case, no_entries)
    entries = [
        Entry(case.code, MONDAY_9 + 2, "b", "note", note="第二"),  # written first, later time
        Entry(
            case.code, MONDAY_9 + 1, "a", "invite", "in_hearing", "joint_hearing", "", {"u": [1]}
        ),
    ]
    await store.save(case, entries[:1])
    await store.save(case, entries[1:])
    assert await store.timeline(case.code) == entries  # in writing order, data parsed back
    assert await store.timeline("other") == []


async def test_migrations_run_once(db: Database) -> None:
    store = CaseStore(db)
    await store.migrate()
    await store.migrate()
    row = await db.fetchone("SELECT version FROM schema_versions WHERE component = 'petitions'")
    assert row is not None and row["version"] == 2


# -- queries ------------------------------------------------------------------------------
async def test_find_filters_and_orders(petitions: Petitions, clock: Clock) -> None:
    a = await file(petitions)
    clock.advance(10)
    urgent = await file(petitions, urgent=True)
    clock.advance(10)
    west = await file(petitions, OTHER_VILLAGE)
    same_time = await file(petitions)
    await petitions.resolve(west.code, DESK, Outcome.MEDIATED, "")
    store = petitions.store

    async def codes(**kw: Any) -> list[str]:
        return [c.code for c in await store.find(**kw)]

    # urgent first, then by time in the queue, then by code (a township's village sorts first)
    assert await codes() == [urgent.code, a.code, same_time.code, west.code]
    assert await codes(statuses=["triaged"]) == [urgent.code, a.code, same_time.code]
    assert await codes(scope=OTHER_TOWN) == [west.code]
    assert await codes(scope=OTHER_VILLAGE) == [west.code]  # by origin
    assert await codes(scope=COUNTY, queue=TOWN) == [urgent.code, a.code, same_time.code]
    assert await codes(origin_user="someone") == []
    assert await codes(limit=2) == [urgent.code, a.code]
    assert await codes(statuses=["triaged", "resolved"], scope=OTHER_TOWN) == [west.code]


async def test_deadlines_lists_created_and_due_of_given_states(
    petitions: Petitions, clock: Clock
) -> None:
    a = await file(petitions, urgent=True)
    clock.advance(100)
    b = await file(petitions, urgent=True)
    await petitions.resolve(b.code, DESK, Outcome.MEDIATED, "")
    store = petitions.store
    assert await store.deadlines(["triaged"]) == [(a.created, a.due_at)]
    assert sorted(await store.deadlines(["triaged", "resolved"])) == [
        (MONDAY_9, MONDAY_9 + 7200),
        (MONDAY_9 + 100, MONDAY_9 + 7300),
    ]
    assert await store.deadlines(["archived"]) == []
