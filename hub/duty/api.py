"""Duty checks (值班查岗): answer a prompt, list my pending ones, ask now, daily report."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiohttp import web

from config.schema import Role
from hub.core.auth import principal
from hub.core.errors import Forbidden, Invalid, NotFound
from hub.duty.service import DUTY
from hub.http.request import id_of, read_json

SUPERVISORS = {Role.ADMIN, Role.DISPATCHER}
REPORT_ROLES = {Role.ADMIN, Role.DISPATCHER, Role.OPERATOR}


def _check_id(request: web.Request) -> int:
    raw = request.match_info["check"]
    check_id = id_of(raw)
    if check_id is None:
        raise NotFound(f"no duty check {raw!r}")
    return check_id


async def answer(request: web.Request) -> web.Response:
    p = principal(request)
    check = await request.app[DUTY].answer(_check_id(request), p.user)
    return web.json_response(check.to_json())


async def pending(request: web.Request) -> web.Response:
    p = principal(request)
    checks = await request.app[DUTY].pending(p.user)
    return web.json_response([c.to_json() for c in checks])


async def ask(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role not in SUPERVISORS:
        raise Forbidden("only dispatchers and admins ask for a duty check")
    body = await read_json(request)
    user = body.get("user")
    duty = request.app[DUTY]
    target = duty.users.get(user) if isinstance(user, str) else None
    if target is None or not p.can_see(target.centre):
        raise NotFound(f"no user {user!r} in your scope")
    check = await duty.ask(target.name, asked_by=p.user)
    return web.json_response(check.to_json(), status=201)


async def report(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role not in REPORT_ROLES:
        raise Forbidden("duty reports are for operators, dispatchers and admins")
    duty = request.app[DUTY]
    raw = request.query.get("date")
    try:
        day = (
            dt.date.fromisoformat(raw)
            if raw
            else dt.datetime.now(ZoneInfo(duty.config.timezone)).date()
        )
    except ValueError:
        raise Invalid("date must be YYYY-MM-DD") from None
    return web.json_response(await duty.report(p.centre, day))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/duty/checks", pending)
    app.router.add_post("/api/duty/checks", ask)
    app.router.add_get("/api/duty/report", report)
    app.router.add_post("/api/duty/{check}/answer", answer)
