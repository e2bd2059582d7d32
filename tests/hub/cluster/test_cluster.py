"""Scale-out on Redis: two hub nodes in one process, a real redis-server on a free port."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from config import parse_config
from hub.app import build_app
from hub.cluster.service import CLUSTER, Cluster, ClusterState
from hub.core.cluster import link_of
from hub.core.events import EVENTS
from hub.core.revocations import REVOCATIONS
from tests.conftest import COUNTY, VILLAGE, topology
from tests.fixtures.system import requires_system

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
pytestmark = requires_system(Path(REDIS_SERVER).exists(), "needs redis-server (make system-deps)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisProcess:
    """A throwaway redis-server on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def node_config(url: str, node: str, **redis_extra: Any) -> Any:
    section = {"url": url, "node_id": node, "heartbeat": 0.2, "node_ttl": 1.5, **redis_extra}
    return parse_config(topology(redis=section))


Node = TestClient[Any, Any]


@pytest.fixture
async def two_nodes(redis_server: RedisProcess) -> AsyncIterator[tuple[Node, Node]]:
    a = TestClient(TestServer(build_app(node_config(redis_server.url, "node-a")), host="127.0.0.1"))
    b = TestClient(TestServer(build_app(node_config(redis_server.url, "node-b")), host="127.0.0.1"))
    await a.start_server()
    await b.start_server()
    try:
        await wait_for(lambda: peers(a) == {"node-b"} and peers(b) == {"node-a"})
        yield a, b
    finally:
        await b.close()
        await a.close()


def cluster(node: Node) -> Cluster:
    found: Cluster = node.app[CLUSTER]
    return found


