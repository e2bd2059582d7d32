"""Calls end to end: a real hub (aiohttp test client) and real /ws connections for terminals.

A county dispatcher rings a village terminal that accepts over the WebSocket; decline, timeout
(missed), cancel and hang-up; illegal moves answer 409; scope refusals answer 403; the history
is served newest first, scoped, and survives a restart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import HubConfig, parse_config
from config.schema import Role
from hub.app import build_app
from hub.calls.service import CALLS
from hub.core.auth import Principal
from hub.core.presence import PRESENCE, Status
from hub.rooms.model import ROOMS
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

Client = TestClient[Any, Any]
WS = aiohttp.ClientWebSocketResponse

V2, V3, V4 = "410922100202", "410922100203", "410922100204"
OTHER_VILLAGE = "410922101201"
TERMINALS = {
    VILLAGE: "dongguan-t",
    V2: "xiguan-t",
    V3: "nanguan-t",
    V4: "beiguan-t",
    OTHER_VILLAGE: "nanjie-t",
}
NAMES = {V2: "西关村", V3: "南关村", V4: "北关村", OTHER_VILLAGE: "南街村"}


def dispatch_topology() -> dict[str, Any]:
    """conftest's county → 2 townships topology, plus three more villages in the first
    township, one in the second, a dispatcher per level and a duty terminal per village."""
    data = topology()
    data["centres"] += [{"code": code, "name": name} for code, name in NAMES.items()]
    data["users"] += [
        {"name": "county-d", "role": "dispatcher", "centre": COUNTY},
        {"name": "town-d", "role": "dispatcher", "centre": TOWN},
        {"name": "other-d", "role": "dispatcher", "centre": OTHER_TOWN},
        {"name": "town-clerk", "role": "receptionist", "centre": TOWN},
    ]
    data["users"] += [
        {"name": name, "role": "terminal", "centre": code, "duty": True}
        for code, name in TERMINALS.items()
    ]
    return data


@pytest.fixture
def hub_config() -> HubConfig:
    return parse_config(dispatch_topology())


_ids = itertools.count()


async def connect(client: Client, token: str) -> WS:
    ws = await client.ws_connect(f"/ws?token={token}")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    return ws


async def until(ws: WS, pred: Callable[[dict[str, Any]], bool], timeout: float = 5) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            msg: dict[str, Any] = await ws.receive_json()
            if pred(msg):
                return msg


async def event(
    ws: WS, topic: str, pred: Callable[[dict[str, Any]], bool] = lambda d: True, timeout: float = 5
) -> Any:
    msg = await until(
        ws, lambda m: m["type"] == "event" and m["topic"] == topic and pred(m["data"]), timeout
    )
    return msg["data"]


async def ws_request(ws: WS, type_: str, data: dict[str, Any] | None = None) -> Any:
    """The reply's data, or the error object of an error reply."""
    id_ = f"r{next(_ids)}"
    await ws.send_json({"v": 1, "id": id_, "type": type_, "data": data or {}})
    msg = await until(ws, lambda m: m.get("re") == id_)
    return msg["data"] if msg["type"] == "reply" else msg


async def place(
    client: Client, headers: dict[str, str], status: int = 201, **body: Any
) -> dict[str, Any]:
    resp = await client.post("/api/calls", json=body, headers=headers)
    data: dict[str, Any] = await resp.json()
    assert resp.status == status, data
    return data


async def post(client: Client, path: str, headers: dict[str, str], status: int = 200) -> Any:
    resp = await client.post(path, headers=headers)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def get(client: Client, path: str, headers: dict[str, str], status: int = 200) -> Any:
    resp = await client.get(path, headers=headers)
    data = await resp.json()
    assert resp.status == status, data
    return data


