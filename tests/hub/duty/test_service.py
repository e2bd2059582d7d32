"""`DutyChecks` without sockets: who is on duty, prompts at seeded random intervals inside
the duty hours, answers in time and too late, escalation to the centre above, the daily
report, and pending deadlines kept across a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.schema import Role, ScheduleWindowConfig
from hub.core.db import Database
from hub.core.errors import Conflict, NotFound
from hub.core.events import Event, EventBus, Subscription
from hub.duty.service import DutyChecks
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE
from tests.hub.duty.conftest import USERS, DutyMaker

BEIJING = ZoneInfo("Asia/Shanghai")
OPERATORS = ["village-op", "town-op", "other-op", "county-op"]  # in configuration order


def drain(sub: Subscription, topic: str) -> list[Event]:
    out = [e for e in sub._queue if e.topic == topic]
    sub._queue.clear()
    return out


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.005)


async def events(sub: Subscription, topic: str, count: int) -> list[Event]:
    """Wait until `count` events of `topic` are queued for `sub`; take them all."""

    async def enough() -> bool:
        return sum(e.topic == topic for e in sub._queue) >= count

    await eventually(enough)
    return drain(sub, topic)


async def status_is(duty: DutyChecks, check_id: int, status: str) -> None:
    async def done() -> bool:
        check = await duty.get(check_id)
        return check is not None and check.status == status

    await eventually(done)


# -- who is on duty -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cfg", "names"),
    [
        ({}, OPERATORS),  # operators by default
        ({"roles": [Role.DISPATCHER]}, ["disp"]),
        ({"roles": [Role.TERMINAL, Role.OPERATOR]}, [*OPERATORS, "village-t"]),
        ({"users": ["disp", "ghost", "town-op"]}, ["disp", "town-op"]),  # listed, known only
        ({"users": ["ghost"]}, []),
    ],
)
async def test_on_duty(make: DutyMaker, cfg: dict[str, Any], names: list[str]) -> None:
    duty = await make(**cfg)
    assert [u.name for u in duty.on_duty()] == names


# -- asking -------------------------------------------------------------------------------
async def test_ask_stores_a_pending_check_and_prompts_that_user_alone(
    make: DutyMaker, bus: EventBus
) -> None:
    duty = await make(answer_within=300)
    me = bus.subscribe("town-op", TOWN)
    colleague = bus.subscribe("town-op-2", TOWN)
    before = time.time()
    check = await duty.ask("town-op", asked_by="disp")
    assert (check.user, check.centre, check.asked_by, check.status) == (
        "town-op",
        TOWN,
        "disp",
        "pending",
    )
    assert before <= check.asked_at <= time.time()
    assert check.deadline == pytest.approx(check.asked_at + 300)
    assert (check.answered_at, check.escalated_to) == (None, None)
    assert await duty.get(check.id) == check
    assert await duty.pending("town-op") == [check]
    assert duty.asked == 1
    [prompt] = drain(me, "duty.check")
    assert prompt.centre == TOWN and prompt.to_users == {"town-op"}
    assert prompt.data["id"] == check.id and prompt.data["answer"] == f"/api/duty/{check.id}/answer"
    assert "请在 5 分钟内确认在岗" in prompt.data["message"]
    assert "confirm within 5 min" in prompt.data["message"]
    assert drain(colleague, "duty.check") == []


@pytest.mark.parametrize(("within", "minutes"), [(60, 1), (150, 2), (300, 5), (600, 10)])
async def test_the_prompt_names_whole_minutes(
    make: DutyMaker, bus: EventBus, within: float, minutes: int
) -> None:
    duty = await make(answer_within=within)
    me = bus.subscribe("county-op", COUNTY)
    await duty.ask("county-op", asked_by="disp")
    [prompt] = drain(me, "duty.check")
    assert f"请在 {minutes} 分钟内" in prompt.data["message"]


async def test_the_prompt_never_promises_more_time_than_the_deadline(
    make: DutyMaker, bus: EventBus
) -> None:
    duty = await make(answer_within=90)
    me = bus.subscribe("county-op", COUNTY)
    check = await duty.ask("county-op", asked_by="disp")
    [prompt] = drain(me, "duty.check")
    promised = int(prompt.data["message"].split("请在 ")[1].split(" 分钟")[0]) * 60
    assert check.asked_at + promised <= check.deadline


async def test_asking_an_unknown_user_is_not_found(make: DutyMaker) -> None:
    duty = await make()
    with pytest.raises(NotFound, match="no configured user 'ghost'"):
        await duty.ask("ghost", asked_by="disp")
    assert duty.asked == 0


# -- answering ----------------------------------------------------------------------------
async def test_answering_in_time(make: DutyMaker, bus: EventBus) -> None:
    duty = await make(answer_within=60)
    county = bus.subscribe("county-screen", COUNTY)
    check = await duty.ask("village-op", asked_by="disp")
    answered = await duty.answer(check.id, "village-op")
    assert answered.status == "answered" and answered.id == check.id
    assert answered.answered_at is not None
    assert check.asked_at <= answered.answered_at <= check.deadline
    assert answered.to_json()["response_seconds"] == round(answered.answered_at - check.asked_at, 1)
    [event] = drain(county, "duty.answered")
    assert event.centre == VILLAGE and event.data["status"] == "answered"
    again = await duty.answer(check.id, "village-op")  # a second tap: the same answer
    assert again == answered
    assert drain(county, "duty.answered") == []
    assert await duty.pending("village-op") == []


async def test_only_the_prompted_user_answers(make: DutyMaker) -> None:
    duty = await make(answer_within=60)
    check = await duty.ask("town-op", asked_by="disp")
    with pytest.raises(NotFound, match=f"no duty check {check.id} for you"):
        await duty.answer(check.id, "other-op")
    with pytest.raises(NotFound):
        await duty.answer(check.id + 100, "town-op")
    stored = await duty.get(check.id)
    assert stored is not None and stored.status == "pending"


async def test_pending_lists_a_users_open_checks_in_order(make: DutyMaker) -> None:
    duty = await make(answer_within=60)
    first = await duty.ask("town-op", asked_by="a")
    second = await duty.ask("town-op", asked_by="b")
    await duty.ask("other-op", asked_by="c")
    done = await duty.ask("town-op", asked_by="d")
    await duty.answer(done.id, "town-op")
    assert [c.id for c in await duty.pending("town-op")] == [first.id, second.id]
    assert [c.asked_by for c in await duty.pending("other-op")] == ["c"]
    assert await duty.pending("nobody") == []


async def test_a_late_answer_is_a_conflict(make: DutyMaker) -> None:
    duty = await make(answer_within=0.03)
    check = await duty.ask("town-op", asked_by="disp")
    await status_is(duty, check.id, "missed")
    with pytest.raises(Conflict, match="too late") as err:
        await duty.answer(check.id, "town-op")
    assert err.value.code == "conflict"
    stored = await duty.get(check.id)
    assert stored is not None
    assert (stored.status, stored.answered_at, stored.escalated_to) == ("missed", None, COUNTY)


async def test_an_answer_past_the_deadline_is_refused_before_escalation(
    make: DutyMaker, db: Database
) -> None:
    duty = await make(answer_within=60)
    check = await duty.ask("town-op", asked_by="disp")
    await db.execute(
        "UPDATE duty_checks SET deadline = ? WHERE id = ?", (check.asked_at - 1, check.id)
    )
    with pytest.raises(Conflict):
        await duty.answer(check.id, "town-op")
    stored = await duty.get(check.id)
    assert stored is not None and stored.status == "pending" and stored.answered_at is None


# -- escalation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "centre", "above"),
    [
        ("village-op", VILLAGE, TOWN),
        ("town-op", TOWN, COUNTY),
        ("other-op", OTHER_TOWN, COUNTY),
        ("county-op", COUNTY, COUNTY),  # nothing above the county: its own centre
    ],
)
async def test_an_unanswered_check_goes_to_the_centre_above(
    make: DutyMaker, bus: EventBus, user: str, centre: str, above: str
) -> None:
    duty = await make(answer_within=0.02)
    watcher = bus.subscribe("screen", above)
    own = bus.subscribe("own-screen", centre)
    check = await duty.ask(user, asked_by="disp")
    missed = await events(watcher, "duty.missed", 1)  # published after the row is written
    stored = await duty.get(check.id)
    assert stored is not None and stored.status == "missed" and stored.escalated_to == above
    assert duty.missed == 1
    assert [(e.centre, e.data["id"], e.data["user"]) for e in missed] == [(above, check.id, user)]
    assert missed[0].data["escalated_to"] == above and missed[0].data["status"] == "missed"
    if above != centre:  # the user's own centre is below the one told: it does not see it
        assert drain(own, "duty.missed") == []


async def test_an_answered_check_is_never_escalated(make: DutyMaker, bus: EventBus) -> None:
    duty = await make(answer_within=0.06)
    county = bus.subscribe("county-screen", COUNTY)
    check = await duty.ask("town-op", asked_by="disp")
    await duty.answer(check.id, "town-op")
    await asyncio.sleep(0.09)  # past the deadline
    stored = await duty.get(check.id)
    assert stored is not None and stored.status == "answered" and stored.escalated_to is None
    assert duty.missed == 0 and drain(county, "duty.missed") == []


# -- scheduled prompts --------------------------------------------------------------------
class RecordingRandom(random.Random):
    """A seeded `Random` that remembers every interval it drew."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.draws: list[tuple[float, float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        value = super().uniform(a, b)
        self.draws.append((a, b, value))
        return value


