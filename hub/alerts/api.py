"""Alerts: list (scoped), one alert, its snapshot, acknowledge; admins may raise one.

In a hub cluster `GET /api/alerts` lists every live node's alerts (`X-Zzhub-Partial` /
`X-Zzhub-Nodes-Missing` when one did not answer); one alert, its snapshot and its
acknowledgement are forwarded to the node that raised it (`hub.cluster.proxy`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from config.schema import Role
from hub.alerts.service import ALERTS, Alert, AlertKind, AlertStatus
from hub.cameras.service import CAMERAS
from hub.core.auth import principal
from hub.core.centres import CENTRES
from hub.core.cluster import link_of
from hub.core.errors import Forbidden, Invalid, NotFound
from hub.http.lists import mark
from hub.http.request import id_of, query_int, read_json
from hub.http.routes import owned

ACK_ROLES = {Role.OPERATOR, Role.ADMIN, Role.DISPATCHER}
MAX_LIMIT = 500


async def _visible_alert(request: web.Request) -> Alert:
    p = principal(request)
    raw = request.match_info["alert"]
    alert_id = id_of(raw)
    alert = await request.app[ALERTS].get(alert_id) if alert_id is not None else None
    if alert is None or not p.can_see(alert.centre):
        raise NotFound(f"no alert {raw!r} in your scope")
    return alert


async def list_alerts(request: web.Request) -> web.Response:
    p = principal(request)
    q = request.query
    status = q.get("status") or None
    if status is not None and status not in {s.value for s in AlertStatus}:
        raise Invalid("status must be open or acked")
    centre = q.get("centre") or None
    if centre is not None and not p.can_see(centre):
        raise Forbidden(f"centre {centre} is outside your scope")
    limit = query_int(request, "limit", 100, 1, MAX_LIMIT)
    alerts = await request.app[ALERTS].list(
        p.centre, status=status, camera=q.get("camera") or None, centre=centre, limit=limit
    )
    found = [a.to_json() for a in alerts]
    link = link_of(request.app)
    if not link.fans_out(request):
        return web.json_response(found)
    gathered = await link.gather(request, {"limit": str(limit)})
    # each node answers its own alerts: their ids differ (one shared counter)
    for answer in gathered.bodies:
        found += [a for a in (answer if isinstance(answer, list) else []) if isinstance(a, dict)]
    found.sort(key=_newest_first)
    resp = web.json_response(found[:limit])
    mark(gathered, resp)
    return resp


def _newest_first(alert: dict[str, Any]) -> tuple[float, int]:
    ts, alert_id = alert.get("ts"), alert.get("id")
    return (
        -float(ts) if isinstance(ts, int | float) else 0.0,
        -alert_id if isinstance(alert_id, int) else 0,
    )


async def get_alert(request: web.Request) -> web.Response:
    return web.json_response((await _visible_alert(request)).to_json())


async def snapshot(request: web.Request) -> web.Response:
    alert = await _visible_alert(request)
    jpeg = await request.app[ALERTS].snapshot(alert.id)
    if jpeg is None:
        raise NotFound(f"alert {alert.id} has no snapshot")
    return web.Response(
        body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


async def ack(request: web.Request) -> web.Response:
    p = principal(request)
    alert = await _visible_alert(request)
    if p.role not in ACK_ROLES:
        raise Forbidden("only operators, dispatchers and admins acknowledge alerts")
    acked, changed = await request.app[ALERTS].ack(alert.id, p.user)
    return web.json_response({**acked.to_json(), "acknowledged_now": changed})


async def raise_alert(request: web.Request) -> web.Response:
    """Admins (and tools holding an admin token): raise an alert by hand, e.g. disk_full."""
    p = principal(request)
    if p.role is not Role.ADMIN:
        raise Forbidden("only admins raise alerts by hand")
    body = await read_json(request)
    kind, camera = body.get("kind"), body.get("camera")
    if not isinstance(kind, str) or kind not in {k.value for k in AlertKind}:
        raise Invalid(f"kind must be one of {', '.join(k.value for k in AlertKind)}")
    details = body.get("details", {})
    if not isinstance(details, dict):
        raise Invalid("details must be an object")
    centre = body.get("centre", p.centre)
    if camera is not None:
        cam = request.app[CAMERAS].get(str(camera))
        if cam is None or not p.can_see(cam.centre):
            raise NotFound(f"no camera {camera!r} in your scope")
        centre = cam.centre
    if not isinstance(centre, str) or centre not in request.app[CENTRES] or not p.can_see(centre):
        raise Invalid("centre must be a centre in your scope")
    alert = await request.app[ALERTS].raise_alert(
        str(kind), None if camera is None else str(camera), centre, details
    )
    return web.json_response(alert.to_json(), status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_post("/api/alerts", raise_alert)
    one = owned("alert", "alert")
    app.router.add_get("/api/alerts/{alert}", one(get_alert))
    app.router.add_get("/api/alerts/{alert}/snapshot.jpg", one(snapshot))
    app.router.add_post("/api/alerts/{alert}/ack", one(ack))
