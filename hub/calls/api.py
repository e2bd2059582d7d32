"""Calls over HTTP and WebSocket: place, accept, decline, cancel, hang up; history.

Also the small request helpers the roll-call endpoints share (JSON bodies checked by a pydantic
model, paging, domain refusals turned into WebSocket errors).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.calls.model import Call
from hub.calls.scope import call_targets
from hub.calls.service import CALLS, Calls
from hub.calls.store import CallHistory
from hub.cluster.proxy import (
    CLUSTER_PROXY,
    claimer,
    max_per_page,
    merged_list,
    merged_page,
    with_peers,
)
from hub.core.auth import USERS, Principal, principal
from hub.core.centres import CENTRES, Centre
from hub.core.db import DB
from hub.core.errors import ApiError
from hub.core.events import EVENTS
from hub.core.presence import PRESENCE
from hub.core.state import CONFIG
from hub.http.system import read_json
from hub.http.ws import WS, Request, WsClient, WsError
from hub.rooms.model import ROOMS

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=Request)

CODE = r"^\d{6}(\d{3}(\d{3})?)?$"
MAX_PER_PAGE = 100


class PlaceCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centres: list[str] = Field(default=[], max_length=200)
    users: list[str] = Field(default=[], max_length=100)
    timeout: float | None = Field(None, ge=1, le=600, description="seconds; default from config")
    title: str = Field("", max_length=200)


class CallRef(Request):
    call: str = Field(min_length=1, max_length=64)


class NoData(Request):
    pass


# -- shared helpers ------------------------------------------------------------------------
async def parse_body(request: web.Request, model: type[M]) -> M:
    body = await read_json(request)
    try:
        return model.model_validate(body)
    except ValidationError as err:
        parts = []
        for e in err.errors()[:5]:
            loc = ".".join(str(p) for p in e["loc"]) or "(body)"
            parts.append(
                f"{loc}: {'unknown field' if e['type'] == 'extra_forbidden' else e['msg']}"
            )
        raise ApiError(400, "; ".join(parts)) from None


def paging(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "20"))
    except ValueError:
        raise ApiError(400, "page and per_page must be whole numbers") from None
    most = max_per_page(request, MAX_PER_PAGE)  # more for a peer merging its list (cluster)
    if page < 1 or not 1 <= per_page <= most:
        raise ApiError(400, f"page must be >= 1 and per_page between 1 and {most}")
    return page, per_page


def ws_refusals(
    fn: Callable[[WsClient, R], Awaitable[dict[str, Any] | list[Any]]],
) -> Callable[[WsClient, R], Awaitable[dict[str, Any] | list[Any]]]:
    """Domain refusals (`ApiError`) become WebSocket errors with the same code and message."""

    async def handle(client: WsClient, req: R) -> dict[str, Any] | list[Any]:
        try:
            return await fn(client, req)
        except ApiError as err:
            raise WsError(err.code, err.message) from None

    return handle


# -- HTTP ----------------------------------------------------------------------------------
def _people(request: web.Request, names: list[str]) -> list[tuple[str, Centre]]:
    app = request.app
    out = []
    for name in dict.fromkeys(names):
        configured = app[USERS].get(name)
        member = app[PRESENCE].get(name)
        code = configured.centre if configured else member.centre if member else None
        centre = app[CENTRES].get(code) if code else None
        if centre is None:
            raise ApiError(404, f"no user {name!r}")
        out.append((name, centre))
    return out


async def place_call(request: web.Request) -> web.Response:
    p = principal(request)
    call_targets(p, request.app[CENTRES], [])  # role check before the body is read
    body = await parse_body(request, PlaceCall)
    bad = [c for c in body.centres if not c.isdigit() or len(c) not in (6, 9, 12)]
    if bad:
        raise ApiError(400, f"centres: {bad[0]!r} is not a 6, 9 or 12 digit centre code")
    people = _people(request, body.users)
    tree = request.app[CENTRES]
    centres = call_targets(p, tree, body.centres)
    call_targets(p, tree, [c.code for _, c in people])
    if any(name == p.user for name, _ in people):
        raise ApiError(400, "you cannot call yourself")
    call = await request.app[CALLS].place(
        p, centres, people, timeout=body.timeout, title=body.title
    )
    return web.json_response(call.to_json(), status=201, headers={"Location": _path(call)})


async def list_calls(request: web.Request) -> web.Response:
    """Newest first; in a hub cluster the calls of every live node (`partial` when one did
    not answer)."""
    p = principal(request)
    page, per_page = paging(request)

    async def local(page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        calls, total = await request.app[CALLS].page(p, page, per_page)
        return [c.to_json() for c in calls], total

    return await merged_page(
        request, page, per_page, local, lambda c: (-float(c["created"]), str(c["id"]))
    )


async def pending_calls(request: web.Request) -> web.Response:
    """The rings the caller could answer now, on every live node (WS `call.pending`)."""
    local = request.app[CALLS].pending_for(principal(request))
    return await merged_list(request, local, key=None)


async def get_call(request: web.Request) -> web.Response:
    call = await request.app[CALLS].get(request.match_info["call"], principal(request))
    return web.json_response(call.to_json())


def _action(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def act(request: web.Request) -> web.Response:
        calls = request.app[CALLS]
        method: Callable[[str, Principal], Awaitable[Call]] = getattr(calls, name)
        call = await method(request.match_info["call"], principal(request))
        return web.json_response(call.to_json())

    act.__name__ = f"{name}_call"
    return act


def _path(call: Call) -> str:
    return f"/api/calls/{call.id}"


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/calls", place_call)
    r.add_get("/api/calls", list_calls)
    r.add_get("/api/calls/pending", pending_calls)  # before the {call} route
    r.add_get("/api/calls/{call}", get_call)
    for action in ("accept", "decline", "cancel", "hangup"):
        r.add_post(f"/api/calls/{{call}}/{action}", _action(action))


# -- WebSocket -----------------------------------------------------------------------------
def register_ws(app: web.Application) -> None:
    router = app[WS]

    def ws_action(name: str) -> Callable[[WsClient, CallRef], Awaitable[dict[str, Any]]]:
        async def act(client: WsClient, req: CallRef) -> dict[str, Any]:
            proxy = app.get(CLUSTER_PROXY)
            if proxy is not None:  # a call another hub node holds: answered there
                path = f"/api/calls/{req.call}/{name}"
                owner = await proxy.on_behalf(app, client.principal, "call", req.call, path)
                if owner is not None:
                    return dict(owner)
            method: Callable[[str, Principal], Awaitable[Call]] = getattr(app[CALLS], name)
            return (await method(req.call, client.principal)).to_json()

        return act

    async def pending(client: WsClient, _: NoData) -> list[Any]:
        local = app[CALLS].pending_for(client.principal)
        return await with_peers(app, client.principal, "/api/calls/pending", local)

    for action in ("accept", "decline", "cancel", "hangup"):
        router.register(f"call.{action}", CallRef, ws_refusals(ws_action(action)))
    router.register("call.pending", NoData, ws_refusals(pending))


# -- lifetime ------------------------------------------------------------------------------
async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG].calls
    calls = Calls(
        CallHistory(app[DB]),
        app[ROOMS],
        app[PRESENCE],
        app[EVENTS],
        ring_timeout=cfg.ring_timeout,
        max_live=cfg.max_live,
        claim=claimer(app),
    )
    await calls.start()
    app[CALLS] = calls
    yield
    await calls.close()
