"""The single-node `ClusterLink` answers, and `SharedCounter` filling its templates."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from config import parse_config
from config.schema import Role
from hub.core.auth import Principal
from hub.core.cluster import LINK, ClusterLink, Gathered, SharedCounter, link_of, node_identity
from tests.conftest import COUNTY, topology

WHO = Principal("boss", Role.ADMIN, COUNTY)


def test_gathered_defaults_are_empty_and_not_shared() -> None:
    a, b = Gathered(), Gathered()
    assert (a.bodies, a.missing, a.partial) == ([], [], False)
    a.bodies.append(1)
    assert b.bodies == []


def test_node_identity_defaults_to_hostname_and_port() -> None:
    config = parse_config(topology(http={"port": 8443}))
    assert node_identity(config) == (f"{socket.gethostname()}-8443", "http://127.0.0.1:8443")


def test_node_identity_on_all_interfaces_uses_the_machine_name() -> None:
    config = parse_config(topology(http={"host": "0.0.0.0", "port": 9000}))
    host = socket.gethostname()
    assert node_identity(config) == (f"{host}-9000", f"http://{host}:9000")


def test_node_identity_from_redis_settings() -> None:
    config = parse_config(
        topology(redis={"node_id": "hub-a", "advertise_url": "https://hub-a.example:8443"})
    )
    assert node_identity(config) == ("hub-a", "https://hub-a.example:8443")


def test_single_link_from_config() -> None:
    config = parse_config(topology(redis={"node_id": "solo"}, http={"port": 8080}))
    link = ClusterLink.single(config)
    assert link.node_id == "solo"
    assert link.client_json() == {
        "state": "off",
        "node": "solo",
        "url": "http://127.0.0.1:8080",
        "nodes": [],
    }


async def test_single_node_defaults() -> None:
    link = ClusterLink("n1", "http://127.0.0.1:1")
    request = make_mocked_request("GET", "/api/rooms", app=web.Application())
    assert link.active is False
    assert link.claimer() is None
    link.claim("room", "r1", {"x": 1})  # nothing to claim: no error
    link.claim_many("room", ["r1", "r2"])
    assert await link.next_number("case", "case", 7, prefix="A", digits=3, ttl=5) is None
    assert link.fans_out(request) is False
    gathered = await link.gather(request, {"page": "1"})
    assert (gathered.bodies, gathered.missing, gathered.partial) == ([], [], False)
    assert await link.on_behalf(WHO, "call", "c1", "/api/calls/c1", {"a": 1}) is None
    assert await link.ask_peers(WHO, "/api/calls", {}) == []
    assert await link.post_to("n2", WHO, "/api/x") is None
    assert await link.forward(request, "room", "r1") is None
    assert link.status() == {"cluster": "off", "nodes": []}


def test_admin_json_of_a_single_node() -> None:
    assert ClusterLink("n1").admin_json() == {
        "state": "off",
        "node": "n1",
        "nodes": [],
        "conflicts": [],
        "peers": [],
        "events": {"sent": 0, "received": 0, "dropped": 0},
        "reconnects": 0,
        "swept": 0,
        "conflicts_total": 0,
    }


def test_link_of_an_app_without_a_link_is_a_fresh_single_link() -> None:
    app = web.Application()
    link = link_of(app)
    assert type(link) is ClusterLink and link.node_id == "" and not link.active


def test_link_of_returns_the_apps_link() -> None:
    app = web.Application()
    mine = ClusterLink("here")
    app[LINK] = mine
    assert link_of(app) is mine


class RecordingLink(ClusterLink):
    """A link with a shared counter that records what it was asked."""

    def __init__(self, answer: int | None) -> None:
        super().__init__("fake")
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []

    async def next_number(
        self,
        name: str,
        kind: str,
        local_max: int,
        *,
        prefix: str = "",
        digits: int = 0,
        ttl: int = 0,
    ) -> int | None:
        self.calls.append((name, kind, local_max, prefix, digits, ttl))
        return self.answer


async def test_shared_counter_fills_name_and_prefix_from_fields() -> None:
    link = RecordingLink(42)
    counter = SharedCounter(
        link, "case", "case:{village}:{day}", prefix="{village}-{day}-", digits=3, ttl=86400
    )
    assert await counter.next(5, village="410922100201", day="20261203") == 42
    assert link.calls == [
        ("case:410922100201:20261203", "case", 5, "410922100201-20261203-", 3, 86400)
    ]


async def test_shared_counter_plain_name_and_defaults() -> None:
    link = RecordingLink(None)
    counter = SharedCounter(link, "alert", "alerts")
    assert await counter.next(0) is None
    assert link.calls == [("alerts", "alert", 0, "", 0, 0)]


async def test_shared_counter_on_a_single_node_is_none() -> None:
    counter = SharedCounter(ClusterLink(), "case", "case:{village}", prefix="{village}-")
    assert await counter.next(9, village="410922100201") is None


async def test_shared_counter_passes_local_max_each_call() -> None:
    link = RecordingLink(1)
    counter = SharedCounter(link, "alert", "alerts:{centre}")
    await counter.next(3, centre="a")
    await counter.next(4, centre="b")
    assert [(c[0], c[2]) for c in link.calls] == [("alerts:a", 3), ("alerts:b", 4)]
