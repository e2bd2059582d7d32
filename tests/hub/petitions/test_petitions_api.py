"""Petitions over HTTP: the lifecycle, illegal moves, scope, petitioner links, events."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.core.audit import AUDIT
from hub.core.events import EVENTS
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology
from tests.fixtures.people import Person

Client = TestClient[Any, Any]
OTHER_VILLAGE = "410922101203"


def petition_config(**sections: Any) -> Any:
    data = topology(**sections)
    data["centres"].append({"code": OTHER_VILLAGE, "name": "西街村"})
    data["users"] += [
        {"name": "town-r", "role": "receptionist", "centre": TOWN},
        {"name": "other-r", "role": "receptionist", "centre": OTHER_TOWN},
        {"name": "county-r", "role": "receptionist", "centre": COUNTY},
        {"name": "county-m", "role": "mediator", "centre": COUNTY},
        {"name": "other-m", "role": "mediator", "centre": OTHER_TOWN},
        {"name": "village-t", "role": "terminal", "centre": VILLAGE},
        {"name": "west-t", "role": "terminal", "centre": OTHER_VILLAGE},
    ]
    return parse_config(data)


@pytest.fixture
async def hub() -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(petition_config()), host="127.0.0.1")) as c:
        yield c


Auth = Callable[..., dict[str, str]]


def people(client: Client, auth: Auth) -> dict[str, Person]:
    return {
        "kiosk": Person.with_headers(client, auth("terminal", VILLAGE, "village-t")),
        "west": Person.with_headers(client, auth("terminal", OTHER_VILLAGE, "west-t")),
        "town": Person.with_headers(client, auth("receptionist", TOWN, "town-r")),
        "other": Person.with_headers(client, auth("receptionist", OTHER_TOWN, "other-r")),
        "county": Person.with_headers(client, auth("receptionist", COUNTY, "county-r")),
        "mediator": Person.with_headers(client, auth("mediator", COUNTY, "county-m")),
    }


async def test_lifecycle_end_to_end(hub: Client, auth: Auth) -> None:
    p = people(hub, auth)
    sub = hub.app[EVENTS].subscribe("watcher", TOWN)
    case = await p["kiosk"].post(
        "/api/petitions", 201, category="wage_arrears", text="工资拖欠三个月"
    )
    code = case["code"]
    assert re.fullmatch(rf"{VILLAGE}-\d{{8}}-0001", code)
    assert case["status"] == "triaged" and case["queue"] == TOWN
    assert case["position"] == 1 and case["estimate"] == 15 * 60 and case["colour"] == "blue"
    second = await p["kiosk"].post("/api/petitions", 201, category="land")
    assert second["code"].endswith("-0002") and second["position"] == 2
    event = await sub.get()
    assert event.topic == "petition.queued" and event.data["code"] == code

    queue = await p["town"].req("GET", "/api/petitions?status=waiting")
    assert [c["code"] for c in queue] == [code, second["code"]]
    assert all(c["waited"] >= 0 for c in queue)

    accepted = await p["town"].post(f"/api/petitions/{code}/accept")
    assert accepted["status"] == "in_hearing" and accepted["host"] == "town-r"
    room = accepted["room"]
    mine = await p["kiosk"].req("GET", f"/api/rooms/{room}")
    assert "village-t" in mine["invited_users"]
    # the second case moves up
    assert (await p["kiosk"].req("GET", f"/api/petitions/{second['code']}"))["position"] == 1

    await p["town"].post(f"/api/petitions/{code}/notes", 201, text="当事人陈述：欠薪 3 个月")
    joint = await p["town"].post(
        f"/api/petitions/{code}/invite", users=["county-m"], note="三方会诊"
    )
    assert joint["status"] == "joint_hearing" and joint["invited"] == ["county-m"]
    await p["mediator"].req("GET", f"/api/rooms/{room}")  # invited into the room
    await p["mediator"].post(f"/api/petitions/{code}/notes", 201, text="建议劳动仲裁前先调解")
    resolved = await p["town"].post(
        f"/api/petitions/{code}/resolve", outcome="mediated", note="达成协议"
    )
    assert resolved["status"] == "resolved" and resolved["outcome"] == "mediated"
    assert (await p["town"].req("GET", f"/api/rooms/{room}"))["ended"]

    call = await p["town"].post(f"/api/petitions/{code}/followup", call=True)
    assert call["status"] == "resolved" and call["followup_call"] == call["call"]["id"]
    done = await p["town"].post(f"/api/petitions/{code}/followup", satisfaction=5, note="满意")
    assert done["status"] == "followed_up" and done["satisfaction"] == 5
    archived = await p["town"].post(f"/api/petitions/{code}/archive")
    assert archived["status"] == "archived"

    full = await p["town"].req("GET", f"/api/petitions/{code}")
    moves = [(e["action"], e["to"]) for e in full["timeline"] if e["to"]]
    assert moves == [
        ("receive", "received"),
        ("triage", "triaged"),
        ("accept", "in_hearing"),
        ("invite", "joint_hearing"),
        ("resolve", "resolved"),
        ("followup", "followed_up"),
        ("archive", "archived"),
    ]
    assert [n["note"] for n in full["notes"]] == ["当事人陈述：欠薪 3 个月", "建议劳动仲裁前先调解"]
    assert all(e["actor"] and e["at"] > 0 for e in full["timeline"])
    sub.close()


async def test_illegal_moves_are_refused(hub: Client, auth: Auth) -> None:
    p = people(hub, auth)
    code = (await p["kiosk"].post("/api/petitions", 201, category="family"))["code"]
    body = await p["town"].post(f"/api/petitions/{code}/archive", 409)
    assert body["error"]["code"] == "illegal_transition"
    assert "triaged" in body["error"]["message"] and "archive" in body["error"]["message"]
    await p["town"].post(f"/api/petitions/{code}/followup", 409, satisfaction=3)
    await p["town"].post(f"/api/petitions/{code}/invite", 409, users=["county-m"])
    await p["town"].post(f"/api/petitions/{code}/accept")
    await p["town"].post(f"/api/petitions/{code}/accept", 409)
    await p["town"].post(f"/api/petitions/{code}/resolve", 400, outcome="won")
    await p["town"].post(f"/api/petitions/{code}/followup", 400, satisfaction=6)
    await p["town"].post(f"/api/petitions/{code}/transfer", 400, centre=VILLAGE)
    moved = await p["town"].post(f"/api/petitions/{code}/transfer", centre=COUNTY, note="疑难")
    assert moved["status"] == "transferred" and moved["queue"] == COUNTY and moved["room"] is None
    # the township no longer acts on it; the county does
    await p["town"].post(f"/api/petitions/{code}/accept", 403)
    await p["county"].post(f"/api/petitions/{code}/accept")
    await p["county"].post(f"/api/petitions/{code}/resolve", outcome="not_accepted")
    await p["county"].post(f"/api/petitions/{code}/archive", 409)


async def test_scope_township_receptionists_and_terminals(hub: Client, auth: Auth) -> None:
    p = people(hub, auth)
    mine = (await p["kiosk"].post("/api/petitions", 201, category="neighbours"))["code"]
    west = (await p["west"].post("/api/petitions", 201, category="property"))["code"]
    assert (await p["west"].req("GET", f"/api/petitions/{west}"))["queue"] == OTHER_TOWN
    assert [c["code"] for c in await p["town"].req("GET", "/api/petitions")] == [mine]
    assert [c["code"] for c in await p["other"].req("GET", "/api/petitions")] == [west]
    assert {c["code"] for c in await p["county"].req("GET", "/api/petitions")} == {mine, west}
    await p["town"].req("GET", f"/api/petitions/{west}", 404)
    await p["town"].post(f"/api/petitions/{west}/accept", 404)
    await p["town"].req("GET", f"/api/petitions?centre={OTHER_TOWN}", 403)
    await p["town"].req("GET", f"/api/petitions/{west}/export.zip", 404)
    # terminals see what they filed, nothing else
    await p["kiosk"].req("GET", f"/api/petitions/{west}", 404)
    assert [c["code"] for c in await p["kiosk"].req("GET", "/api/petitions")] == [mine]
    await p["kiosk"].post(f"/api/petitions/{mine}/accept", 403)
    await p["kiosk"].post("/api/petitions", 403, category="land", centre=OTHER_VILLAGE)
    # inviting someone outside the scope is refused
    await p["other"].post(f"/api/petitions/{west}/accept")
    await p["other"].post(f"/api/petitions/{west}/invite", 403, users=["town-r"])
    await p["other"].post(f"/api/petitions/{west}/invite", users=["county-m"])  # up the chain
    # staff file on behalf of a centre in scope only
    await p["town"].post("/api/petitions", 403, category="land", centre=OTHER_VILLAGE)
    made = await p["town"].post("/api/petitions", 201, category="land", centre=VILLAGE)
    assert made["origin_user"] == "town-r"
    operator = Person.with_headers(hub, auth("operator", TOWN, "town-op"))
    await operator.req("GET", "/api/petitions", 403)


async def test_petitioner_link_opens_only_its_case(hub: Client, auth: Auth) -> None:
    p = people(hub, auth)
    code = (await p["kiosk"].post("/api/petitions", 201, category="labour"))["code"]
    other = (await p["kiosk"].post("/api/petitions", 201, category="land"))["code"]
    await p["kiosk"].post(f"/api/petitions/{code}/link", 403)
    link = await p["town"].post(f"/api/petitions/{code}/link", 201)
    assert link["user"] == f"petitioner:{code}" and link["token"] in link["url"]
    me = Person.with_headers(hub, {"Authorization": f"Bearer {link['token']}"})
    seen = await me.req("GET", f"/api/petitions/{code}")
    assert seen["position"] == 1 and "timeline" not in seen
    for path in (
        f"/api/petitions/{other}",
        "/api/petitions",
        "/api/cameras",
        "/api/centres",
        "/api/rooms",
        "/api/calls",
        f"/api/petitions/{code}/export.zip",
    ):
        await me.req("GET", path, 403)
    await me.post("/api/petitions", 403, category="land")
    await me.post(f"/api/petitions/{code}/accept", 403)
    await me.post(f"/api/petitions/{code}/notes", 403, text="x")
    ws = await hub.get("/ws", headers=me.headers)
    assert ws.status == 403
    # in the hearing, the link opens the case's room
    accepted = await p["town"].post(f"/api/petitions/{code}/accept")
    room = accepted["room"]
    joined = await me.post(f"/api/rooms/{room}/join")
    assert joined["seat"]["user"] == f"petitioner:{code}"
    other_room = (await p["town"].post(f"/api/petitions/{other}/accept"))["room"]
    await me.post(f"/api/rooms/{other_room}/join", 403)
    # a new link voids the old one
    await asyncio.sleep(1.05)  # tokens carry whole seconds
    fresh = await p["town"].post(f"/api/petitions/{code}/link", 201)
    stale = await me.req("GET", f"/api/petitions/{code}", 401)
    assert "no longer valid" in stale["error"]["message"]
    await Person.with_headers(hub, {"Authorization": f"Bearer {fresh['token']}"}).req(
        "GET", f"/api/petitions/{code}"
    )
    async with asyncio.timeout(5):
        while not await hub.app[AUDIT].rows("", action="petition.link"):
            await asyncio.sleep(0.05)


async def test_ws_queue_events_and_list(hub: Client, auth: Auth, token: Callable[..., str]) -> None:
    p = people(hub, auth)
    desk = await hub.ws_connect(f"/ws?token={token('receptionist', TOWN, 'town-r')}")
    other = await hub.ws_connect(f"/ws?token={token('receptionist', OTHER_TOWN, 'other-r')}")
    for ws in (desk, other):
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
    code = (await p["kiosk"].post("/api/petitions", 201, category="land"))["code"]
    await p["west"].post("/api/petitions", 201, category="land")
    async with asyncio.timeout(5):
        while True:
            msg = await desk.receive_json()
            if msg["type"] == "event" and msg["topic"] == "petition.queued":
                assert msg["data"]["code"] == code and msg["centre"] == TOWN
                break
    await desk.send_json(
        {"v": 1, "id": "q", "type": "petition.list", "data": {"status": "waiting"}}
    )
    async with asyncio.timeout(5):
        while (reply := await desk.receive_json())["type"] != "reply":
            pass
    assert [c["code"] for c in reply["data"]] == [code]
    await desk.send_json(
        {"v": 1, "id": "x", "type": "petition.list", "data": {"centre": OTHER_TOWN}}
    )
    async with asyncio.timeout(5):
        while (reply := await desk.receive_json())["type"] != "error":
            pass
    assert reply["error"]["code"] == "forbidden"
    # the other township's receptionist saw no event of this township's queue
    await other.send_json({"v": 1, "id": "p", "type": "ping", "data": {}})
    async with asyncio.timeout(5):
        while (msg := await other.receive_json())["type"] != "reply":
            assert msg.get("data", {}).get("code") != code
    await desk.close()
    await other.close()


async def test_host_ending_the_room_requeues_and_call_back_can_wait(
    hub: Client, auth: Auth
) -> None:
    p = people(hub, auth)
    code = (await p["kiosk"].post("/api/petitions", 201, category="other"))["code"]
    room = (await p["town"].post(f"/api/petitions/{code}/accept"))["room"]
    await p["town"].post(f"/api/rooms/{room}/control", action="end")
    async with asyncio.timeout(5):
        while (case := await p["town"].req("GET", f"/api/petitions/{code}"))["status"] != "triaged":
            await asyncio.sleep(0.05)
    assert case["timeline"][-1]["action"] == "hearing_ended" and case["room"] is None
    again = await p["town"].post(f"/api/petitions/{code}/accept")
    await p["town"].post(f"/api/petitions/{code}/resolve", outcome="court")
    assert (await p["town"].req("GET", f"/api/rooms/{again['room']}"))["ended"]
    later = time.time() + 3600
    scheduled = await p["town"].post(f"/api/petitions/{code}/followup", call=True, at=later)
    assert scheduled["followup_at"] == later and scheduled["followup_call"] is None
    await p["town"].post(f"/api/petitions/{code}/followup", 400, call=True, satisfaction=3)
    await p["town"].post(f"/api/petitions/{code}/followup", 400)


async def test_a_hearings_recordings_follow_the_case_rules(hub: Client, auth: Auth) -> None:
    """Found by the outside check: an operator listed and downloaded a hearing's video by
    its (guessable) case code while the case itself answered 404 to it."""
    p = people(hub, auth)
    code = (await p["kiosk"].post("/api/petitions", 201, category="land"))["code"]
    operator = Person.with_headers(hub, auth("operator", TOWN, "town-op"))
    await operator.req("GET", f"/api/petitions/{code}", 404)
    await operator.req("GET", f"/api/recordings?tag={code}", 404)
    await operator.req("GET", f"/api/recordings/export.zip?tag={code}", 404)
    listed = await p["town"].req("GET", f"/api/recordings?tag={code}")  # the desk may
    assert listed["tag"] == code and listed["segments"] == []


async def test_a_newer_link_voids_the_older_even_within_the_same_second(
    hub: Client, auth: Auth
) -> None:
    """Found by the outside check: a petitioner link stayed valid when a newer one was issued
    within the same second (links were compared by their issue second)."""
    p = people(hub, auth)
    code = (await p["kiosk"].post("/api/petitions", 201, category="family"))["code"]
    first = await p["town"].post(f"/api/petitions/{code}/link", 201)
    second = await p["town"].post(f"/api/petitions/{code}/link", 201)
    old = Person(hub, first["token"])
    new = Person(hub, second["token"])
    await old.req("GET", f"/api/petitions/{code}", 401)
    await new.req("GET", f"/api/petitions/{code}")
