"""The duty slice in the app: operator duty checks (值班查岗) and their routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.duty import api
from hub.duty.service import DUTY, DutyChecks


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(_duty_ctx)
    api.add_routes(app)


async def _duty_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    duty = DutyChecks(app[DB], app[EVENTS], config.duty, config.users)
    app[DUTY] = duty
    try:
        await duty.start()
        yield
    finally:
        await duty.close()
