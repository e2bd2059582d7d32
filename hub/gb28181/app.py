"""The GB/T 28181 slice in the app: with `gb28181.enabled`, the SIP server devices register
to, the watch that marks silent devices offline, the device list and its metric families.

Set up after the cameras and recordings (later steps bring device channels in as cameras).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.core.centres import CENTRES
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.gb28181 import api
from hub.gb28181.server import SipServer
from hub.gb28181.service import REGISTRAR, Registrar
from hub.http.metrics import METRICS, Family

SERVER = web.AppKey("gb28181_server", SipServer)


def setup(app: web.Application, config: HubConfig) -> None:
    api.add_routes(app)
    if not config.gb28181.enabled:
        return
    app.cleanup_ctx.append(_gb28181_ctx)
    app[METRICS].add("gb28181", lambda family: _families(app, family))


async def _gb28181_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG].gb28181
    registrar = Registrar(cfg, app[EVENTS], {c.code for c in app[CENTRES].visible_from("")})
    server = SipServer(registrar)
    await server.start(cfg.host, cfg.port)
    app[REGISTRAR] = registrar
    app[SERVER] = server
    watch = asyncio.get_running_loop().create_task(_watch(registrar), name="gb28181:watch")
    try:
        yield
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await server.close()


async def _watch(registrar: Registrar) -> None:
    """Devices whose registration expired or that stopped keeping alive go offline."""
    period = min(registrar.config.keepalive_interval, 5.0)
    while True:
        await asyncio.sleep(period)
        registrar.sweep()


def _families(app: web.Application, family: Family) -> None:
    registrar, server = app.get(REGISTRAR), app.get(SERVER)
    if registrar is None or server is None:
        return
    online = sum(1 for d in registrar.devices.values() if d.online)
    family("zzhub_gb28181_devices_online", "gauge", "Devices registered.", [("", float(online))])
    family(
        "zzhub_gb28181_register_refused_total",
        "counter",
        "REGISTERs refused (unknown device, wrong password).",
        [("", float(registrar.refused))],
    )
    family(
        "zzhub_gb28181_malformed_total",
        "counter",
        "SIP messages dropped as malformed.",
        [("", float(server.malformed))],
    )
