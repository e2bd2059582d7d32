"""Training broadcasts over HTTP (docs/api.md "Broadcasts"): start, join, publish (presenter
and stage only), watch (WHEP), raise a hand, bring on stage, end, attendance (JSON and CSV)."""

from __future__ import annotations

from aiohttp import web

from hub.broadcasts.report import attendance, attendance_csv
from hub.broadcasts.service import BROADCASTS, Broadcast
from hub.broadcasts.store import BroadcastRow
from hub.core.auth import principal
from hub.core.centres import CENTRES
from hub.core.errors import Forbidden, Invalid, NotFound
from hub.core.presence import PRESENCE, Status
from hub.core.scopes import check_sender, targets
from hub.http.lists import merged_list
from hub.http.request import read_json, read_sdp
from hub.http.routes import owned
from signaling.publish import UnknownPublication
from signaling.whep import OfferError


def _broadcast(request: web.Request) -> Broadcast:
    p = principal(request)
    return request.app[BROADCASTS].get(request.match_info["id"], p)


async def start(request: web.Request) -> web.Response:
    p = principal(request)
    tree = request.app[CENTRES]
    check_sender(p, tree, "broadcasts")
    body = await read_json(request)
    title = body.get("title", "")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise Invalid("title must be a non-empty string of at most 200 characters")
    codes = targets(p, tree, body)
    b = await request.app[BROADCASTS].start(p, title.strip(), codes)
    return web.json_response(b.to_json(), status=201)


async def list_broadcasts(request: web.Request) -> web.Response:
    p = principal(request)
    return await merged_list(request, [b.to_json() for b in request.app[BROADCASTS].list_for(p)])


async def get(request: web.Request) -> web.Response:
    """A live broadcast from memory; an ended one (also from before a restart) from the
    ledger, with the live-only fields empty."""
    try:
        return web.json_response(_broadcast(request).to_json())
    except NotFound:
        pass
    row = await _ledger_row(request)
    if row.ended is None:  # in the ledger, not in memory: a run that crashed; not live
        raise NotFound(f"no broadcast {row.id!r} for you")
    body = {**row.to_json(), "ended": True, "ended_at": row.ended, "room": None, "stage": [],
            "hands": [], "publications": {}, "viewers": 0}  # fmt: skip
    return web.json_response(body)


async def join(request: web.Request) -> web.Response:
    b = _broadcast(request)
    p = principal(request)
    seat = await request.app[BROADCASTS].join(b, p)
    request.app[PRESENCE].set_status(p.user, Status.IN_CALL)
    return web.json_response({"broadcast": b.to_json(), "seat": seat.to_json()})


async def leave(request: web.Request) -> web.Response:
    b = _broadcast(request)
    p = principal(request)
    request.app[BROADCASTS].leave(b, p.user)
    request.app[PRESENCE].set_status(p.user, Status.ONLINE)
    return web.json_response({"left": True})


async def publish(request: web.Request) -> web.Response:
    """WHIP for the presenter and stage members. Publishing again replaces the publication
    (e.g. camera → screen share); viewers follow `broadcast.updated`."""
    b = _broadcast(request)
    service = request.app[BROADCASTS]
    seat = service.check_publisher(b, principal(request))
    offer = await read_sdp(request)
    try:
        publication, answer = await service.media.publish(b.room, seat, offer)
    except OfferError as err:
        raise Invalid(str(err)) from None
    location = f"/api/rooms/{b.room.id}/publish/{publication.id}"
    return web.Response(
        status=201, text=answer, content_type="application/sdp", headers={"Location": location}
    )


async def watch(request: web.Request) -> web.Response:
    """WHEP for a viewer: the presenter (`/whep`) or a stage member (`/seats/{user}/whep`)."""
    b = _broadcast(request)
    p = principal(request)
    service = request.app[BROADCASTS]
    service.present_seat(b, p)
    user = request.match_info.get("user", b.presenter)
    seat = b.room.seats.get(user)
    if not b.may_publish(user) or seat is None or not seat.present or not seat.publication:
        raise NotFound(f"{user} publishes nothing in this broadcast now")
    offer = await read_sdp(request)
    try:
        session, answer = await service.media.subscribe(b.room, seat.publication, offer, p.user)
    except OfferError as err:
        raise Invalid(str(err)) from None
    except UnknownPublication:
        raise NotFound(f"{user}'s publication just ended") from None
    location = f"/api/rooms/{b.room.id}/subscriptions/{session}"
    return web.Response(
        status=201, text=answer, content_type="application/sdp", headers={"Location": location}
    )


