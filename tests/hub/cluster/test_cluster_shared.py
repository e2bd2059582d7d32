"""Two hub nodes acting as one hub for the domain state: calls, roll calls and the petition
queue across nodes, owner forwarding over real HTTP on 127.0.0.1, merged lists, a real
redis-server, and media through the owner node with aiortc over loopback."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCSessionDescription

from config import parse_config
from hub.app import build_app
from hub.calls.service import CALLS
from hub.cluster.presence import presence_key
from hub.cluster.proxy import CLUSTER_PROXY, ClusterProxy, peer_ssl
from hub.cluster.service import CLUSTER, ClusterState
from hub.core.cluster import link_of
from hub.core.presence import PRESENCE
from hub.core.tls import make_certificates
from hub.petitions.service import PETITIONS
from hub.rooms.model import ROOMS
from tests.conftest import COUNTY, TOWN, VILLAGE
from tests.fixtures.people import WS, Person
from tests.hub.calls.test_calls import TERMINALS, V2, V3, dispatch_topology
from tests.hub.cluster.test_cluster import RedisProcess, free_port, redis_server, wait_for
from tests.hub.cluster.test_cluster import pytestmark as needs_redis
from tests.signaling.test_publish_peers import Publisher, Subscriber

pytestmark = needs_redis

__all__ = ["pytestmark", "redis_server"]  # shared with test_cluster: skip, the fixture

Node = TestClient[Any, Any]


def node_app(redis_url: str, node: str, port: int) -> Any:
    data = dispatch_topology()
    data["http"]["port"] = port
    data["redis"] = {
        "url": redis_url,
        "node_id": node,
        "heartbeat": 0.2,
        "node_ttl": 1.5,
        "advertise_url": f"http://127.0.0.1:{port}",
    }
    return build_app(parse_config(data))


async def start_node(redis_url: str, node: str) -> Node:
    port = free_port()
    client = TestClient(TestServer(node_app(redis_url, node, port), host="127.0.0.1", port=port))
    await client.start_server()
    return client


@pytest.fixture
async def nodes(redis_server: RedisProcess) -> AsyncIterator[tuple[Node, Node]]:
    a = await start_node(redis_server.url, "node-a")
    b = await start_node(redis_server.url, "node-b")
    try:
        await wait_for(lambda: set(a.app[CLUSTER].peers) == {"node-b"})
        await wait_for(lambda: set(b.app[CLUSTER].peers) == {"node-a"})
        yield a, b
    finally:
        await b.close()
        await a.close()


def proxy(node: Node) -> ClusterProxy:
    found: ClusterProxy = node.app[CLUSTER_PROXY]
    return found


async def next_event(ws: WS, topic: str, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            msg: dict[str, Any] = await ws.receive_json()
            if msg.get("type") == "event" and msg["topic"] == topic:
                return msg["data"]  # type: ignore[no-any-return]


async def ws_request(ws: WS, type_: str, data: dict[str, Any], want: str = "reply") -> Any:
    await ws.send_json({"v": 1, "id": "r1", "type": type_, "data": data})
    async with asyncio.timeout(10):
        while True:
            msg: dict[str, Any] = await ws.receive_json()
            if msg.get("re") == "r1":
                assert msg["type"] == want, msg
                return msg["data"] if want == "reply" else msg["error"]


def online_at(node: Node, centre: str) -> set[str]:
    return {m.user for m in node.app[PRESENCE].online_in(centre)}


async def test_presence_of_the_other_node(
    nodes: tuple[Node, Node], redis_server: RedisProcess, token: Callable[..., str]
) -> None:
    a, b = nodes
    terminal = Person(b, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    ws = await terminal.ws()
    try:
        await wait_for(lambda: online_at(a, VILLAGE) == {TERMINALS[VILLAGE]})
        member = a.app[PRESENCE].get(TERMINALS[VILLAGE])
        assert member is not None and member.node == "node-b" and member.duty
        # node B keeps its members in Redis, for nodes that join later
        stored = redis_server.client().hgetall(presence_key("node-b"))
        assert json.loads(stored[TERMINALS[VILLAGE]])["centre"] == VILLAGE
        # a node that joins now learns them from that snapshot
        c = await start_node(redis_server.url, "node-c")
        try:
            await wait_for(lambda: online_at(c, VILLAGE) == {TERMINALS[VILLAGE]})
            # and presence.list on any node shows the whole hub
            admin = await Person(c, token()).ws()
            await admin.send_json({"v": 1, "id": "p", "type": "presence.list", "data": {}})
            async with asyncio.timeout(5):
                while (reply := await admin.receive_json())["type"] != "reply":
                    pass
            assert TERMINALS[VILLAGE] in {m["user"] for m in reply["data"]}
            await admin.close()
        finally:
            await c.close()
    finally:
        await ws.close()
    await wait_for(lambda: online_at(a, VILLAGE) == set())
    r = redis_server.client()
    await wait_for(lambda: r.hget(presence_key("node-b"), TERMINALS[VILLAGE]) is None)


async def test_cross_node_call_answered_and_media_through_the_other_node(
    nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = nodes
    dispatcher = Person(a, token("dispatcher", COUNTY, "county-d"))
    terminal = Person(b, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    ws = await terminal.ws()
    publisher: Publisher | None = None
    subscriber: Subscriber | None = None
    try:
        await wait_for(lambda: TERMINALS[VILLAGE] in online_at(a, VILLAGE))
        call = await dispatcher.req("POST", "/api/calls", 201, json={"centres": [VILLAGE]})
        assert call["targets"][0]["rung"] == [TERMINALS[VILLAGE]]
        ringing = await next_event(ws, "call.ringing")
        assert ringing["call"] == call["id"] and ringing["auto_answer"] is True

        # the call lives on node A: the terminal's requests to node B are forwarded there
        assert call["id"] not in b.app[CALLS].live() and not b.app[CALLS].live()
        seen = await terminal.req("GET", f"/api/calls/{call['id']}")
        assert seen["state"] == "ringing"
        accepted = await terminal.req("POST", f"/api/calls/{call['id']}/accept")
        assert accepted["state"] == "active"
        assert accepted["targets"][0]["answered_by"] == TERMINALS[VILLAGE]
        live = {c.id: c for c in a.app[CALLS].live()}
        assert str(live[call["id"]].state) == "active"
        assert proxy(b).forwarded >= 2
        update = await next_event(ws, "call.updated")
        assert update["id"] == call["id"]

        # media: the terminal joins and publishes through node B; the room is on node A
        room = call["room"]
        assert a.app[ROOMS].get(room) is not None and b.app[ROOMS].get(room) is None
        await terminal.req("POST", f"/api/rooms/{room}/join")
        publisher = Publisher()
        answer, location = await terminal.sdp(f"/api/rooms/{room}/publish", await publisher.offer())
        assert location.startswith(f"/api/rooms/{room}/publish/")
        await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        assert "127.0.0.1" in answer  # node A's loopback candidates
        # the dispatcher, on node A, sees the terminal's video
        await dispatcher.req("POST", f"/api/rooms/{room}/join")
        await wait_for(lambda: _seat_publishes(a, room, TERMINALS[VILLAGE]))
        subscriber = Subscriber(audio=False)
        answer, _ = await dispatcher.sdp(
            f"/api/rooms/{room}/seats/{TERMINALS[VILLAGE]}/whep", await subscriber.offer()
        )
        await subscriber.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await subscriber.wait(video=5, timeout=30)
        # and the terminal subscribes to the dispatcher through node B too
        back = Subscriber(audio=False)
        try:
            dpub = Publisher(audio=False)
            try:
                offer = await dpub.offer()
                answer, _ = await dispatcher.sdp(f"/api/rooms/{room}/publish", offer)
                await dpub.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                await wait_for(lambda: _seat_publishes(a, room, "county-d"))
                answer, sub_location = await terminal.sdp(
                    f"/api/rooms/{room}/seats/county-d/whep", await back.offer()
                )
                await back.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                await back.wait(video=5, timeout=30)
                # DELETE of the Location goes through node B as well
                await terminal.req("DELETE", sub_location)
            finally:
                await dpub.close()
        finally:
            await back.close()
        await terminal.req("DELETE", location)
        await dispatcher.req("POST", f"/api/calls/{call['id']}/hangup")
        ended = await terminal.req("GET", f"/api/calls/{call['id']}")
        assert ended["state"] == "ended" and ended["end_reason"] == "hangup"
    finally:
        if subscriber is not None:
            await subscriber.close()
        if publisher is not None:
            await publisher.close()
        await ws.close()


def _seat_publishes(node: Node, room_id: str, user: str) -> bool:
    room = node.app[ROOMS].get(room_id)
    seat = room.seats.get(user) if room is not None else None
    return seat is not None and seat.publication is not None


async def test_roll_call_from_node_a_answered_from_node_b(
    nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = nodes
    dispatcher = Person(a, token("dispatcher", COUNTY, "county-d"))
    terminals = {
        code: Person(b, token("terminal", code, TERMINALS[code])) for code in (VILLAGE, V2)
    }
    sockets = {code: await t.ws() for code, t in terminals.items()}
    try:
        await wait_for(lambda: all(TERMINALS[c] in online_at(a, c) for c in terminals))
        rc = await dispatcher.req(
            "POST", "/api/rollcalls", 201, json={"centres": [VILLAGE, V2, V3], "timeout": 60}
        )
        statuses = {e["centre"]: e["status"] for e in rc["entries"]}
        assert statuses == {VILLAGE: "checking", V2: "checking", V3: "offline"}
        for code, ws in sockets.items():
            check = await next_event(ws, "rollcall.check")
            assert check["rollcall"] == rc["id"] and check["centre"] == code
        # one answers over HTTP, the other over its WebSocket (as the console does): node B
        # passes both on to node A, which runs the roll call
        answered = await terminals[VILLAGE].req("POST", f"/api/rollcalls/{rc['id']}/answer")
        entry = {e["centre"]: e for e in answered["entries"]}[VILLAGE]
        assert entry["status"] == "answered" and entry["answered_by"] == TERMINALS[VILLAGE]
        reply = await ws_request(sockets[V2], "rollcall.answer", {"rollcall": rc["id"]})
        entry = {e["centre"]: e for e in reply["entries"]}[V2]
        assert entry["status"] == "answered" and entry["answered_by"] == TERMINALS[V2]
        again = await ws_request(sockets[V2], "rollcall.answer", {"rollcall": rc["id"]}, "error")
        assert again["code"] == "conflict"  # the owner's refusal, as it is
        final = await dispatcher.req("GET", f"/api/rollcalls/{rc['id']}")
        statuses = {e["centre"]: e["status"] for e in final["entries"]}
        assert statuses == {VILLAGE: "answered", V2: "answered", V3: "offline"}
        # the ledger on node B lists it (merged from node A)
        listed = await dispatcher.on(b).req("GET", "/api/rollcalls")
        assert [i["id"] for i in listed["items"]] == [rc["id"]]
        assert listed["partial"] is False and listed["total"] == 1
        # a call from node A declined over node B's WebSocket
        call = await dispatcher.req("POST", "/api/calls", 201, json={"centres": [V2]})
        assert (await next_event(sockets[V2], "call.ringing"))["call"] == call["id"]
        declined = await ws_request(sockets[V2], "call.decline", {"call": call["id"]})
        assert declined["state"] == "ended" and declined["end_reason"] == "declined"
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_one_queue_and_unique_case_codes(
    nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = nodes
    kiosk = Person(a, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    clerk = Person(b, token("receptionist", TOWN, "town-clerk"))
    first = await kiosk.req("POST", "/api/petitions", 201, json={"category": "land"})
    second = await kiosk.on(b).req("POST", "/api/petitions", 201, json={"category": "labour"})
    third = await kiosk.req("POST", "/api/petitions", 201, json={"category": "other"})
    codes = [first["code"], second["code"], third["code"]]
    assert [c.rsplit("-", 1)[1] for c in codes] == ["0001", "0002", "0003"]

    resp = await clerk.response("GET", "/api/petitions?status=waiting")
    assert resp.status == 200 and "X-Zzhub-Partial" not in resp.headers
    queue = await resp.json()
    assert [c["code"] for c in queue] == codes
    assert [c["position"] for c in queue] == [1, 2, 3]
    # node A lists the same queue
    assert [c["code"] for c in await clerk.on(a).req("GET", "/api/petitions")] == codes

    # taken from node B: the case lives on node A
    taken = await clerk.req("POST", f"/api/petitions/{first['code']}/accept")
    assert taken["status"] == "in_hearing" and taken["host"] == "town-clerk"
    stored = await a.app[PETITIONS].store.get(first["code"])
    assert stored is not None and str(stored.status) == "in_hearing"
    case = await clerk.req("GET", f"/api/petitions/{first['code']}")
    assert [e["action"] for e in case["timeline"]][-1] == "accept"
    waiting = await clerk.req("GET", "/api/petitions?status=waiting")
    assert [(c["code"], c["position"]) for c in waiting] == [(codes[1], 1), (codes[2], 2)]
    # the hearing room is on node A too, and reachable through node B
    room = await clerk.req("GET", f"/api/rooms/{taken['room']}")
    assert room["kind"] == "hearing" and a.app[ROOMS].get(taken["room"]) is not None


async def test_proxy_rules(
    nodes: tuple[Node, Node], redis_server: RedisProcess, token: Callable[..., str]
) -> None:
    a, b = nodes
    dispatcher = Person(a, token("dispatcher", COUNTY, "county-d"))
    call = await dispatcher.req("POST", "/api/calls", 201, json={"centres": [VILLAGE]})
    # unknown objects: the local 404, nothing forwarded
    before = proxy(b).forwarded
    await dispatcher.on(b).req("GET", "/api/calls/no-such-call", 404)
    assert proxy(b).forwarded == before
    # a request marked as forwarded is never forwarded again
    resp = await b.get(
        f"/api/calls/{call['id']}",
        headers={**dispatcher.headers, "X-Zzhub-Forwarded": "node-a"},
    )
    assert resp.status == 404 and proxy(b).forwarded == before
    # errors of the owner come back as they are
    await Person(b, token("terminal", V2, TERMINALS[V2])).req(
        "POST", f"/api/calls/{call['id']}/accept", 403
    )
    # a broadcast started on node A is reached through node B
    started = await dispatcher.req(
        "POST", "/api/broadcasts", 201, json={"title": "培训", "centres": [VILLAGE]}
    )
    village = Person(b, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    seen = await village.req("GET", f"/api/broadcasts/{started['id']}")
    assert seen["id"] == started["id"] and proxy(b).forwarded == before + 2
    # Redis away: objects known here are served, the others answer 503 cluster_degraded
    await asyncio.to_thread(redis_server.stop)
    await wait_for(lambda: b.app[CLUSTER].state is ClusterState.DEGRADED)
    body = await dispatcher.on(b).req("GET", f"/api/calls/{call['id']}", 503)
    assert body["error"]["code"] == "cluster_degraded"
    await wait_for(lambda: a.app[CLUSTER].state is ClusterState.DEGRADED)
    assert (await dispatcher.req("GET", f"/api/calls/{call['id']}"))["id"] == call["id"]
    listed = await dispatcher.req("GET", "/api/calls")
    assert listed["partial"] is True and [c["id"] for c in listed["items"]] == [call["id"]]


async def test_lists_are_partial_without_a_peer(
    nodes: tuple[Node, Node], redis_server: RedisProcess, token: Callable[..., str]
) -> None:
    a, b = nodes
    dispatcher = Person(a, token("dispatcher", COUNTY, "county-d"))
    clerk = Person(a, token("receptionist", TOWN, "town-clerk"))
    kiosk = Person(b, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    on_a = await dispatcher.req("POST", "/api/calls", 201, json={"centres": [VILLAGE]})
    on_b = await dispatcher.on(b).req("POST", "/api/calls", 201, json={"centres": [V2]})
    case_b = await kiosk.req("POST", "/api/petitions", 201, json={"category": "land"})
    both = await dispatcher.req("GET", "/api/calls?per_page=1&page=2")
    assert both["total"] == 2 and both["partial"] is False and both["nodes_missing"] == []
    assert [c["id"] for c in both["items"]] == [on_a["id"]]  # newest first: B's is page 1
    assert [c["code"] for c in await clerk.req("GET", "/api/petitions")] == [case_b["code"]]

    # a node that stopped without a word: its key has not expired yet, nobody answers there
    r = redis_server.client()
    dead = {"id": "node-c", "url": f"http://127.0.0.1:{free_port()}", "started": 0}
    r.set("zzhub:node:node-c", json.dumps(dead), px=60_000)
    r.sadd("zzhub:nodes", "node-c")
    await wait_for(lambda: "node-c" in a.app[CLUSTER].peers)
    listed = await dispatcher.req("GET", "/api/calls")
    assert listed["partial"] is True and listed["nodes_missing"] == ["node-c"]
    assert {c["id"] for c in listed["items"]} == {on_a["id"], on_b["id"]}
    resp = await clerk.response("GET", "/api/petitions")
    assert resp.status == 200 and resp.headers["X-Zzhub-Partial"] == "1"
    assert resp.headers["X-Zzhub-Nodes-Missing"] == "node-c"
    assert [c["code"] for c in await resp.json()] == [case_b["code"]]
    rollcalls = await dispatcher.req("GET", "/api/rollcalls")
    assert rollcalls["partial"] is True and rollcalls["items"] == []
    r.delete("zzhub:node:node-c")

    # node B stopped: its objects are gone from the lists, which still answer
    await b.close()
    await wait_for(lambda: set(a.app[CLUSTER].peers) == set())
    alone = await dispatcher.req("GET", "/api/calls")
    assert [c["id"] for c in alone["items"]] == [on_a["id"]] and alone["partial"] is False
    assert await clerk.req("GET", "/api/petitions") == []
    await dispatcher.req("GET", f"/api/calls/{on_b['id']}", 404)  # its owner is gone


async def test_without_redis_nothing_is_forwarded_or_merged(
    client: Node, auth: Callable[..., dict[str, str]]
) -> None:
    resp = await client.get("/api/calls", headers=auth())
    body = await resp.json()
    assert resp.status == 200 and body["partial"] is False and body["nodes_missing"] == []
    # no cluster add-on: the single-node link, which fans nothing out
    assert CLUSTER_PROXY not in client.app and not link_of(client.app).active
    assert client.app[PRESENCE].remote is None
    resp = await client.get("/api/petitions", headers=auth())
    assert resp.status == 200 and "X-Zzhub-Partial" not in resp.headers


def test_peers_are_trusted_by_the_hub_ca(tmp_path: Path) -> None:
    files = make_certificates(tmp_path, ["127.0.0.1", "hub-a"])
    context = peer_ssl(str(files.cert))
    assert context is not None and context.verify_mode is ssl.CERT_REQUIRED
    subjects = [str(c["subject"]) for c in context.get_ca_certs()]
    assert any("zzhub local CA" in s for s in subjects), subjects
    assert peer_ssl("") is None


async def test_pending_rings_checks_rooms_and_broadcasts_of_every_node(
    nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    """What a terminal or console connecting to node B asks first covers node A's objects."""
    a, b = nodes
    dispatcher = Person(a, token("dispatcher", COUNTY, "county-d"))
    village = Person(b, token("terminal", V2, TERMINALS[V2]))
    clerk = Person(b, token("receptionist", TOWN, "town-clerk"))
    terminal, console = await village.ws(), await clerk.ws()
    try:
        await wait_for(lambda: TERMINALS[V2] in online_at(a, V2))
        call = await dispatcher.req("POST", "/api/calls", 201, json={"centres": [V2]})
        on_b = await dispatcher.on(b).req("POST", "/api/calls", 201, json={"centres": [V2]})
        rings = await ws_request(terminal, "call.pending", {})
        assert sorted(r["call"] for r in rings) == sorted([call["id"], on_b["id"]])
        assert {r["call"] for r in await village.req("GET", "/api/calls/pending")} == {
            call["id"],
            on_b["id"],
        }
        # node A's own answer (asked as a peer) holds only its call
        resp = await a.get("/api/calls/pending", headers={**village.headers, "X-Zzhub-Local": "1"})
        assert [r["call"] for r in await resp.json()] == [call["id"]]

        rc = await dispatcher.req("POST", "/api/rollcalls", 201, json={"centres": [V2]})
        checks = await ws_request(terminal, "rollcall.pending", {})
        assert [c["rollcall"] for c in checks] == [rc["id"]]
        await ws_request(terminal, "rollcall.answer", {"rollcall": rc["id"]})
        assert await ws_request(terminal, "rollcall.pending", {}) == []

        room = await dispatcher.req(
            "POST", "/api/rooms", 201, json={"title": "调度会", "centres": [V2]}
        )
        listed = await dispatcher.on(b).response("GET", "/api/rooms")
        assert listed.status == 200 and "X-Zzhub-Partial" not in listed.headers
        assert room["id"] in {r["id"] for r in await listed.json()}
        started = await dispatcher.req(
            "POST", "/api/broadcasts", 201, json={"title": "培训", "centres": [V2]}
        )
        assert [x["id"] for x in await village.req("GET", "/api/broadcasts")] == [started["id"]]

        case = await Person(a, token("terminal", VILLAGE, TERMINALS[VILLAGE])).req(
            "POST", "/api/petitions", 201, json={"category": "land"}
        )
        queue = await ws_request(console, "petition.list", {"status": "waiting"})
        assert [(c["code"], c["position"]) for c in queue] == [(case["code"], 1)]
    finally:
        await terminal.close()
        await console.close()


