"""Notices (信息发布): text with an optional image or file, sent to a subtree of centres.

A notice goes out at once as event `notice` to the users and terminals connected at the target
centres (`to_users`, so a centre outside the targets receives nothing, not even the county
above it unless it sent it); each of them gets a `delivered` receipt. Everyone else at a
target centre has it queued: `on_connect` (a `WsRouter.on_connect` hook) sends the notices a
user never received, in order, on its next WebSocket connect. A user confirms reading with
`read()`; `status()` counts delivered and read per target centre.

Attachments are uploaded first (`save_attachment`, streamed to `data_dir/notices/` with a size
limit) and named by id in the notice; names are sanitised, types come from the upload.

In a hub cluster the node a notice is sent from owns it and its receipts (`claim("notice",
id)`; attachments `notice_attachment`; both re-claimed at start). Live delivery needs nothing
more: `Presence` knows the members of every node and the `notice` event travels to them. A
user connecting to another node gets what this node queued for it through `peers` (that node
asks this one for `pending()` and reports what it pushed with `delivered_to()`), and its reads
reach this node through `hub.cluster.proxy`, so `status()` here counts them all.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from hub.core.auth import Principal
from hub.core.centres import CentreTree
from hub.core.errors import Forbidden, NotFound
from hub.core.events import EventBus
from hub.core.presence import Presence
from hub.notices.store import Attachment, Notice, NoticeStore

QUEUE_DAYS = 30.0  # notices older than this are not delivered on connect any more
QUEUE_LIMIT = 100  # notices delivered on one connect at most
ID_RE = re.compile(r"^[a-z0-9]{1,40}$")
TYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class Connection(Protocol):
    @property
    def principal(self) -> Principal: ...

    async def send(self, message: dict[str, Any]) -> None: ...


class PeerNotices(Protocol):
    """The other hub nodes' queues (a hub cluster)."""

    async def pending(self, who: Principal) -> list[tuple[str, list[dict[str, Any]]]]:
        """(node id, the notices that node queued for `who`, oldest first) per node."""
        ...

    async def delivered(self, node: str, who: Principal, ids: list[str]) -> None:
        """Tell `node` that its notices `ids` were pushed to `who`."""
        ...


