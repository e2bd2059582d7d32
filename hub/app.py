"""The aiohttp application: the core, the HTTP face, then one slice per capability.

Each slice's `setup(app, config)` adds its services' cleanup context, its routes, WebSocket
messages, health parts and metric families. Contexts start in this order and are torn down in
the reverse one, so a slice may use, while it runs and while it stops, every slice set up
before it: the core (database, audit log, events) lives longest; viewers are closed at
shutdown before any context; the SFU (rooms) is torn down after the petitions, notices and
broadcasts that publish into it. The cluster is an add-on, set up only with `redis.url`.
See docs/architecture.md.
"""

from __future__ import annotations

from aiohttp import web

from config.schema import HubConfig
from hub.alerts import app as alerts
from hub.broadcasts import app as broadcasts
from hub.calls import app as calls
from hub.cameras import app as cameras
from hub.cluster import app as cluster
from hub.core import app as core
from hub.duty import app as duty
from hub.gb28181 import app as gb28181
from hub.http import app as http
from hub.http.app import WEB_ROOT
from hub.notices import app as notices
from hub.petitions import app as petitions
from hub.recordings import app as recordings
from hub.rollcalls import app as rollcalls
from hub.rooms import app as rooms
from hub.walls import app as walls

__all__ = ["WEB_ROOT", "build_app"]


def build_app(config: HubConfig) -> web.Application:
    app = web.Application(client_max_size=config.http.max_body_bytes)
    core.setup(app, config)
    http.setup(app, config)
    cameras.setup(app, config)
    if config.redis.url:
        cluster.setup(app, config)
    recordings.setup(app, config)
    gb28181.setup(app, config)
    alerts.setup(app, config)
    walls.setup(app, config)
    duty.setup(app, config)
    calls.setup(app, config)
    rollcalls.setup(app, config)
    rooms.setup(app, config)
    petitions.setup(app, config)
    notices.setup(app, config)
    broadcasts.setup(app, config)
    return app
