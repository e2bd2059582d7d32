"""Rooms over HTTP: create, join, publish (WHIP), subscribe to seats and cameras (WHEP),
host controls. Signaling bodies are SDP (`application/sdp`); everything else JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from config.schema import Role
from hub.cameras.service import CAMERAS, WHEP
from hub.core.auth import Principal, principal
from hub.core.centres import CENTRES
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound
from hub.core.presence import PRESENCE, Status
from hub.http.lists import merged_list
from hub.http.request import read_json, read_sdp
from hub.http.routes import owned
from hub.rooms.model import ROOMS, Room, RoomKind, Seat
from hub.rooms.service import ROOM_MEDIA
from signaling.publish import UnknownPublication
from signaling.whep import OfferError

CREATORS = {Role.ADMIN, Role.DISPATCHER, Role.RECEPTIONIST, Role.MEDIATOR, Role.OPERATOR}


def _room(request: web.Request) -> tuple[Room, Principal]:
    p = principal(request)
    room = request.app[ROOMS].require(request.match_info["room"], p)
    return room, p


def _present_seat(room: Room, p: Principal) -> Seat:
    seat = room.seats.get(p.user)
    if seat is None or not seat.present:
        raise Conflict("join the room first (POST /api/rooms/{id}/join)")
    return seat


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{key} must be a list of strings")
    return value


async def create_room(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role not in CREATORS:
        raise Forbidden(f"a {p.role} may not open rooms")
    body = await read_json(request)
    kind = body.get("kind", "meeting")
    if kind not in ("meeting", "hearing"):
        raise Invalid("kind must be meeting or hearing (calls: POST /api/calls)")
    title = body.get("title", "")
    if not isinstance(title, str) or len(title) > 200:
        raise Invalid("title must be a string of at most 200 characters")
    centres = _strings(body, "centres")
    tree = request.app[CENTRES]
    for code in centres:
        if code not in tree:
            raise Invalid(f"no centre {code}")
        if not p.can_see(code):
            raise Forbidden(f"centre {code} is outside your scope")
    room = request.app[ROOMS].create(
        p, kind=RoomKind(kind), title=title, users=_strings(body, "users"), centres=centres
    )
    return web.json_response(room.to_json(), status=201)


async def list_rooms(request: web.Request) -> web.Response:
    p = principal(request)
    return await merged_list(request, [r.to_json() for r in request.app[ROOMS].list_for(p)])


async def get_room(request: web.Request) -> web.Response:
    room, _ = _room(request)
    return web.json_response(room.to_json())


def _not_a_broadcast(room: Room) -> None:
    """Broadcasts keep attendance and decide who is on stage: they go through their own
    endpoints."""
    if room.kind is RoomKind.BROADCAST:
        raise Conflict("this room is a broadcast: use /api/broadcasts/{id}/join and /publish")


async def join(request: web.Request) -> web.Response:
    room, p = _room(request)
    _not_a_broadcast(room)
    seat = request.app[ROOMS].join(room, p)
    request.app[PRESENCE].set_status(p.user, Status.IN_CALL)
    return web.json_response({"room": room.to_json(), "seat": seat.to_json()})


async def leave(request: web.Request) -> web.Response:
    room, p = _room(request)
    request.app[ROOMS].leave(room, p.user)
    request.app[PRESENCE].set_status(p.user, Status.ONLINE)
    return web.json_response({"left": True})


async def publish(request: web.Request) -> web.Response:
    room, p = _room(request)
    _not_a_broadcast(room)
    seat = _present_seat(room, p)
    offer = await read_sdp(request)
    try:
        publication, answer = await request.app[ROOM_MEDIA].publish(room, seat, offer)
    except OfferError as err:
        raise Invalid(str(err)) from None
    location = f"/api/rooms/{room.id}/publish/{publication.id}"
    return web.Response(
        status=201, text=answer, content_type="application/sdp", headers={"Location": location}
    )


async def unpublish(request: web.Request) -> web.Response:
    room, p = _room(request)
    seat = room.seats.get(p.user)
    pub_id = request.match_info["publication"]
    if seat is None or seat.publication != pub_id:
        raise NotFound("no such publication of yours in this room")
    await request.app[ROOM_MEDIA].publications.unpublish(pub_id, "unpublished")
    request.app[ROOMS].seat_publication(room, p.user, None)
    return web.Response(status=200)


async def subscribe_seat(request: web.Request) -> web.Response:
    room, p = _room(request)
    _present_seat(room, p)
    target = room.seats.get(request.match_info["user"])
    if target is None or not target.present or target.publication is None:
        raise NotFound("that participant publishes nothing now")
    offer = await read_sdp(request)
    media = request.app[ROOM_MEDIA]
    try:
        session_id, answer = await media.subscribe(room, target.publication, offer, p.user)
    except OfferError as err:
        raise Invalid(str(err)) from None
    except UnknownPublication:
        raise NotFound("that participant stopped publishing") from None
    location = f"/api/rooms/{room.id}/subscriptions/{session_id}"
    return web.Response(
        status=201, text=answer, content_type="application/sdp", headers={"Location": location}
    )


async def unsubscribe(request: web.Request) -> web.Response:
    room, p = _room(request)
    await request.app[ROOM_MEDIA].unsubscribe(room, request.match_info["session"], p)
    return web.Response(status=200)


async def add_camera(request: web.Request) -> web.Response:
    room, p = _room(request)
    if p.user != room.host and p.role is not Role.ADMIN:
        raise Forbidden("only the host may add cameras")
    body = await read_json(request)
    camera_id = body.get("camera")
    if not isinstance(camera_id, str):
        raise Invalid("camera (an id) is required")
    cam = request.app[CAMERAS].get(camera_id)
    if cam is None or not p.can_see(cam.centre):
        raise NotFound(f"no camera {camera_id!r} in your scope")
    request.app[ROOMS].add_camera(room, camera_id)
    return web.json_response(room.to_json())


async def camera_whep(request: web.Request) -> web.Response:
    """A room camera for a participant, who may be outside the camera's own scope: the host
    shared it with the room."""
    room, p = _room(request)
    _present_seat(room, p)
    camera_id = request.match_info["camera"]
    cam = request.app[CAMERAS].get(camera_id)
    if cam is None or camera_id not in room.cameras:
        raise NotFound(f"camera {camera_id!r} is not in this room")
    offer = await read_sdp(request)
    try:
        session, answer = await request.app[WHEP].create(cam.stream, offer, user=p.user)
    except OfferError as err:
        raise Invalid(str(err)) from None
    location = f"/api/cameras/{cam.id}/whep/{session.id}"
    return web.Response(
        status=201, text=answer, content_type="application/sdp", headers={"Location": location}
    )


async def control(request: web.Request) -> web.Response:
    room, p = _room(request)
    body = await read_json(request)
    action, user = body.get("action"), body.get("user")
    if not isinstance(action, str) or (user is not None and not isinstance(user, str)):
        raise Invalid("action (string) and optional user (string) are required")
    rooms = request.app[ROOMS]
    rooms.control(room, p, action, user)
    seat = room.seats.get(user or "")
    if seat is not None and action in ("mute", "unmute"):
        request.app[ROOM_MEDIA].mute(room, seat)
    return web.json_response(room.to_json())


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/rooms", create_room)
    r.add_get("/api/rooms", list_rooms)
    one = owned("room", "room", known_here=_known_here)
    r.add_get("/api/rooms/{room}", one(get_room))
    r.add_post("/api/rooms/{room}/join", one(join))
    r.add_post("/api/rooms/{room}/leave", one(leave))
    r.add_post("/api/rooms/{room}/publish", one(publish))
    r.add_delete("/api/rooms/{room}/publish/{publication}", one(unpublish))
    r.add_post("/api/rooms/{room}/seats/{user}/whep", one(subscribe_seat))
    r.add_delete("/api/rooms/{room}/subscriptions/{session}", one(unsubscribe))
    r.add_post("/api/rooms/{room}/cameras", one(add_camera))
    r.add_post("/api/rooms/{room}/cameras/{camera}/whep", one(camera_whep))
    r.add_post("/api/rooms/{room}/control", one(control))


def _known_here(app: web.Application, room: str) -> bool:
    """A room this node holds, ended ones included (they are not claimed any more)."""
    return app[ROOMS].get(room) is not None
