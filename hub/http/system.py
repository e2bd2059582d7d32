"""Health, login, identity, centres, stream counters and Prometheus metrics."""

from __future__ import annotations

import json
import time

from aiohttp import web

from config.schema import Role
from hub.cameras.service import CAMERAS, WHEP
from hub.cluster.service import CLUSTER
from hub.core.audit import AUDIT
from hub.core.auth import TOKENS, USERS, check_password, principal
from hub.core.centres import CENTRES
from hub.core.errors import ApiError
from hub.core.state import CONFIG, STARTED
from hub.core.turn import client_ice_servers_for
from hub.http.metrics import render_all_metrics


async def health(request: web.Request) -> web.Response:
    app = request.app
    cameras = app[CAMERAS].all()
    return web.json_response(
        {
            "status": "ok",
            "uptime": round(time.time() - app[STARTED], 1),
            "cameras": len(cameras),
            "online": sum(1 for c in cameras if c.status() == "online"),
            "viewers": len(app[WHEP]),
            # scale-out: "off" (no redis.url), "up", "connecting" or "degraded" (Redis away,
            # local features go on); `nodes`: the live hub nodes while up
            "cluster": str(app[CLUSTER].state) if CLUSTER in app else "off",
            "nodes": app[CLUSTER].to_json()["nodes"] if CLUSTER in app else [],
        }
    )


async def read_json(request: web.Request) -> dict[str, object]:
    if request.content_type != "application/json":
        raise ApiError(415, "expected Content-Type: application/json")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    name, password = body.get("user"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise ApiError(400, "user and password (strings) are required")
    user = request.app[USERS].get(name)
    peer = request.remote or ""
    if user is None or not check_password(user.password, password):
        if user is not None:  # unknown names are not logged (they would flood the chain)
            request.app[AUDIT].record(
                user.name, "login.failed", f"user:{user.name}", {"remote": peer}, user.centre
            )
        raise ApiError(401, "wrong user name or password")
    token = request.app[TOKENS].issue(user.name, user.role, user.centre)
    request.app[AUDIT].record(
        user.name, "login", f"user:{user.name}", {"remote": peer}, user.centre
    )
    return web.json_response(
        {"token": token, "user": user.name, "role": str(user.role), "centre": user.centre}
    )


async def me(request: web.Request) -> web.Response:
    p = principal(request)
    centre = request.app[CENTRES].get(p.centre)
    user = request.app[USERS].get(p.user)
    cfg = request.app[CONFIG]
    return web.json_response(
        {
            "user": p.user,
            "display_name": user.display_name if user else p.user,
            "role": str(p.role),
            "centre": p.centre,
            "centre_name": centre.name if centre else None,
            "ice_servers": client_ice_servers_for(cfg.webrtc, p.user),  # incl. TURN
        }
    )


async def centres(request: web.Request) -> web.Response:
    p = principal(request)
    tree = request.app[CENTRES]
    return web.json_response([c.to_json() for c in tree.visible_from(p.centre)])


async def streams(request: web.Request) -> web.Response:
    p = principal(request)
    out = []
    for cam in request.app[CAMERAS].visible_to(p.centre):
        out.append({"camera": cam.id, "centre": cam.centre, **cam.stream.stats()})
    return web.json_response(out)


async def cluster(request: web.Request) -> web.Response:
    """Admins: this node's view of the hub cluster — state, live nodes with their URLs,
    counters, and the ids it keeps that another node claimed first (`conflicts`)."""
    if principal(request).role is not Role.ADMIN:
        raise ApiError(403, "only admins see the cluster's state")
    c = request.app[CLUSTER]
    body = {
        **c.to_json(),
        "peers": [n.to_json() for n in sorted(c.peers.values(), key=lambda n: n.id)],
        "events": {"sent": c.sent, "received": c.received, "dropped": c.dropped},
        "reconnects": c.reconnects,
        "swept": c.swept,
        "conflicts_total": c.conflicts_total,
    }
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    principal(request)
    text = await render_all_metrics(request.app)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/centres", centres)
    app.router.add_get("/api/streams", streams)
    app.router.add_get("/api/cluster", cluster)
    app.router.add_get("/metrics", metrics)
