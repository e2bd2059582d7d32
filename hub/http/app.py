"""The HTTP face of the hub: error and authentication middleware, the WebSocket router, the
system endpoints (health, login, identity, centres, cluster state, audit, metrics) and the
console's files.

`setup` runs right after the core's, before every slice: the slices register their routes,
WebSocket messages, health parts and metric families on what it creates.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from aiohttp import web

from config.schema import HubConfig
from hub.core.auth import THROTTLE
from hub.core.events import EVENTS, Event
from hub.core.presence import PRESENCE
from hub.http import audit, system
from hub.http.errors import error_middleware
from hub.http.metrics import METRICS, Family, Metrics, label
from hub.http.middleware import auth_middleware
from hub.http.system import HEALTH
from hub.http.ws import WS, WsRouter, register_builtin, ws_handler

WEB_ROOT = Path(__file__).parents[1] / "web"


def setup(app: web.Application, config: HubConfig) -> None:
    app.middlewares.extend([error_middleware, auth_middleware])
    app[WS] = WsRouter()
    register_builtin(app[WS], app[PRESENCE])
    app[EVENTS].taps.connect(lambda event: _signed_out(app[WS], event))
    app.on_shutdown.append(_close_websockets)
    app[HEALTH] = []
    app[METRICS] = Metrics()
    app[METRICS].add("websockets and events", lambda family: _families(app, family))
    system.add_routes(app)
    audit.add_routes(app)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/", _console)
    app.router.add_static("/static/", WEB_ROOT, show_index=False)


def _signed_out(router: WsRouter, event: Event) -> None:
    """A sign-out (here or on another node): the user's open sockets close too."""
    user = event.data.get("user")
    if event.topic == "auth.revoked" and isinstance(user, str):
        router.sign_out(user)


async def _console(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


async def _close_websockets(app: web.Application) -> None:
    await app[WS].close_all()


def _families(app: web.Application, family: Family) -> None:
    clients = app[WS].clients
    by_role = Counter(str(c.principal.role) for c in clients)
    family(
        "zzhub_ws_clients",
        "gauge",
        "Open WebSocket clients, by role.",
        [(f"role={label(r)}", float(n)) for r, n in sorted(by_role.items())],
    )
    family(
        "zzhub_ws_rate_limited_total",
        "counter",
        "Messages refused by the rate limit on open WebSockets.",
        [("", float(sum(c.limited for c in clients)))],
    )
    bus = app[EVENTS]
    family("zzhub_events_published_total", "counter", "Events published.", [("", bus.published)])
    throttle = app[THROTTLE]
    family(
        "zzhub_login_failed_total",
        "counter",
        "Wrong passwords.",
        [("", float(throttle.failed_total))],
    )
    family(
        "zzhub_login_refused_total",
        "counter",
        "Logins refused for repeated wrong passwords (429).",
        [("", float(throttle.refused_total))],
    )
    family("zzhub_event_subscribers", "gauge", "Event subscriptions.", [("", len(bus))])
