"""The walls slice in the app: camera walls (mosaics of decoded pictures) and their routes.

Walls are torn down before the cameras' decoded pictures they read (an earlier context).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.cameras.service import CAMERAS, PICTURES
from hub.core.state import CONFIG
from hub.walls import api
from hub.walls.service import WALLS, Walls


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(_walls_ctx)
    api.add_routes(app)


async def _walls_ctx(app: web.Application) -> AsyncIterator[None]:
    walls = Walls(app[CONFIG], app[CAMERAS], app[PICTURES])
    app[WALLS] = walls
    try:
        yield
    finally:
        await walls.close()