async def test_prompts_come_at_seeded_intervals_within_bounds(make: DutyMaker) -> None:
    rng = RecordingRandom(7)
    duty = await make(
        enabled=True,
        min_interval=0.02,
        max_interval=0.04,
        answer_within=60,
        users=["town-op"],
        rng=rng,
    )

    async def three() -> bool:
        return duty.asked >= 3

    await eventually(three)
    await duty.close()
    assert all((a, b) == (0.02, 0.04) and a <= v <= b for a, b, v in rng.draws)
    reference = random.Random(7)
    assert [v for _, _, v in rng.draws] == [reference.uniform(0.02, 0.04) for _ in rng.draws]
    checks = await duty.pending("town-op")
    assert len(checks) >= 3  # (an ask cancelled by close may have written its row)
    assert len(checks) in (duty.asked, duty.asked + 1)
    assert {(c.user, c.asked_by) for c in checks} == {("town-op", "schedule")}
    waits = [v for _, _, v in rng.draws]
    for i, (earlier, later) in enumerate(itertools.pairwise(checks)):
        assert later.asked_at - earlier.asked_at >= waits[i + 1] - 0.005


async def test_each_on_duty_user_has_its_own_prompts(make: DutyMaker) -> None:
    duty = await make(
        enabled=True, min_interval=0.01, max_interval=0.02, answer_within=60, rng=random.Random(1)
    )

    async def everyone() -> bool:
        rows = await duty.db.fetchall("SELECT DISTINCT user FROM duty_checks")
        return len(rows) == 4

    await eventually(everyone)
    await duty.close()
    rows = await duty.db.fetchall("SELECT DISTINCT user FROM duty_checks ORDER BY user")
    assert [r["user"] for r in rows] == ["county-op", "other-op", "town-op", "village-op"]


