"""Roll call (一键查岗) over HTTP and WebSocket: run, answer, close; ledger, CSV, summary,
snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from config.schema import Level, Role
from hub.core.auth import Principal, principal
from hub.core.centres import CENTRES, UPPER_CODE
from hub.core.cluster import link_of
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound, Unsupported
from hub.core.scopes import rollcall_targets
from hub.http.lists import merged_list, merged_page, with_peers
from hub.http.request import paging, parse_body
from hub.http.routes import owned
from hub.http.ws import WS, NoData, Request, WsClient
from hub.rollcalls.model import RollCall
from hub.rollcalls.report import ledger_csv, parse_time, summary
from hub.rollcalls.service import ROLLCALLS

ID = "{rollcall:[A-Za-z0-9_-]{1,64}}"


class RunRollCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centres: list[str] = Field(default=[], max_length=1000)
    township: str | None = Field(None, pattern=UPPER_CODE)
    level: Level = Level.VILLAGE
    timeout: float | None = Field(None, ge=1, le=3600, description="seconds; default config")
    label: str = Field("", max_length=200)


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto: bool = False


class AnswerRef(Request):
    rollcall: str = Field(min_length=1, max_length=64)
    auto: bool = False


def _entry_filter(rc: RollCall, p: Principal) -> Callable[[str], bool] | None:
    """Whoever sees the centre that ran it sees every entry; a checked centre sees its own."""
    return None if p.can_see(rc.started_by_centre) else p.can_see


def _reader(request: web.Request) -> Principal:
    p = principal(request)
    if p.role is Role.PETITIONER:
        raise Forbidden("a petitioner link cannot read roll calls")
    return p


async def run_rollcall(request: web.Request) -> web.Response:
    p = principal(request)
    tree = request.app[CENTRES]
    rollcall_targets(p, tree, [])  # role check before the body is read
    body = await parse_body(request, RunRollCall)
    if body.township and body.centres:
        raise Invalid("give either centres or township, not both")
    if body.township:
        parent = rollcall_targets(p, tree, [body.township])[0]
        codes = [c.code for c in tree.visible_from(parent.code) if c.level is body.level]
        if not codes:
            raise Invalid(f"{parent.code} ({parent.name}) has no {body.level} centres")
        label = body.label or f"{parent.name} 全部{'村' if body.level is Level.VILLAGE else '镇'}"
    elif body.centres:
        codes = body.centres
        label = body.label
    else:
        raise Invalid("name the centres to check, or a township and a level")
    centres = rollcall_targets(p, tree, codes)
    label = label or "、".join(c.name for c in centres)[:200]
    rc = await request.app[ROLLCALLS].run(p, centres, timeout=body.timeout, label=label)
    return web.json_response(
        rc.to_json(), status=201, headers={"Location": f"/api/rollcalls/{rc.id}"}
    )


async def list_rollcalls(request: web.Request) -> web.Response:
    """Newest first; in a hub cluster the roll calls of every live node (`partial` when one
    did not answer)."""
    p = _reader(request)
    page, per_page = paging(request)

    async def local(page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        rcs, total = await request.app[ROLLCALLS].page(p, page, per_page)
        return [rc.to_json(_entry_filter(rc, p), entries=False) for rc in rcs], total

    return await merged_page(
        request, page, per_page, local, lambda rc: (-float(rc["started"]), str(rc["id"]))
    )


async def _visible(request: web.Request) -> tuple[RollCall, Principal]:
    p = _reader(request)
    rc = await request.app[ROLLCALLS].get(request.match_info["rollcall"], p)
    return rc, p


async def get_rollcall(request: web.Request) -> web.Response:
    rc, p = await _visible(request)
    return web.json_response(rc.to_json(_entry_filter(rc, p)))


async def rollcall_csv(request: web.Request) -> web.Response:
    rc, p = await _visible(request)
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(rc.started))
    return web.Response(
        body=ledger_csv(rc, _entry_filter(rc, p)),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="rollcall-{stamp}-{rc.id}.csv"'},
    )


async def answer(request: web.Request) -> web.Response:
    p = principal(request)
    auto = False
    if request.can_read_body:
        auto = (await parse_body(request, Answer)).auto
    rc = await request.app[ROLLCALLS].answer(request.match_info["rollcall"], p, auto=auto)
    return web.json_response(rc.to_json(_entry_filter(rc, p)))


async def close(request: web.Request) -> web.Response:
    p = principal(request)
    rc = await request.app[ROLLCALLS].finish(request.match_info["rollcall"], p)
    return web.json_response(rc.to_json())


async def get_snapshot(request: web.Request) -> web.Response:
    rc, p = await _visible(request)
    code = request.match_info["centre"]
    if not (p.can_see(rc.started_by_centre) or p.can_see(code)):
        raise NotFound(f"no snapshot of {code} in your scope")
    jpeg = await request.app[ROLLCALLS].read_snapshot(rc, code)
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def put_snapshot(request: web.Request) -> web.Response:
    """A terminal uploads a frame of its own camera for its centre's (answered) entry."""
    rc, p = await _visible(request)
    code = request.match_info["centre"]
    entry = rc.entries.get(code)
    if entry is None or not p.can_see(code):
        raise NotFound(f"roll call {rc.id} did not check {code}")
    if p.role is not Role.ADMIN and (p.centre != code or p.role is not Role.TERMINAL):
        raise Forbidden("only a terminal of that centre uploads its snapshot")
    if not entry.answered:
        raise Conflict(f"{code} has not answered this roll call")
    if request.content_type != "image/jpeg":
        raise Unsupported("send the snapshot as Content-Type: image/jpeg")
    path = await request.app[ROLLCALLS].attach_snapshot(rc.id, code, await request.read())
    return web.json_response({"snapshot": path}, status=201)


