"""The rollcalls slice in the app: its service's lifetime, routes and WebSocket messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from config.schema import HubConfig
from hub.core.cluster import link_of
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.presence import PRESENCE
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family
from hub.rollcalls import api
from hub.rollcalls.service import ROLLCALLS, RollCalls
from hub.rollcalls.store import RollCallLedger
from hub.rooms.model import ROOMS


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(rollcalls_ctx)
    api.add_routes(app)
    api.register_ws(app)
    app[METRICS].add("roll calls", lambda family: _families(app, family))


async def rollcalls_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    rollcalls = RollCalls(
        RollCallLedger(app[DB]),
        app[ROOMS],
        app[PRESENCE],
        app[EVENTS],
        data_dir=Path(cfg.http.data_dir),
        timeout=cfg.calls.rollcall_timeout,
        duty_users={u.name for u in cfg.users if u.duty},
        max_live=cfg.calls.max_live,
        claim=link_of(app).claimer(),
    )
    await rollcalls.start()
    app[ROLLCALLS] = rollcalls
    yield
    await rollcalls.close()


def _families(app: web.Application, family: Family) -> None:
    live = len(app[ROLLCALLS].running())
    family("zzhub_rollcalls_live", "gauge", "Running roll calls.", [("", float(live))])