def beijing_weekday() -> int:
    return dt.datetime.now(BEIJING).isoweekday()


async def test_no_prompt_outside_the_duty_hours(make: DutyMaker) -> None:
    tomorrow = beijing_weekday() % 7 + 1
    rng = RecordingRandom(3)
    duty = await make(
        enabled=True,
        min_interval=0.01,
        max_interval=0.01,
        users=["town-op"],
        hours=[ScheduleWindowConfig(days=[tomorrow])],
        rng=rng,
    )
    await asyncio.sleep(0.08)
    await duty.close()
    assert len(rng.draws) >= 2  # the loop ran …
    assert duty.asked == 0 and await duty.pending("town-op") == []  # … and asked nobody


async def test_prompts_inside_the_duty_hours(make: DutyMaker) -> None:
    duty = await make(
        enabled=True,
        min_interval=0.01,
        max_interval=0.01,
        answer_within=60,
        users=["town-op"],
        hours=[ScheduleWindowConfig(days=[beijing_weekday()])],
    )

    async def asked() -> bool:
        return duty.asked >= 1

    await eventually(asked)


async def test_disabled_checks_prompt_nobody(make: DutyMaker) -> None:
    rng = RecordingRandom(5)
    duty = await make(enabled=False, min_interval=0.01, max_interval=0.01, rng=rng)
    await asyncio.sleep(0.05)
    assert rng.draws == [] and duty.asked == 0
    assert (await duty.ask("town-op", asked_by="disp")).status == "pending"  # asking still works