async def pending_checks(request: web.Request) -> web.Response:
    """The checks the caller's centre has not answered yet, on every live node (WS
    `rollcall.pending`)."""
    local = request.app[ROLLCALLS].pending_for(principal(request))
    return await merged_list(request, local, key=None)


async def rollcall_summary(request: web.Request) -> web.Response:
    p = _reader(request)
    township = request.query.get("township", "")
    if township and not (township.isdigit() and len(township) in (6, 9)):
        raise Invalid("township must be a 9-digit township (or 6-digit county) code")
    if township and not p.can_see(township):
        raise Forbidden(f"{township} is not at or below your centre {p.centre}")
    scope = township or p.centre
    start = parse_time(request.query.get("from")) or 0.0
    end = parse_time(request.query.get("to"), end=True) or time.time() + 1.0
    totals, never = await request.app[ROLLCALLS].ledger.summary_rows(scope, start, end)
    return web.json_response(
        {"from": start, "to": end, "townships": summary(request.app[CENTRES], totals, never)}
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/rollcalls", run_rollcall)
    r.add_get("/api/rollcalls", list_rollcalls)
    r.add_get("/api/rollcalls/summary", rollcall_summary)
    r.add_get("/api/rollcalls/pending", pending_checks)
    one = owned("rollcall", "rollcall")
    r.add_get(f"/api/rollcalls/{ID}.csv", one(rollcall_csv))
    r.add_get(f"/api/rollcalls/{ID}", one(get_rollcall))
    r.add_post(f"/api/rollcalls/{ID}/answer", one(answer))
    r.add_post(f"/api/rollcalls/{ID}/close", one(close))
    snapshot = f"/api/rollcalls/{ID}/centres/{{centre:[0-9]{{6,12}}}}/snapshot.jpg"
    r.add_get(snapshot, one(get_snapshot))
    r.add_post(snapshot, one(put_snapshot))


def register_ws(app: web.Application) -> None:
    router = app[WS]

    async def ws_answer(client: WsClient, req: AnswerRef) -> dict[str, Any]:
        p = client.principal
        # a roll call another hub node runs is answered there
        path = f"/api/rollcalls/{req.rollcall}/answer"
        body = {"auto": req.auto}
        owner = await link_of(app).on_behalf(p, "rollcall", req.rollcall, path, body)
        if owner is not None:
            return dict(owner)
        rc = await app[ROLLCALLS].answer(req.rollcall, p, auto=req.auto)
        return rc.to_json(_entry_filter(rc, p))

    async def pending(client: WsClient, _: NoData) -> list[Any]:
        local = app[ROLLCALLS].pending_for(client.principal)
        return await with_peers(app, client.principal, "/api/rollcalls/pending", local)

    router.register("rollcall.answer", AnswerRef, ws_answer)
    router.register("rollcall.pending", NoData, pending)
