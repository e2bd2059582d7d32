"""Roll call (一键查岗) end to end: a real hub and real /ws duty terminals.

Four villages of a township are checked; three answer (automatically or by pressing 在岗), one
has no terminal connected: the ledger, its CSV and the township summary say so. Scope, answer
rules, snapshots, late terminals and the restart are covered too.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import HubConfig, parse_config
from hub.app import build_app
from hub.rollcalls.service import ROLLCALLS
from hub.rooms.model import ROOMS
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE
from tests.hub.calls.test_calls import (
    OTHER_VILLAGE,
    TERMINALS,
    V2,
    V3,
    V4,
    connect,
    dispatch_topology,
    event,
    get,
    post,
    ws_request,
)

Client = TestClient[Any, Any]
TOWN_VILLAGES = [VILLAGE, V2, V3, V4]
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


@pytest.fixture
def hub_config() -> HubConfig:
    return parse_config(dispatch_topology())


async def run(
    client: Client, headers: dict[str, str], status: int = 201, **body: Any
) -> dict[str, Any]:
    resp = await client.post("/api/rollcalls", json=body, headers=headers)
    data: dict[str, Any] = await resp.json()
    assert resp.status == status, data
    return data


async def test_rollcall_over_four_villages_one_not_answering(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    dispatcher = await connect(client, token("dispatcher", TOWN, "town-d"))
    terminals = {
        code: await connect(client, token("terminal", code, TERMINALS[code]))
        for code in (VILLAGE, V2, V3)  # V4's duty terminal is not connected
    }
    headers = auth("dispatcher", TOWN, "town-d")
    rc = await run(client, headers, township=TOWN, level="village", timeout=5)
    assert rc["state"] == "running" and rc["label"] == "城关镇 全部村"
    by_centre = {e["centre"]: e for e in rc["entries"]}
    assert sorted(by_centre) == TOWN_VILLAGES
    assert by_centre[V4]["status"] == "offline" and by_centre[VILLAGE]["status"] == "checking"
    room = client.app[ROOMS].get(rc["room"])
    assert room is not None and room.kind == "rollcall" and room.host == "town-d"
    assert room.invited_centres == set(TOWN_VILLAGES)

    for code, ws in terminals.items():
        check = await event(ws, "rollcall.check")
        assert check["rollcall"] == rc["id"] and check["room"] == rc["room"]
        assert check["auto_answer"] is True and check["centre"] == code
        assert check["expires_at"] == pytest.approx(rc["started"] + 5)
    await asyncio.sleep(0.2)
    auto = await ws_request(
        terminals[VILLAGE], "rollcall.answer", {"rollcall": rc["id"], "auto": True}
    )
    assert [e["status"] for e in auto["entries"] if e["centre"] == VILLAGE] == ["answered"]
    await ws_request(terminals[V2], "rollcall.answer", {"rollcall": rc["id"], "auto": True})
    resp = await client.post(  # pressing 在岗
        f"/api/rollcalls/{rc['id']}/answer", json={}, headers=auth("terminal", V3, TERMINALS[V3])
    )
    assert resp.status == 200, await resp.json()
    update = await event(dispatcher, "rollcall.updated", lambda d: d["answered"] == 3)
    assert update["state"] == "running" and update["not_answered"] == 1

    closed = await event(dispatcher, "rollcall.updated", lambda d: d["state"] == "closed", 8)
    assert closed["close_reason"] == "timeout"
    # a checked terminal is told about its own entry only (no ledger fan-out to every village)
    own_update = await event(terminals[V2], "rollcall.updated", lambda d: d["state"] == "closed")
    assert [e["centre"] for e in own_update["entries"]] == [V2]
    await asyncio.sleep(0.1)
    ledger = await get(client, f"/api/rollcalls/{rc['id']}", headers)
    entries = {e["centre"]: e for e in ledger["entries"]}
    assert [entries[c]["answered"] for c in TOWN_VILLAGES] == [True, True, True, False]
    assert entries[V4]["status"] == "offline" and ledger["answered"] == 3
    assert entries[VILLAGE]["answered_by"] == "dongguan-t" and entries[VILLAGE]["auto"] is True
    assert entries[V3]["auto"] is False
    assert 0.2 <= entries[VILLAGE]["response_time"] < 5

    resp = await client.get(f"/api/rollcalls/{rc['id']}.csv", headers=headers)
    assert resp.status == 200 and resp.content_type == "text/csv"
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][1] == "中心编码 centre" and len(rows) == 5
    assert [r[2] for r in rows[1:]] == ["东关村", "西关村", "南关村", "北关村"]
    assert [r[5] for r in rows[1:]] == ["是", "是", "是", "否"]
    assert rows[4][4] == "离线 offline"

    summary = await get(client, "/api/rollcalls/summary", auth("dispatcher", COUNTY, "county-d"))
    (town,) = summary["townships"]
    assert town["township"] == TOWN and town["name"] == "城关镇"
    assert (town["rollcalls"], town["checks"], town["answered"]) == (1, 4, 3)
    assert town["answered_pct"] == 75.0 and 0.2 <= town["mean_response"] < 5
    assert town["never_answered"] == [{"code": V4, "name": "北关村", "checks": 1}]
    listing = await get(client, "/api/rollcalls", headers)
    assert listing["total"] == 1 and listing["items"][0]["answered"] == 3
    # a checked village sees its own line of the ledger only
    own = await get(client, f"/api/rollcalls/{rc['id']}", auth("terminal", V2, TERMINALS[V2]))
    assert [e["centre"] for e in own["entries"]] == [V2]
    for ws in (dispatcher, *terminals.values()):
        await ws.close()


async def test_connected_terminal_that_does_not_answer_and_summary_window(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    silent = await connect(client, token("terminal", OTHER_VILLAGE, TERMINALS[OTHER_VILLAGE]))
    headers = auth("dispatcher", OTHER_TOWN, "other-d")
    rc = await run(client, headers, centres=[OTHER_VILLAGE], timeout=1)
    await event(silent, "rollcall.check")
    closed = await event(silent, "rollcall.updated", lambda d: d["state"] == "closed")
    assert closed["entries"][0]["status"] == "no_answer"
    await asyncio.sleep(0.1)
    late = await post(
        client,
        f"/api/rollcalls/{rc['id']}/answer",
        auth("terminal", OTHER_VILLAGE, "nanjie-t"),
        409,
    )
    assert "closed" in late["error"]["message"]
    summary = await get(client, f"/api/rollcalls/summary?township={OTHER_TOWN}", headers)
    assert summary["townships"][0]["answered_pct"] == 0.0
    assert summary["townships"][0]["mean_response"] is None
    past = await get(client, "/api/rollcalls/summary?from=2020-01-01&to=2020-12-31", headers)
    assert past["townships"] == []
    await get(client, "/api/rollcalls/summary?from=yesterday", headers, 400)
    await get(client, f"/api/rollcalls/summary?township={TOWN}", headers, 403)
    await silent.close()


async def test_scope_of_roll_calls(client: Client, auth: Callable[..., dict[str, str]]) -> None:
    town = auth("dispatcher", TOWN, "town-d")
    refused = await run(client, town, 403, township=OTHER_TOWN, level="village")
    assert "not at or below your centre" in refused["error"]["message"]
    await run(client, town, 403, centres=[VILLAGE, OTHER_VILLAGE])
    await run(client, auth("terminal", VILLAGE, "dongguan-t"), 403, centres=[VILLAGE])
    await run(client, auth("receptionist", TOWN, "town-clerk"), 403, centres=[VILLAGE])
    county = await run(client, auth("dispatcher", COUNTY, "county-d"), township=OTHER_TOWN)
    assert [e["centre"] for e in county["entries"]] == [OTHER_VILLAGE]
    townships = await run(client, auth(), township=COUNTY, level="township")
    assert [e["centre"] for e in townships["entries"]] == [TOWN, OTHER_TOWN]
    await run(client, town, 400)
    await run(client, town, 400, centres=[VILLAGE], township=TOWN)
    await run(client, town, 400, centres=[VILLAGE], timeout=0)
    await run(client, town, 404, centres=["410922100299"])
    await get(client, f"/api/rollcalls/{county['id']}", town, 404)


async def test_answer_rules_early_close_and_snapshots(
    client: Client,
    token: Callable[..., str],
    auth: Callable[..., dict[str, str]],
    hub_config: HubConfig,
) -> None:
    ws = {c: await connect(client, token("terminal", c, TERMINALS[c])) for c in (VILLAGE, V2)}
    headers = auth("dispatcher", TOWN, "town-d")
    rc = await run(client, headers, centres=[VILLAGE, V2])
    path = f"/api/rollcalls/{rc['id']}"
    await post(client, f"{path}/answer", auth("operator", VILLAGE, "v-op"), 403)
    await post(client, f"{path}/answer", auth("terminal", V3, TERMINALS[V3]), 403)
    await post(client, f"{path}/answer", auth("terminal", VILLAGE, "dongguan-t"))
    again = await post(client, f"{path}/answer", auth("terminal", VILLAGE, "dongguan-t"), 409)
    assert "already answered" in again["error"]["message"]
    await post(client, f"{path}/close", auth("dispatcher", COUNTY, "county-d"), 403)

    # the hook room media calls with a frame of the terminal's published video
    stored = await client.app[ROLLCALLS].attach_snapshot(rc["id"], VILLAGE, JPEG)
    assert (Path(hub_config.http.data_dir) / stored).read_bytes() == JPEG
    assert stored == f"rollcall/{rc['id']}/{VILLAGE}.jpg"
    resp = await client.get(f"{path}/centres/{VILLAGE}/snapshot.jpg", headers=headers)
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert await resp.read() == JPEG
    await get(client, f"{path}/centres/{V2}/snapshot.jpg", headers, 404)
    # a terminal uploads its own frame once it answered
    up = f"{path}/centres/{V2}/snapshot.jpg"
    v2 = {**auth("terminal", V2, TERMINALS[V2]), "Content-Type": "image/jpeg"}
    assert (await client.post(up, data=JPEG, headers=v2)).status == 409  # not answered yet
    await ws_request(ws[V2], "rollcall.answer", {"rollcall": rc["id"]})
    closed = await get(client, path, headers)
    assert closed["state"] == "closed" and closed["close_reason"] == "all_answered"
    assert (await client.post(up, data=b"not a jpeg", headers=v2)).status == 400
    v1 = {**auth("terminal", VILLAGE, "dongguan-t"), "Content-Type": "image/jpeg"}
    assert (await client.post(up, data=JPEG, headers=v1)).status == 404  # not its centre
    assert (await client.post(up, data=JPEG, headers=v2)).status == 201
    ledger = await get(client, path, headers)
    assert [e["has_snapshot"] for e in ledger["entries"]] == [True, True]

    # closing early: centres still checking become no_answer; the room stays for the grid
    rc2 = await run(client, headers, centres=[VILLAGE, V2])
    done = await post(client, f"/api/rollcalls/{rc2['id']}/close", headers)
    assert [e["status"] for e in done["entries"]] == ["no_answer", "no_answer"]
    assert not client.app[ROOMS].get(rc2["room"]).ended
    await post(client, f"/api/rollcalls/{rc2['id']}/close", headers, 409)
    for s in ws.values():
        await s.close()


async def test_late_terminal_answers_an_offline_centre(
    client: Client, token: Callable[..., str], auth: Callable[..., dict[str, str]]
) -> None:
    rc = await run(client, auth("dispatcher", TOWN, "town-d"), centres=[V4, V3])
    assert [e["status"] for e in rc["entries"]] == ["offline", "offline"]
    terminal = await connect(client, token("terminal", V4, TERMINALS[V4]))
    pending = await ws_request(terminal, "rollcall.pending")
    assert [p["rollcall"] for p in pending] == [rc["id"]]
    answered = await ws_request(terminal, "rollcall.answer", {"rollcall": rc["id"], "auto": True})
    assert answered["entries"] == [
        {**answered["entries"][0], "centre": V4, "status": "answered", "answered": True}
    ]
    assert await ws_request(terminal, "rollcall.pending") == []
    err = await ws_request(terminal, "rollcall.answer", {"rollcall": "nope"})
    assert err["error"]["code"] == "not_found"
    # ending the room closes a running roll call
    rooms = client.app[ROOMS]
    rooms.end(rooms.get(rc["room"]))
    await asyncio.sleep(0.05)
    closed = await get(client, f"/api/rollcalls/{rc['id']}", auth())
    assert closed["close_reason"] == "room_ended"
    assert {e["centre"]: e["status"] for e in closed["entries"]} == {V3: "offline", V4: "answered"}
    await terminal.close()


async def test_ledger_survives_a_restart(
    hub_config: HubConfig, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("dispatcher", COUNTY, "county-d")
    async with TestClient(TestServer(build_app(hub_config), host="127.0.0.1")) as first:
        done = await run(first, headers, centres=[VILLAGE])
        await post(
            first, f"/api/rollcalls/{done['id']}/answer", auth("terminal", VILLAGE, "dongguan-t")
        )
        running = await run(first, headers, township=TOWN, timeout=3600)
        rollcalls = first.app[ROLLCALLS]
    assert not rollcalls._live and not rollcalls._timers and len(rollcalls._tasks) == 0
    assert [t for t in asyncio.all_tasks() if "_expire" in repr(t.get_coro())] == []
    async with TestClient(TestServer(build_app(hub_config), host="127.0.0.1")) as second:
        old = await get(second, f"/api/rollcalls/{done['id']}", headers)
        assert old["answered"] == 1 and old["close_reason"] == "all_answered"
        cut = await get(second, f"/api/rollcalls/{running['id']}", headers)
        assert cut["state"] == "closed" and cut["close_reason"] == "shutdown"
        listing = await get(second, "/api/rollcalls", headers)
        assert [i["id"] for i in listing["items"]] == [running["id"], done["id"]]
        summary = await get(second, "/api/rollcalls/summary", headers)
        assert summary["townships"][0]["checks"] == 5
