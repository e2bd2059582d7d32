"""The calls slice in the app: its service's lifetime, routes and WebSocket messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.calls import api
from hub.calls.service import CALLS, Calls
from hub.calls.store import CallHistory
from hub.core.cluster import link_of
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.presence import PRESENCE
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family
from hub.rooms.model import ROOMS


# -- lifetime ------------------------------------------------------------------------------
def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(calls_ctx)
    api.add_routes(app)
    api.register_ws(app)
    app[METRICS].add("calls", lambda family: _families(app, family))


async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG].calls
    calls = Calls(
        CallHistory(app[DB]),
        app[ROOMS],
        app[PRESENCE],
        app[EVENTS],
        ring_timeout=cfg.ring_timeout,
        max_live=cfg.max_live,
        claim=link_of(app).claimer(),
    )
    await calls.start()
    app[CALLS] = calls
    yield
    await calls.close()


def _families(app: web.Application, family: Family) -> None:
    family("zzhub_calls_live", "gauge", "Live calls.", [("", len(app[CALLS].live()))])
