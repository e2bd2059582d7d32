"""Calls over HTTP and WebSocket: place, accept, decline, cancel, hang up; history.

Also the small request helpers the roll-call endpoints share (JSON bodies checked by a pydantic
model, paging, domain refusals turned into WebSocket errors).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.calls.model import Call
from hub.calls.service import CALLS
from hub.core.auth import USERS, Principal, principal
from hub.core.centres import CENTRES, Centre
from hub.core.cluster import link_of
from hub.core.errors import Invalid, NotFound
from hub.core.presence import PRESENCE
from hub.core.scopes import call_targets
from hub.http.lists import (
    merged_list,
    merged_page,
    with_peers,
)
from hub.http.request import paging, parse_body
from hub.http.routes import owned
from hub.http.ws import WS, NoData, Request, WsClient

R = TypeVar("R", bound=Request)


class PlaceCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centres: list[str] = Field(default=[], max_length=200)
    users: list[str] = Field(default=[], max_length=100)
    timeout: float | None = Field(None, ge=1, le=600, description="seconds; default from config")
    title: str = Field("", max_length=200)


class CallRef(Request):
    call: str = Field(min_length=1, max_length=64)


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
            raise NotFound(f"no user {name!r}")
        out.append((name, centre))
    return out


async def place_call(request: web.Request) -> web.Response:
    p = principal(request)
    call_targets(p, request.app[CENTRES], [])  # role check before the body is read
    body = await parse_body(request, PlaceCall)
    bad = [c for c in body.centres if not c.isdigit() or len(c) not in (6, 9, 12)]
    if bad:
        raise Invalid(f"centres: {bad[0]!r} is not a 6, 9 or 12 digit centre code")
    people = _people(request, body.users)
    tree = request.app[CENTRES]
    centres = call_targets(p, tree, body.centres)
    call_targets(p, tree, [c.code for _, c in people])
    if any(name == p.user for name, _ in people):
        raise Invalid("you cannot call yourself")
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
    r.add_get("/api/calls/{call}", owned("call", "call")(get_call))
    for action in ("accept", "decline", "cancel", "hangup"):
        r.add_post(f"/api/calls/{{call}}/{action}", owned("call", "call")(_action(action)))


# -- WebSocket -----------------------------------------------------------------------------
def register_ws(app: web.Application) -> None:
    router = app[WS]

    def ws_action(name: str) -> Callable[[WsClient, CallRef], Awaitable[dict[str, Any]]]:
        async def act(client: WsClient, req: CallRef) -> dict[str, Any]:
            # a call another hub node holds is answered there
            path = f"/api/calls/{req.call}/{name}"
            owner = await link_of(app).on_behalf(client.principal, "call", req.call, path)
            if owner is not None:
                return dict(owner)
            method: Callable[[str, Principal], Awaitable[Call]] = getattr(app[CALLS], name)
            return (await method(req.call, client.principal)).to_json()

        return act

    async def pending(client: WsClient, _: NoData) -> list[Any]:
        local = app[CALLS].pending_for(client.principal)
        return await with_peers(app, client.principal, "/api/calls/pending", local)

    for action in ("accept", "decline", "cancel", "hangup"):
        router.register(f"call.{action}", CallRef, ws_action(action))
    router.register("call.pending", NoData, pending)