# -- restarts -----------------------------------------------------------------------------
async def test_a_restart_keeps_pending_deadlines(make: DutyMaker, db: Database) -> None:
    first = await make(answer_within=0.3)  # room for a loaded machine before close
    waiting = await first.ask("town-op", asked_by="disp")
    answered = await first.ask("village-op", asked_by="disp")
    await first.answer(answered.id, "village-op")
    now = time.time()
    expired = await db.execute(  # left pending by a run that died past its deadline
        "INSERT INTO duty_checks (user, centre, asked_at, deadline, asked_by) VALUES (?,?,?,?,?)",
        ("other-op", OTHER_TOWN, now - 600, now - 300, "schedule"),
    )
    await first.close()  # stops before the deadline of `waiting`
    still = await first.get(waiting.id)
    assert still is not None and still.status == "pending"

    bus = EventBus()
    county = bus.subscribe("county-screen", COUNTY)
    second = await make(bus=bus, answer_within=0.3)
    await status_is(second, expired, "missed")  # already late: escalated at once
    await status_is(second, waiting.id, "missed")  # at its own deadline, not a new one
    missed_at = time.time()
    assert missed_at >= waiting.deadline - 0.005
    missed = await events(county, "duty.missed", 2)
    assert sorted(e.data["id"] for e in missed) == sorted([waiting.id, expired])
    assert second.missed == 2
    kept = await second.get(answered.id)
    assert kept is not None and kept.status == "answered"


async def test_a_check_asked_before_a_restart_can_be_answered_after_it(make: DutyMaker) -> None:
    first = await make(answer_within=60)
    check = await first.ask("town-op", asked_by="disp")
    await first.close()
    second = await make(answer_within=60)
    assert [c.id for c in await second.pending("town-op")] == [check.id]
    assert (await second.answer(check.id, "town-op")).status == "answered"


# -- the daily report ---------------------------------------------------------------------
def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, sec, tzinfo=BEIJING).timestamp()


async def insert(
    db: Database,
    user: str,
    centre: str,
    asked_at: float,
    status: str = "pending",
    answered_after: float | None = None,
    escalated_to: str | None = None,
) -> int:
    answered = asked_at + answered_after if answered_after is not None else None
    return await db.execute(
        "INSERT INTO duty_checks (user, centre, asked_at, deadline, asked_by, status, "
        "answered_at, escalated_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (user, centre, asked_at, asked_at + 300, "schedule", status, answered, escalated_to),
    )