async def test_twin_case_codes_from_degraded_mode_are_reported(
    nodes: tuple[Node, Node], redis_server: RedisProcess, token: Callable[..., str]
) -> None:
    """The degraded-mode hazard docs/deploy.md names: the same village files through two
    nodes while Redis is away, both hand out the same code; when Redis is back the node that
    re-claims second keeps its twin, and says so."""
    a, b = nodes
    kiosk = Person(a, token("terminal", VILLAGE, TERMINALS[VILLAGE]))
    admins = {node: Person(node, token()) for node in (a, b)}
    sockets = {node: await admins[node].ws() for node in (a, b)}
    try:
        await asyncio.to_thread(redis_server.stop)
        await wait_for(lambda: all(n.app[CLUSTER].state is ClusterState.DEGRADED for n in (a, b)))
        on_a = await kiosk.req("POST", "/api/petitions", 201, json={"category": "land"})
        on_b = await kiosk.on(b).req("POST", "/api/petitions", 201, json={"category": "land"})
        code = on_a["code"]
        assert on_b["code"] == code  # the hazard itself
        await asyncio.to_thread(redis_server.start)  # an empty Redis: both re-claim
        await wait_for(lambda: sum(n.app[CLUSTER].conflicts_total for n in (a, b)) == 1, timeout=15)
        loser = a if a.app[CLUSTER].conflicts_total else b
        winner = b if loser is a else a
        winner_id = winner.app[CLUSTER].node.id
        event = await next_event(sockets[loser], "cluster.conflict")
        assert (event["kind"], event["item"], event["node"]) == ("petition", code, winner_id)
        state = await admins[loser].req("GET", "/api/cluster")
        assert state["conflicts_total"] == 1 and state["state"] == "up"
        assert [(c["kind"], c["item"], c["node"]) for c in state["conflicts"]] == [
            ("petition", code, winner_id)
        ]
        assert redis_server.client().hget("zzhub:owner:petition", code) == winner_id
        # a later re-claim (the next Redis blip) does not report it again
        loser_cluster = loser.app[CLUSTER]
        assert loser_cluster.redis is not None
        await loser_cluster._claim_all(loser_cluster.redis)
        assert loser_cluster.conflicts_total == 1 and len(loser_cluster.conflicts) == 1
        # each node still serves its own twin to requests made to it
        for node in (a, b):
            case = await admins[node].req("GET", f"/api/petitions/{code}")
            assert case["code"] == code
        metrics = await (await admins[loser].response("GET", "/metrics")).text()
        loser_id = loser.app[CLUSTER].node.id
        assert f'zzhub_cluster_conflicts_total{{node="{loser_id}"}} 1.0' in metrics
        await admins[a].req("GET", "/api/cluster", 200)
        await Person(a, token("operator", COUNTY, "op")).req("GET", "/api/cluster", 403)
    finally:
        for ws in sockets.values():
            await ws.close()
