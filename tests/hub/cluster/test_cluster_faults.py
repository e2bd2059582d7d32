"""Scale-out faults and the automatic relay leg: a real redis-server, hub nodes on 127.0.0.1.

- node B serves its viewers of node A's camera (no config on B) through one relay leg;
- a node that dies is swept from the owner map by one survivor, and every node's clients hear
  once that its cameras and rooms are unavailable; its legs are cut and resume when it is back;
- consoles learn the live nodes (WebSocket `hello`) and the walls' WHEP carries TURN.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from config.schema import Role
from hub.app import build_app
from hub.cameras.service import CAMERAS
from hub.cluster.cameras import REMOTE_CAMERAS, RemoteCameras
from hub.cluster.service import ClusterState
from hub.core.auth import Principal
from hub.core.turn import turn_password
from hub.rooms.model import ROOMS, RoomKind
from hub.walls.service import WALLS
from signaling.ice import use_host_addresses
from streams.stream import StreamState
from tests.conftest import COUNTY, TOWN, VILLAGE, topology
from tests.fixtures.system import requires_system
from tests.fixtures.webrtc import WhepViewer
from tests.hub.cluster.test_cluster import (
    RedisProcess,
    cluster,
    free_port,
    next_event,
    pytestmark,
    redis_server,
    wait_for,
)

__all__ = ["pytestmark", "redis_server"]  # shared with test_cluster: skip, the fixture

Node = TestClient[Any, Any]
SMALL = "size=320x240&fps=25&gop=25"
A_CAMERAS = {
    COUNTY: [{"id": "a-hall", "name": "县大厅 (A)", "url": f"synthetic://a-hall?{SMALL}"}],
    VILLAGE: [{"id": "a-village", "name": "村值班室 (A)", "url": f"synthetic://a-v?{SMALL}"}],
}
B_CAMERAS = {TOWN: [{"id": "b-town", "name": "镇大厅 (B)", "url": f"synthetic://b-town?{SMALL}"}]}
C_CAMERAS = {TOWN: [{"id": "c-town", "name": "镇门口 (C)", "url": f"synthetic://c-town?{SMALL}"}]}


def node_app(redis_url: str, node: str, cameras: dict[str, list[dict[str, Any]]]) -> Node:
    port = free_port()  # known before start: it is the URL other nodes reach this one on
    section = {
        "url": redis_url,
        "node_id": node,
        "heartbeat": 0.2,
        "node_ttl": 1.0,
        "advertise_url": f"http://127.0.0.1:{port}",
    }
    cfg = parse_config(topology(cameras, redis=section))
    return TestClient(TestServer(build_app(cfg), host="127.0.0.1", port=port))


def remote(node: Node) -> RemoteCameras:
    found: RemoteCameras = node.app[REMOTE_CAMERAS]
    return found


@pytest.fixture
async def nodes(redis_server: RedisProcess) -> AsyncIterator[list[Node]]:
    """Nodes A, B and C; A owns a county and a village camera, B and C one town camera each."""
    clients = [
        node_app(redis_server.url, "node-a", A_CAMERAS),
        node_app(redis_server.url, "node-b", B_CAMERAS),
        node_app(redis_server.url, "node-c", C_CAMERAS),
    ]
    for c in clients:
        await c.start_server()
    try:
        ids = {"node-a", "node-b", "node-c"}
        await wait_for(
            lambda: all(set(cluster(c).peers) | {cluster(c).node.id} == ids for c in clients)
        )
        knowers = [remote(other) for other in clients[1:]]
        await wait_for(lambda: all(k.get("a-hall") is not None for k in knowers))
        yield clients
    finally:
        for c in reversed(clients):
            await c.close()


async def cameras_of(node: Node, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    resp = await node.get("/api/cameras", headers=headers)
    assert resp.status == 200, await resp.text()
    return {c["id"]: c for c in await resp.json()}


async def streams_of(node: Node, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    resp = await node.get("/api/streams", headers=headers)
    assert resp.status == 200
    return {s["camera"]: s for s in await resp.json()}


async def test_viewers_on_b_share_one_relay_leg_from_a(
    nodes: list[Node], auth: Callable[..., dict[str, str]], token: Callable[..., str]
) -> None:
    a, b, _ = nodes
    listed = await cameras_of(b, auth())
    assert listed["a-hall"]["node"] == "node-a" and listed["a-hall"]["available"] is True
    assert listed["a-hall"]["centre"] == COUNTY and listed["a-hall"]["name"] == "县大厅 (A)"
    assert listed["b-town"]["node"] == "node-b" and listed["b-town"]["available"] is True
    assert b.app[CAMERAS].get("a-hall") is None  # nothing about it in B's config
    use_host_addresses(["127.0.0.1"])
    url = str(b.make_url("/api/cameras/a-hall/whep"))
    async with aiohttp.ClientSession() as http:
        viewers = [WhepViewer(http, url, token(user=f"viewer-{i}")) for i in range(3)]
        try:
            for viewer in viewers:
                await viewer.start()
            for viewer in viewers:
                await viewer.wait_frames(10)
            on_a = (await streams_of(a, auth()))["a-hall"]
            assert on_a["viewers"] == 1 and on_a["consumers"] == 1  # one leg for three
            on_b = (await cameras_of(b, auth()))["a-hall"]
            assert on_b["viewers"] == 3 and on_b["status"] == "online"
            assert on_b["codec"] == "h264" and on_b["remote"] is True
            # a snapshot on B shares the same leg
            resp = await b.get("/api/cameras/a-hall/snapshot.jpg", headers=auth())
            assert resp.status == 200 and (await resp.read())[:2] == b"\xff\xd8"
            assert (await streams_of(a, auth()))["a-hall"]["consumers"] == 1
        finally:
            for viewer in viewers:
                await viewer.stop()
    # the last viewer on B left: after B's linger the leg closes and A lets its camera go
    hall = a.app[CAMERAS].get("a-hall")
    assert hall is not None
    await wait_for(lambda: hall.stream.viewers == 0 and hall.stream.relay.stats()["consumers"] == 0)
    remote_hall = remote(b).get("a-hall")
    assert remote_hall is not None
    await wait_for(lambda: remote_hall.stream.state is StreamState.IDLE)


async def test_scope_rules_hold_for_remote_cameras(
    nodes: list[Node], auth: Callable[..., dict[str, str]]
) -> None:
    _, b, _ = nodes
    town = auth("operator", TOWN, "town-op")
    listed = await cameras_of(b, town)
    assert "a-village" in listed and "a-hall" not in listed  # the village is below the town
    assert listed["a-village"]["centre"] == VILLAGE
    for path in ("/api/cameras/a-hall", "/api/cameras/a-hall/snapshot.jpg"):
        resp = await b.get(path, headers=town)
        assert resp.status == 404, path
    resp = await b.post(
        "/api/cameras/a-hall/whep", data="v=0", headers={**town, "Content-Type": "application/sdp"}
    )
    assert resp.status == 404
    # the relay leg serves this node's own cameras only: no chains of legs
    resp = await b.get("/api/cameras/a-hall/relay", headers=auth())
    assert resp.status == 404
    assert (await b.get("/api/cameras/no-such-cam", headers=auth())).status == 404


async def test_a_wall_on_b_shows_a_camera_of_a_over_the_shared_leg(
    nodes: list[Node], auth: Callable[..., dict[str, str]], token: Callable[..., str]
) -> None:
    a, b, _ = nodes
    town = auth("operator", TOWN, "town-op")
    resp = await b.post("/api/walls", json={"layout": 4, "cameras": ["a-hall"]}, headers=town)
    assert resp.status == 404  # the scope rules of remote cameras hold for walls too
    resp = await b.post(
        "/api/walls", json={"layout": 4, "cameras": ["a-hall", "b-town"]}, headers=auth()
    )
    assert resp.status == 201, await resp.text()
    wall = await resp.json()
    use_host_addresses(["127.0.0.1"])
    async with aiohttp.ClientSession() as http:
        viewer = WhepViewer(http, str(b.make_url(wall["whep"])), token(user="wall-viewer"))
        try:
            await viewer.start()
            await viewer.wait_frames(5)
            walls = b.app[WALLS]
            shown = walls.get(wall["id"])
            assert shown is not None
            # both tiles fed: A's camera decoded on B from the one leg A serves
            await wait_for(lambda: shown.source is not None and shown.source.tile_updates > 20)
            hall = a.app[CAMERAS].get("a-hall")
            assert hall is not None
            await wait_for(lambda: hall.stream.relay.stats()["consumers"] == 1)
            assert (await streams_of(a, auth()))["a-hall"]["consumers"] == 1
        finally:
            await viewer.stop()


async def test_a_crashed_node_is_swept_once_and_its_legs_resume_when_it_is_back(
    redis_server: RedisProcess,
    nodes: list[Node],
    auth: Callable[..., dict[str, str]],
    token: Callable[..., str],
) -> None:
    a, b, c = nodes
    r = redis_server.client()
    # a room on node A whose host watches from node B
    host = Principal("tester", Role.ADMIN, COUNTY)
    room = a.app[ROOMS].create(host, kind=RoomKind.MEETING)
    await wait_for(lambda: r.hget("zzhub:owner:room", room.id) == "node-a")
    assert json.loads(r.hget("zzhub:room:meta", room.id) or "{}")["audience"] == ["tester"]
    # a viewer on B pulls node A's camera through a leg
    stream_b = remote(b).get("a-hall")
    assert stream_b is not None
    lease = stream_b.stream.acquire("viewer", viewer=True)
    try:
        await stream_b.stream.wait_state(StreamState.ONLINE, timeout=10)
        async with (
            b.ws_connect(f"/ws?token={token()}") as ws_b,
            c.ws_connect(f"/ws?token={token()}") as ws_c,
        ):
            for ws in (ws_b, ws_c):
                hello = await ws.receive_json()
                assert hello["type"] == "hello"
            await cluster(a).close(graceful=False)  # a crash: no goodbye, its key just expires
            down = await next_event(ws_b, "cluster.node")
            assert down["data"]["node"] == "node-a" and down["data"]["state"] == "down"
            events: dict[str, list[dict[str, Any]]] = {"b": [], "c": []}

            async def collect(name: str, ws: aiohttp.ClientWebSocketResponse) -> None:
                while True:
                    msg = await ws.receive_json()
                    if msg.get("type") == "event" and msg["topic"] in (
                        "camera.status",
                        "room.updated",
                    ):
                        events[name].append(msg)

            readers = [
                asyncio.create_task(collect("b", ws_b)),
                asyncio.create_task(collect("c", ws_c)),
            ]
            try:

                def unavailable(name: str) -> set[str]:
                    return {
                        e["data"].get("camera") or e["data"]["id"]
                        for e in events[name]
                        if e["data"].get("status") == "unavailable" or e["data"].get("unavailable")
                    }

                wanted = {"a-hall", "a-village", room.id}
                await wait_for(lambda: unavailable("b") == wanted and unavailable("c") == wanted)
                # both survivors noticed the death (and ran the sweep); wait a few more beats
                await wait_for(lambda: "node-a" not in cluster(c).peers)
                await asyncio.sleep(5 * 0.2)
            finally:
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
        for name in ("b", "c"):  # exactly once on every node
            swept = [e for e in events[name] if e["data"].get("node") == "node-a"]
            assert sorted(e["data"].get("camera") or e["data"]["id"] for e in swept) == sorted(
                ["a-hall", "a-village", room.id]
            ), name
        assert cluster(b).swept + cluster(c).swept == 3  # one survivor took each entry
        status = next(e for e in events["b"] if e["data"].get("camera") == "a-hall")
        assert status["topic"] == "camera.status" and status["centre"] == COUNTY
        ended = next(e for e in events["b"] if e["data"].get("id") == room.id)
        assert ended["data"]["ended"] is True and ended["data"]["unavailable"] is True
        # the owner map no longer names node A; its cameras stay listed, unavailable
        assert "node-a" not in set(r.hvals("zzhub:owner:camera"))
        assert r.hget("zzhub:owner:room", room.id) is None
        listed = await cameras_of(b, auth())
        assert listed["a-hall"]["available"] is False and listed["a-hall"]["node"] == "node-a"
        assert listed["a-hall"]["status"] == "offline"
        assert listed["b-town"]["available"] is True
        # the leg pulling from A was cut (A's HTTP server still runs: only its cluster died)
        await wait_for(lambda: stream_b.stream.state is not StreamState.ONLINE)
        assert remote(b).legs_cut >= 1
        hall_a = a.app[CAMERAS].get("a-hall")
        assert hall_a is not None
        await wait_for(lambda: hall_a.stream.relay.stats()["consumers"] == 0)
        resp = await b.get("/api/cameras/a-hall/snapshot.jpg", headers=auth())
        assert resp.status == 503 and (await resp.json())["error"]["code"] == "node_unavailable"
        # node A comes back: it re-claims, and B's leg resumes without anyone touching it
        cluster(a).start()
        await wait_for(lambda: r.hget("zzhub:owner:camera", "a-hall") == "node-a")
        await stream_b.stream.wait_state(StreamState.ONLINE, timeout=15)
        assert (await cameras_of(b, auth()))["a-hall"]["available"] is True
        await wait_for(lambda: hall_a.stream.relay.stats()["consumers"] == 1)
    finally:
        lease.release()


async def test_a_returning_node_keeps_what_it_reclaimed(redis_server: RedisProcess) -> None:
    """The sweep spares entries whose node has its key again (it came back and re-claimed)."""
    r = redis_server.client()
    r.hset("zzhub:owner:camera", mapping={"x-cam": "node-x", "y-cam": "node-y"})
    r.set("zzhub:node:node-y", json.dumps({"id": "node-y", "url": "", "started": 0}))
    b = node_app(redis_server.url, "node-b", B_CAMERAS)
    await b.start_server()
    try:
        await wait_for(lambda: cluster(b).state is ClusterState.UP)
        await wait_for(lambda: r.hget("zzhub:owner:camera", "x-cam") is None)
        assert r.hget("zzhub:owner:camera", "y-cam") == "node-y"
        assert r.hget("zzhub:owner:camera", "b-town") == "node-b"
    finally:
        await b.close()


async def test_hello_names_the_live_nodes_with_their_urls(
    nodes: list[Node], token: Callable[..., str]
) -> None:
    a, b, _ = nodes
    async with b.ws_connect(f"/ws?token={token('terminal', VILLAGE, 'dongguan')}") as ws:
        hello = await ws.receive_json()
    info = hello["data"]["cluster"]
    assert info["node"] == "node-b" and info["state"] == "up"
    urls = {n["id"]: n["url"] for n in info["nodes"]}
    assert set(urls) == {"node-a", "node-b", "node-c"}
    assert urls["node-a"] == f"http://127.0.0.1:{a.port}"
    assert info["url"] == urls["node-b"]


async def test_graceful_stop_closes_sockets_with_going_away(token: Callable[..., str]) -> None:
    """Terminals are told to reconnect: the console's socket sees 1001 and retries."""
    server = TestServer(build_app(parse_config(topology())), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(server.make_url(f"/ws?token={token()}"))
            assert (await ws.receive_json())["type"] == "hello"
        finally:
            await server.close()
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001, msg  # going away


async def test_wall_whep_link_header_carries_turn_credentials(
    auth: Callable[..., dict[str, str]],
) -> None:
    """Walls and substream tiles hand out TURN credentials like the camera WHEP endpoint."""
    from aiortc import RTCPeerConnection

    secret = "coturn-shared-secret-0123"
    turn = {"urls": ["turn:127.0.0.1:3478?transport=udp"], "secret": secret, "ttl": 600}
    cfg = parse_config(topology(webrtc={"turn": turn, "session_timeout": 5}))
    use_host_addresses(["127.0.0.1"])
    headers = auth(user="viewer")
    links = []
    # both on one hub: its shutdown used to spin in TaskSet.close (streams/tasks.py)
    async with TestClient(TestServer(build_app(cfg), host="127.0.0.1")) as client:
        for kind in ("wall", "substream"):
            path = "/api/cameras/town-cam/substream/whep"
            if kind == "wall":
                resp = await client.post(
                    "/api/walls", json={"layout": 4, "cameras": ["county-cam"]}, headers=headers
                )
                assert resp.status == 201, await resp.text()
                path = (await resp.json())["whep"]
            pc = RTCPeerConnection()
            try:
                pc.addTransceiver("video", direction="recvonly")
                await pc.setLocalDescription(await pc.createOffer())
                resp = await client.post(
                    path,
                    data=pc.localDescription.sdp,
                    headers={**headers, "Content-Type": "application/sdp"},
                )
                assert resp.status == 201, await resp.text()
                links.append(resp.headers.get("Link", ""))
                await client.delete(resp.headers["Location"], headers=headers)
            finally:
                await pc.close()
    assert len(links) == 2
    for link in links:
        assert link.startswith('<turn:127.0.0.1:3478?transport=udp>; rel="ice-server"'), link
        username = link.split('username="', 1)[1].split('"', 1)[0]
        assert username.endswith(":viewer")
        assert f'credential="{turn_password(secret, username)}"' in link


NODE = shutil.which("node")


@requires_system(NODE is not None, "needs node (the console's banner logic is plain JS)")
def test_cluster_banner_logic() -> None:
    script = Path(__file__).parent / "cluster_banner_test.mjs"
    done = subprocess.run(
        [str(NODE), str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout
