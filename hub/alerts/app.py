"""The alerts slice in the app: the alert store, the watch that raises alerts from camera
motion and status, their routes and metric families.

In a hub cluster an alert is held by the node raising it and numbered from the one shared
counter (`SharedCounter` `alertseq`); ids another node numbered locally while Redis was away
(claimed since) are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.alerts import api
from hub.alerts.service import ALERTS, Alerts
from hub.alerts.watch import ALERT_WATCH, AlertWatch
from hub.cameras.service import CAMERAS, PICTURES
from hub.core.cluster import SharedCounter, link_of
from hub.core.db import DB
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family, label


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(_alerts_ctx)
    api.add_routes(app)
    app[METRICS].add("alerts", lambda family: _families(app, family))


async def _alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    link = link_of(app)
    alerts = Alerts(
        app[DB],
        app[EVENTS],
        pre_event=config.alerts.pre_event,
        owner=link if link.active else None,
        ids=SharedCounter(link, "alert", "alertseq").next if link.active else None,
    )
    await alerts.start()
    watch = AlertWatch(alerts, app[CAMERAS], app[PICTURES], config)
    app[ALERTS] = alerts
    app[ALERT_WATCH] = watch
    try:
        watch.start()
        yield
    finally:
        await watch.close()
        await alerts.close()


async def _families(app: web.Application, family: Family) -> None:
    alerts = app[ALERTS]
    counts = await alerts.status_counts()
    family(
        "zzhub_alerts",
        "gauge",
        "Alerts in the store, by status.",
        [(f"status={label(status)}", float(n)) for status, n in sorted(counts.items())],
    )
    family("zzhub_alerts_raised_total", "counter", "Alerts raised.", [("", alerts.raised)])
    family(
        "zzhub_alerts_dropped_total", "counter", "Alerts dropped (queue).", [("", alerts.dropped)]
    )
