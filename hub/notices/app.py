"""The notices slice in the app: its service's lifetime, routes and WebSocket messages."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from config.schema import HubConfig
from hub.core.auth import Principal
from hub.core.centres import CENTRES
from hub.core.cluster import link_of
from hub.core.db import DB
from hub.core.errors import HubError
from hub.core.events import EVENTS
from hub.core.presence import PRESENCE
from hub.core.state import CONFIG
from hub.http.ws import WS
from hub.notices import api
from hub.notices.service import NOTICES, QUEUE_LIMIT, Notices
from hub.notices.store import NoticeStore

log = logging.getLogger(__name__)


def setup(app: web.Application, config: HubConfig) -> None:
    app.cleanup_ctx.append(notices_ctx)
    api.add_routes(app)


async def notices_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    store = NoticeStore(app[DB])
    await store.open()
    files = Path(cfg.http.data_dir) / "notices"
    files.mkdir(parents=True, exist_ok=True)
    link = link_of(app)
    claim = link.claimer()
    if claim is not None:  # a hub cluster: what was sent from here is still held here
        link.claim_many("notice", await store.ids())
        link.claim_many("notice_attachment", await store.attachment_ids())
    notices = Notices(
        store,
        app[PRESENCE],
        app[EVENTS],
        app[CENTRES],
        files,
        claim=claim,
        peers=PeerInboxes(app) if claim is not None else None,
    )
    app[NOTICES] = notices
    hooked = app[WS].on_connect.connect(notices.on_connect)
    yield
    hooked.disconnect()


class PeerInboxes:
    """`PeerNotices` over HTTP: the other live nodes' queues for a user connecting here."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def pending(self, who: Principal) -> list[tuple[str, list[dict[str, Any]]]]:
        link = link_of(self.app)
        answers = await link.ask_peers(who, "/api/notices/inbox", {"pending": "1"})
        out: list[tuple[str, list[dict[str, Any]]]] = []
        for node, answer in answers:
            found = [
                n
                for n in (answer if isinstance(answer, list) else [])
                if isinstance(n, dict) and isinstance(n.get("id"), str)
            ][:QUEUE_LIMIT]
            if found:
                out.append((node, found))
        return out

    async def delivered(self, node: str, who: Principal, ids: list[str]) -> None:
        # a node gone meanwhile delivers them again on the next connect
        try:
            await link_of(self.app).post_to(node, who, "/api/notices/delivered", {"ids": ids})
        except HubError as err:
            log.warning("notices: delivery receipts for %s to node %s: %s", who.user, node, err)
