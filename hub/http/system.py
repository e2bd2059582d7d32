"""Health, login, identity, centres, the cluster's state and Prometheus metrics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from aiohttp import web

from config.schema import Role
from hub.core.audit import AUDIT
from hub.core.auth import THROTTLE, TOKENS, USERS, check_password, principal
from hub.core.centres import CENTRES
from hub.core.cluster import link_of
from hub.core.errors import Forbidden, Invalid, NotFound, TooMany, Unauthenticated
from hub.core.revocations import REVOCATIONS
from hub.core.state import CONFIG, STARTED
from hub.core.turn import client_ice_servers_for
from hub.http.metrics import METRICS
from hub.http.request import read_json

# parts of /api/health each slice adds: () -> {field: value}
HEALTH = web.AppKey("health", list[Callable[[], dict[str, object]]])


async def health(request: web.Request) -> web.Response:
    """Public: the hub is up; each slice adds its counts (`HEALTH`), then the cluster state
    ("off" without `redis.url`, else "up", "connecting" or "degraded") and the live nodes."""
    app = request.app
    body: dict[str, object] = {"status": "ok", "uptime": round(time.time() - app[STARTED], 1)}
    for part in app[HEALTH]:
        body.update(part())
    body.update(link_of(app).status())
    return web.json_response(body)


async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    name, password = body.get("user"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise Invalid("user and password (strings) are required")
    user = request.app[USERS].get(name)
    peer = request.remote or ""
    throttle = request.app[THROTTLE]
    wait = throttle.wait(name, peer)
    if wait > 0:
        message = f"too many wrong passwords: try again in {math.ceil(wait)} s"
        raise TooMany(message, retry_after=wait)
    if user is None or not check_password(user.password, password):
        throttle.failed(name, peer)
        if user is not None:  # unknown names are not logged (they would flood the chain)
            request.app[AUDIT].record(
                user.name, "login.failed", f"user:{user.name}", {"remote": peer}, user.centre
            )
        raise Unauthenticated("wrong user name or password")
    throttle.succeeded(user.name)
    token = request.app[TOKENS].issue(user.name, user.role, user.centre)
    request.app[AUDIT].record(
        user.name, "login", f"user:{user.name}", {"remote": peer}, user.centre
    )
    return web.json_response(
        {"token": token, "user": user.name, "role": str(user.role), "centre": user.centre}
    )


async def logout(request: web.Request) -> web.Response:
    """Sign out every token of the caller (this one included), on every node."""
    p = principal(request)
    await request.app[REVOCATIONS].revoke(p.user)
    request.app[AUDIT].record(p.user, "logout", f"user:{p.user}", {}, p.centre)
    return web.json_response({"user": p.user, "signed_out": True})


async def revoke_user(request: web.Request) -> web.Response:
    """Admins: sign out every token of a user of their scope (a lost phone, a user who left)."""
    p = principal(request)
    name = request.match_info["user"]
    user = request.app[USERS].get(name)
    if p.role is not Role.ADMIN:
        raise Forbidden("only admins sign other users out")
    if user is None or not p.can_see(user.centre):
        raise NotFound(f"no user {name!r} in your scope")
    await request.app[REVOCATIONS].revoke(user.name)
    request.app[AUDIT].record(p.user, "user.revoke", f"user:{user.name}", {}, user.centre)
    return web.json_response({"user": user.name, "signed_out": True})


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


async def cluster(request: web.Request) -> web.Response:
    """Admins: this node's view of the hub cluster — state, live nodes with their URLs,
    counters, and the ids it keeps that another node claimed first (`conflicts`)."""
    if principal(request).role is not Role.ADMIN:
        raise Forbidden("only admins see the cluster's state")
    return web.json_response(link_of(request.app).admin_json())


async def metrics(request: web.Request) -> web.Response:
    """Admins (Prometheus holds an admin token): every camera and counter of the hub."""
    if principal(request).role is not Role.ADMIN:
        raise Forbidden("metrics are for admins (give Prometheus an admin token)")
    text = await request.app[METRICS].render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/login", login)
    app.router.add_get("/api/me", me)
    app.router.add_post("/api/logout", logout)
    app.router.add_post("/api/users/{user}/revoke", revoke_user)
    app.router.add_get("/api/centres", centres)
    app.router.add_get("/api/cluster", cluster)
    app.router.add_get("/metrics", metrics)