async def hand(request: web.Request) -> web.Response:
    b = _broadcast(request)
    body = await read_json(request)
    up = body.get("up", True)
    if not isinstance(up, bool):
        raise Invalid("up must be true or false")
    request.app[BROADCASTS].hand(b, principal(request), up)
    return web.json_response(b.to_json())


async def stage(request: web.Request) -> web.Response:
    b = _broadcast(request)
    body = await read_json(request)
    user, on = body.get("user"), body.get("on", True)
    if not isinstance(user, str) or not isinstance(on, bool):
        raise Invalid("user (string) and on (true/false) are required")
    await request.app[BROADCASTS].set_stage(b, principal(request), user, on)
    return web.json_response(b.to_json())


async def end(request: web.Request) -> web.Response:
    b = _broadcast(request)
    request.app[BROADCASTS].end(b, principal(request))
    return web.json_response(b.to_json())


async def _ledger_row(request: web.Request) -> BroadcastRow:
    """The broadcast's ledger row (live or ended, also from before a restart), if the caller
    is its presenter, above its centre or one of its targets; 404 otherwise."""
    p = principal(request)
    row = await request.app[BROADCASTS].ledger.get(request.match_info["id"])
    if row is None or not (
        p.user == row.presenter or p.can_see(row.centre) or p.centre in row.targets
    ):
        raise NotFound(f"no broadcast {request.match_info['id']!r} for you")
    return row


async def _report(request: web.Request) -> dict[str, object]:
    """Live broadcasts from memory; ended ones (also from before a restart) from the ledger."""
    p = principal(request)
    service = request.app[BROADCASTS]
    row = await _ledger_row(request)
    if p.user != row.presenter and not p.can_see(row.centre):
        raise Forbidden("attendance is for the presenter and the centres above")
    return attendance(row, await service.ledger.attendance(row.id), request.app[CENTRES])


async def get_attendance(request: web.Request) -> web.Response:
    return web.json_response(await _report(request))


async def get_attendance_csv(request: web.Request) -> web.Response:
    report = await _report(request)
    name = f"attendance-{request.match_info['id']}.csv"
    return web.Response(
        body=attendance_csv(report),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def stats(request: web.Request) -> web.Response:
    """What the hub receives from each sender (frames, keyframes, frames skipped after a
    loss) and sends to each viewer (frames sent, drops, keyframe requests): for the
    presenter and the centres above."""
    b = _broadcast(request)
    p = principal(request)
    if p.user != b.presenter and not p.can_see(b.room.centre):
        raise Forbidden("stats are for the presenter and the centres above")
    publications = request.app[BROADCASTS].media.publications
    ids = list(b.to_json()["publications"].values())
    subs = [s.stats() for pub in ids for s in publications.subscriptions(pub)]
    pubs = [p.stats() for p in map(publications.get, ids) if p is not None]
    return web.json_response({"broadcast": b.id, "publications": pubs, "subscriptions": subs})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/broadcasts", start)
    r.add_get("/api/broadcasts", list_broadcasts)
    one = owned("broadcast", "id")
    r.add_get("/api/broadcasts/{id}", one(get))
    r.add_post("/api/broadcasts/{id}/join", one(join))
    r.add_post("/api/broadcasts/{id}/leave", one(leave))
    r.add_post("/api/broadcasts/{id}/publish", one(publish))
    r.add_post("/api/broadcasts/{id}/whep", one(watch))
    r.add_post("/api/broadcasts/{id}/seats/{user}/whep", one(watch))
    r.add_post("/api/broadcasts/{id}/hand", one(hand))
    r.add_post("/api/broadcasts/{id}/stage", one(stage))
    r.add_post("/api/broadcasts/{id}/end", one(end))
    r.add_get("/api/broadcasts/{id}/stats", one(stats))
    r.add_get("/api/broadcasts/{id}/attendance", one(get_attendance))
    r.add_get("/api/broadcasts/{id}/attendance.csv", one(get_attendance_csv))
