"""Statuses of the hub's refusals, their round trip between nodes, and the JSON error
middleware."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp import web

from hub.core.errors import (
    Conflict,
    Forbidden,
    HubError,
    Invalid,
    NotAllowed,
    NotFound,
    TooLarge,
    TooMany,
    Unauthenticated,
    Unavailable,
    Unsupported,
)
from hub.http.errors import error_for_status, error_middleware, error_response, status_of
from tests.hub.http.conftest import Serve

KINDS: list[tuple[type[HubError], int, str]] = [
    (Invalid, 400, "bad_request"),
    (Unauthenticated, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (NotAllowed, 405, "method_not_allowed"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "body_too_large"),
    (Unsupported, 415, "unsupported_media_type"),
    (Unavailable, 503, "unavailable"),
]


class Gone(NotFound):
    """A refusal a slice could define: a subclass keeps its parent's status."""


@pytest.mark.parametrize(("kind", "status", "code"), KINDS)
def test_status_and_default_code_of_every_kind(
    kind: type[HubError], status: int, code: str
) -> None:
    err = kind("nope")
    assert status_of(err) == status
    assert err.code == code and err.message == "nope" and str(err) == "nope"


@pytest.mark.parametrize(("kind", "status", "code"), KINDS)
def test_round_trip_between_nodes_keeps_kind_code_and_message(
    kind: type[HubError], status: int, code: str
) -> None:
    back = error_for_status(status, "来自另一节点", code)
    assert type(back) is kind
    assert (back.code, back.message) == (code, "来自另一节点")
    assert status_of(back) == status


@pytest.mark.parametrize(("kind", "status", "code"), KINDS)
def test_round_trip_keeps_a_refined_code(kind: type[HubError], status: int, code: str) -> None:
    err = kind("refined", "already_answered")
    back = error_for_status(status_of(err), err.message, err.code)
    assert type(back) is kind and back.code == "already_answered"


def test_refined_code_does_not_change_the_class_default() -> None:
    Conflict("x", "already_answered")
    assert Conflict("y").code == "conflict"


def test_subclass_keeps_parent_status_and_base_is_500() -> None:
    assert status_of(Gone("x")) == 404
    assert status_of(HubError("x")) == 500
    assert HubError("x").code == "error"


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (500, Unavailable, "unavailable"),
        (502, Unavailable, "unavailable"),
        (504, Unavailable, "unavailable"),
        (418, Invalid, "bad_request"),
        (422, Invalid, "bad_request"),
    ],
)
def test_statuses_without_a_kind(status: int, kind: type[HubError], code: str) -> None:
    err = error_for_status(status, "m")
    assert type(err) is kind and err.code == code


def test_a_peers_429_comes_back_as_too_many() -> None:
    err = error_for_status(429, "slow down", "too_many_requests")
    assert type(err) is TooMany and err.code == "too_many_requests" and err.retry_after == 1.0


def _code(resp: web.Response) -> str:
    assert resp.text is not None
    code: str = json.loads(resp.text)["error"]["code"]
    return code


def test_error_response_shape() -> None:
    resp = error_response(422, "no")
    assert resp.status == 422 and resp.content_type == "application/json"
    assert resp.text is not None
    assert json.loads(resp.text) == {"error": {"code": "unprocessable", "message": "no"}}
    assert _code(error_response(429, "slow")) == "too_many_requests"
    assert _code(error_response(404, "x")) == "not_found"
    assert _code(error_response(499, "x")) == "error"
    assert _code(error_response(404, "x", "mine")) == "mine"


