"""The monitoring room's services in the app: decoded pictures, alerts, walls, duty checks.

One cleanup context brings them up in dependency order and tears them down in reverse (alert
analysis stops before the taps, walls before the taps they read, taps before the cameras,
which are torn down by an earlier context). `add_routes` adds their HTTP endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hub import keys
from hub.alerts import AlertIds, Alerts
from hub.alerts_watch import AlertWatch
from hub.api import alerts as alerts_api
from hub.api import duty as duty_api
from hub.api import walls as walls_api
from hub.cluster_proxy import claimer
from hub.duty import DutyChecks
from hub.walls import Walls
from hub.walls_sources import PictureSources


async def monitoring_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    pictures = PictureSources(config)
    # a hub cluster: alerts held by the node raising them, numbered across the cluster
    cluster = app[keys.CLUSTER] if claimer(app) is not None else None
    alerts = Alerts(
        app[keys.DB],
        app[keys.EVENTS],
        pre_event=config.alerts.pre_event,
        owner=cluster,
        ids=AlertIds(cluster) if cluster is not None else None,
    )
    await alerts.start()
    watch = AlertWatch(alerts, app[keys.CAMERAS], pictures, config)
    walls = Walls(config, app[keys.CAMERAS], pictures)
    if keys.REMOTE_CAMERAS in app:
        walls.remote = app[keys.REMOTE_CAMERAS].get
    duty = DutyChecks(app[keys.DB], app[keys.EVENTS], config.duty, config.users)
    app[keys.PICTURES] = pictures
    app[keys.ALERTS] = alerts
    app[keys.ALERT_WATCH] = watch
    app[keys.WALLS] = walls
    app[keys.DUTY] = duty
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
