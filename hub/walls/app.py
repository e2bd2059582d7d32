"""The monitoring room's services in the app: decoded pictures, alerts, walls, duty checks.

One cleanup context brings them up in dependency order and tears them down in reverse (alert
analysis stops before the taps, walls before the taps they read, taps before the cameras,
which are torn down by an earlier context). `add_routes` adds their HTTP endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hub.alerts import api as alerts_api
from hub.alerts.service import ALERTS, Alerts
from hub.alerts.watch import ALERT_WATCH, AlertWatch
from hub.cameras.service import CAMERAS, PICTURES, PictureSources
from hub.core.cluster import SharedCounter, link_of
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.duty import api as duty_api
from hub.duty.service import DUTY, DutyChecks
from hub.walls import api as walls_api
from hub.walls.service import WALLS, Walls


async def monitoring_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    pictures = PictureSources(config)
    # a hub cluster: alerts held by the node raising them, numbered across the cluster
    link = link_of(app)
    # ids another node numbered locally while Redis was away (claimed since) are skipped
    ids = SharedCounter(link, "alert", "alertseq").next
    alerts = Alerts(
        app[DB],
        app[EVENTS],
        pre_event=config.alerts.pre_event,
        owner=link if link.active else None,
        ids=ids if link.active else None,
    )
    await alerts.start()
    watch = AlertWatch(alerts, app[CAMERAS], pictures, config)
    walls = Walls(config, app[CAMERAS], pictures)
    duty = DutyChecks(app[DB], app[EVENTS], config.duty, config.users)
    app[PICTURES] = pictures
    app[ALERTS] = alerts
    app[ALERT_WATCH] = watch
    app[WALLS] = walls
    app[DUTY] = duty
    try:
        watch.start()
        await duty.start()
        yield
    finally:
        await duty.close()
        await watch.close()
        await walls.close()
        await pictures.close()
        await alerts.close()


def add_routes(app: web.Application) -> None:
    alerts_api.add_routes(app)
    walls_api.add_routes(app)
    duty_api.add_routes(app)
