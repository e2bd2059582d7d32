"""Notices: live delivery to online terminals of the target subtree, queued delivery on the
next connect, read receipts and per-centre status, nothing for a centre outside the subtree,
attachments (size limit, sanitised names, content type) and clear 4xx answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE, topology

Client = TestClient[Any, Any]
LIMIT = 4096
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = build_app(parse_config(topology(notices={"max_attachment_bytes": LIMIT})))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def connect(http: ClientSession, client: Client, token: str) -> ClientWebSocketResponse:
    ws = await http.ws_connect(client.make_url(f"/ws?token={token}"))
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    return ws


async def notices_of(ws: ClientWebSocketResponse, wait: float) -> list[dict[str, Any]]:
    """The `notice` events that arrive within `wait` seconds."""
    out = []
    try:
        async with asyncio.timeout(wait):
            while True:
                msg = await ws.receive_json()
                if msg.get("topic") == "notice":
                    out.append(msg["data"])
    except TimeoutError:
        pass
    return out


async def test_notice_live_queued_read_and_out_of_subtree(
    client: Client, token: Callable[..., str]
) -> None:
    sender = {"Authorization": f"Bearer {token('dispatcher', COUNTY, 'county-d')}"}
    town_t = token("terminal", TOWN, "town-t")
    village_t = token("terminal", VILLAGE, "village-t")
    late_t = token("terminal", VILLAGE, "village-t2")
    other_t = token("terminal", OTHER_TOWN, "other-t")
    async with ClientSession() as http:
        town_ws = await connect(http, client, town_t)
        village_ws = await connect(http, client, village_t)
        other_ws = await connect(http, client, other_t)
        resp = await client.post(
            "/api/notices",
            json={"title": "防汛通知", "text": "今晚有暴雨，请值班。", "subtree": TOWN},
            headers=sender,
        )
        assert resp.status == 201, await resp.text()
        sent = await resp.json()
        nid = sent["id"]
        assert sent["targets"] == [TOWN, VILLAGE]
        # online terminals of the subtree at once; the other township nothing
        got_town, got_village, got_other = await asyncio.gather(
            notices_of(town_ws, 1.0), notices_of(village_ws, 1.0), notices_of(other_ws, 1.0)
        )
        assert [n["id"] for n in got_town] == [nid] and got_town[0]["title"] == "防汛通知"
        assert [n["id"] for n in got_village] == [nid]
        assert got_other == []

        # an offline terminal gets it on its next connect, once
        late_ws = await connect(http, client, late_t)
        queued = await notices_of(late_ws, 1.0)
        assert [n["id"] for n in queued] == [nid] and queued[0]["queued"]
        await late_ws.close()
        late_ws = await connect(http, client, late_t)
        assert await notices_of(late_ws, 0.5) == []

        # read receipts and per-centre status
        for t in (village_t, late_t):
            resp = await client.post(
                f"/api/notices/{nid}/read", headers={"Authorization": f"Bearer {t}"}
            )
            assert resp.status == 200
        other_h = {"Authorization": f"Bearer {other_t}"}
        assert (await client.post(f"/api/notices/{nid}/read", headers=other_h)).status == 404
        assert (await client.get(f"/api/notices/{nid}", headers=other_h)).status == 404
        status = await (await client.get(f"/api/notices/{nid}", headers=sender)).json()
        per = {c["centre"]: c for c in status["centres"]}
        assert (per[TOWN]["delivered"], per[TOWN]["read"]) == (1, 0)
        assert (per[VILLAGE]["delivered"], per[VILLAGE]["read"]) == (2, 2)
        assert status["totals"]["read"] == 2 and status["totals"]["centres_read"] == 1
        assert OTHER_TOWN not in per
        # a recipient sees the notice (no status) and its inbox
        town_h = {"Authorization": f"Bearer {town_t}"}
        mine = await (await client.get(f"/api/notices/{nid}", headers=town_h)).json()
        assert mine["title"] == "防汛通知" and "centres" not in mine
        inbox = await (await client.get("/api/notices/inbox", headers=town_h)).json()
        assert [(n["id"], n["read"]) for n in inbox] == [(nid, False)]
        assert await (await client.get("/api/notices/inbox", headers=other_h)).json() == []
        for ws in (town_ws, village_ws, other_ws, late_ws):
            await ws.close()


async def test_attachments_and_bad_requests(client: Client, token: Callable[..., str]) -> None:
    county = {"Authorization": f"Bearer {token('dispatcher', COUNTY, 'county-d')}"}
    town_d = {"Authorization": f"Bearer {token('dispatcher', TOWN, 'town-d')}"}
    village = {"Authorization": f"Bearer {token('terminal', VILLAGE, 'village-t')}"}
    other = {"Authorization": f"Bearer {token('terminal', OTHER_TOWN, 'other-t')}"}
    resp = await client.post(
        "/api/notices/attachments?name=../../etc/雨情图.png",
        data=PNG,
        headers={**county, "Content-Type": "image/png"},
    )
    assert resp.status == 201, await resp.text()
    a = await resp.json()
    assert a["name"] == "雨情图.png" and a["content_type"] == "image/png" and a["size"] == len(PNG)
    # oversized: 413, also when streamed without a length
    resp = await client.post(
        "/api/notices/attachments?name=big.bin", data=b"x" * (LIMIT + 1), headers=county
    )
    assert resp.status == 413 and "limit" in (await resp.json())["error"]["message"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * (LIMIT // 2)

    resp = await client.post("/api/notices/attachments", data=chunks(), headers=county)
    assert resp.status == 413
    resp = await client.post("/api/notices/attachments", data=b"", headers=county)
    assert resp.status == 400
    resp = await client.post("/api/notices/attachments", data=PNG, headers=village)
    assert resp.status == 403

    body = {"title": "雨情", "text": "见附件", "centres": [VILLAGE], "attachment": a["id"]}
    resp = await client.post("/api/notices", json=body, headers=county)
    assert resp.status == 201, await resp.text()
    url = a["url"]
    resp = await client.get(url, headers=village)
    assert resp.status == 200 and await resp.read() == PNG
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["Content-Disposition"].startswith("inline; filename*=UTF-8''")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get(url, headers=other)).status == 404
    assert (await client.get("/api/notices/attachments/..%2Fzz", headers=county)).status == 404

    cases: list[tuple[dict[str, str], dict[str, Any], int]] = [
        (village, {"title": "x", "subtree": VILLAGE}, 403),  # a terminal sends nothing
        (town_d, {"title": "x", "subtree": OTHER_TOWN}, 403),  # another township
        (county, {"title": "x", "centres": ["410922999"]}, 404),  # no such centre
        (county, {"title": "x"}, 400),  # no targets
        (county, {"title": "", "subtree": TOWN}, 400),
        (county, {"title": "x", "text": 5, "subtree": TOWN}, 400),
        (county, {"title": "x", "subtree": TOWN, "attachment": "nope"}, 404),
        (town_d, {"title": "x", "subtree": TOWN, "attachment": a["id"]}, 404),  # not its upload
    ]
    for headers, payload, status in cases:
        resp = await client.post("/api/notices", json=payload, headers=headers)
        assert resp.status == status, (payload, resp.status, await resp.text())
        assert (await resp.json())["error"]["message"]
    assert (await client.get("/api/notices/nothere", headers=county)).status == 404
    sent = await (await client.get("/api/notices", headers=county)).json()
    assert [n["title"] for n in sent] == ["雨情"]
