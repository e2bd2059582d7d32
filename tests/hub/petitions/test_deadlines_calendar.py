"""限时办结 on a calendar: hours on the clock vs working days past weekends and holidays, the
red/yellow/blue thresholds, colours frozen at resolution, and the case code's day."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from hub.petitions.deadlines import DEFAULT, YELLOW_AT, Deadlines, colour, colour_at
from hub.petitions.model import Case, Category, Outcome
from hub.petitions.service import Petitions
from tests.hub.petitions.conftest import (
    DESK,
    KIOSK,
    MONDAY_9,
    TOWN,
    VILLAGE,
    Clock,
    Maker,
    at,
    config_of,
)

GOLDEN_WEEK = [f"2026-10-0{d}" for d in range(1, 8)]  # Thu 1 Oct … Wed 7 Oct 2026
NEW_YEAR = ["2027-01-01"]  # a Friday


def deadlines(**cfg: object) -> Deadlines:
    return Deadlines(config_of(**cfg))


@pytest.mark.parametrize(
    ("rule", "created", "due"),
    [
        ("1wd", at(2026, 11, 20, 10), at(2026, 11, 23, 10)),  # Fri → Mon
        ("2wd", at(2026, 11, 20, 10), at(2026, 11, 24, 10)),  # Fri → Tue
        ("5wd", at(2026, 11, 23, 9), at(2026, 11, 30, 9)),  # Mon → next Mon
        ("7wd", at(2026, 11, 20, 10), at(2026, 12, 1, 10)),
        ("1wd", at(2026, 11, 21, 15), at(2026, 11, 23, 15)),  # filed on a Saturday
        ("1wd", at(2026, 11, 20, 23, 30), at(2026, 11, 23, 23, 30)),  # the clock time is kept
        ("0wd", at(2026, 11, 21, 15), at(2026, 11, 21, 15)),
        ("48h", at(2026, 11, 20, 10), at(2026, 11, 22, 10)),  # hours ignore the weekend
        ("1.5h", at(2026, 11, 20, 10), at(2026, 11, 20, 11, 30)),
        ("2wd", at(2026, 9, 30, 9), at(2026, 10, 9, 9)),  # past the Golden Week
        ("7wd", at(2026, 9, 30, 9), at(2026, 10, 16, 9)),
        ("1wd", at(2026, 10, 3, 10), at(2026, 10, 8, 10)),  # filed during the holiday
        ("24h", at(2026, 9, 30, 9), at(2026, 10, 1, 9)),  # hours ignore holidays
        ("1wd", at(2026, 12, 31, 10), at(2027, 1, 4, 10)),  # New Year's Day then a weekend
    ],
)
def test_due_on_the_calendar(rule: str, created: float, due: float) -> None:
    d = deadlines(deadlines={"land": rule}, holidays=GOLDEN_WEEK + NEW_YEAR)
    assert d.due(created, Category.LAND, False) == due


def test_six_day_weeks_and_the_same_day_without_holidays() -> None:
    six = deadlines(deadlines={"other": "1wd"}, workdays=[1, 2, 3, 4, 5, 6])
    assert six.due(at(2026, 11, 20, 10), Category.OTHER, False) == at(2026, 11, 21, 10)
    assert six.due(at(2026, 11, 21, 10), Category.OTHER, False) == at(2026, 11, 23, 10)
    plain = deadlines(deadlines={"other": "2wd"})  # no holidays: 1 Oct is a Thursday like any
    assert plain.due(at(2026, 9, 30, 9), Category.OTHER, False) == at(2026, 10, 2, 9)
    assert plain.working(dt.date(2026, 10, 1)) and not plain.working(dt.date(2026, 10, 3))
    holidays = deadlines(holidays=GOLDEN_WEEK)
    assert not holidays.working(dt.date(2026, 10, 1))
    assert holidays.working(dt.date(2026, 10, 8))


def test_a_calendar_without_working_days_still_ends() -> None:
    d = deadlines(deadlines={"other": "1wd"}, workdays=[])
    start = at(2026, 11, 23, 9)
    assert d.due(start, Category.OTHER, False) == start + (7 + 400) * 86400


def test_the_deadline_of_a_different_time_zone() -> None:
    d = deadlines(deadlines={"other": "1wd"}, timezone="UTC")
    friday_utc = dt.datetime(2026, 11, 20, 20, 0, tzinfo=dt.UTC).timestamp()  # Sat 04:00 Beijing
    monday_utc = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC).timestamp()
    assert d.due(friday_utc, Category.OTHER, False) == monday_utc
    beijing = deadlines(deadlines={"other": "1wd"})  # Sat 04:00 in Beijing → Mon 04:00
    assert beijing.due(friday_utc, Category.OTHER, False) == at(2026, 11, 23, 4)


@pytest.mark.parametrize(
    ("cfg", "category", "urgent", "rule"),
    [
        ({}, Category.PROPERTY, False, "2wd"),
        ({}, Category.LAND, False, "7wd"),
        ({}, Category.PROPERTY, True, "2h"),  # urgent beats the category
        ({"deadlines": {"land": "3h"}}, Category.LAND, False, "3h"),
        ({"deadlines": {"land": "3h"}}, Category.LAND, True, "2h"),  # urgent falls back to 2 h
        ({"deadlines": {"land": "3h"}}, Category.FAMILY, False, DEFAULT),
        ({"deadlines": {"urgent": "30h"}}, Category.FAMILY, True, "30h"),
    ],
)
def test_rules(cfg: dict[str, object], category: Category, urgent: bool, rule: str) -> None:
    assert deadlines(**cfg).rule(category, urgent) == rule
    assert DEFAULT == "7wd"


def test_fractional_working_days_are_not_silently_truncated() -> None:
    try:
        d = deadlines(deadlines={"land": "1.5wd"})
    except ValidationError:
        return  # refusing it in the config would be fine too
    assert d.due(MONDAY_9, Category.LAND, False) > d.add_working_days(MONDAY_9, 1)


def test_day_code_is_the_hub_time_zone_day() -> None:
    late_utc = dt.datetime(2026, 11, 22, 16, 30, tzinfo=dt.UTC).timestamp()
    assert deadlines().day_code(late_utc) == "20261123"  # 00:30 in Beijing
    assert deadlines(timezone="UTC").day_code(late_utc) == "20261122"
    assert deadlines().day_code(at(2026, 12, 31, 23, 59, 59)) == "20261231"
    assert deadlines().day_code(at(2027, 1, 1)) == "20270101"


# -- colours ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (-5.0, "blue"),  # a clock behind the filing time
        (0.0, "blue"),
        (74.99, "blue"),
        (75.0, "yellow"),  # 75 % exactly: yellow
        (99.0, "yellow"),
        (100.0, "yellow"),  # on the deadline: not yet late
        (100.01, "red"),
        (10_000.0, "red"),
    ],
)
def test_colour_thresholds(elapsed: float, expected: str) -> None:
    created = 1_000.0
    assert YELLOW_AT == 0.75
    assert colour_at(created, created + 100, created + elapsed) == expected


def test_colour_of_a_zero_length_deadline() -> None:
    assert colour_at(50.0, 50.0, 50.0) == "blue"
    assert colour_at(50.0, 50.0, 50.5) == "red"


def test_working_day_colours_count_the_weekend_as_time() -> None:
    d = deadlines(deadlines={"other": "1wd"})
    friday = at(2026, 11, 20, 10)
    due = d.due(friday, Category.OTHER, False)  # Monday 10:00: 72 h later
    assert colour_at(friday, due, friday + 0.74 * 72 * 3600) == "blue"  # Sunday 15:16
    assert colour_at(friday, due, at(2026, 11, 22, 16)) == "yellow"  # 54 h = 75 %
    assert colour_at(friday, due, at(2026, 11, 23, 10, 0, 1)) == "red"


def a_case(resolved_at: float | None) -> Case:
    return Case(
        code="c",
        origin=VILLAGE,
        queue=TOWN,
        category=Category.OTHER,
        urgent=False,
        text="",
        origin_user="k",
        created=0.0,
        due_at=100.0,
        resolved_at=resolved_at,
    )


@pytest.mark.parametrize(
    ("resolved_at", "expected"), [(None, "red"), (10.0, "blue"), (80.0, "yellow"), (101.0, "red")]
)
def test_a_resolved_case_keeps_its_colour(resolved_at: float | None, expected: str) -> None:
    assert colour(a_case(resolved_at), now=500.0) == expected


@pytest.mark.parametrize(
    ("resolve_after", "expected"), [(3600.0, "blue"), (6000.0, "yellow"), (7300.0, "red")]
)
async def test_the_view_keeps_the_colour_through_followup_and_archive(
    petitions: Petitions, clock: Clock, resolve_after: float, expected: str
) -> None:
    case = await petitions.create(KIOSK, VILLAGE, Category.OTHER, True, "")  # 2 h
    clock.advance(resolve_after)
    await petitions.resolve(case.code, DESK, Outcome.MEDIATED, "")
    clock.advance(30 * 86400)
    assert petitions.view(await petitions.require(case.code))["colour"] == expected
    await petitions.followup(case.code, DESK, 5, "")
    archived = await petitions.archive(case.code, DESK, "")
    assert petitions.view(archived)["colour"] == expected
    assert await petitions.sla_counts() == {"blue": 0, "yellow": 0, "red": 0}


async def test_cases_get_their_deadline_from_the_calendar(make: Maker, clock: Clock) -> None:
    petitions = await make(holidays=GOLDEN_WEEK)
    clock.now = at(2026, 9, 30, 9)
    prop = await petitions.create(KIOSK, VILLAGE, Category.PROPERTY, False, "")
    land = await petitions.create(KIOSK, VILLAGE, Category.LAND, False, "")
    urgent = await petitions.create(KIOSK, VILLAGE, Category.LAND, True, "")
    assert prop.due_at == at(2026, 10, 9, 9)
    assert land.due_at == at(2026, 10, 16, 9)
    assert urgent.due_at == at(2026, 9, 30, 11)
    assert prop.code.split("-")[1] == "20260930"
    clock.now = at(2026, 10, 8, 9)  # 8 of its 9 days gone (88.9 %); land: 8 of 16
    assert petitions.view(prop)["colour"] == "yellow"
    assert petitions.view(land)["colour"] == "blue"
    assert petitions.view(urgent)["colour"] == "red"
    assert await petitions.sla_counts() == {"blue": 1, "yellow": 1, "red": 1}
    assert MONDAY_9 == at(2026, 11, 23, 9)
