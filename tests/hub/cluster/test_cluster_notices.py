"""Two hub nodes acting as one hub for notices (信息发布) and alerts: live and queued delivery to
terminals on the other node, read receipts counted by the sending node, attachments and
alerts reached through either node, merged lists; a real redis-server and real HTTP on
127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from hub.alerts.service import ALERTS
from hub.cluster.service import CLUSTER, ClusterState
from hub.notices.service import NOTICES
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE
from tests.fixtures.people import WS, Person
from tests.hub.calls.test_calls import OTHER_VILLAGE, TERMINALS, V2, V3
from tests.hub.cluster.test_cluster import RedisProcess, free_port, redis_server, wait_for
from tests.hub.cluster.test_cluster import pytestmark as needs_redis
from tests.hub.cluster.test_cluster_shared import Node, nodes, online_at

pytestmark = needs_redis

__all__ = ["nodes", "pytestmark", "redis_server"]  # shared fixtures and skip

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64 + b"\xff\xd9"


async def until_ready(ws: WS) -> list[dict[str, Any]]:
    """Every event sent to a socket before it answers a `ping`: the server reads requests only
    after its connect hooks ran, so this is everything they pushed (the queued notices)."""
    await ws.send_json({"v": 1, "id": "ready", "type": "ping", "data": {}})
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while (msg := await ws.receive_json())["type"] != "reply" or msg.get("re") != "ready":
            if msg["type"] == "event":
                events.append(msg)
    return events


async def next_notice(ws: WS) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            msg: dict[str, Any] = await ws.receive_json()
            if msg.get("type") == "event" and msg["topic"] == "notice":
                return msg["data"]  # type: ignore[no-any-return]


async def upload(person: Person, name: str, data: bytes, content_type: str) -> Any:
    headers = {**person.headers, "Content-Type": content_type}
    resp = await person.client.post(
        "/api/notices/attachments", params={"name": name}, data=data, headers=headers
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_notice_from_node_a_reaches_terminals_on_node_b(
    nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = nodes
    sender = Person(a, token("dispatcher", COUNTY, "county-d"))
    live = Person(b, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    late = Person(b, token("terminal", V2, TERMINALS[V2]))
    outside = Person(b, token("terminal", OTHER_VILLAGE, TERMINALS[OTHER_VILLAGE]))
    live_ws, outside_ws = await live.ws(), await outside.ws()
    sockets = [live_ws, outside_ws]
    try:
        await wait_for(lambda: TERMINALS[VILLAGE] in online_at(a, VILLAGE))
        await wait_for(lambda: TERMINALS[OTHER_VILLAGE] in online_at(a, OTHER_VILLAGE))
        attachment = await upload(sender, "雨情图.png", PNG, "image/png")
        body = {"title": "防汛通知", "text": "今晚有暴雨。", "subtree": TOWN}
        sent = await sender.req(
            "POST", "/api/notices", 201, json={**body, "attachment": attachment["id"]}
        )
        nid = sent["id"]
        assert VILLAGE in sent["targets"] and V2 in sent["targets"]
        # the notice lives on node A only
        assert await b.app[NOTICES].store.get(nid) is None
        assert await a.app[NOTICES].store.get(nid) is not None

        # live on node B
        got = await next_notice(live_ws)
        assert got["id"] == nid and got["title"] == "防汛通知" and not got.get("queued")
        # a centre outside the subtree gets nothing: the next notice it sees is one for it,
        # sent after (events from node A arrive in order)
        marker = await sender.req(
            "POST", "/api/notices", 201, json={"title": "另一镇", "subtree": OTHER_TOWN}
        )
        assert (await next_notice(outside_ws))["id"] == marker["id"]

        # a terminal connecting to node B afterwards gets it on connect, once
        late_ws = await late.ws()
        sockets.append(late_ws)
        queued = [e["data"] for e in await until_ready(late_ws) if e["topic"] == "notice"]
        assert [(n["id"], n["queued"]) for n in queued] == [(nid, True)]
        assert queued[0]["attachment"]["id"] == attachment["id"]

        # node A counts that delivery, reported by node B before the connect was done
        status = await sender.req("GET", f"/api/notices/{nid}")
        per = {c["centre"]: c for c in status["centres"]}
        assert (per[V2]["delivered"], per[V2]["read"]) == (1, 0)
        assert [u["user"] for u in per[V2]["users"]] == [TERMINALS[V2]]
        await late_ws.close()
        late_ws = await late.ws()
        sockets.append(late_ws)
        assert [e for e in await until_ready(late_ws) if e["topic"] == "notice"] == []

        # the attachment and the notice through node B (forwarded to node A)
        resp = await late.response("GET", attachment["url"])
        assert resp.status == 200 and await resp.read() == PNG
        assert resp.headers["Content-Type"] == "image/png"
        mine = await late.req("GET", f"/api/notices/{nid}")
        assert mine["title"] == "防汛通知" and "centres" not in mine
        await outside.req("GET", attachment["url"], 404)

        # read receipts made on node B are counted on node A
        assert (await late.req("POST", f"/api/notices/{nid}/read"))["read"] is True
        await outside.req("POST", f"/api/notices/{nid}/read", 404)
        status = await sender.req("GET", f"/api/notices/{nid}")
        per = {c["centre"]: c for c in status["centres"]}
        assert (per[VILLAGE]["delivered"], per[VILLAGE]["read"]) == (1, 0)
        assert (per[V2]["delivered"], per[V2]["read"]) == (1, 1)
        assert (per[V3]["delivered"], per[V3]["read"]) == (0, 0)
        assert per[VILLAGE]["online"] == 1  # its terminal, connected to node B
        assert OTHER_TOWN not in per and OTHER_VILLAGE not in per
        # the same status through node B
        assert (await sender.on(b).req("GET", f"/api/notices/{nid}"))["totals"] == status["totals"]

        # the lists on node B are merged with node A's
        resp = await late.response("GET", "/api/notices/inbox")
        assert resp.status == 200 and "X-Zzhub-Partial" not in resp.headers
        assert [(n["id"], n["read"]) for n in await resp.json()] == [(nid, True)]
        theirs = await outside.req("GET", "/api/notices/inbox")
        assert [(n["id"], n["read"]) for n in theirs] == [(marker["id"], False)]
        sent_list = await sender.on(b).req("GET", "/api/notices")
        assert [n["id"] for n in sent_list] == [marker["id"], nid]
        assert await late.req("GET", "/api/notices/inbox?pending=1") == []
    finally:
        for ws in sockets:
            await ws.close()


async def test_notice_sent_through_node_b_with_an_attachment_of_node_a(
    nodes: tuple[Node, Node], redis_server: RedisProcess, token: Callable[..., str]
) -> None:
    a, b = nodes
    sender = Person(a, token("dispatcher", TOWN, "town-d"))
    village = Person(b, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    attachment = await upload(sender, "plan.pdf", b"%PDF-1.4 plan", "application/pdf")
    r = redis_server.client()
    await wait_for(lambda: r.hget("zzhub:owner:notice_attachment", attachment["id"]) == "node-a")
    # sent through node B: the attachment is node A's, so the notice is sent from there
    sent = await sender.on(b).req(
        "POST",
        "/api/notices",
        201,
        json={"title": "预案", "centres": [VILLAGE], "attachment": attachment["id"]},
    )
    assert await a.app[NOTICES].store.get(sent["id"]) is not None
    assert await b.app[NOTICES].store.get(sent["id"]) is None
    assert sent["attachment"]["id"] == attachment["id"]
    # the terminal, offline when it was sent, gets it when it connects to node B
    ws = await village.ws()
    try:
        queued = [e["data"] for e in await until_ready(ws) if e["topic"] == "notice"]
        assert [n["id"] for n in queued] == [sent["id"]]
    finally:
        await ws.close()
    resp = await village.response("GET", attachment["url"])
    assert resp.status == 200 and await resp.read() == b"%PDF-1.4 plan"
    # unknown ids: the local 404, also for attachments
    await village.req("GET", "/api/notices/n0000000000000000", 404)
    await village.req("GET", "/api/notices/attachments/00000000000000000000", 404)

    # Redis away: the lists are this node's, marked partial (never 503: `inbox` is no id)
    await asyncio.to_thread(redis_server.stop)
    await wait_for(lambda: b.app[CLUSTER].state is ClusterState.DEGRADED)
    resp = await village.response("GET", "/api/notices/inbox")
    assert resp.status == 200 and resp.headers["X-Zzhub-Partial"] == "1"
    assert await resp.json() == []
    resp = await sender.on(b).response("GET", "/api/alerts")
    assert resp.status == 200 and resp.headers["X-Zzhub-Partial"] == "1"
    body = await village.req("GET", f"/api/notices/{sent['id']}", 503)
    assert body["error"]["code"] == "cluster_degraded"


async def test_alerts_listed_and_acknowledged_across_nodes(
    nodes: tuple[Node, Node], redis_server: RedisProcess, token: Callable[..., str]
) -> None:
    a, b = nodes
    admin = Person(a, token("admin", COUNTY, "admin"))
    operator = Person(b, token("operator", TOWN, "town-op"))
    other = Person(b, token("operator", OTHER_TOWN, "other-op"))
    ws = await operator.ws()
    try:
        on_a = await admin.req(
            "POST", "/api/alerts", 201, json={"kind": "disk_full", "centre": TOWN}
        )
        # pushed live to the operator on node B
        async with asyncio.timeout(10):
            while (msg := await ws.receive_json()).get("topic") != "alert.raised":
                pass
        assert msg["data"]["id"] == on_a["id"]
        # two more with a snapshot, one on each node: the ids differ across the nodes
        raised = await a.app[ALERTS].raise_alert("motion", None, TOWN, {}, JPEG)
        on_b = await b.app[ALERTS].raise_alert("motion", None, TOWN, {}, JPEG)
        assert len({on_a["id"], raised.id, on_b.id}) == 3

        listed = await operator.req("GET", "/api/alerts")
        assert [x["id"] for x in listed] == [on_b.id, raised.id, on_a["id"]]  # newest first
        assert await other.req("GET", "/api/alerts") == []
        assert [x["id"] for x in await admin.req("GET", "/api/alerts?limit=2")] == [
            on_b.id,
            raised.id,
        ]

        # one alert, its snapshot and its acknowledgement through node B
        assert (await operator.req("GET", f"/api/alerts/{on_a['id']}"))["kind"] == "disk_full"
        await other.req("GET", f"/api/alerts/{on_a['id']}", 404)
        snap = await operator.response("GET", f"/api/alerts/{raised.id}/snapshot.jpg")
        assert snap.status == 200 and await snap.read() == JPEG
        acked = await operator.req("POST", f"/api/alerts/{on_a['id']}/ack")
        assert acked["acknowledged_now"] is True and acked["acked_by"] == "town-op"
        stored = await a.app[ALERTS].get(on_a["id"])
        assert stored is not None and str(stored.status) == "acked"
        assert stored.acked_by == "town-op"
        assert await b.app[ALERTS].get(on_a["id"]) is None  # never copied to node B
        again = await operator.req("POST", f"/api/alerts/{on_a['id']}/ack")
        assert again["acknowledged_now"] is False
        # node B's own alert, acknowledged through node A
        await admin.req("POST", f"/api/alerts/{on_b.id}/ack")
        stored_b = await b.app[ALERTS].get(on_b.id)
        assert stored_b is not None and stored_b.acked_by == "admin"
        statuses = {x["id"]: x["status"] for x in await operator.req("GET", "/api/alerts")}
        assert statuses == {on_a["id"]: "acked", raised.id: "open", on_b.id: "acked"}
        open_only = await operator.req("GET", "/api/alerts?status=open")
        assert [x["id"] for x in open_only] == [raised.id]
    finally:
        await ws.close()

    # a node that stopped without a word: the lists are served, marked partial
    r = redis_server.client()
    dead = {"id": "node-c", "url": f"http://127.0.0.1:{free_port()}", "started": 0}
    r.set("zzhub:node:node-c", json.dumps(dead), px=60_000)
    r.sadd("zzhub:nodes", "node-c")
    await wait_for(lambda: "node-c" in b.app[CLUSTER].peers)
    resp = await operator.response("GET", "/api/alerts")
    assert resp.status == 200 and resp.headers["X-Zzhub-Partial"] == "1"
    assert resp.headers["X-Zzhub-Nodes-Missing"] == "node-c"
    assert {x["id"] for x in await resp.json()} == {on_a["id"], raised.id, on_b.id}
    resp = await operator.response("GET", "/api/notices/inbox")
    assert resp.status == 200 and resp.headers["X-Zzhub-Nodes-Missing"] == "node-c"
    r.delete("zzhub:node:node-c")
