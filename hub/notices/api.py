"""Notices over HTTP (docs/api.md "Notices"): upload an attachment, send, list, inbox, read
receipts, per-centre delivery status, download an attachment.

In a hub cluster `GET /api/notices` and `GET /api/notices/inbox` list every live node's
notices (`X-Zzhub-Partial` / `X-Zzhub-Nodes-Missing` when one did not answer); a notice's own
endpoints and its attachment are forwarded to the node that holds it (`hub.cluster.proxy`), and
so is a send naming an attachment uploaded on another node (the notice then lives there).
`PeerInboxes` fetches, for a user connecting here, what the other nodes queued for it
(`GET /api/notices/inbox?pending=1`) and reports what was pushed
(`POST /api/notices/delivered`), both as that user.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub.core.auth import principal
from hub.core.centres import CENTRES
from hub.core.cluster import link_of
from hub.core.errors import Invalid, TooLarge
from hub.core.scopes import check_sender, targets
from hub.core.state import CONFIG
from hub.http.lists import mark
from hub.http.request import read_json
from hub.http.routes import owned
from hub.notices.service import NOTICES, QUEUE_LIMIT
from hub.notices.store import Notice, NoticeStore

log = logging.getLogger(__name__)

INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}
CHUNK = 64 * 1024
LIST_LIMIT = 200  # notices in a list (sent, inbox)


async def upload(request: web.Request) -> web.Response:
    """The raw body is the file; `?name=` its name; Content-Type its type. Streamed to disk
    with the configured limit (413 past it), whatever the app's JSON body limit."""
    p = principal(request)
    check_sender(p, request.app[CENTRES], "notices")
    limit = request.app[CONFIG].notices.max_attachment_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"attachment too large (limit {limit} bytes)")
    notices = request.app[NOTICES]
    attachment_id = secrets.token_hex(10)
    path = notices.attachment_path(attachment_id)
    size = 0
    try:
        with path.open("wb") as out:  # small chunks; the page cache absorbs the writes
            while chunk := await request.content.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"attachment too large (limit {limit} bytes)")
                out.write(chunk)
        if size == 0:
            raise Invalid("the attachment is empty")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    name = request.query.get("name", "attachment")
    a = await notices.save_attachment(p, name, request.content_type, size, attachment_id)
    return web.json_response(a.to_json(), status=201)


async def send(request: web.Request) -> web.StreamResponse:
    p = principal(request)
    tree = request.app[CENTRES]
    check_sender(p, tree, "notices")
    body = await read_json(request)
    title, text, attachment = body.get("title"), body.get("text", ""), body.get("attachment")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise Invalid("title must be a non-empty string of at most 200 characters")
    if not isinstance(text, str) or len(text) > 20_000:
        raise Invalid("text must be a string of at most 20000 characters")
    if attachment is not None and not isinstance(attachment, str):
        raise Invalid("attachment must be the id of an uploaded attachment")
    codes = targets(p, tree, body)
    if attachment is not None:  # uploaded on another node: the notice is sent from there
        forwarded = await link_of(request.app).forward(request, "notice_attachment", attachment)
        if forwarded is not None:
            return forwarded
    notice = await request.app[NOTICES].send(p, title.strip(), text, codes, attachment)
    return web.json_response(await request.app[NOTICES].status(notice), status=201)


async def merged(
    request: web.Request, local: list[dict[str, Any]], *, newest_first: bool = True
) -> web.Response:
    """`local` (this node's notices), with every live peer's in a hub cluster: sorted by
    `created`, at most LIST_LIMIT, marked partial when a node did not answer."""
    link = link_of(request.app)
    if not link.fans_out(request):
        return web.json_response(local)
    gathered = await link.gather(request)
    seen = {n["id"] for n in local}
    items = list(local)
    for answer in gathered.bodies:
        for n in answer if isinstance(answer, list) else []:
            if isinstance(n, dict) and isinstance(n.get("id"), str) and n["id"] not in seen:
                seen.add(n["id"])
                items.append(n)
    items.sort(key=lambda n: float(n.get("created") or 0), reverse=newest_first)
    resp = web.json_response(items[:LIST_LIMIT])
    mark(gathered, resp)
    return resp


async def list_sent(request: web.Request) -> web.Response:
    p = principal(request)
    notices = await request.app[NOTICES].store.sent(p.centre, LIST_LIMIT)
    return await merged(request, [n.to_json() for n in notices])


async def inbox(request: web.Request) -> web.Response:
    """The notices to the caller's centre, newest first, each with `read`; `?pending=1`: those
    never delivered to the caller, oldest first (another node fetches them for a user
    connecting there, and pushes them)."""
    p = principal(request)
    notices = request.app[NOTICES]
    if request.query.get("pending") == "1":
        pending = [n.to_json() for n in await notices.pending(p)]
        return await merged(request, pending, newest_first=False)
    found = await notices.store.for_centre(p.centre, 0.0, LIST_LIMIT)
    read = await _read_by(notices.store, found, p.user)
    return await merged(request, [{**n.to_json(), "read": n.id in read} for n in found])


async def _read_by(store: NoticeStore, notices: list[Notice], user: str) -> set[str]:
    return {
        n.id
        for n in notices
        for r in await store.receipts(n.id)
        if r["user"] == user and r["read"] is not None
    }


async def delivered(request: web.Request) -> web.Response:
    """`{"ids": [...]}`: the caller received these notices of this node (pushed to it by
    another node, see `PeerInboxes`); other ids are passed over."""
    p = principal(request)
    ids = (await read_json(request)).get("ids")
    if (
        not isinstance(ids, list)
        or len(ids) > QUEUE_LIMIT
        or not all(isinstance(i, str) for i in ids)
    ):
        raise Invalid(f"ids must be a list of at most {QUEUE_LIMIT} notice ids")
    counted = await request.app[NOTICES].delivered_to(p, [str(i) for i in ids])
    return web.json_response({"delivered": counted})


async def get(request: web.Request) -> web.Response:
    p = principal(request)
    notices = request.app[NOTICES]
    notice = await notices.get(request.match_info["id"], p)
    if not notices.is_sender_side(notice, p):
        return web.json_response(notice.to_json())  # a recipient sees the notice, not status
    return web.json_response(await notices.status(notice))


async def read(request: web.Request) -> web.Response:
    p = principal(request)
    notices = request.app[NOTICES]
    notice = await notices.get(request.match_info["id"], p)
    await notices.read(notice, p)
    return web.json_response({"read": True})


async def attachment(request: web.Request) -> web.StreamResponse:
    p = principal(request)
    notices = request.app[NOTICES]
    a = await notices.readable_attachment(request.match_info["attachment"], p)
    disposition = "inline" if a.content_type in INLINE_TYPES else "attachment"
    if a.name.isascii():
        filename = f'filename="{a.name}"'
    else:
        filename = f"filename*=UTF-8''{quote(a.name, safe='')}"
    return web.FileResponse(
        notices.attachment_path(a.id),
        headers={
            "Content-Type": a.content_type,
            "Content-Disposition": f"{disposition}; {filename}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/notices/attachments", upload)
    file = owned("notice_attachment", "attachment")(attachment)
    r.add_get("/api/notices/attachments/{attachment}", file)
    r.add_post("/api/notices", send)
    r.add_get("/api/notices", list_sent)
    r.add_get("/api/notices/inbox", inbox)
    r.add_post("/api/notices/delivered", delivered)
    r.add_get("/api/notices/{id}", owned("notice", "id")(get))
    r.add_post("/api/notices/{id}/read", owned("notice", "id")(read))
