"""Hostile input on every route and every WebSocket message type, generated from the app's own
route table: a route added tomorrow is covered the day it is added.

Each case sends one malformed request (absurd path segments, traversal, control characters,
non-ASCII digits, numbers too large for SQLite, reversed or absurd time ranges, wrong JSON
types, deep nesting, lone surrogates, the wrong Content-Type) with tokens of several roles.
Expected: an answer within a few seconds, never a 5xx, and for /api an error in the JSON error
shape; on the WebSocket an error frame and the socket still open.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from config.schema import HubConfig
from hub.app import build_app
from hub.http.ws import WS
from tests.conftest import COUNTY, TOWN, VILLAGE

Client = TestClient[Any, Any]

SEGMENTS = [
    "nope",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "-1",
    "9" * 30,
    "%C2%B2",  # ² : a digit to str.isdigit(), not to int()
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded
    "x" * 300,
    "4109",
]
QUERIES = [
    "limit=%C2%B2&before=%C2%B2&page=%C2%B2&per_page=%C2%B2",
    "limit=99999999999999999999999&before=99999999999999999999999&page=1&per_page=1",
    "page=-1&per_page=1000000000",
    "from=nan&to=9999-12-31&start=1e23&at=inf",
    "from=2030-01-01&to=2020-01-01&camera=%00&tag=..%2Fx&centre=4109",
    "status=%00&level=%ED%A0%80&township=4109&kind=x&pending=1",
]
FIELDS = (
    "title text name category centres centre users user subtree level kind camera cameras "
    "layout note outcome satisfaction timeout attachment ids auto action start position_ms "
    "speed township queue urgent status code room tag from to limit"
).split()


def deep(n: int) -> str:
    return "[" * n + "]" * n


BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"[]"),
    ("application/json", b'"a string"'),
    ("application/json", b"{not json"),
    ("application/json", deep(100_000).encode()),
    ("application/json", b'{"title": "\\ud800", "text": "\\udfff", "name": "\\ud800x"}'),
    ("application/json", json.dumps({f: [["x"]] for f in FIELDS}).encode()),
    ("application/json", json.dumps({f: {"$gt": 1} for f in FIELDS}).encode()),
    ("application/json", json.dumps({f: 10**30 for f in FIELDS}).encode()),
    ("application/json", json.dumps({f: -1 for f in FIELDS}).encode()),
    ("application/json", json.dumps({f: "\x00\x1b[2J" + "é" * 5000 for f in FIELDS}).encode()),
    ("text/plain", b"hello"),
    ("application/sdp", b"v=0\r\n" + b"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" * 1000),
]
ROLES = [("admin", COUNTY, "admin"), ("terminal", VILLAGE, "village-t"), ("operator", TOWN, "x")]
SKIP = {"/ws", "/", "/static/{filename}"}


@pytest.fixture
async def client(hub_config: HubConfig) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(hub_config), host="127.0.0.1")) as c:
        yield c


def routes(app: web.Application) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its {params}) of every route but the console's files."""
    out = []
    for resource in app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path")
        if not isinstance(template, str) or template in SKIP or template.startswith("/static"):
            continue
        params = [p.split(":")[0] for p in _params(template)]
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            out.append((route.method, template, params))
    return sorted(set((m, t, tuple(p)) for m, t, p in out))  # type: ignore[misc]


def _params(template: str) -> list[str]:
    found, i = [], 0
    while (start := template.find("{", i)) >= 0:
        end = template.index("}", start)
        found.append(template[start + 1 : end])
        i = end + 1
    return found


def fill(template: str, params: list[str], value: str) -> str:
    path = template
    for p in params:
        path = path.replace("{" + p + "}", value)
    return path


def cases(app: web.Application) -> list[tuple[str, str, str, bytes]]:
    out: list[tuple[str, str, str, bytes]] = []
    for method, template, params in routes(app):
        for seg in SEGMENTS if params else ["-"]:
            path = fill(template, list(params), seg)
            out.append((method, path, "", b""))
            for query in QUERIES:
                out.append((method, f"{path}?{query}", "", b""))
            if method in ("POST", "PUT", "PATCH"):
                for ctype, body in BODIES:
                    out.append((method, path, ctype, body))
    return out


async def test_the_matrix_is_big_and_covers_every_route(client: Client) -> None:
    app = client.app
    assert len(routes(app)) >= 80
    assert len(cases(app)) >= 500


async def test_no_route_answers_5xx_or_hangs(client: Client, token: Callable[..., str]) -> None:
    failures: list[str] = []
    all_cases = cases(client.app)
    for n, (method, path, ctype, body) in enumerate(all_cases):
        role, centre, user = ROLES[n % len(ROLES)]
        headers = {"Authorization": f"Bearer {token(role, centre, user)}"}
        if ctype:
            headers["Content-Type"] = ctype
        try:
            async with asyncio.timeout(10):
                resp = await client.request(
                    method, path, data=io.BytesIO(body) if body else None, headers=headers
                )
                text = await resp.text()
        except TimeoutError:
            failures.append(f"{method} {path[:80]} [{ctype}]: no answer in 10 s")
            continue
        if resp.status >= 500:
            failures.append(
                f"{method} {path[:80]} [{ctype} {body[:30]!r}]: {resp.status} {text[:120]}"
            )
        elif resp.status >= 400 and path.startswith("/api"):
            try:
                error = json.loads(text)["error"]
                assert isinstance(error["code"], str) and isinstance(error["message"], str)
            except (ValueError, KeyError, TypeError, AssertionError):
                failures.append(f"{method} {path[:80]}: {resp.status} not the JSON error shape")
    assert failures == [], f"{len(failures)} of {len(all_cases)} cases:\n" + "\n".join(
        failures[:60]
    )


async def ask(ws: Any, envelope: dict[str, Any]) -> dict[str, Any]:
    """Send one request and wait for its answer; past the socket's rate limit, send it again."""
    async with asyncio.timeout(20):
        while True:
            await ws.send_str(json.dumps(envelope))
            while True:
                msg: dict[str, Any] = await ws.receive_json()
                if msg.get("re") == envelope["id"]:
                    return msg
                if msg.get("type") == "error" and msg["error"]["code"] == "rate_limited":
                    await asyncio.sleep(0.25)
                    break


async def test_every_websocket_type_refuses_bad_data_and_stays_open(
    client: Client, token: Callable[..., str]
) -> None:
    types = client.app[WS].types()
    assert len(types) >= 8
    datas: list[Any] = [
        None,
        [],
        "x",
        {"call": ["x"], "rollcall": {"a": 1}, "session": 10**30, "status": "\x00"},
        {k: "\ud800" for k in ("call", "rollcall", "session", "status", "centre", "user")},
        json.loads(deep(50)),
    ]
    for role, centre, user in ROLES:
        async with client.ws_connect(f"/ws?token={quote(token(role, centre, user))}") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            n = 0
            for type_ in types:
                for data in datas:
                    n += 1
                    envelope = {"v": 1, "id": f"r{n}", "type": type_, "data": data}
                    try:
                        msg = await ask(ws, envelope)
                    except TimeoutError:
                        pytest.fail(f"{role}: no answer to {str(envelope)[:200]}")
                    assert msg["type"] in ("reply", "error"), msg
            await ws.send_str(deep(5000))  # deeper than any parser recursion: not an envelope
            async with asyncio.timeout(10):
                msg = await ws.receive_json()
            assert msg["type"] == "error"
            assert not ws.closed
