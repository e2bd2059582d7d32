"""The /metrics registry: families in source order, async sources, failing sources skipped;
and the authentication middleware in front of it."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from config.schema import Role
from hub.core.auth import PRINCIPAL, TOKENS, TokenIssuer, principal
from hub.http.errors import error_middleware
from hub.http.metrics import Family, Metrics, escape, label
from hub.http.middleware import auth_middleware
from tests.conftest import COUNTY, SECRET, TOWN
from tests.hub.http.conftest import Serve


def test_escape_and_label() -> None:
    assert escape('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert label('城关"镇') == '"城关\\"镇"'
    assert label("") == '""'


async def test_empty_registry_renders_a_newline() -> None:
    assert await Metrics().render() == "\n"


async def test_families_in_source_order_with_and_without_labels() -> None:
    metrics = Metrics()

    def first(family: Family) -> None:
        family("zz_a", "gauge", "A things.", [("", 1.0)])
        family("zz_b", "counter", "B things.", [('role="x"', 2.0), ('role="y"', 3.5)])

    async def second(family: Family) -> None:
        family("zz_c", "gauge", "C things.", [])

    metrics.add("first", first)
    metrics.add("second", second)
    assert await metrics.render() == (
        "# HELP zz_a A things.\n"
        "# TYPE zz_a gauge\n"
        "zz_a 1.0\n"
        "# HELP zz_b B things.\n"
        "# TYPE zz_b counter\n"
        'zz_b{role="x"} 2.0\n'
        'zz_b{role="y"} 3.5\n'
        "# HELP zz_c C things.\n"
        "# TYPE zz_c gauge\n"
    )


async def test_order_is_the_order_of_adding_not_of_names() -> None:
    metrics = Metrics()
    metrics.add("z", lambda family: family("zz_z", "gauge", "z", [("", 0)]))
    metrics.add("a", lambda family: family("zz_a", "gauge", "a", [("", 0)]))
    text = await metrics.render()
    assert text.index("zz_z") < text.index("zz_a")


async def test_failing_source_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    def broken(family: Family) -> None:
        raise RuntimeError("service gone")

    async def broken_async(family: Family) -> None:
        raise ValueError("async too")

    metrics.add("ok-before", lambda family: family("zz_before", "gauge", "b", [("", 1)]))
    metrics.add("rooms", broken)
    metrics.add("walls", broken_async)
    metrics.add("ok-after", lambda family: family("zz_after", "gauge", "a", [("", 2)]))
    with caplog.at_level(logging.ERROR, logger="hub.http.metrics"):
        text = await metrics.render()
    assert text == (
        "# HELP zz_before b\n# TYPE zz_before gauge\nzz_before 1\n"
        "# HELP zz_after a\n# TYPE zz_after gauge\nzz_after 2\n"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "metrics of rooms failed",
        "metrics of walls failed",
    ]


async def test_a_source_failing_halfway_keeps_what_it_wrote() -> None:
    metrics = Metrics()

    def half(family: Family) -> None:
        family("zz_one", "gauge", "one", [("", 1)])
        raise RuntimeError("then broke")

    metrics.add("half", half)
    assert await metrics.render() == "# HELP zz_one one\n# TYPE zz_one gauge\nzz_one 1\n"


async def test_sources_are_read_at_each_render() -> None:
    metrics = Metrics()
    counter = {"n": 0}

    def source(family: Family) -> None:
        counter["n"] += 1
        family("zz_n", "counter", "n", [("", float(counter["n"]))])

    metrics.add("n", source)
    assert (await metrics.render()).endswith("zz_n 1.0\n")
    assert (await metrics.render()).endswith("zz_n 2.0\n")


def auth_app() -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[TOKENS] = TokenIssuer(SECRET, 3600)

    async def who(request: web.Request) -> web.Response:
        p = request.get(PRINCIPAL)
        return web.json_response(None if p is None else [p.user, str(p.role), p.centre])

    async def me(request: web.Request) -> web.Response:
        p = principal(request)
        return web.json_response(p.user)

    for path in ("/api/health", "/api/login", "/api/cameras", "/metrics", "/ws", "/static/x"):
        app.router.add_get(path, who)
    app.router.add_get("/page", me)
    return app


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


async def test_public_paths_need_no_token(serve: Serve) -> None:
    client = await serve(auth_app())
    for path in ("/api/health", "/api/login", "/static/x"):
        resp = await client.get(path)
        assert resp.status == 200 and await resp.json() is None


@pytest.mark.parametrize("path", ["/api/cameras", "/metrics", "/ws"])
async def test_protected_paths_refuse_without_a_token(serve: Serve, path: str) -> None:
    client = await serve(auth_app())
    resp = await client.get(path)
    assert resp.status == 401
    assert await resp.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing bearer token (Authorization: Bearer TOKEN)",
        }
    }


async def test_a_valid_token_sets_the_principal(serve: Serve) -> None:
    client = await serve(auth_app())
    token = TokenIssuer(SECRET, 60).issue("wang", Role.OPERATOR, TOWN)
    for scheme in ("Bearer", "bearer", "BEARER"):
        resp = await client.get("/api/cameras", headers=bearer(token, scheme))
        assert await resp.json() == ["wang", "operator", TOWN]


async def test_bad_and_expired_tokens_say_why(serve: Serve) -> None:
    client = await serve(auth_app())
    expired = TokenIssuer(SECRET, 60).issue("wang", Role.OPERATOR, TOWN, ttl=-5)
    resp = await client.get("/metrics", headers=bearer(expired))
    assert (resp.status, (await resp.json())["error"]["message"]) == (401, "token expired")
    forged = TokenIssuer("x" * 40, 60).issue("wang", Role.ADMIN, COUNTY)
    resp = await client.get("/api/cameras", headers=bearer(forged))
    assert (await resp.json())["error"]["message"] == "token signature is not valid"
    resp = await client.get("/api/cameras", headers={"Authorization": "Basic dTpw"})
    assert (await resp.json())["error"]["message"].startswith("missing bearer token")
    resp = await client.get("/api/cameras", headers=bearer("   "))
    assert resp.status == 401


async def test_query_token_only_on_the_websocket_path(serve: Serve) -> None:
    client = await serve(auth_app())
    token = TokenIssuer(SECRET, 60).issue("li", Role.TERMINAL, TOWN)
    resp = await client.get("/ws", params={"token": token})
    assert await resp.json() == ["li", "terminal", TOWN]
    resp = await client.get("/api/cameras", params={"token": token})
    assert resp.status == 401


async def test_principal_outside_the_api_is_unauthenticated(serve: Serve) -> None:
    client = await serve(auth_app())
    resp = await client.get("/page")
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == "authentication required"
