"""The core in the app: configuration, centres, identities, events, presence, the database
and the audit log; ICE addresses for every WebRTC peer of the process.

`setup` runs first, so its cleanup context is torn down last: every slice can still write to
the database and the audit log while it shuts down.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from config.schema import HubConfig
from hub.core.audit import AUDIT, AuditLog
from hub.core.auth import THROTTLE, TOKENS, USERS, LoginThrottle, TokenIssuer
from hub.core.centres import CENTRES, CentreTree
from hub.core.cluster import LINK, ClusterLink
from hub.core.db import DB, Database
from hub.core.events import EVENTS, EventBus
from hub.core.presence import PRESENCE, Presence
from hub.core.revocations import REVOCATIONS, Revocations
from hub.core.state import CONFIG, STARTED
from signaling.ice import resolve_addresses, use_host_addresses


def setup(app: web.Application, config: HubConfig) -> None:
    app[CONFIG] = config
    app[CENTRES] = CentreTree.from_config(config)
    app[TOKENS] = TokenIssuer(config.auth.secret, config.auth.token_ttl)
    app[USERS] = {u.name: u for u in config.users}
    app[THROTTLE] = LoginThrottle()
    app[STARTED] = time.time()
    app[EVENTS] = EventBus()
    app[PRESENCE] = Presence(app[EVENTS], {u.name for u in config.users if u.duty})
    app[LINK] = ClusterLink.single(config)  # the cluster add-on puts its own link here
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_webrtc_ctx)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    db = Database(Path(app[CONFIG].http.data_dir) / "zzhub.sqlite3")
    await db.open()
    app[DB] = db
    audit = AuditLog(db)
    await audit.start()
    app[AUDIT] = audit
    revocations = Revocations(db, app[EVENTS])
    await revocations.start()
    app[REVOCATIONS] = revocations
    yield
    await revocations.close()
    await audit.close()
    app[EVENTS].close()
    await db.close()


async def _webrtc_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    use_host_addresses(resolve_addresses(cfg.webrtc.ice_addresses, cfg.http.host))
    yield
