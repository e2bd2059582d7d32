"""Notices over HTTP (docs/api.md "Notices"): upload an attachment, send, list, inbox, read
receipts, per-centre delivery status, download an attachment."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from hub import keys
from hub.api.system import read_json
from hub.broadcast_scope import check_sender, targets
from hub.errors import ApiError
from hub.notices import Notices
from hub.notices_store import NoticeStore

NOTICES: web.AppKey[Notices] = web.AppKey("notices")
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}
CHUNK = 64 * 1024


async def notices_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[keys.CONFIG]
    store = NoticeStore(app[keys.DB])
    await store.open()
    files = Path(cfg.http.data_dir) / "notices"
    files.mkdir(parents=True, exist_ok=True)
    notices = Notices(store, app[keys.PRESENCE], app[keys.EVENTS], app[keys.CENTRES], files)
    app[NOTICES] = notices
    app[keys.WS].on_connect.append(notices.on_connect)
    yield
    with contextlib.suppress(ValueError):
        app[keys.WS].on_connect.remove(notices.on_connect)


async def upload(request: web.Request) -> web.Response:
    """The raw body is the file; `?name=` its name; Content-Type its type. Streamed to disk
    with the configured limit (413 past it), whatever the app's JSON body limit."""
    p = keys.principal(request)
    check_sender(p, request.app[keys.CENTRES], "notices")
    limit = request.app[keys.CONFIG].notices.max_attachment_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"attachment too large (limit {limit} bytes)")
    notices = request.app[NOTICES]
    attachment_id = secrets.token_hex(10)
    path = notices.attachment_path(attachment_id)
    size = 0
    try:
        with path.open("wb") as out:  # small chunks; the page cache absorbs the writes
            while chunk := await request.content.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"attachment too large (limit {limit} bytes)")
                out.write(chunk)
        if size == 0:
            raise ApiError(400, "the attachment is empty")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    name = request.query.get("name", "attachment")
    a = await notices.save_attachment(p, name, request.content_type, size, attachment_id)
    return web.json_response(a.to_json(), status=201)


async def send(request: web.Request) -> web.Response:
    p = keys.principal(request)
    tree = request.app[keys.CENTRES]
    check_sender(p, tree, "notices")
    body = await read_json(request)
    title, text, attachment = body.get("title"), body.get("text", ""), body.get("attachment")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise ApiError(400, "title must be a non-empty string of at most 200 characters")
    if not isinstance(text, str) or len(text) > 20_000:
        raise ApiError(400, "text must be a string of at most 20000 characters")
    if attachment is not None and not isinstance(attachment, str):
        raise ApiError(400, "attachment must be the id of an uploaded attachment")
    codes = targets(p, tree, body)
    notice = await request.app[NOTICES].send(p, title.strip(), text, codes, attachment)
    return web.json_response(await request.app[NOTICES].status(notice), status=201)


async def list_sent(request: web.Request) -> web.Response:
    p = keys.principal(request)
    notices = await request.app[NOTICES].store.sent(p.centre, 200)
    return web.json_response([n.to_json() for n in notices])


async def inbox(request: web.Request) -> web.Response:
    p = keys.principal(request)
    store = request.app[NOTICES].store
    notices = await store.for_centre(p.centre, 0.0, 200)
    read = {
        n.id
        for n in notices
        for r in await store.receipts(n.id)
        if r["user"] == p.user and r["read"] is not None
    }
    return web.json_response([{**n.to_json(), "read": n.id in read} for n in notices])


async def get(request: web.Request) -> web.Response:
    p = keys.principal(request)
    notices = request.app[NOTICES]
    notice = await notices.get(request.match_info["id"], p)
    if not notices.is_sender_side(notice, p):
        return web.json_response(notice.to_json())  # a recipient sees the notice, not status
    return web.json_response(await notices.status(notice))


async def read(request: web.Request) -> web.Response:
    p = keys.principal(request)
    notices = request.app[NOTICES]
    notice = await notices.get(request.match_info["id"], p)
    await notices.read(notice, p)
    return web.json_response({"read": True})


async def attachment(request: web.Request) -> web.StreamResponse:
    p = keys.principal(request)
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
    r.add_get("/api/notices/attachments/{attachment}", attachment)
    r.add_post("/api/notices", send)
    r.add_get("/api/notices", list_sent)
    r.add_get("/api/notices/inbox", inbox)
    r.add_get("/api/notices/{id}", get)
    r.add_post("/api/notices/{id}/read", read)