def safe_name(name: str) -> str:
    """A file name fit for storage listings and Content-Disposition: no path, no control or
    quote characters, at most 100 characters."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"<>|*?:')
    name = name.strip(" .")[:100]
    return name or "attachment"


class Notices:
    def __init__(
        self,
        store: NoticeStore,
        presence: Presence,
        events: EventBus,
        tree: CentreTree,
        files: Path,
        *,
        claim: Callable[[str, str], None] | None = None,
        peers: PeerNotices | None = None,
    ) -> None:
        self.store = store
        self._claim = claim  # a hub cluster: (kind, id) is owned by this node
        self.peers = peers  # a hub cluster: the queues of the other nodes
        self.presence = presence
        self.events = events
        self.tree = tree
        self.files = files
        self.delivered_live = 0
        self.delivered_queued = 0

    # -- attachments -------------------------------------------------------------------------
    def attachment_path(self, attachment_id: str) -> Path:
        if not ID_RE.match(attachment_id):
            raise NotFound("no such attachment")
        return self.files / attachment_id

    async def save_attachment(
        self, by: Principal, name: str, content_type: str, size: int, attachment_id: str
    ) -> Attachment:
        if not TYPE_RE.match(content_type):
            content_type = "application/octet-stream"
        a = Attachment(
            attachment_id,
            safe_name(name),
            content_type.lower(),
            size,
            by.user,
            by.centre,
            time.time(),
        )
        await self.store.add_attachment(a)
        if self._claim is not None:
            self._claim("notice_attachment", a.id)
        return a

    async def readable_attachment(self, attachment_id: str, who: Principal) -> Attachment:
        a = await self.store.attachment(attachment_id) if ID_RE.match(attachment_id) else None
        if a is None:
            raise NotFound("no such attachment")
        if who.user == a.uploader or who.can_see(a.centre):
            return a
        if who.centre in await self.store.attachment_targets(attachment_id):
            return a
        raise NotFound("no such attachment")

    # -- sending -----------------------------------------------------------------------------
    async def send(
        self, by: Principal, title: str, text: str, targets: list[str], attachment: str | None
    ) -> Notice:
        found = None
        if attachment is not None:
            found = await self.store.attachment(attachment) if ID_RE.match(attachment) else None
            if found is None or found.uploader != by.user:
                raise NotFound(f"no attachment {attachment!r} uploaded by you")
        notice = Notice(
            "n" + secrets.token_hex(8),
            title,
            text,
            by.user,
            by.centre,
            targets,
            found,
            time.time(),
        )
        await self.store.add(notice)
        if self._claim is not None:
            self._claim("notice", notice.id)
        online = [(m.user, m.centre) for code in targets for m in self.presence.online_in(code)]
        if online:
            self.events.publish(
                "notice", by.centre, notice.to_json(), to_users={u for u, _ in online}
            )
            await self.store.delivered(notice.id, online, time.time())
            self.delivered_live += len(online)
        return notice

    async def on_connect(self, client: Connection) -> None:
        """A WebSocket client connected: send what its user never received, here and (a hub
        cluster) on the other nodes."""
        p = client.principal
        for notice in await self.pending(p):
            await _push(client, notice.to_json())
            await self.store.delivered(notice.id, [(p.user, p.centre)], time.time())
            self.delivered_queued += 1
        if self.peers is None:
            return
        for node, notices in await self.peers.pending(p):
            pushed: list[str] = []
            for data in notices:
                await _push(client, data)
                pushed.append(str(data["id"]))
            if pushed:
                await self.peers.delivered(node, p, pushed)
                self.delivered_queued += len(pushed)

    async def pending(self, who: Principal) -> list[Notice]:
        """The notices of this node `who` never received, oldest first."""
        since = time.time() - QUEUE_DAYS * 86400
        return await self.store.pending(who.user, who.centre, since, QUEUE_LIMIT)

    async def delivered_to(self, who: Principal, ids: list[str]) -> int:
        """Delivery receipts of `who` for the notices `ids` of its centre another node pushed
        to it; ids not held here or not sent to its centre are passed over. How many counted."""
        at, counted = time.time(), 0
        for notice_id in ids:
            notice = await self.store.get(notice_id) if ID_RE.match(notice_id) else None
            if notice is not None and who.centre in notice.targets:
                await self.store.delivered(notice.id, [(who.user, who.centre)], at)
                counted += 1
        return counted

    # -- receipts and status -----------------------------------------------------------------
    async def get(self, notice_id: str, who: Principal) -> Notice:
        notice = await self.store.get(notice_id) if ID_RE.match(notice_id) else None
        if notice is None or not (self.is_sender_side(notice, who) or who.centre in notice.targets):
            raise NotFound(f"no notice {notice_id!r} for you")
        return notice

    @staticmethod
    def is_sender_side(notice: Notice, who: Principal) -> bool:
        return who.user == notice.sender or who.can_see(notice.centre)

    async def read(self, notice: Notice, who: Principal) -> None:
        if who.centre not in notice.targets:
            raise Forbidden("this notice was not sent to your centre")
        await self.store.read(notice.id, who.user, who.centre, time.time())

    async def status(self, notice: Notice) -> dict[str, Any]:
        per: dict[str, dict[str, Any]] = {}
        for code in notice.targets:
            centre = self.tree.get(code)
            per[code] = {
                "centre": code,
                "name": centre.name if centre else code,
                "delivered": 0,
                "read": 0,
                "online": len(self.presence.online_in(code)),
                "users": [],
            }
        for r in await self.store.receipts(notice.id):
            entry = per.get(r["centre"])
            if entry is None:
                continue
            entry["delivered"] += r["delivered"] is not None
            entry["read"] += r["read"] is not None
            entry["users"].append(
                {"user": r["user"], "delivered": r["delivered"], "read": r["read"]}
            )
        centres = list(per.values())
        return {
            **notice.to_json(),
            "centres": centres,
            "totals": {
                "centres": len(centres),
                "centres_delivered": sum(1 for c in centres if c["delivered"]),
                "centres_read": sum(1 for c in centres if c["read"]),
                "delivered": sum(c["delivered"] for c in centres),
                "read": sum(c["read"] for c in centres),
            },
        }


async def _push(client: Connection, data: dict[str, Any]) -> None:
    """A queued notice (`data`: its JSON), sent as the `notice` event with `queued: true`."""
    await client.send(
        {
            "type": "event",
            "topic": "notice",
            "centre": data.get("centre", ""),
            "seq": 0,
            "at": time.time(),
            "data": {**data, "queued": True},
        }
    )


NOTICES = web.AppKey("notices", Notices)
