"""The broadcasts slice in the app: its service's lifetime, routes and WebSocket messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.broadcasts import api
from hub.broadcasts.service import BROADCASTS, Broadcasts
from hub.broadcasts.store import BroadcastLedger
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.recordings.service import RECORDINGS
from hub.rooms.service import ROOM_MEDIA


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(broadcasts_ctx)
    api.add_routes(app)


async def broadcasts_ctx(app: web.Application) -> AsyncIterator[None]:
    ledger = BroadcastLedger(app[DB])
    await ledger.open()
    recorder = app.get(RECORDINGS)
    app[BROADCASTS] = Broadcasts(app[ROOM_MEDIA], ledger, app[EVENTS], recorder)
    yield
    await app[BROADCASTS].close()
