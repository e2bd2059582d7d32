"""Request helpers: JSON bodies checked by a model, paging, SDP offers; and route marks."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import Field

from hub.core.cluster import LOCAL_ONLY
from hub.core.errors import Invalid
from hub.http.errors import error_middleware
from hub.http.request import MAX_PER_PAGE, paging, parse_body, read_json, read_sdp
from hub.http.routes import ATTR, Owned, owned, owner_of
from hub.http.ws import NoData, Request
from tests.hub.http.conftest import Serve


class Note(Request):
    title: str = Field(min_length=1)
    priority: int = Field(1, ge=1, le=5)


class Many(Request):
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int
    g: int


def body_app() -> web.Application:
    app = web.Application(middlewares=[error_middleware])

    async def raw(request: web.Request) -> web.Response:
        return web.json_response(await read_json(request))

    async def note(request: web.Request) -> web.Response:
        parsed = await parse_body(request, Note)
        return web.json_response(parsed.model_dump())

    async def many(request: web.Request) -> web.Response:
        await parse_body(request, Many)
        return web.json_response({})

    async def nodata(request: web.Request) -> web.Response:
        await parse_body(request, NoData)
        return web.json_response({"ok": True})

    async def sdp(request: web.Request) -> web.Response:
        return web.Response(text=await read_sdp(request))

    app.router.add_post("/api/raw", raw)
    app.router.add_post("/api/note", note)
    app.router.add_post("/api/many", many)
    app.router.add_post("/api/nodata", nodata)
    app.router.add_post("/api/sdp", sdp)
    return app


async def error_of(resp: Any) -> tuple[int, str, str]:
    body = await resp.json()
    return resp.status, body["error"]["code"], body["error"]["message"]


async def test_read_json_returns_the_object(serve: Serve) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/raw", json={"名字": "李", "n": [1, 2]})
    assert resp.status == 200 and await resp.json() == {"名字": "李", "n": [1, 2]}


async def test_read_json_wants_the_json_content_type(serve: Serve) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/raw", data=b"{}", headers={"Content-Type": "text/plain"})
    assert await error_of(resp) == (
        415,
        "unsupported_media_type",
        "expected Content-Type: application/json",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'"text"', "body must be a JSON object"),
        (b"null", "body must be a JSON object"),
    ],
)
async def test_read_json_refuses_bad_bodies(serve: Serve, raw: bytes, message: str) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/raw", data=raw, headers={"Content-Type": "application/json"})
    assert await error_of(resp) == (400, "bad_request", message)


async def test_parse_body_validates_and_defaults(serve: Serve) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/note", json={"title": "停电通知"})
    assert await resp.json() == {"title": "停电通知", "priority": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "title: Field required"),
        ({"title": "x", "colour": "red"}, "colour: unknown field"),
        ({"title": "x", "priority": 9}, "priority: Input should be less than or equal to 5"),
        ({"title": ""}, "title: String should have at least 1 character"),
        (
            {"title": 5, "priority": "high"},
            "title: Input should be a valid string; "
            "priority: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
async def test_parse_body_names_each_bad_field(
    serve: Serve, body: dict[str, Any], message: str
) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/note", json=body)
    assert await error_of(resp) == (400, "bad_request", message)


async def test_parse_body_names_at_most_five_problems(serve: Serve) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/many", json={})
    status, _, message = await error_of(resp)
    assert status == 400
    assert message.split("; ") == [f"{n}: Field required" for n in "abcde"]


async def test_no_data_accepts_only_an_empty_object(serve: Serve) -> None:
    client = await serve(body_app())
    assert (await client.post("/api/nodata", json={})).status == 200
    resp = await client.post("/api/nodata", json={"x": 1})
    assert await error_of(resp) == (400, "bad_request", "x: unknown field")


async def test_read_sdp(serve: Serve) -> None:
    client = await serve(body_app())
    offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=镇\r\n"
    resp = await client.post(
        "/api/sdp", data=offer.encode(), headers={"Content-Type": "application/sdp"}
    )
    assert resp.status == 200 and await resp.text() == offer


async def test_read_sdp_wants_the_sdp_content_type(serve: Serve) -> None:
    client = await serve(body_app())
    resp = await client.post("/api/sdp", json={"sdp": "v=0"})
    assert await error_of(resp) == (
        415,
        "unsupported_media_type",
        "send the offer as Content-Type: application/sdp",
    )


async def test_read_sdp_refuses_bytes_that_are_not_utf8(serve: Serve) -> None:
    client = await serve(body_app())
    resp = await client.post(
        "/api/sdp", data=b"v=0\r\n\xff\xfe", headers={"Content-Type": "application/sdp"}
    )
    assert await error_of(resp) == (400, "bad_request", "the SDP offer is not UTF-8 text")


def query_request(query: str, headers: dict[str, str] | None = None) -> web.Request:
    return make_mocked_request("GET", f"/api/list{query}", headers=headers or {})


def test_paging_defaults_and_values() -> None:
    assert paging(query_request("")) == (1, 20)
    assert paging(query_request("?page=3&per_page=7")) == (3, 7)
    assert paging(query_request(f"?per_page={MAX_PER_PAGE}")) == (1, 100)


@pytest.mark.parametrize("query", ["?page=x", "?per_page=1.5", "?page=", "?per_page=ten"])
def test_paging_wants_whole_numbers(query: str) -> None:
    with pytest.raises(Invalid, match=r"^page and per_page must be whole numbers$"):
        paging(query_request(query))


@pytest.mark.parametrize("query", ["?page=0", "?page=-2", "?per_page=0", "?per_page=101"])
def test_paging_ranges(query: str) -> None:
    with pytest.raises(Invalid, match=r"^page must be >= 1 and per_page between 1 and 100$"):
        paging(query_request(query))


def test_paging_for_a_peer_merging_allows_the_depth() -> None:
    assert paging(query_request("?per_page=1000", {LOCAL_ONLY: "1"})) == (1, 1000)
    with pytest.raises(Invalid, match=r"between 1 and 1000$"):
        paging(query_request("?per_page=1001", {LOCAL_ONLY: "1"}))


def test_owned_marks_and_returns_the_same_handler() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    def known(app: web.Application, item: str) -> bool:
        return item == "ended"

    marked = owned("room", "room", known)(handler)
    assert marked is handler
    assert getattr(handler, ATTR) == Owned("room", "room", known)


def route_app() -> web.Application:
    app = web.Application()

    async def show(request: web.Request) -> web.Response:
        found = owner_of(request)
        if found is None:
            return web.json_response(None)
        mark, item = found
        return web.json_response({"kind": mark.kind, "param": mark.param, "item": item})

    async def plain(request: web.Request) -> web.Response:
        return await show(request)

    async def wrong_param(request: web.Request) -> web.Response:
        return await show(request)

    app.router.add_get("/api/calls/{call}", owned("call", "call")(show))
    app.router.add_get("/api/rooms/{room}", plain)
    app.router.add_get("/api/walls/{wall}", owned("wall", "id")(wrong_param))
    return app


async def test_owner_of_reads_the_mark_and_the_path_parameter(serve: Serve) -> None:
    client = await serve(route_app())
    resp = await client.get("/api/calls/c-17")
    assert await resp.json() == {"kind": "call", "param": "call", "item": "c-17"}


async def test_owner_of_unmarked_or_unnamed_is_none(serve: Serve) -> None:
    client = await serve(route_app())
    assert await (await client.get("/api/rooms/r1")).json() is None
    assert await (await client.get("/api/walls/w1")).json() is None  # no {id} in the path