async def test_dispatcher_calls_village_terminal_that_accepts(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    caller = await connect(client, token("dispatcher", COUNTY, "county-d"))
    terminal = await connect(client, token("terminal", VILLAGE, "dongguan-t"))
    headers = auth("dispatcher", COUNTY, "county-d")
    call = await place(client, headers, centres=[VILLAGE], title="调度通话")
    assert call["state"] == "ringing" and call["room"] and call["caller"] == "county-d"
    assert call["targets"][0]["rung"] == ["dongguan-t"]

    ring = await event(terminal, "call.ringing")
    assert ring["call"] == call["id"] and ring["room"] == call["room"]
    assert ring["from"] == "county-d" and ring["from_centre"] == COUNTY
    assert ring["auto_answer"] is True and ring["busy"] is False
    assert ring["expires_at"] == pytest.approx(call["created"] + 30)

    accepted = await ws_request(terminal, "call.accept", {"call": call["id"]})
    assert accepted["state"] == "active" and accepted["answered"] is True
    assert accepted["targets"][0]["state"] == "accepted"
    assert accepted["targets"][0]["answered_by"] == "dongguan-t"
    update = await event(caller, "call.updated", lambda d: d["state"] == "active")
    assert update["targets"][0]["answered_by"] == "dongguan-t"
    presence = client.app[PRESENCE]
    assert presence.get("dongguan-t").status is Status.IN_CALL

    # the terminal joins the call's room (clients do that through the room endpoints)
    rooms = client.app[ROOMS]
    room = rooms.get(call["room"])
    assert room is not None and room.kind == "call" and VILLAGE in room.invited_centres
    rooms.join(room, Principal("dongguan-t", Role.TERMINAL, VILLAGE))
    await asyncio.sleep(0.3)

    ended = await post(client, f"/api/calls/{call['id']}/hangup", headers)
    assert ended["state"] == "ended" and ended["end_reason"] == "hangup"
    assert room.ended
    assert presence.get("dongguan-t").status is Status.ONLINE
    await event(terminal, "call.updated", lambda d: d["state"] == "ended")

    history = await get(client, f"/api/calls/{call['id']}", headers)
    assert history["answered"] is True and history["title"] == "调度通话"
    assert history["duration"] >= 0.3
    assert history["targets"][0]["duration"] == history["duration"]
    listing = await get(client, "/api/calls?page=1&per_page=5", headers)
    assert listing["total"] == 1 and listing["items"][0]["id"] == call["id"]
    # the village sees the calls it received; a sibling township does not
    mine = await get(client, "/api/calls", auth("terminal", VILLAGE, "dongguan-t"))
    assert [c["id"] for c in mine["items"]] == [call["id"]]
    other = await get(client, "/api/calls", auth("dispatcher", OTHER_TOWN, "other-d"))
    assert other["items"] == []
    await get(client, f"/api/calls/{call['id']}", auth("dispatcher", OTHER_TOWN, "other-d"), 404)
    for ws in (caller, terminal):
        await ws.close()


async def test_decline_ends_an_unanswered_call(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    caller = await connect(client, token("dispatcher", TOWN, "town-d"))
    terminal = await connect(client, token("terminal", V2, "xiguan-t"))
    call = await place(client, auth("dispatcher", TOWN, "town-d"), centres=[V2])
    await event(terminal, "call.ringing")
    declined = await post(
        client, f"/api/calls/{call['id']}/decline", auth("terminal", V2, "xiguan-t")
    )
    assert declined["state"] == "ended" and declined["end_reason"] == "declined"
    assert declined["targets"][0]["state"] == "declined"
    update = await event(caller, "call.updated", lambda d: d["state"] == "ended")
    assert update["answered"] is False and update["duration"] is None
    assert client.app[ROOMS].get(call["room"]).ended
    for ws in (caller, terminal):
        await ws.close()


async def test_timeout_marks_targets_missed(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    caller = await connect(client, token("dispatcher", COUNTY, "county-d"))
    terminal = await connect(client, token("terminal", V3, "nanguan-t"))
    # V4 has nobody connected: it rings nobody and is missed too
    call = await place(client, auth("dispatcher", COUNTY, "county-d"), centres=[V3, V4], timeout=1)
    assert [t["rung"] for t in call["targets"]] == [["nanguan-t"], []]
    await event(terminal, "call.ringing")
    ended = await event(caller, "call.updated", lambda d: d["state"] == "ended")
    assert [t["state"] for t in ended["targets"]] == ["missed", "missed"]
    assert ended["end_reason"] == "no_answer"
    assert ended["ended_at"] - ended["created"] == pytest.approx(1, abs=0.5)
    await asyncio.sleep(0.1)
    stored = await get(client, f"/api/calls/{call['id']}", auth())
    assert stored["state"] == "ended" and stored["answered"] is False
    assert not client.app[CALLS].live()
    for ws in (caller, terminal):
        await ws.close()


async def test_caller_cancels(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    terminal = await connect(client, token("terminal", VILLAGE, "dongguan-t"))
    headers = auth("dispatcher", COUNTY, "county-d")
    call = await place(client, headers, centres=[VILLAGE])
    await event(terminal, "call.ringing")
    # only the caller (or an admin) cancels
    await post(client, f"/api/calls/{call['id']}/cancel", auth("dispatcher", TOWN, "town-d"), 403)
    cancelled = await post(client, f"/api/calls/{call['id']}/cancel", headers)
    assert cancelled["state"] == "ended" and cancelled["end_reason"] == "cancelled"
    assert cancelled["targets"][0]["state"] == "cancelled"
    update = await event(terminal, "call.updated", lambda d: d["state"] == "ended")
    assert update["targets"][0]["state"] == "cancelled"
    await terminal.close()


async def test_illegal_moves_are_refused_with_409(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    a, b = auth("terminal", VILLAGE, "dongguan-t"), auth("terminal", V2, "xiguan-t")
    headers = auth("dispatcher", TOWN, "town-d")
    call = await place(client, headers, centres=[VILLAGE, V2])
    path = f"/api/calls/{call['id']}"
    await post(client, f"{path}/accept", a)
    again = await post(client, f"{path}/accept", a, 409)
    assert "accepted" in again["error"]["message"]
    await post(client, f"{path}/decline", a, 409)
    await post(client, f"{path}/accept", headers, 403)  # the caller cannot answer
    await post(client, f"{path}/accept", auth("terminal", V3, "nanguan-t"), 403)  # not rung
    await post(client, f"{path}/decline", b)
    nothing = await post(client, f"{path}/cancel", headers, 409)
    assert "not ringing" in nothing["error"]["message"]
    await post(client, f"{path}/hangup", headers)
    await asyncio.sleep(0.05)
    gone = await post(client, f"{path}/accept", b, 409)
    assert "ended" in gone["error"]["message"]
    await post(client, f"{path}/hangup", headers, 409)
    await post(client, "/api/calls/nope/accept", a, 404)
    # over the WebSocket the same refusals are errors with the same code
    ws = await connect(client, token("terminal", V2, "xiguan-t"))
    err = await ws_request(ws, "call.accept", {"call": call["id"]})
    assert err["type"] == "error" and err["error"]["code"] == "conflict"
    err = await ws_request(ws, "call.accept", {"call": call["id"], "extra": 1})
    assert err["error"]["code"] == "bad_data"
    await ws.close()


async def test_scope_of_calls(client: Client, auth: Callable[..., dict[str, str]]) -> None:
    village = auth("terminal", VILLAGE, "dongguan-t")
    refused = await place(client, village, 403, centres=[V2])
    assert "up its own chain" in refused["error"]["message"]
    assert V2 in refused["error"]["message"]
    await place(client, village, 403, users=["xiguan-t"])  # a person of a sibling village
    await place(client, village, 403, centres=[VILLAGE])  # its own centre is not up the chain
    up = await place(client, village, centres=[COUNTY])
    assert up["targets"][0]["centre_name"] == "清丰县"
    await place(client, village, centres=[TOWN])
    # a township dispatcher: its villages and up its chain, not another township's villages
    town = auth("dispatcher", TOWN, "town-d")
    await place(client, town, centres=[V3, COUNTY])
    await place(client, town, 403, centres=[OTHER_VILLAGE])
    await place(client, town, 403, centres=[OTHER_TOWN])
    # a township receptionist may call up, not down
    await place(client, auth("receptionist", TOWN, "town-clerk"), 403, centres=[VILLAGE])
    await place(client, auth("receptionist", TOWN, "town-clerk"), centres=[COUNTY])
    await place(client, auth("petitioner", VILLAGE, "p1"), 403, centres=[TOWN])
    await place(client, town, 404, centres=["410922100299"])
    await place(client, town, 404, users=["nobody"])
    bad = await place(client, town, 400, centres=[V3], ring=True)
    assert "ring: unknown field" in bad["error"]["message"]
    await place(client, town, 400, centres=[V3], timeout=0)
    await place(client, town, 400)
    await place(client, town, 400, centres=["41"])


async def test_named_person_busy_and_several_at_one_centre(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    caller = await connect(client, token("dispatcher", COUNTY, "county-d"))
    clerk = await connect(client, token("receptionist", TOWN, "town-clerk"))
    town_d = await connect(client, token("dispatcher", TOWN, "town-d"))
    await ws_request(town_d, "presence.set", {"status": "busy"})
    call = await place(client, auth("dispatcher", COUNTY, "county-d"), centres=[TOWN])
    assert sorted(call["targets"][0]["rung"]) == ["town-clerk", "town-d"]
    ring_d = await event(town_d, "call.ringing")
    assert ring_d["busy"] is True and ring_d["auto_answer"] is False
    ring_c = await event(clerk, "call.ringing")
    assert ring_c["busy"] is False
    await ws_request(clerk, "call.accept", {"call": call["id"]})
    # the other person at that centre learns it was answered (stops ringing)
    update = await event(town_d, "call.updated", lambda d: d["state"] == "active")
    assert update["targets"][0]["answered_by"] == "town-clerk"
    await event(caller, "call.updated", lambda d: d["state"] == "active")
    # a named person is rung alone
    direct = await place(client, auth("dispatcher", COUNTY, "county-d"), users=["town-d"])
    assert direct["targets"][0]["user"] == "town-d" and direct["targets"][0]["rung"] == ["town-d"]
    ring = await event(town_d, "call.ringing", lambda d: d["call"] == direct["id"])
    assert ring["target"] == "town-d"
    # the clerk is in a call now: a new ring says busy
    again = await place(client, auth("dispatcher", COUNTY, "county-d"), users=["town-clerk"])
    ring = await event(clerk, "call.ringing", lambda d: d["call"] == again["id"])
    assert ring["busy"] is True and ring["status"] == "in_call"
    for ws in (caller, clerk, town_d):
        await ws.close()


async def test_pending_rings_for_a_terminal_connecting_late(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    call = await place(client, auth("dispatcher", COUNTY, "county-d"), centres=[V4])
    terminal = await connect(client, token("terminal", V4, "beiguan-t"))
    pending = await ws_request(terminal, "call.pending")
    assert [p["call"] for p in pending] == [call["id"]] and pending[0]["auto_answer"] is True
    answered = await ws_request(terminal, "call.accept", {"call": call["id"]})
    assert answered["targets"][0]["answered_by"] == "beiguan-t"
    assert await ws_request(terminal, "call.pending") == []
    # the room ending (host ends it for all) ends the call
    rooms = client.app[ROOMS]
    rooms.end(rooms.get(call["room"]))
    await asyncio.sleep(0.05)
    done = await get(client, f"/api/calls/{call['id']}", auth())
    assert done["state"] == "ended" and done["end_reason"] == "room_ended"
    assert done["duration"] is not None
    await terminal.close()


async def test_history_survives_a_restart_and_live_calls_end_on_shutdown(
    hub_config: HubConfig, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("dispatcher", COUNTY, "county-d")
    async with TestClient(TestServer(build_app(hub_config), host="127.0.0.1")) as first:
        done = await place(first, headers, centres=[VILLAGE])
        await post(
            first, f"/api/calls/{done['id']}/accept", auth("terminal", VILLAGE, "dongguan-t")
        )
        await post(first, f"/api/calls/{done['id']}/hangup", headers)
        ringing = await place(first, headers, centres=[V2, V3], timeout=600)
        calls = first.app[CALLS]
    assert not calls.live() and not calls._timers and len(calls._tasks) == 0
    expires = [t for t in asyncio.all_tasks() if "_expire" in repr(t.get_coro())]
    assert expires == []
    async with TestClient(TestServer(build_app(hub_config), host="127.0.0.1")) as second:
        old = await get(second, f"/api/calls/{done['id']}", headers)
        assert old["answered"] is True and old["targets"][0]["answered_by"] == "dongguan-t"
        cut = await get(second, f"/api/calls/{ringing['id']}", headers)
        assert cut["state"] == "ended" and cut["end_reason"] == "shutdown"
        assert [t["state"] for t in cut["targets"]] == ["cancelled", "cancelled"]
        listing = await get(second, "/api/calls?per_page=1&page=2", headers)
        assert listing["total"] == 2 and listing["items"][0]["id"] == done["id"]
        await get(second, "/api/calls?per_page=500", headers, 400)
