"""Lists over the cluster: `union`, single-node and merged paged/plain lists, depth limits."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from config.schema import Role
from hub.core.auth import Principal
from hub.core.cluster import LINK, LOCAL_ONLY, MISSING, PARTIAL, ClusterLink, Gathered
from hub.http.errors import error_middleware
from hub.http.lists import MAX_DEPTH, max_per_page, merged_list, merged_page, union, with_peers
from hub.http.request import paging
from tests.conftest import COUNTY
from tests.hub.http.conftest import Serve


def test_union_adds_unseen_items_by_key_in_answer_order() -> None:
    local = [{"id": "a", "n": 1}, {"id": "b", "n": 2}]
    answers: list[Any] = [
        [{"id": "b", "n": 99}, {"id": "c", "n": 3}],
        [{"id": "c", "n": 98}, {"id": "d", "n": 4}],
    ]
    assert union(local, answers, "id") == [
        {"id": "a", "n": 1},
        {"id": "b", "n": 2},
        {"id": "c", "n": 3},
        {"id": "d", "n": 4},
    ]
    assert local == [{"id": "a", "n": 1}, {"id": "b", "n": 2}]  # not modified


def test_union_without_key_keeps_every_item() -> None:
    assert union([{"id": 1}], [[{"id": 1}, {"id": 2}]], None) == [{"id": 1}, {"id": 1}, {"id": 2}]


def test_union_skips_answers_that_are_not_lists_and_items_that_are_not_objects() -> None:
    answers: list[Any] = [{"items": [{"id": "x"}]}, None, "error", [1, "s", None, {"id": "y"}]]
    assert union([], answers, "id") == [{"id": "y"}]


def test_union_by_another_key() -> None:
    local = [{"user": "li", "id": 1}]
    assert union(local, [[{"user": "li", "id": 2}, {"user": "ma", "id": 3}]], "user") == [
        {"user": "li", "id": 1},
        {"user": "ma", "id": 3},
    ]


class FanOut(ClusterLink):
    """A link that fans out and answers with canned bodies of other nodes."""

    def __init__(self, bodies: list[Any], missing: list[str] | None = None) -> None:
        super().__init__("here")
        self.gathered = Gathered(bodies, missing or [], bool(missing))
        self.queries: list[dict[str, str] | None] = []
        self.peers: list[tuple[str, Any]] = []

    @property
    def active(self) -> bool:
        return True

    def fans_out(self, request: web.Request) -> bool:
        return not request.headers.get(LOCAL_ONLY)

    async def gather(self, request: web.Request, query: dict[str, str] | None = None) -> Gathered:
        self.queries.append(query)
        return self.gathered

    async def ask_peers(
        self, who: Principal, path: str, params: dict[str, str]
    ) -> list[tuple[str, Any]]:
        return self.peers


ROOMS = [{"id": f"r{i}", "at": i} for i in (1, 3, 5, 7, 9)]


def list_app(link: ClusterLink | None = None) -> tuple[web.Application, list[tuple[int, int]]]:
    app = web.Application(middlewares=[error_middleware])
    if link is not None:
        app[LINK] = link
    asked: list[tuple[int, int]] = []

    async def local(page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        asked.append((page, per_page))
        start = (page - 1) * per_page
        return [dict(r) for r in ROOMS[start : start + per_page]], len(ROOMS)

    async def paged(request: web.Request) -> web.Response:
        page, per_page = paging(request)
        return await merged_page(request, page, per_page, local, lambda item: item["at"])

    async def plain(request: web.Request) -> web.Response:
        return await merged_list(request, [{"id": "r1"}, {"id": "r2"}])

    async def most(request: web.Request) -> web.Response:
        return web.json_response(max_per_page(request, 50))

    app.router.add_get("/api/paged", paged)
    app.router.add_get("/api/plain", plain)
    app.router.add_get("/api/most", most)
    return app, asked


async def test_single_node_paged_list_is_the_local_page(serve: Serve) -> None:
    app, asked = list_app()
    client = await serve(app)
    resp = await client.get("/api/paged", params={"page": "2", "per_page": "2"})
    assert resp.status == 200
    assert await resp.json() == {
        "items": [{"id": "r5", "at": 5}, {"id": "r7", "at": 7}],
        "page": 2,
        "per_page": 2,
        "total": 5,
        "partial": False,
        "nodes_missing": [],
    }
    assert asked == [(2, 2)]
    assert PARTIAL not in resp.headers and MISSING not in resp.headers


async def test_single_node_plain_list_is_the_local_list(serve: Serve) -> None:
    app, _ = list_app()
    client = await serve(app)
    resp = await client.get("/api/plain")
    assert await resp.json() == [{"id": "r1"}, {"id": "r2"}]
    assert PARTIAL not in resp.headers


async def test_max_per_page_grows_only_for_a_peer_merging(serve: Serve) -> None:
    app, _ = list_app()
    client = await serve(app)
    assert await (await client.get("/api/most")).json() == 50
    assert await (await client.get("/api/most", headers={LOCAL_ONLY: "1"})).json() == MAX_DEPTH


async def test_merged_page_asks_for_the_depth_merges_sorts_and_cuts(serve: Serve) -> None:
    other = {
        "items": [{"id": "r3", "at": 3}, {"id": "x2", "at": 2}, {"id": "x4", "at": 4}],
        "total": 3,
    }
    link = FanOut([other, "not a body", {"items": None, "total": None}])
    app, asked = list_app(link)
    client = await serve(app)
    resp = await client.get("/api/paged", params={"page": "2", "per_page": "2"})
    body = await resp.json()
    assert asked == [(1, 4)]
    assert link.queries == [{"page": "1", "per_page": "4"}]
    # local r1 r3 r5 r7 + x2 x4 (r3 already seen) → sorted 1 2 3 4 5 7 → page 2 = 3, 4
    assert body["items"] == [{"id": "r3", "at": 3}, {"id": "x4", "at": 4}]
    assert (body["total"], body["partial"], body["nodes_missing"]) == (8, False, [])
    assert PARTIAL not in resp.headers


async def test_merged_page_marks_missing_nodes(serve: Serve) -> None:
    link = FanOut([], missing=["node-b", "node-c"])
    app, _ = list_app(link)
    client = await serve(app)
    resp = await client.get("/api/paged")
    body = await resp.json()
    assert (body["partial"], body["nodes_missing"]) == (True, ["node-b", "node-c"])
    assert resp.headers[PARTIAL] == "1" and resp.headers[MISSING] == "node-b,node-c"
    assert [i["id"] for i in body["items"]] == ["r1", "r3", "r5", "r7", "r9"]


async def test_merged_page_refuses_deeper_than_the_limit(serve: Serve) -> None:
    app, asked = list_app(FanOut([]))
    client = await serve(app)
    resp = await client.get("/api/paged", params={"page": "11", "per_page": "100"})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == (
        "a hub cluster lists the first 1000 items (page * per_page)"
    )
    assert asked == []
    ok = await client.get("/api/paged", params={"page": "10", "per_page": "100"})
    assert ok.status == 200


async def test_a_peers_own_part_is_not_fanned_out_again(serve: Serve) -> None:
    link = FanOut([{"items": [{"id": "zz", "at": 0}], "total": 1}])
    app, asked = list_app(link)
    client = await serve(app)
    resp = await client.get(
        "/api/paged", params={"page": "1", "per_page": "500"}, headers={LOCAL_ONLY: "1"}
    )
    body = await resp.json()
    assert asked == [(1, 500)] and link.queries == []
    assert body["total"] == 5 and "zz" not in [i["id"] for i in body["items"]]


async def test_merged_plain_list_unions_by_id_and_marks(serve: Serve) -> None:
    link = FanOut([[{"id": "r2"}, {"id": "r3"}], [{"id": "r4"}]], missing=["node-c"])
    app, _ = list_app(link)
    client = await serve(app)
    resp = await client.get("/api/plain")
    assert await resp.json() == [{"id": "r1"}, {"id": "r2"}, {"id": "r3"}, {"id": "r4"}]
    assert resp.headers[PARTIAL] == "1" and resp.headers[MISSING] == "node-c"
    assert link.queries == [None]


async def test_with_peers_single_node_and_active_link() -> None:
    who = Principal("boss", Role.ADMIN, COUNTY)
    local = [{"id": "c1"}]
    assert await with_peers(web.Application(), who, "/api/calls/pending", local) is local
    app = web.Application()
    link = FanOut([])
    link.peers = [("node-b", [{"id": "c1"}, {"id": "c2"}]), ("node-c", "oops")]
    app[LINK] = link
    assert await with_peers(app, who, "/api/calls/pending", local) == [
        {"id": "c1"},
        {"id": "c1"},  # key None: each item comes from one node only
        {"id": "c2"},
    ]


@pytest.mark.parametrize("per_page", ["0", "101", "-1"])
async def test_per_page_limits_apply_before_the_merge(serve: Serve, per_page: str) -> None:
    app, asked = list_app()
    client = await serve(app)
    resp = await client.get("/api/paged", params={"per_page": per_page})
    assert resp.status == 400 and asked == []
