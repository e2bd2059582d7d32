"""The audit log for admins: rows of their centre and the centres below, newest first."""

from __future__ import annotations

from aiohttp import web

from config.schema import Role
from hub.core.audit import AUDIT
from hub.core.auth import principal
from hub.core.errors import Forbidden
from hub.http.request import query_int

MAX_LIMIT = 1000


async def list_audit(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role is not Role.ADMIN:
        raise Forbidden("the audit log is for admins")
    q = request.query
    limit = query_int(request, "limit", 100, 1, MAX_LIMIT)
    before = query_int(request, "before", 0, 1, 2**62) or None
    rows = await request.app[AUDIT].rows(
        p.centre,
        limit=limit,
        before=before,
        action=q.get("action") or None,
        actor=q.get("actor") or None,
    )
    return web.json_response(rows)


async def verify_audit(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role is not Role.ADMIN:
        raise Forbidden("the audit log is for admins")
    checked, broken = await request.app[AUDIT].verify()
    return web.json_response(
        {
            "rows": checked,
            "ok": broken is None,
            "first_broken": None
            if broken is None
            else {"id": broken.row_id, "reason": broken.reason},
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/audit", list_audit)
    app.router.add_get("/api/audit/verify", verify_audit)