def _app(client_max_size: int = 1024**2) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=client_max_size)

    async def refuse(request: web.Request) -> web.Response:
        kind = dict((k.__name__, k) for k, _, _ in KINDS)[request.match_info["kind"]]
        raise kind(f"refused by {kind.__name__}")

    async def refined(request: web.Request) -> web.Response:
        raise Conflict("the call was answered", "already_answered")

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def body(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    async def teapot(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(reason="Bad thing")

    app.router.add_get("/api/refuse/{kind}", refuse)
    app.router.add_get("/api/refined", refined)
    app.router.add_get("/api/crash", crash)
    app.router.add_get("/page/crash", crash)
    app.router.add_get("/api/moved", moved)
    app.router.add_post("/api/body", body)
    app.router.add_get("/api/bad", teapot)
    app.router.add_get("/api/only-get", body)
    return app


@pytest.mark.parametrize(("kind", "status", "code"), KINDS)
async def test_middleware_turns_each_refusal_into_json(
    serve: Serve, kind: type[HubError], status: int, code: str
) -> None:
    client = await serve(_app())
    resp = await client.get(f"/api/refuse/{kind.__name__}")
    assert resp.status == status
    assert await resp.json() == {"error": {"code": code, "message": f"refused by {kind.__name__}"}}


async def test_middleware_keeps_a_refined_code(serve: Serve) -> None:
    client = await serve(_app())
    resp = await client.get("/api/refined")
    assert resp.status == 409
    assert (await resp.json())["error"] == {
        "code": "already_answered",
        "message": "the call was answered",
    }


async def test_unhandled_error_is_500_without_traceback_and_logged(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(_app())
    with caplog.at_level(logging.ERROR, logger="hub.http.errors"):
        resp = await client.get("/api/crash")
        page = await client.get("/page/crash")
    assert resp.status == 500
    text = await resp.text()
    assert "secret internals" not in text
    assert await resp.json() == {"error": {"code": "internal", "message": "internal error"}}
    assert page.status == 500 and (await page.json())["error"]["code"] == "internal"
    messages = [r.getMessage() for r in caplog.records if r.name == "hub.http.errors"]
    assert messages == ["unhandled error on GET /api/crash", "unhandled error on GET /page/crash"]


async def test_unknown_api_path_is_a_json_404(serve: Serve) -> None:
    client = await serve(_app())
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404
    assert await resp.json() == {
        "error": {"code": "not_found", "message": "no such endpoint: GET /api/nothing-here"}
    }


async def test_unknown_page_outside_the_api_stays_aiohttps_own(serve: Serve) -> None:
    client = await serve(_app())
    resp = await client.get("/no-such-page")
    assert resp.status == 404
    assert resp.content_type != "application/json"


async def test_wrong_method_is_a_json_405_with_allow(serve: Serve) -> None:
    client = await serve(_app())
    resp = await client.delete("/api/only-get")
    assert resp.status == 405
    assert await resp.json() == {
        "error": {
            "code": "method_not_allowed",
            "message": "method DELETE not allowed on /api/only-get",
        }
    }
    assert set(resp.headers["Allow"].split(",")) >= {"GET"}


async def test_too_large_body_names_the_limit(serve: Serve) -> None:
    client = await serve(_app(client_max_size=16))
    resp = await client.post("/api/body", data=b"x" * 100)
    assert resp.status == 413
    assert await resp.json() == {
        "error": {"code": "body_too_large", "message": "request body too large (limit 16 bytes)"}
    }
    ok = await client.post("/api/body", data=b"x" * 8)
    assert ok.status == 200 and await ok.text() == "8"


async def test_other_http_errors_keep_their_reason(serve: Serve) -> None:
    client = await serve(_app())
    resp = await client.get("/api/bad")
    assert resp.status == 400
    assert await resp.json() == {"error": {"code": "bad_request", "message": "Bad thing"}}


async def test_redirects_pass_through(serve: Serve) -> None:
    client = await serve(_app())
    resp = await client.get("/api/moved", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/elsewhere"


async def test_metrics_and_ws_paths_get_json_too(serve: Serve) -> None:
    client = await serve(_app())
    for path in ("/metrics", "/ws"):
        resp = await client.get(path)
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == f"no such endpoint: GET {path}"
