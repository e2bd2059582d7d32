"""Duty checks (值班查岗): random prompts to on-duty users, answers, escalation, daily report."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.core.events import EVENTS, Event, Subscription
from hub.duty.service import DUTY
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

Client = TestClient[Any, Any]
Auth = Callable[..., dict[str, str]]


def duty_topology() -> dict[str, Any]:
    cfg = topology(
        duty={"enabled": True, "min_interval": 0.2, "max_interval": 0.4, "answer_within": 1.0}
    )
    cfg["users"] += [
        {"name": "village-op", "role": "operator", "centre": VILLAGE},
        {"name": "county-op", "role": "operator", "centre": COUNTY},
    ]
    return cfg


@pytest.fixture
async def hub() -> AsyncIterator[Client]:
    app = build_app(parse_config(duty_topology()))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def next_event(sub: Subscription, topic: str, timeout: float = 10) -> Event:
    async with asyncio.timeout(timeout):
        while True:
            event = await sub.get()
            if event.topic == topic:
                return event


async def test_prompts_answers_and_escalation(hub: Client, auth: Auth) -> None:
    bus = hub.app[EVENTS]
    me = bus.subscribe("town-op", TOWN)  # the prompted operator
    other = bus.subscribe("someone-else", TOWN)
    county = bus.subscribe("county-dispatcher", COUNTY)
    town_room = bus.subscribe("town-dispatcher", TOWN)
    prompt = await next_event(me, "duty.check")
    assert prompt.to_users == {"town-op"} and "值班查岗" in prompt.data["message"]
    assert [e for e in other._queue if e.topic == "duty.check"] == []
    # answered in time: by the prompted user only
    check_id = prompt.data["id"]
    resp = await hub.post(f"/api/duty/{check_id}/answer", headers=auth("operator", TOWN, "x"))
    assert resp.status == 404
    resp = await hub.post(f"/api/duty/{check_id}/answer", headers=auth("operator", TOWN, "town-op"))
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "answered" and body["response_seconds"] >= 0
    # the village operator never answers: escalated to the township above, not to the village
    missed = await next_event(town_room, "duty.missed")
    assert missed.centre == TOWN and missed.data["escalated_to"] == TOWN
    assert missed.data["user"] == "village-op" and missed.data["status"] == "missed"
    async with asyncio.timeout(5):  # the county sees it too (among the others it gets)
        while (await next_event(county, "duty.missed")).data["id"] != missed.data["id"]:
            pass
    late = await hub.post(
        f"/api/duty/{missed.data['id']}/answer", headers=auth("operator", VILLAGE, "village-op")
    )
    assert late.status == 409
    # a county operator has no centre above: escalated to the county itself
    async with asyncio.timeout(10):
        while True:
            event = await next_event(county, "duty.missed")
            if event.data["user"] == "county-op":
                assert event.data["escalated_to"] == COUNTY
                break


async def test_daily_report_and_asking_now(hub: Client, auth: Auth) -> None:
    duty = hub.app[DUTY]
    resp = await hub.post("/api/duty/checks", json={"user": "town-op"}, headers=auth("operator"))
    assert resp.status == 403
    resp = await hub.post(
        "/api/duty/checks", json={"user": "village-op"}, headers=auth("dispatcher", OTHER_TOWN)
    )
    assert resp.status == 404  # not in the dispatcher's scope
    resp = await hub.post(
        "/api/duty/checks", json={"user": "town-op"}, headers=auth("dispatcher", COUNTY, "disp")
    )
    asked = await resp.json()
    assert resp.status == 201 and asked["asked_by"] == "disp"
    mine = await (
        await hub.get("/api/duty/checks", headers=auth("operator", TOWN, "town-op"))
    ).json()
    assert asked["id"] in [c["id"] for c in mine]
    await hub.post(f"/api/duty/{asked['id']}/answer", headers=auth("operator", TOWN, "town-op"))
    await asyncio.sleep(2.5)  # scheduled prompts go unanswered and are escalated
    assert duty.missed >= 1
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    report = await (await hub.get(f"/api/duty/report?date={today}", headers=auth())).json()
    users = {u["user"]: u for u in report["users"]}
    assert set(users) >= {"town-op", "village-op", "county-op"}
    town = users["town-op"]
    assert (
        town["answered"] >= 1
        and town["asked"] == town["answered"] + town["missed"] + town["pending"]
    )
    assert town["mean_response_seconds"] is not None
    scoped = await (
        await hub.get(f"/api/duty/report?date={today}", headers=auth("operator", TOWN))
    ).json()
    assert {u["user"] for u in scoped["users"]} <= {"town-op", "village-op"}
    empty = await (await hub.get("/api/duty/report?date=2001-01-01", headers=auth())).json()
    assert empty["users"] == [] and empty["checks"] == []
    assert (await hub.get("/api/duty/report?date=yesterday", headers=auth())).status == 400
    assert (await hub.get("/api/duty/report", headers=auth("terminal"))).status == 403
