"""限时办结 with a fake clock: working-day deadlines, 红黄蓝 colours, overdue flags upward,
case codes numbered per centre per day, routing by config."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config import parse_config
from config.loader import ConfigError
from config.schema import PetitionsConfig, Role
from hub.core.auth import Principal
from hub.core.centres import CentreTree
from hub.core.db import Database
from hub.core.events import EventBus
from hub.petitions.deadlines import Deadlines, colour
from hub.petitions.model import Case, Category, Outcome
from hub.petitions.service import Petitions
from hub.petitions.store import CaseStore
from hub.petitions.watch import PetitionWatch
from hub.rooms.model import Rooms
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

TZ = ZoneInfo("Asia/Shanghai")
KIOSK = Principal("village-t", Role.TERMINAL, VILLAGE)


def at(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).timestamp()


async def no_calls(case: Case) -> str:
    raise AssertionError(f"no call back expected for {case.code}")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "cases.sqlite3")
    await database.open()
    yield database
    await database.close()


def service(db: Database, clock: Clock, bus: EventBus, **cfg: object) -> Petitions:
    config = parse_config(topology(petitions=cfg))
    return Petitions(
        CaseStore(db),
        config.petitions,
        CentreTree.from_config(config),
        Rooms(bus),
        bus,
        clock=clock,
    )


def test_working_days_skip_weekends_and_holidays() -> None:
    d = Deadlines(PetitionsConfig(holidays=["2026-10-01", "2026-10-02"]))
    friday = at(2026, 11, 20, 10, 0)
    assert d.due(friday, Category.PROPERTY, False) == at(2026, 11, 24, 10, 0)  # Tue
    assert d.due(friday, Category.LAND, False) == at(2026, 12, 1, 10, 0)  # 7 working days
    assert d.due(friday, Category.LAND, True) == friday + 2 * 3600  # urgent: 2 h on the clock
    wednesday = at(2026, 9, 30, 9, 0)
    assert d.due(wednesday, Category.PROPERTY, False) == at(2026, 10, 6, 9, 0)  # holidays skipped
    custom = Deadlines(PetitionsConfig(deadlines={"land": "3h"}, workdays=[1, 2, 3, 4, 5, 6]))
    assert custom.due(friday, Category.LAND, False) == friday + 3 * 3600
    assert custom.due(friday, Category.FAMILY, False) == at(2026, 11, 28, 10, 0)  # Saturdays count


def test_bad_petitions_config_is_refused() -> None:
    for bad in (
        {"deadlines": {"land": "2 days"}},
        {"deadlines": {"cattle": "2h"}},
        {"routes": {VILLAGE: VILLAGE}},
        {"holidays": ["tomorrow"]},
    ):
        with pytest.raises(ConfigError, match="petitions"):
            parse_config(topology(petitions=bad))


async def test_colours_and_overdue_flag_to_the_centre_above(db: Database) -> None:
    start = at(2026, 11, 23, 9, 0)  # a Monday
    clock, bus = Clock(start), EventBus()
    petitions = service(db, clock, bus)
    await petitions.start()
    watch = PetitionWatch(petitions, bus, no_calls)
    county = bus.subscribe("county-watch", COUNTY)
    town = bus.subscribe("town-watch", TOWN)
    urgent = await petitions.create(KIOSK, VILLAGE, Category.WAGE_ARREARS, True, "")
    slow = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    assert urgent.due_at == start + 7200
    assert colour(urgent, clock()) == "blue"
    clock.now = start + 0.74 * 7200
    assert colour(urgent, clock()) == "blue"
    clock.now = start + 0.76 * 7200
    assert colour(urgent, clock()) == "yellow"
    assert await watch.check_overdue() == []
    clock.now = start + 7201
    assert colour(urgent, clock()) == "red" and colour(slow, clock()) == "blue"
    flagged = await watch.check_overdue()
    assert [c.code for c in flagged] == [urgent.code]
    assert await watch.check_overdue() == []  # flagged once
    topics = []
    while county._queue:
        event = await county.get()
        topics.append((event.topic, event.centre))
    assert ("petition.overdue", COUNTY) in topics
    town_topics = []
    while town._queue:
        town_topics.append((await town.get()).topic)
    assert "petition.overdue" not in town_topics  # it goes above the queue's centre
    timeline = await petitions.store.timeline(urgent.code)
    assert timeline[-1].action == "overdue" and timeline[-1].actor == "system"
    await petitions.close()


async def test_codes_per_centre_per_day_and_routing(db: Database) -> None:
    clock, bus = Clock(at(2026, 11, 22, 23, 59)), EventBus()
    petitions = service(db, clock, bus, routes={"410922101": COUNTY})
    await petitions.start()
    a = await petitions.create(KIOSK, VILLAGE, Category.OTHER, False, "")
    b = await petitions.create(KIOSK, VILLAGE, Category.OTHER, False, "")
    west = await petitions.create(KIOSK, "410922101203", Category.OTHER, False, "")
    clock.now += 120  # past midnight in Beijing
    c = await petitions.create(KIOSK, VILLAGE, Category.OTHER, False, "")
    assert [a.code, b.code] == [f"{VILLAGE}-20261122-0001", f"{VILLAGE}-20261122-0002"]
    assert west.code == "410922101203-20261122-0001" and west.queue == COUNTY
    assert c.code == f"{VILLAGE}-20261123-0001" and c.queue == TOWN
    assert petitions.route(OTHER_TOWN) == COUNTY
    assert petitions.route(TOWN) == TOWN
    await petitions.close()


async def test_scheduled_call_back_rings_once_when_due(db: Database) -> None:
    start = at(2026, 11, 23, 9, 0)
    clock, bus = Clock(start), EventBus()
    petitions = service(db, clock, bus)
    await petitions.start()
    rung: list[str] = []

    async def ring(case: Case) -> str:
        rung.append(case.code)
        return f"call-{len(rung)}"

    watch = PetitionWatch(petitions, bus, ring)
    case = await petitions.create(KIOSK, VILLAGE, Category.FAMILY, False, "")
    desk = Principal("town-r", Role.RECEPTIONIST, TOWN)
    await petitions.resolve(case.code, desk, Outcome.MEDIATED, "")
    await petitions.record(case.code, "town-r", "followup_scheduled", "", followup_at=start + 3600)
    assert await watch.check_followups() == [] and rung == []
    clock.now = start + 3601
    done = await watch.check_followups()
    assert rung == [case.code] and done[0].followup_call == "call-1"
    assert await watch.check_followups() == []  # once
    await petitions.close()