async def test_the_daily_report(make: DutyMaker, db: Database) -> None:
    duty = await make()
    day = dt.date(2026, 11, 23)
    ids = {
        "midnight": await insert(db, "town-op", TOWN, beijing(2026, 11, 23), "answered", 10),
        "noon": await insert(db, "town-op", TOWN, beijing(2026, 11, 23, 12), "answered", 30),
        "missed": await insert(
            db, "town-op", TOWN, beijing(2026, 11, 23, 13), "missed", escalated_to=COUNTY
        ),
        "late": await insert(db, "village-op", VILLAGE, beijing(2026, 11, 23, 23, 59, 59)),
        "other": await insert(
            db, "other-op", OTHER_TOWN, beijing(2026, 11, 23, 9), "answered", 5.04
        ),
        "before": await insert(
            db, "county-op", COUNTY, beijing(2026, 11, 22, 23, 59, 59), "answered", 1
        ),
        "after": await insert(db, "town-op", TOWN, beijing(2026, 11, 24)),
    }
    report = await duty.report(COUNTY, day)
    assert (report["date"], report["timezone"], report["scope"]) == (
        "2026-11-23",
        "Asia/Shanghai",
        COUNTY,
    )
    assert report["users"] == [
        {
            "user": "other-op",
            "centre": OTHER_TOWN,
            "asked": 1,
            "answered": 1,
            "missed": 0,
            "pending": 0,
            "mean_response_seconds": 5.0,
        },
        {
            "user": "town-op",
            "centre": TOWN,
            "asked": 3,
            "answered": 2,
            "missed": 1,
            "pending": 0,
            "mean_response_seconds": 20.0,
        },
        {
            "user": "village-op",
            "centre": VILLAGE,
            "asked": 1,
            "answered": 0,
            "missed": 0,
            "pending": 1,
            "mean_response_seconds": None,
        },
    ]
    order = ["midnight", "other", "noon", "missed", "late"]
    assert [c["id"] for c in report["checks"]] == [ids[k] for k in order]
    first = report["checks"][0]
    assert first["asked_at"] == "2026-11-22T16:00:00.000+00:00"  # 00:00 in Beijing
    assert first["response_seconds"] == 10.0 and first["status"] == "answered"
    missed = report["checks"][3]
    assert missed["escalated_to"] == COUNTY and missed["answered_at"] is None

    async def users(scope: str, on: dt.date = day) -> list[str]:
        return [u["user"] for u in (await duty.report(scope, on))["users"]]

    assert await users(TOWN) == ["town-op", "village-op"]
    assert await users(VILLAGE) == ["village-op"]
    assert await users(OTHER_TOWN) == ["other-op"]
    assert await users(COUNTY, dt.date(2026, 11, 22)) == ["county-op"]
    assert await users(COUNTY, dt.date(2026, 11, 24)) == ["town-op"]
    empty = await duty.report(COUNTY, dt.date(2001, 1, 1))
    assert empty["users"] == [] and empty["checks"] == []


async def test_the_report_counts_checks_made_by_the_service(make: DutyMaker) -> None:
    duty = await make(answer_within=0.1)
    answered = await duty.ask("town-op", asked_by="disp")
    await duty.answer(answered.id, "town-op")
    missed = await duty.ask("town-op", asked_by="disp")
    await status_is(duty, missed.id, "missed")
    today = dt.datetime.fromtimestamp(answered.asked_at, BEIJING).date()
    report = await duty.report(TOWN, today)
    [town] = report["users"]
    assert (town["asked"], town["answered"], town["missed"], town["pending"]) == (2, 1, 1, 0)
    assert town["mean_response_seconds"] is not None and town["mean_response_seconds"] < 1


async def test_the_report_day_follows_the_time_zone_on_a_dst_day(
    make: DutyMaker, db: Database
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    duty = await make(timezone="Europe/Berlin")
    late = dt.datetime(2026, 3, 29, 23, 30, tzinfo=berlin).timestamp()  # a 23-hour day
    next_day = dt.datetime(2026, 3, 30, 0, 30, tzinfo=berlin).timestamp()
    await insert(db, "town-op", TOWN, late)
    await insert(db, "village-op", VILLAGE, next_day)
    report = await duty.report(COUNTY, dt.date(2026, 3, 29))
    assert [u["user"] for u in report["users"]] == ["town-op"]


def test_users_fixture_is_what_the_tests_assume() -> None:
    assert [(u.name, u.centre) for u in USERS][:4] == [
        ("village-op", VILLAGE),
        ("town-op", TOWN),
        ("other-op", OTHER_TOWN),
        ("county-op", COUNTY),
    ]