def peers(node: Node) -> set[str]:
    return set(cluster(node).peers)


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def next_event(
    ws: aiohttp.ClientWebSocketResponse, topic: str, timeout: float = 10.0
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            msg: dict[str, Any] = await ws.receive_json()
            if msg.get("type") == "event" and msg["topic"] == topic:
                return msg


async def health(node: Node) -> dict[str, Any]:
    resp = await node.get("/api/health")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_without_redis_the_cluster_is_off(client: Node) -> None:
    body = await health(client)
    assert body["cluster"] == "off" and body["nodes"] == []
    assert CLUSTER not in client.app and not link_of(client.app).active  # no add-on set up


async def test_nodes_see_each_other_and_report_in_health(two_nodes: tuple[Node, Node]) -> None:
    _, b = two_nodes
    body = await health(b)
    assert body["cluster"] == "up" and body["nodes"] == ["node-a", "node-b"]
    assert await cluster(b).owner("camera", "county-cam") is not None


async def test_event_on_node_a_reaches_a_ws_client_on_node_b(
    two_nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = two_nodes
    async with b.ws_connect(f"/ws?token={token()}") as ws_b:
        assert (await ws_b.receive_json())["type"] == "hello"
        # a village terminal connects to node A: its presence is an event on node A
        async with a.ws_connect(f"/ws?token={token('terminal', VILLAGE, 'dongguan')}") as ws_a:
            assert (await ws_a.receive_json())["type"] == "hello"
            event = await next_event(ws_b, "presence")
            assert event["data"]["user"] == "dongguan" and event["data"]["status"] == "online"
            assert event["centre"] == VILLAGE
    assert cluster(a).sent >= 1 and cluster(b).received >= 1


async def test_a_sign_out_on_node_a_is_refused_on_node_b(
    two_nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = two_nodes
    headers = {"Authorization": f"Bearer {token('operator', COUNTY, 'wang')}"}
    assert (await b.get("/api/me", headers=headers)).status == 200
    assert (await a.post("/api/logout", headers=headers)).status == 200
    revocations = b.app[REVOCATIONS]
    await wait_for(lambda: revocations.revoked("wang", int(time.time() * 1000) - 1000))
    resp = await b.get("/api/me", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "signed_out"


async def test_no_loops_and_user_addressing(
    two_nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = two_nodes
    async with b.ws_connect(f"/ws?token={token(user='alice')}") as ws_b:
        assert (await ws_b.receive_json())["type"] == "hello"
        a.app[EVENTS].publish("test.ping", COUNTY, {"n": 1}, to_users={"alice"})
        a.app[EVENTS].publish("test.ping", COUNTY, {"n": 2}, to_users={"bob"})
        a.app[EVENTS].publish("test.ping", COUNTY, {"n": 3})
        first = await next_event(ws_b, "test.ping")
        second = await next_event(ws_b, "test.ping")
        assert [first["data"]["n"], second["data"]["n"]] == [1, 3]
    await asyncio.sleep(0.5)  # anything echoed back would have arrived by now
    # node B re-published them locally but did not send them back; node A got none of its own
    assert cluster(a).received == cluster(b).sent


async def test_a_dead_node_is_noticed_within_seconds(
    two_nodes: tuple[Node, Node], token: Callable[..., str]
) -> None:
    a, b = two_nodes
    # a village terminal hears it too: it keeps the live nodes for its own failover
    async with b.ws_connect(f"/ws?token={token('terminal', VILLAGE, 'dongguan')}") as ws_b:
        assert (await ws_b.receive_json())["type"] == "hello"
        await cluster(a).close(graceful=False)  # a crash: no goodbye, its key just expires
        started = time.monotonic()
        event = await next_event(ws_b, "cluster.node")
        took = time.monotonic() - started
    assert event["data"]["node"] == "node-a" and event["data"]["state"] == "down"
    assert event["centre"] == ""  # hub-wide
    assert took < 1.5 + 0.2 + 1.0  # node_ttl + heartbeat + slack
    assert await cluster(b).owner("room", "nope") is None
    assert (await health(b))["nodes"] == ["node-b"]


async def test_graceful_stop_deregisters_at_once(redis_server: RedisProcess) -> None:
    a = TestClient(TestServer(build_app(node_config(redis_server.url, "node-a")), host="127.0.0.1"))
    await a.start_server()
    r = redis_server.client()
    try:
        await wait_for(lambda: cluster(a).state is ClusterState.UP)
        assert r.smembers("zzhub:nodes") == {"node-a"}
        assert r.hget("zzhub:owner:camera", "village-cam") == "node-a"
    finally:
        await a.close()
    assert r.smembers("zzhub:nodes") == set()
    assert r.exists("zzhub:node:node-a") == 0
    assert r.hget("zzhub:owner:camera", "village-cam") is None


async def test_redis_away_degrades_then_recovers_and_resyncs(
    redis_server: RedisProcess,
    two_nodes: tuple[Node, Node],
    token: Callable[..., str],
    auth: Callable[..., dict[str, str]],
) -> None:
    a, b = two_nodes
    async with b.ws_connect(f"/ws?token={token()}") as ws_b:
        assert (await ws_b.receive_json())["type"] == "hello"
        await asyncio.to_thread(redis_server.stop)
        await wait_for(lambda: cluster(b).state is ClusterState.DEGRADED)
        body = await health(b)
        assert body["status"] == "ok" and body["cluster"] == "degraded"
        # local features go on: the API, and events published on node B reach its clients
        resp = await b.get("/api/cameras", headers=auth())
        assert resp.status == 200 and len(await resp.json()) == 4
        b.app[EVENTS].publish("test.local", COUNTY, {"n": 1})
        assert (await next_event(ws_b, "test.local"))["data"] == {"n": 1}
        # meanwhile node A queues what other nodes should hear
        a.app[EVENTS].publish("test.queued", COUNTY, {"n": 2})
        await asyncio.sleep(2)
        await asyncio.to_thread(redis_server.start)  # an empty Redis: nothing survived
        resync = await next_event(ws_b, "cluster.resync", timeout=15)
        assert resync["data"]["node"] == "node-b"
        await wait_for(lambda: cluster(a).state is ClusterState.UP, timeout=15)
        await wait_for(lambda: peers(a) == {"node-b"} and peers(b) == {"node-a"})
        # both re-registered and re-claimed their cameras in the new Redis
        r = redis_server.client()
        assert r.smembers("zzhub:nodes") == {"node-a", "node-b"}
        assert r.hget("zzhub:owner:camera", "county-cam") in ("node-a", "node-b")
        # cross-node events flow again
        a.app[EVENTS].publish("test.after", COUNTY, {"n": 3})
        assert (await next_event(ws_b, "test.after"))["data"] == {"n": 3}
    assert (await health(b))["cluster"] == "up"
    assert cluster(b).reconnects >= 1


async def test_cluster_metrics(
    two_nodes: tuple[Node, Node], auth: Callable[..., dict[str, str]]
) -> None:
    a, _ = two_nodes
    resp = await a.get("/metrics", headers=auth())
    text = await resp.text()
    assert 'zzhub_cluster_up{node="node-a"} 1.0' in text
    assert 'zzhub_cluster_nodes{node="node-a"} 2.0' in text


async def test_owner_lookup_across_nodes(redis_server: RedisProcess) -> None:
    cfg_a = node_config(redis_server.url, "node-a")
    a = TestClient(TestServer(build_app(cfg_a), host="127.0.0.1"))
    b = TestClient(TestServer(build_app(node_config(redis_server.url, "node-b")), host="127.0.0.1"))
    await a.start_server()
    await b.start_server()
    try:
        await wait_for(lambda: peers(b) == {"node-a"})
        cluster(a).claim("room", "room-1")

        async def owned_by_a() -> bool:
            node = await cluster(b).owner("room", "room-1")
            return node is not None and node.id == "node-a"

        deadline = time.monotonic() + 5
        while not await owned_by_a():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        node = await cluster(b).owner("room", "room-1")
        assert node is not None and node.url.startswith("http://127.0.0.1:")
        cluster(a).release("room", "room-1")
        await asyncio.sleep(0.3)
        assert await cluster(b).owner("room", "room-1") is None
    finally:
        await b.close()
        await a.close()


async def test_cluster_numbers_skip_ids_claimed_meanwhile(
    two_nodes: tuple[Node, Node], redis_server: RedisProcess
) -> None:
    """Case codes and alert ids: one counter for the cluster, seeded with the caller's local
    maximum, skipping what a node numbered locally while Redis was away (and claimed since)."""
    a, b = two_nodes
    r = redis_server.client()
    r.hset("zzhub:owner:petition", "410922100201-20261123-0002", "node-b")
    r.hset("zzhub:owner:alert", "5", "node-b")
    case = await cluster(a).next_number(
        "caseseq:410922100201:20261123", "petition", 1,
        prefix="410922100201-20261123-", digits=4, ttl=600,
    )  # fmt: skip
    assert case == 3 and 0 < r.ttl("zzhub:caseseq:410922100201:20261123") <= 600
    assert await cluster(a).next_number("alertseq", "alert", 4) == 6
    assert await cluster(b).next_number("alertseq", "alert", 0) == 7
    assert r.ttl("zzhub:alertseq") == -1
