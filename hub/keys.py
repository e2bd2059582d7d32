"""Typed keys of the shared state the application holds, and the caller's identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from config.schema import HubConfig, UserConfig
from hub.auth import Principal, TokenIssuer
from hub.cameras import CameraRegistry
from hub.centres import CentreTree
from hub.db import Database
from hub.errors import ApiError
from hub.events import EventBus
from hub.presence import Presence
from hub.rooms import Rooms

if TYPE_CHECKING:
    from hub.ws import WsRouter
from signaling.whep import WhepSessions

CONFIG = web.AppKey("config", HubConfig)
CENTRES = web.AppKey("centres", CentreTree)
CAMERAS = web.AppKey("cameras", CameraRegistry)
WHEP = web.AppKey("whep", WhepSessions)
TOKENS = web.AppKey("tokens", TokenIssuer)
USERS = web.AppKey("users", dict[str, UserConfig])
STARTED = web.AppKey("started", float)
DB = web.AppKey("db", Database)
PRESENCE = web.AppKey("presence", Presence)
ROOMS = web.AppKey("rooms", Rooms)
WS: web.AppKey[WsRouter] = web.AppKey("ws")
EVENTS = web.AppKey("events", EventBus)
PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    p: Principal | None = request.get(PRINCIPAL)
    if p is None:
        raise ApiError(401, "authentication required")
    return p
