"""Walls (server-side mosaics) and their WHEP playback; substream WHEP for wall tiles."""

from __future__ import annotations

import contextlib

from aiohttp import web

from config.schema import Role
from hub.cameras.service import CAMERAS, PICTURES, WHEP, require_node
from hub.core.auth import principal
from hub.core.errors import Conflict, Forbidden, Invalid, NotAllowed, NotFound, Unsupported
from hub.core.state import CONFIG
from hub.core.turn import client_ice_servers_for, link_header
from hub.http.request import check_offer, read_json
from hub.walls.service import WALLS, Wall, WallError
from signaling.whep import OfferError
from streams.mosaic import LAYOUTS, MosaicSpec
from streams.stream import Stream, StreamState

CREATORS = {Role.ADMIN, Role.OPERATOR, Role.DISPATCHER}


def _visible_wall(request: web.Request) -> Wall:
    p = principal(request)
    wall = request.app[WALLS].get(request.match_info["wall"])
    if wall is None or not p.can_see(wall.centre):
        raise NotFound(f"no wall {request.match_info['wall']!r} in your scope")
    return wall


def _number(body: dict[str, object], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid(f"{key} must be a number between {low:g} and {high:g}")
    return float(value)


async def create_wall(request: web.Request) -> web.Response:
    p = principal(request)
    if p.role not in CREATORS:
        raise Forbidden("only operators, dispatchers and admins create walls")
    body = await read_json(request)
    layout, cameras = body.get("layout"), body.get("cameras", [])
    if layout not in LAYOUTS:
        raise Invalid(f"layout must be one of {', '.join(map(str, LAYOUTS))}")
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        raise Invalid('cameras must be a list of camera ids ("" for an empty tile)')
    walls = request.app[WALLS]
    registry = request.app[CAMERAS]
    for cam_id in cameras:
        if cam_id:
            await registry.viewable(cam_id, p)
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        raise Invalid("name must be a string of at most 100 characters")
    width = int(_number(body, "width", 1920, 160, 3840)) & ~1
    height = int(_number(body, "height", 1080, 90, 2160)) & ~1
    fps = _number(body, "fps", 15, 1, 30)
    spec = MosaicSpec(int(layout), width, height, fps)
    try:
        wall = walls.create(spec, list(cameras), centre=p.centre, owner=p.user, name=name)
    except WallError as err:
        if "at most" in str(err):
            raise Conflict(str(err)) from None
        raise Invalid(str(err)) from None
    return web.json_response(
        wall.to_json(), status=201, headers={"Location": f"/api/walls/{wall.id}"}
    )


async def list_walls(request: web.Request) -> web.Response:
    p = principal(request)
    return web.json_response([w.to_json() for w in request.app[WALLS].visible_to(p.centre)])


async def get_wall(request: web.Request) -> web.Response:
    return web.json_response(_visible_wall(request).to_json())


async def delete_wall(request: web.Request) -> web.Response:
    p = principal(request)
    wall = _visible_wall(request)
    if wall.configured:
        raise Conflict("this wall comes from the config file")
    if wall.owner != p.user and p.role is not Role.ADMIN:
        raise Forbidden("this wall belongs to another user")
    await request.app[WALLS].delete(wall.id)
    return web.Response(status=204)


async def _answer(request: web.Request, stream: Stream, base: str) -> web.Response:
    if request.content_type != "application/sdp":
        raise Unsupported("WHEP offers must be sent as Content-Type: application/sdp")
    try:
        offer = check_offer((await request.read()).decode("utf-8"))
    except UnicodeDecodeError:
        raise Invalid("the SDP offer is not UTF-8 text") from None
    p = principal(request)
    try:
        session, answer = await request.app[WHEP].create(stream, offer, user=p.user)
    except OfferError as err:
        raise Invalid(str(err)) from None
    headers = {"Location": f"{base}/{session.id}", "ETag": f'"{session.id}"'}
    # the same ICE servers as the camera WHEP endpoint, TURN credentials included
    links = link_header(client_ice_servers_for(request.app[CONFIG].webrtc, p.user))
    if links:
        headers["Link"] = links
    return web.Response(status=201, text=answer, content_type="application/sdp", headers=headers)


async def _end(request: web.Request, stream: Stream) -> web.Response:
    p = principal(request)
    sessions = request.app[WHEP]
    session = sessions.get(request.match_info["session"])
    if session is None or session.camera != stream.name:
        raise NotFound("no such WHEP session")
    if session.user != p.user and p.role is not Role.ADMIN:
        raise Forbidden("this session belongs to another user")
    await sessions.close(session.id, reason=f"deleted by {p.user}")
    return web.Response(status=200)


async def wall_whep(request: web.Request) -> web.Response:
    wall = _visible_wall(request)  # authorization before the body is read
    return await _answer(request, wall.stream, f"/api/walls/{wall.id}/whep")


async def wall_whep_delete(request: web.Request) -> web.Response:
    return await _end(request, _visible_wall(request).stream)


async def _tile_stream(request: web.Request, *, new: bool = False) -> Stream:
    # another node's camera: its relay leg's stream
    cam = await request.app[CAMERAS].viewable(request.match_info["camera"], principal(request))
    if new:
        require_node(cam)
    return request.app[PICTURES].substream(cam) or cam.stream


async def substream_whep(request: web.Request) -> web.Response:
    """The camera's substream (its main stream when it has none), for small wall tiles."""
    stream = await _tile_stream(request, new=True)
    wait = request.app[CONFIG].streams.first_packet_wait
    if stream.relay.info is None and wait > 0:  # learn the codec first (transcoder or not)
        with stream.acquire("whep-probe"), contextlib.suppress(TimeoutError):
            await stream.wait_state(StreamState.ONLINE, StreamState.OFFLINE, timeout=wait)
    base = f"/api/cameras/{request.match_info['camera']}/substream/whep"
    return await _answer(request, stream, base)


async def substream_whep_delete(request: web.Request) -> web.Response:
    return await _end(request, await _tile_stream(request))


async def no_trickle(request: web.Request) -> web.Response:
    raise NotAllowed("trickle ICE is not supported: send a complete offer", "trickle_unsupported")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/walls", list_walls)
    app.router.add_post("/api/walls", create_wall)
    app.router.add_get("/api/walls/{wall}", get_wall)
    app.router.add_delete("/api/walls/{wall}", delete_wall)
    app.router.add_post("/api/walls/{wall}/whep", wall_whep)
    app.router.add_delete("/api/walls/{wall}/whep/{session}", wall_whep_delete)
    app.router.add_patch("/api/walls/{wall}/whep/{session}", no_trickle)
    app.router.add_post("/api/cameras/{camera}/substream/whep", substream_whep)
    app.router.add_delete("/api/cameras/{camera}/substream/whep/{session}", substream_whep_delete)
