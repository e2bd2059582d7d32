"""The aiohttp application: shared state in typed AppKeys, each service one cleanup context."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from config.schema import HubConfig
from hub.broadcasts import api as broadcasts_api
from hub.calls import api as calls_api
from hub.cameras import api as camera_api
from hub.cameras.service import CAMERAS, WHEP, Camera, CameraRegistry
from hub.cluster import relay as cluster_relay
from hub.cluster.cameras import remote_cameras_ctx
from hub.cluster.presence import cluster_presence_ctx
from hub.cluster.proxy import cluster_proxy_ctx, owner_proxy
from hub.cluster.service import cluster_ctx
from hub.core.auth import PRINCIPAL, TOKENS, USERS, AuthError, TokenIssuer
from hub.core.centres import CENTRES, CentreTree
from hub.core.db import DB, Database
from hub.core.errors import Unauthenticated
from hub.core.events import EVENTS, EventBus
from hub.core.presence import PRESENCE, Presence
from hub.core.state import CONFIG, STARTED
from hub.http import audit as audit_api
from hub.http import system as system_api
from hub.http.errors import Handler, error_middleware
from hub.http.ws import WS, WsRouter, register_builtin, ws_handler
from hub.notices import api as notices_api
from hub.petitions import api as petitions_api
from hub.petitions import app as petitions_app
from hub.recordings import api as recordings_api
from hub.recordings import app as recordings_app
from hub.rollcalls import api as rollcalls_api
from hub.rooms import api as rooms_api
from hub.rooms import app as rooms_app
from hub.rooms.model import ROOMS, Rooms
from hub.walls import app as walls_app
from signaling.ice import resolve_addresses, use_host_addresses
from signaling.whep import WhepSession, WhepSessions

log = logging.getLogger(__name__)


WEB_ROOT = Path(__file__).parent / "web"
PUBLIC_PATHS = {"/api/health", "/api/login"}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    needs_auth = (path.startswith("/api") and path not in PUBLIC_PATHS) or path in (
        "/metrics",
        "/ws",
    )
    if needs_auth:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token and path == "/ws":
            token = request.query.get("token", "")  # browsers cannot set WS headers
        if not token:
            raise Unauthenticated("missing bearer token (Authorization: Bearer TOKEN)")
        try:
            request[PRINCIPAL] = request.app[TOKENS].verify(token)
        except AuthError as err:
            raise Unauthenticated(str(err)) from None
    return await handler(request)


async def _console(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


def build_app(config: HubConfig) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=config.http.max_body_bytes,
    )
    # after authentication, before every other middleware: requests for objects another hub
    # node owns are forwarded to it (issue 8); passes everything through without redis.url
    app.middlewares.append(owner_proxy)
    app[CONFIG] = config
    app[CENTRES] = CentreTree.from_config(config)
    app[TOKENS] = TokenIssuer(config.auth.secret, config.auth.token_ttl)
    app[USERS] = {u.name: u for u in config.users}
    app[STARTED] = time.time()
    app[EVENTS] = EventBus()
    app[PRESENCE] = Presence(app[EVENTS], {u.name for u in config.users if u.duty})
    app[ROOMS] = Rooms(app[EVENTS])
    app[WS] = WsRouter()
    register_builtin(app[WS], app[PRESENCE])
    app.on_shutdown.append(_close_websockets)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_webrtc_ctx)
    app.cleanup_ctx.append(_cameras_ctx)
    app.cleanup_ctx.append(cluster_ctx)  # Redis scale-out (issue 8); off without redis.url
    app.cleanup_ctx.append(remote_cameras_ctx)  # other nodes' cameras, one leg each
    app.cleanup_ctx.append(cluster_presence_ctx)  # who is online on the other nodes
    app.cleanup_ctx.append(cluster_proxy_ctx)  # owner forwarding and merged lists
    app.cleanup_ctx.append(recordings_app.audit_ctx)
    app.cleanup_ctx.append(recordings_app.recordings_ctx)
    app.cleanup_ctx.append(walls_app.monitoring_ctx)  # alerts, walls, duty checks
    app.cleanup_ctx.append(_whep_ctx)
    app.cleanup_ctx.append(calls_api.calls_ctx)  # calls and roll calls (issue 3)
    app.cleanup_ctx.append(rollcalls_api.rollcalls_ctx)
    app.cleanup_ctx.append(rooms_app.rooms_ctx)  # the SFU; torn down first
    app.cleanup_ctx.append(petitions_app.petitions_ctx)  # needs the SFU (issue 4)
    app.cleanup_ctx.append(notices_api.notices_ctx)  # issue 7
    app.cleanup_ctx.append(broadcasts_api.broadcasts_ctx)  # needs the SFU; torn down before it
    system_api.add_routes(app)
    camera_api.add_routes(app)
    cluster_relay.add_routes(app)  # hub-to-hub relay leg (issue 8)
    calls_api.add_routes(app)
    calls_api.register_ws(app)
    rollcalls_api.add_routes(app)
    rollcalls_api.register_ws(app)
    recordings_api.add_routes(app)
    audit_api.add_routes(app)
    walls_app.add_routes(app)
    rooms_api.add_routes(app)
    petitions_api.add_routes(app)
    broadcasts_api.add_routes(app)
    notices_api.add_routes(app)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/", _console)
    app.router.add_static("/static/", WEB_ROOT, show_index=False)
    return app


async def _close_websockets(app: web.Application) -> None:
    await app[WS].close_all()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    data_dir = Path(app[CONFIG].http.data_dir)
    db = Database(data_dir / "zzhub.sqlite3")
    await db.open()
    app[DB] = db
    yield
    app[EVENTS].close()
    await db.close()


async def _webrtc_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    use_host_addresses(resolve_addresses(cfg.webrtc.ice_addresses, cfg.http.host))
    yield


async def _cameras_ctx(app: web.Application) -> AsyncIterator[None]:
    registry = CameraRegistry(app[CONFIG])
    app[CAMERAS] = registry
    events = app[EVENTS]

    def status_changed(camera: Camera, old: str, new: str) -> None:
        events.publish(
            "camera.status", camera.centre, {"camera": camera.id, "status": new, "was": old}
        )

    registry.on_status(status_changed)
    registry.start()
    yield
    await registry.close()


async def _whep_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]

    def closed(session: WhepSession, reason: str) -> None:
        log.info("viewer %s stopped watching %s (%s)", session.user, session.camera, reason)
        recordings_app.whep_closed(app, session, reason)  # audit, end of a playback

    sessions = WhepSessions(
        cfg.webrtc.ice_servers,
        connect_timeout=cfg.webrtc.session_timeout,
        queue_packets=min(cfg.streams.queue_packets, 120),
        fast_rtp=cfg.webrtc.fast_rtp,
        on_close=closed,
        on_open=lambda session: recordings_app.whep_opened(app, session),
    )
    app[WHEP] = sessions
    yield
    await sessions.close_all()
