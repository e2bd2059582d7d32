"""WebSocket /ws: auth, envelope validation, presence and scoped events, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from hub.core.events import EVENTS
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE

Client = TestClient[Any, Any]


async def connect(client: Client, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect(f"/ws?token={token}")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["v"] == 1
    return ws


async def until(
    ws: aiohttp.ClientWebSocketResponse, pred: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            msg: dict[str, Any] = await ws.receive_json()
            if pred(msg):
                return msg


async def request(
    ws: aiohttp.ClientWebSocketResponse, id_: str, type_: str, data: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "id": id_, "type": type_}
    if data is not None:
        body["data"] = data
    await ws.send_json(body)
    return await until(ws, lambda m: m.get("re") == id_)


async def test_needs_a_token(client: Client) -> None:
    resp = await client.get("/ws")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"
    resp = await client.get("/ws?token=forged.token.here")
    assert resp.status == 401


async def test_hello_and_ping(client: Client, token: Callable[..., str]) -> None:
    ws = await client.ws_connect(
        "/ws", headers={"Authorization": f"Bearer {token('dispatcher', TOWN, 'd1')}"}
    )
    hello = await ws.receive_json(timeout=5)
    assert hello["data"]["user"] == "d1" and hello["data"]["centre"] == TOWN
    assert "ping" in hello["data"]["types"]
    reply = await request(ws, "p1", "ping")
    assert reply["type"] == "reply" and "server_time" in reply["data"]
    await ws.close()


async def test_bad_messages_get_errors_naming_the_problem(
    client: Client, token: Callable[..., str]
) -> None:
    ws = await connect(client, token())
    cases: list[tuple[str, str, str]] = [
        ("{not json", "bad_json", "JSON"),
        (json.dumps([1, 2]), "bad_message", ""),
        (json.dumps({"v": 2, "id": "a", "type": "ping"}), "bad_message", "v"),
        (json.dumps({"v": 1, "id": "b", "type": "teleport"}), "unknown_type", "teleport"),
        (
            json.dumps({"v": 1, "id": "c", "type": "presence.set", "data": {"status": "asleep"}}),
            "bad_data",
            "data.status",
        ),
        (
            json.dumps(
                {"v": 1, "id": "d", "type": "presence.set", "data": {"status": "busy", "x": 1}}
            ),
            "bad_data",
            "data.x: unknown field",
        ),
        (json.dumps({"v": 1, "id": "e", "type": "ping", "data": "str"}), "bad_message", "data"),
        (
            json.dumps({"v": 1, "type": "ping", "extra": True}),
            "bad_message",
            "extra: unknown field",
        ),
    ]
    for raw, code, words in cases:
        await ws.send_str(raw)
        msg = await until(ws, lambda m: m["type"] == "error")
        assert msg["error"]["code"] == code, (raw, msg)
        assert words in msg["error"]["message"], (raw, msg)
    await ws.send_bytes(b"\x00\x01")
    msg = await until(ws, lambda m: m["type"] == "error")
    assert msg["error"]["code"] == "bad_frame"
    assert (await request(ws, "ok", "ping"))["type"] == "reply"
    await ws.close()


async def test_oversized_frame_closes_that_socket_only(
    client: Client, token: Callable[..., str]
) -> None:
    other = await connect(client, token(user="other"))
    ws = await connect(client, token(user="big"))
    await ws.send_str("x" * (1024 * 1024))
    msg = await ws.receive(timeout=5)
    assert msg.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.CLOSING,
    )
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert (await request(other, "still", "ping"))["type"] == "reply"
    assert (await client.get("/api/health")).status == 200
    await other.close()


async def test_flood_is_limited_then_closed(client: Client, token: Callable[..., str]) -> None:
    other = await connect(client, token(user="calm"))
    ws = await connect(client, token(user="flooder"))
    for i in range(1000):
        if ws.closed:
            break
        await ws.send_str(json.dumps({"v": 1, "id": str(i), "type": "ping"}))
    codes: list[str] = []
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            body = json.loads(msg.data)
            if body["type"] == "error":
                codes.append(body["error"]["code"])
    assert "rate_limited" in codes
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
    assert (await request(other, "calm", "ping"))["type"] == "reply"
    await other.close()


async def test_presence_is_pushed_within_scope(client: Client, token: Callable[..., str]) -> None:
    county = await connect(client, token("dispatcher", COUNTY, "county-d"))
    other_town = await connect(client, token("dispatcher", OTHER_TOWN, "other-d"))
    await request(other_town, "f", "events.filter", {"topics": ["presence"]})
    village = await connect(client, token("terminal", VILLAGE, "village-t"))
    event = await until(county, lambda m: m["type"] == "event" and m["data"]["user"] == "village-t")
    assert event["topic"] == "presence" and event["data"]["status"] == "online"
    assert event["centre"] == VILLAGE
    listed = await request(county, "l", "presence.list")
    assert {m["user"] for m in listed["data"]} >= {"county-d", "village-t"}
    await request(village, "s", "presence.set", {"status": "busy"})
    busy = await until(county, lambda m: m["type"] == "event" and m["data"].get("status") == "busy")
    assert busy["data"]["user"] == "village-t"
    await village.close()
    gone = await until(
        county, lambda m: m["type"] == "event" and m["data"].get("status") == "offline"
    )
    assert gone["data"]["user"] == "village-t"
    # the other township saw none of it
    listed = await request(other_town, "l2", "presence.list")
    assert [m["user"] for m in listed["data"]] == ["other-d"]
    with_timeout = asyncio.wait_for(other_town.receive_json(), 0.3)
    try:
        leaked = await with_timeout
        raise AssertionError(f"event leaked to another township: {leaked}")
    except TimeoutError:
        pass
    await county.close()
    await other_town.close()


async def test_domain_events_reach_only_centres_at_or_above(
    client: Client, token: Callable[..., str]
) -> None:
    county = await connect(client, token("operator", COUNTY, "c"))
    town = await connect(client, token("operator", TOWN, "t"))
    other = await connect(client, token("operator", OTHER_TOWN, "o"))
    client.app[EVENTS].publish("alert.raised", VILLAGE, {"kind": "motion", "camera": "village-cam"})
    for ws in (county, town):
        msg = await until(ws, lambda m: m["type"] == "event" and m["topic"] == "alert.raised")
        assert msg["data"]["camera"] == "village-cam"
    client.app[EVENTS].publish("notice", TOWN, {"n": 1}, to_users={"o"})
    msg = await until(other, lambda m: m["type"] == "event")
    assert msg["topic"] == "notice", "addressed events reach their user whatever the scope"
    for ws in (county, town, other):
        await ws.close()
